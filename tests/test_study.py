"""vis2mus-study: make a study with a real engine, answer it by script, score it."""

import json
import math
import re
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from live.offline.study import binomial_p_value, main
from tests.support.scratch import random_weights

HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    weights = random_weights(root / "weights")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIS2MUS_CACHE", str(root / "onnx"))
    try:
        assert main(["make", "--out", str(root / "kit"), "--weights", str(weights), "--segments", "1",
                     "--alpha", "0.7", "--seed", "3"]) == 0
    finally:
        mp.undo()
    return root / "kit"


def page_data(folder: Path) -> list[dict]:
    page = (folder / "index.html").read_text()
    match = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_kit_is_self_contained_and_hides_the_answers(study):
    key = json.loads((study / "key.json").read_text())
    trials = page_data(study)
    counts = {task: sum(1 for t in key["trials"] if t["task"] == task) for task in ("brightness", "contrast", "style")}
    assert counts == {"brightness": 6, "contrast": 6, "style": 12}
    assert [t["id"] for t in trials] == [k["id"] for k in key["trials"]]
    for trial, entry in zip(trials, key["trials"]):
        assert trial["task"] == entry["task"]
        assert len(trial["options"]) == (4 if trial["task"] == "style" else 2)
        assert entry["answer"] in [o["label"] for o in trial["options"]]
        paths = [trial["image"]] + [c["image"] for c in trial["context"]]
        for item in trial["options"] + trial["context"]:
            paths += [item[k] for k in ("midi", "roll", "audio") if k in item]
        for path in paths:
            assert (study / path).is_file(), path
        if HAS_FLUIDSYNTH:
            assert all("audio" in o for o in trial["options"])
    page = (study / "index.html").read_text()
    assert '"answer"' not in page and "http" not in page
    names = {o["midi"] for t in trials for o in t["options"]}
    assert not any(word in name for name in names for word in ("same", "inverse", "stride", "lullaby"))
    answers = [k["answer"] for k in key["trials"] if k["task"] != "style"]
    assert {"A", "B"} <= set(answers)


@pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="fluidsynth is not installed")
def test_audio_is_mono_22k(study):
    audio = next((study / "media").glob("*.wav"))
    with wave.open(str(audio)) as w:
        assert w.getnchannels() == 1 and w.getframerate() == 22050 and w.getnframes() > 22050


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (JavaScript syntax check)")
def test_page_script_is_valid_javascript(study, tmp_path):
    page = (study / "index.html").read_text()
    script = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    (tmp_path / "page.js").write_text(script)
    subprocess.run(["node", "--check", str(tmp_path / "page.js")], check=True)


def write_answers(path: Path, study_id: str, who: str, answers: dict) -> Path:
    path.write_text(json.dumps({"study": study_id, "participant": who, "answers": answers}))
    return path


def test_scripted_answers_are_scored_per_task(study, tmp_path, capsys):
    key = json.loads((study / "key.json").read_text())
    right = {k["id"]: k["answer"] for k in key["trials"]}
    wrong = {k["id"]: ("B" if k["answer"] == "A" else "A") for k in key["trials"]}
    files = [write_answers(tmp_path / "p1.json", key["study"], "p1", right),
             write_answers(tmp_path / "p2.json", key["study"], "p2", wrong),
             write_answers(tmp_path / "p3.json", key["study"], "p3", {**right, "t99": "A", "t01": "Z"})]
    out = tmp_path / "results.json"
    assert main(["score", *map(str, files), "--key", str(study / "key.json"), "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    t01_task = key["trials"][0]["task"]
    for task, n_trials in (("brightness", 6), ("contrast", 6), ("style", 12)):
        answers = 3 * n_trials - (task == t01_task)
        correct = 2 * n_trials - (task == t01_task)
        r = results[task]
        assert (r["answers"], r["correct"]) == (answers, correct)
        assert r["accuracy"] == pytest.approx(correct / answers)
        assert r["p_value"] == pytest.approx(binomial_p_value(correct, answers, r["chance"]))
    printed = capsys.readouterr().out
    assert "3 answer file(s)" in printed and "62.5 %" in printed and "68.2 %" in printed and "60.6 %" in printed
    assert "unknown trial 't99' skipped" in printed and "trial t01 has no valid choice" in printed


def test_binomial_p_values_are_exact():
    assert binomial_p_value(8, 10, 0.5) == pytest.approx(56 / 1024)
    assert binomial_p_value(0, 10, 0.5) == pytest.approx(1.0)
    assert binomial_p_value(10, 10, 0.25) == pytest.approx(0.25**10)
    assert binomial_p_value(3, 4, 0.25) == pytest.approx(4 * 0.25**3 * 0.75 + 0.25**4)
    total = sum(math.comb(40, k) * 0.5**40 for k in range(25, 41))
    assert binomial_p_value(25, 40, 0.5) == pytest.approx(total)


def test_score_errors_are_one_line(study, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["score", str(bad), "--key", str(study / "key.json")]) == 2
    assert "not an answer file" in capsys.readouterr().err
    other = write_answers(tmp_path / "other.json", "elsewhere", "x", {"t01": "A"})
    assert main(["score", str(other), "--key", str(study / "key.json")]) == 2
    assert "belong to study 'elsewhere'" in capsys.readouterr().err
    assert main(["score", str(other), "--key", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vis2mus-study: error: ") and "not a study key file" in err and "\n" not in err
