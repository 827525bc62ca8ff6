"""``vis2mus-study``: the Vis2Mus analysis-by-synthesis listening study (paper section 2.4) as a kit.

    vis2mus-study make --out study/            # trials, media, key.json, index.html
    vis2mus-study score answers/*.json --key study/key.json

Tasks, each a multiple choice:

- **brightness** (chance 50 %): the anchor's picture and music are shown. Then the picture
  brightened or darkened by alpha is shown, with two pieces: the music under the same transformation
  and under the inverse one (-alpha), in random order. Which piece goes with the picture?
- **contrast** (chance 50 %): the same with contrast.
- **style** (chance 25 %): two sketches (content pieces) x two styles (texture anchors) make four
  pieces. The picture of one combination is shown with all four pieces. Which one is it?

``make`` writes a self-contained folder: ``index.html`` (works offline, plays the WAV files with
``<audio>``, saves the answers as a JSON file), ``media/`` (PNG, MIDI, WAV when fluidsynth and a
soundfont are installed; media names are opaque, so they do not give the answer away), ``key.json``
(the answers; keep it away from participants) and ``README.txt``. ``score`` reports the accuracy
per task against chance, with an exact one-sided binomial p-value, next to the paper's results.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import math
import random
import sys
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from live import logs
from live.checks import one_line
from live.offline.render import (
    Piece, make_piece, open_engine, piano_roll, wav_soundfont, write_piece_midi, write_wav,
)
from live.texture.anchors import Anchor, AnchorError, content_pieces, default_anchors
from live.texture.style import blend_images, choose_tempo
from live.texture.transform import adjust, check_alpha
from live.texture.vis2mus import MODES, Vis2Mus

CHANCE = {"brightness": 0.5, "contrast": 0.5, "style": 0.25}
PAPER = {"brightness": 0.625, "contrast": 0.682, "style": 0.606}
STYLE_PAIRS = (("pop_comping", "sparse_ballad"), ("arpeggios", "stride"), ("block_chords", "broken_chords"))
LETTERS = "ABCD"


class StudyError(ValueError):
    """A problem with the study inputs; ``str()`` is one line."""


def binomial_p_value(correct: int, n: int, chance: float) -> float:
    """Exact one-sided p-value ``P(X >= correct)`` for ``X ~ Binomial(n, chance)``."""
    if not 0 <= correct <= n:
        raise ValueError(f"correct answers {correct} must be within 0..{n}")
    return float(min(1.0, sum(math.comb(n, k) * chance**k * (1 - chance) ** (n - k) for k in range(correct, n + 1))))


class Media:
    """Writes pictures and pieces under opaque names into ``folder``; each is written once."""

    def __init__(self, folder: Path, salt: str, soundfont: str | None) -> None:
        self.folder = folder
        self.salt = salt
        self.soundfont = soundfont
        self.folder.mkdir(parents=True, exist_ok=True)
        self._done: dict[str, dict] = {}

    def _name(self, description: str) -> str:
        return hashlib.sha256(f"{self.salt}:{description}".encode()).hexdigest()[:12]

    def picture(self, description: str, image: np.ndarray) -> str:
        """Save a picture; returns its path relative to the study folder."""
        if description not in self._done:
            name = f"{self._name(description)}.png"
            Image.fromarray(image).save(self.folder / name)
            self._done[description] = {"image": f"media/{name}"}
        return self._done[description]["image"]

    def piece(self, description: str, piece: Piece) -> dict:
        """Save a piece as MIDI, piano roll and (when possible) mono WAV; returns relative paths."""
        if description not in self._done:
            stem = self._name(description)
            entry = {"midi": f"media/{stem}.mid", "roll": f"media/{stem}_roll.png"}
            write_piece_midi(self.folder / f"{stem}.mid", piece)
            piano_roll(piece, "").save(self.folder / f"{stem}_roll.png")
            if self.soundfont is not None:
                write_wav(self.folder / f"{stem}.mid", self.folder / f"{stem}.wav", self.soundfont)
                to_mono(self.folder / f"{stem}.wav")
                entry["audio"] = f"media/{stem}.wav"
            self._done[description] = entry
        return self._done[description]


def to_mono(path: Path, rate: int = 22050) -> None:
    """Rewrite a 16-bit stereo 44.1 kHz WAV as mono at ``rate`` (a quarter of the size)."""
    with wave.open(str(path)) as w:
        channels, width, source_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if width != 2:
        return
    mono = frames.reshape(-1, channels).mean(axis=1)
    step = max(1, source_rate // rate)
    usable = len(mono) // step * step
    mono = mono[:usable].reshape(-1, step).mean(axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(source_rate // step)
        w.writeframes(np.clip(np.rint(mono), -32768, 32767).astype(np.int16).tobytes())


def _render(v2m: Vis2Mus, anchor: Anchor, alpha_b: float, alpha_c: float, segments: int,
            content: Anchor | None = None) -> Piece:
    count = min(segments, v2m.n_segments(anchor, content))
    rendered = v2m.render(anchor, alpha_b, alpha_c, list(range(count)), content=content)
    bpm = choose_tempo(content.bpm, anchor.bpm) if content is not None else anchor.bpm
    return make_piece(rendered, bpm, anchor.image)


def make_trials(v2m: Vis2Mus, media: Media, anchors: dict[str, Anchor], contents: dict[str, Anchor],
                alpha: float, segments: int, rng: random.Random, progress=print) -> tuple[list[dict], list[dict]]:
    """Build every trial; returns (public trials for the page, key entries)."""
    public, key = [], []

    def add(task: str, prompt: str, context: list[dict], image: str, options: list[tuple[str, dict]], answer: str,
            meta: dict) -> None:
        trial_id = f"t{len(public):02d}"
        public.append({"id": trial_id, "task": task, "prompt": prompt, "context": context, "image": image,
                       "options": [{"label": label, **files} for label, files in options]})
        key.append({"id": trial_id, "task": task, "answer": answer, **meta})

    for name, anchor in anchors.items():
        reference = {"caption": html.escape(f"anchor: {anchor.title}"), "image": media.picture(f"img:{name}", anchor.image),
                     **media.piece(f"music:{name}:0:0", _render(v2m, anchor, 0.0, 0.0, segments))}
        for task in ("brightness", "contrast"):
            sign = rng.choice((-1.0, 1.0))
            a = sign * alpha
            pair = (a, 0.0) if task == "brightness" else (0.0, a)
            inverse = (-a, 0.0) if task == "brightness" else (0.0, -a)
            target = media.picture(f"img:{name}:{pair}", adjust(anchor.image, *pair))
            same = media.piece(f"music:{name}:{pair}", _render(v2m, anchor, *pair, segments))
            other = media.piece(f"music:{name}:{inverse}", _render(v2m, anchor, *inverse, segments))
            order = [("same", same), ("inverse", other)]
            rng.shuffle(order)
            answer = LETTERS[[kind for kind, _ in order].index("same")]
            add(task, f"The picture's {task} was changed. Which piece has the same change in its music?",
                [reference], target, [(LETTERS[i], files) for i, (_, files) in enumerate(order)], answer,
                {"anchor": name, "alpha": a})
        progress(f"brightness and contrast trials for {name}")
    sketches = list(contents.values())[:2]
    if len(sketches) == 2:
        for pair in STYLE_PAIRS:
            styles = [anchors[n] for n in pair if n in anchors]
            if len(styles) != 2:
                continue
            combos = [(c, s) for c in sketches for s in styles]
            pieces = {(c.name, s.name): media.piece(f"style:{c.name}:{s.name}", _render(v2m, s, 0.0, 0.0, segments, c))
                      for c, s in combos}
            context = [{"caption": html.escape(f"sketch: {c.title}"), "image": media.picture(f"img:{c.name}", c.image)}
                       for c in sketches]
            context += [{"caption": html.escape(f"style: {s.title}"), "image": media.picture(f"img:{s.name}", s.image),
                         **media.piece(f"music:{s.name}:0:0", _render(v2m, s, 0.0, 0.0, segments))} for s in styles]
            for c, s in combos:
                target = media.picture(f"blend:{c.name}:{s.name}", blend_images(c.image, s.image))
                order = list(combos)
                rng.shuffle(order)
                answer = LETTERS[order.index((c, s))]
                add("style", "This picture is one sketch in one style. Which piece is the same sketch's tune in that "
                    "style's texture?", context, target,
                    [(LETTERS[i], pieces[(oc.name, os_.name)]) for i, (oc, os_) in enumerate(order)], answer,
                    {"content": c.name, "style": s.name})
            progress(f"style trials for {pair[0]} x {pair[1]}")
    order = list(range(len(public)))
    rng.shuffle(order)
    public, key = [public[i] for i in order], [key[i] for i in order]
    for number, (trial, entry) in enumerate(zip(public, key), 1):
        trial["id"] = entry["id"] = f"t{number:02d}"
    return public, key


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vis2Mus listening study</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }}
.trial {{ border-top: 2px solid #ccc; padding: 1em 0; }}
.row {{ display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }}
figure {{ margin: 0; width: 14em; }} figure img {{ width: 14em; border: 1px solid #bbb; }}
.target img {{ width: 16em; border: 3px solid #333; }}
.option {{ border: 1px solid #ccc; padding: .5em; border-radius: 6px; }}
audio {{ width: 14em; }} .roll {{ width: 14em; display: none; }}
#done {{ font-weight: bold; }}
</style></head><body>
<h1>Vis2Mus listening study</h1>
<p>For each trial, look at the picture in the thick frame, listen to the pieces, and choose the one that fits.
There are no right feelings: go with your ear. When you are done, press <b>Save answers</b> and send the
downloaded file back. Nothing is sent anywhere by this page.</p>
<p><label>Your name or code: <input id="participant" size="20"></label>
<label><input type="checkbox" id="rolls"> show piano rolls (if you cannot play audio)</label></p>
<div id="trials"></div>
<p><button id="save">Save answers</button> <span id="done"></span></p>
<script id="data" type="application/json">{data}</script>
<script>
const trials = JSON.parse(document.getElementById("data").textContent);
const root = document.getElementById("trials");
function media(item) {{
  let out = "";
  if (item.audio) out += `<audio controls preload="none" src="${{item.audio}}"></audio><br>`;
  if (item.roll) out += `<img class="roll" src="${{item.roll}}" alt="piano roll"><br>`;
  if (item.midi) out += `<a href="${{item.midi}}">MIDI</a>`;
  return out;
}}
trials.forEach((t, i) => {{
  const div = document.createElement("div");
  div.className = "trial";
  const context = t.context.map(c => `<figure><img src="${{c.image}}" alt=""><figcaption>${{c.caption}}</figcaption>${{media(c)}}</figure>`).join("");
  const options = t.options.map(o => `<label class="option"><input type="radio" name="${{t.id}}" value="${{o.label}}"> piece ${{o.label}}<br>${{media(o)}}</label>`).join("");
  div.innerHTML = `<h2>Trial ${{i + 1}} of ${{trials.length}} (${{t.task}})</h2><p>${{t.prompt}}</p>
    <div class="row">${{context}}</div><p></p><div class="row"><figure class="target"><img src="${{t.image}}" alt="picture"></figure>${{options}}</div>`;
  root.appendChild(div);
}});
document.getElementById("rolls").addEventListener("change", e => {{
  document.querySelectorAll(".roll").forEach(img => img.style.display = e.target.checked ? "inline" : "none");
}});
document.getElementById("save").addEventListener("click", () => {{
  const answers = {{}};
  trials.forEach(t => {{
    const chosen = document.querySelector(`input[name="${{t.id}}"]:checked`);
    if (chosen) answers[t.id] = chosen.value;
  }});
  const who = document.getElementById("participant").value.trim() || "anonymous";
  const blob = new Blob([JSON.stringify({{study: "{study_id}", participant: who, answers: answers}}, null, 2)],
                        {{type: "application/json"}});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `answers-${{who.replace(/[^A-Za-z0-9_-]/g, "_")}}.json`;
  link.click();
  document.getElementById("done").textContent = `${{Object.keys(answers).length}} of ${{trials.length}} answered and saved.`;
}});
</script></body></html>
"""

README = """Vis2Mus listening study ({study_id})

Participants: open index.html in a web browser (no network needed), answer, press "Save answers",
and send back the downloaded answers-*.json file. key.json holds the answers: do not hand it out.

Score the answer files:
    vis2mus-study score answers-*.json --key key.json

Tasks: {counts}. Each picture or piece is rendered from {segments} two-bar segment(s) with the
transformation size |alpha| = {alpha}. Audio: {audio}.
"""


def make_study(out: Path, v2m: Vis2Mus, alpha: float = 0.6, segments: int = 2, seed: int = 0,
               soundfont: str | None = None, progress=print) -> dict:
    """Write the study folder; returns the key."""
    alpha = check_alpha(alpha, "--alpha")
    if alpha <= 0:
        raise StudyError("--alpha must be above 0 (the size of the change the participants judge)")
    if segments < 1:
        raise StudyError("--segments must be at least 1")
    study_id = hashlib.sha256(f"{seed}:{alpha}:{segments}".encode()).hexdigest()[:10]
    rng = random.Random(seed)
    media = Media(out / "media", study_id, soundfont)
    public, key = make_trials(v2m, media, default_anchors(), content_pieces(), alpha, segments, rng, progress)
    page = PAGE.format(data=json.dumps(public).replace("</", "<\\/"), study_id=study_id)
    (out / "index.html").write_text(page)
    key_doc = {"study": study_id, "alpha": alpha, "segments": segments, "seed": seed, "trials": key}
    (out / "key.json").write_text(json.dumps(key_doc, indent=2))
    counts = {task: sum(1 for k in key if k["task"] == task) for task in CHANCE}
    audio = "WAV (mono 22 kHz) rendered with fluidsynth" if soundfont else "none (MIDI files and piano rolls only)"
    (out / "README.txt").write_text(README.format(study_id=study_id, counts=", ".join(f"{v} {k}" for k, v in counts.items()),
                                                  segments=segments, alpha=alpha, audio=audio))
    return key_doc


def score(answer_paths: list[Path], key_path: Path, log=print) -> dict:
    """Accuracy per task over all answer files; returns ``{task: {...}}`` and prints a table."""
    try:
        key_doc = json.loads(Path(key_path).read_text())
        key = {k["id"]: k for k in key_doc["trials"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StudyError(f"{key_path}: not a study key file ({one_line(exc)})") from None
    tally = {task: [0, 0] for task in CHANCE}
    participants = 0
    for path in answer_paths:
        try:
            doc = json.loads(Path(path).read_text())
            answers = doc["answers"]
            if not isinstance(answers, dict):
                raise TypeError("answers is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StudyError(f"{path}: not an answer file ({one_line(exc)})") from None
        if doc.get("study") not in (None, key_doc.get("study")):
            raise StudyError(f"{path}: answers belong to study {doc.get('study')!r}, the key to {key_doc.get('study')!r}")
        participants += 1
        for trial_id, choice in answers.items():
            entry = key.get(trial_id)
            if entry is None:
                log(f"{path}: unknown trial {trial_id!r} skipped")
                continue
            if choice not in LETTERS:
                log(f"{path}: trial {trial_id} has no valid choice ({choice!r}) and is skipped")
                continue
            tally[entry["task"]][1] += 1
            tally[entry["task"]][0] += int(choice == entry["answer"])
    results = {}
    for task, (correct, n) in tally.items():
        results[task] = {
            "answers": n, "correct": correct, "accuracy": correct / n if n else None, "chance": CHANCE[task],
            "p_value": binomial_p_value(correct, n, CHANCE[task]) if n else None, "paper_accuracy": PAPER[task],
        }
    log(f"{participants} answer file(s)")
    log(f"{'task':<11} {'answers':>7} {'correct':>7} {'accuracy':>9} {'chance':>7} {'p (one-sided)':>14} {'paper':>7}")
    for task, r in results.items():
        acc = f"{100 * r['accuracy']:.1f} %" if r["accuracy"] is not None else "-"
        p = f"{r['p_value']:.3g}" if r["p_value"] is not None else "-"
        log(f"{task:<11} {r['answers']:>7} {r['correct']:>7} {acc:>9} {100 * r['chance']:>5.0f} % {p:>14} "
            f"{100 * r['paper_accuracy']:>5.1f} %")
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vis2mus-study", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write a study folder")
    make.add_argument("--out", required=True, help="output folder")
    make.add_argument("--alpha", type=float, default=0.6, help="size of the brightness/contrast change (default 0.6)")
    make.add_argument("--segments", type=int, default=2, help="2-bar segments per piece (default 2 = 4 bars)")
    make.add_argument("--seed", type=int, default=0, help="seed for signs and answer order")
    make.add_argument("--weights", help="weights file (default weights/polydis-small.pt)")
    make.add_argument("--soundfont", help="General MIDI .sf2 for the WAV files")
    make.add_argument("--no-wav", action="store_true", help="MIDI and piano rolls only")
    make.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    make.add_argument("--threads", type=int, default=1)
    make.add_argument("--mode", choices=MODES, default="paper",
                      help="paper (eq. 1/2 straight, the decode as it is; default, as in the paper's study) or feel")
    sc = sub.add_parser("score", help="score answer files against the key")
    sc.add_argument("answers", nargs="+", help="answer files saved by index.html")
    sc.add_argument("--key", required=True, help="key.json of the study")
    sc.add_argument("--json", help="also write the results to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup("vis2mus-study")
    try:
        if args.command == "score":
            results = score([Path(p) for p in args.answers], Path(args.key))
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
            return 0
        soundfont = wav_soundfont(args.soundfont, not args.no_wav, "vis2mus-study")
        out = Path(args.out)
        v2m = Vis2Mus(open_engine(args.weights, args.device, args.threads), mode=args.mode)
        key = make_study(out, v2m, args.alpha, args.segments, args.seed, soundfont)
        print(f"wrote {len(key['trials'])} trials to {out} (open {out / 'index.html'}; key in {out / 'key.json'})")
        return 0
    except (StudyError, ValueError, AnchorError, RuntimeError, OSError) as exc:
        print(f"vis2mus-study: error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
