"""The anchor library of a performance: --anchor folders, --anchors directories, re-scans, and the
performance state following them (live.texture.library, live.control.params.Params.set_library)."""

import threading
import time
from pathlib import Path

import pytest

from live.control.params import Params
from live.texture.anchors import default_anchors
from live.texture.library import Library, Rescanner, is_path
from tests.support.anchors import compose

SHIPPED = list(default_anchors())


class Lines(list):
    def __call__(self, line: str) -> None:
        assert "\n" not in line
        self.append(line)


def test_folders_and_directories_load_in_index_order_and_broken_ones_are_one_line(tmp_path):
    one = compose(tmp_path / "solo" / "mine")
    shelf = tmp_path / "shelf"
    compose(shelf / "b_second", root=62)
    compose(shelf / "a_first", root=64, melody=True)
    compose(shelf / "tune", accompaniment=False, melody=True)
    (shelf / "c_broken").mkdir()
    (shelf / "c_broken" / "anchor.toml").write_text("tempo = [\n")
    (shelf / "linked").symlink_to(one)
    (shelf / "not_an_anchor").mkdir()
    lines = Lines()
    library = Library.from_values(["block_chords", str(one), str(tmp_path / "nowhere")], [shelf], log=lines)
    assert list(library.anchors) == SHIPPED + ["mine", "a_first", "b_second"]
    assert "tune" in library.contents and "tune" not in library.anchors
    assert len(library.anchors["a_first"].melody) > 0
    assert library.start_anchor(["block_chords", str(one)]) == "block_chords"
    assert library.start_anchor([str(tmp_path / "nowhere"), str(one)]) == "mine"
    assert library.start_anchor([]) == "a_first"
    assert library.start_anchor(["lake"]) == "lake"
    broken = [line for line in lines if "c_broken" in line]
    missing = [line for line in lines if "nowhere" in line]
    assert len(broken) == 1 and "not valid TOML" in broken[0] and broken[0].endswith("skipped")
    assert len(missing) == 1 and "does not exist" in missing[0]
    assert not any("linked" in line for line in lines)
    assert library.scan() is False and library.scan() is False and len(lines) == 2, \
        "an unchanged library reads nothing again"


def test_is_path_tells_folders_from_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stride").mkdir()
    (tmp_path / "mine").mkdir()
    assert is_path("./stride") and is_path("a/b") and is_path("~/x") and is_path("mine")
    assert not is_path("stride", ["stride"]) and not is_path("lake")


def test_rescans_add_reload_keep_the_last_good_version_and_drop(tmp_path):
    shelf = tmp_path / "shelf"
    compose(shelf / "first")
    lines = Lines()
    library = Library(dirs=[shelf], log=lines)
    assert list(library.anchors)[len(SHIPPED):] == ["first"]
    compose(shelf / "second", root=65)
    assert library.scan() is False, "a new folder is read once it stops changing"
    assert library.scan() is True
    assert list(library.anchors)[len(SHIPPED):] == ["first", "second"]
    before = library.anchors["first"]
    (shelf / "first" / "chords.txt").write_text("F#m " * 16 + "# from the song\n")
    assert library.scan(settle=False) is True
    after = library.anchors["first"]
    assert after is not before and after.chord_labels[0] == "F#:min"
    assert any("reloaded" in line for line in lines)
    (shelf / "first" / "accompaniment.mid").write_bytes(b"MThd broken")
    assert library.scan(settle=False) is False and library.anchors["first"] is after
    assert sum("keeping the version loaded before" in line for line in lines) == 1
    assert library.scan() is False and sum("keeping" in line for line in lines) == 1
    (shelf / "junk").mkdir()
    (shelf / "junk" / "anchor.toml").write_text("tempo = 90\n")
    assert library.scan() is False and library.scan() is False and library.scan() is False
    assert sum("'junk'" in line and line.endswith("skipped") for line in lines) == 1
    for path in (shelf / "second").iterdir():
        path.unlink()
    (shelf / "second").rmdir()
    assert library.scan(settle=False) is True and "second" not in library.anchors
    assert any("'second' removed" in line for line in lines)


def test_a_taken_name_is_skipped_with_one_line(tmp_path):
    lines = Lines()
    library = Library([compose(tmp_path / "x" / "stride"), compose(tmp_path / "y" / "mine"),
                       compose(tmp_path / "z" / "mine", root=67)], log=lines)
    assert library.anchors["stride"] is default_anchors()["stride"]
    assert library.name_of(tmp_path / "y" / "mine") == "mine" and library.name_of(tmp_path / "z" / "mine") is None
    assert sum("that name is taken" in line for line in lines) == 2
    compose(tmp_path / "new", root=50)
    library.folders.append((tmp_path / "new").resolve())
    assert library.scan(settle=False) is True and sum("that name is taken" in line for line in lines) == 2


def test_the_rescanner_thread_reports_changes_and_survives_a_failing_callback(tmp_path):
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    library = Library(dirs=[shelf], log=Lines())
    seen, lines = [], Lines()
    changed = threading.Event()

    def on_change(lib):
        seen.append(list(lib.anchors))
        changed.set()
        if len(seen) == 1:
            raise RuntimeError("listener broke")

    rescanner = Rescanner(library, on_change, min_interval_s=0.0, log=lines).start()
    try:
        compose(shelf / "late")
        deadline = time.monotonic() + 10
        while not changed.is_set():
            rescanner.poke()
            assert time.monotonic() < deadline, "the re-scan never saw the new folder"
            changed.wait(0.05)
        assert seen[0][-1] == "late" and lines == ["anchor re-scan failed: RuntimeError: listener broke"]
        changed.clear()
        compose(shelf / "later", root=70)
        deadline = time.monotonic() + 10
        while not changed.is_set():
            rescanner.poke()
            assert time.monotonic() < deadline, "the thread stopped after a failing callback"
            changed.wait(0.05)
        assert seen[-1][-2:] == ["late", "later"]
    finally:
        rescanner.stop()


def test_params_follow_the_library_and_index_among_the_loaded(tmp_path):
    params = Params(["a", "b", "mine"], ["tune"])
    params.set_anchor(2)
    assert params.snapshot().anchor == "mine"
    params.set_style("tune", "b")
    update = params.set_library(["a", "b", "other"], ["tune"])
    assert update.changed == frozenset() and params.snapshot().anchor == "b"
    params.set_anchor("other")
    update = params.set_library(["a", "b"], [])
    assert update.state.anchor == "a" and update.state.content is None
    assert update.changed == {"anchor", "content"} and "'other' is gone" in update.note
    with pytest.raises(ValueError, match="out of range 0..1"):
        params.set_anchor(2)
    with pytest.raises(ValueError, match="unknown anchor '/tmp/x'"):
        params.set_anchor("/tmp/x")


def test_a_broken_folder_named_by_start_anchor_or_preset_leaves_the_performance_starting(tmp_path, caplog):
    import logging

    from live.app.config import parse_settings
    from live.app.performance import Performance

    shelf = tmp_path / "shelf"
    compose(shelf / "good")
    (shelf / "broken").mkdir()
    (shelf / "broken" / "anchor.toml").write_text("tempo = 900\n")
    config = tmp_path / "live.toml"
    config.write_text(f'anchors = "{shelf}"\nanchor = "broken"\n'
                      '[presets.1]\nanchor = "broken"\n[presets.2]\nanchor = "good"\nbrightness = 0.5\n')
    caplog.set_level(logging.WARNING)
    performance = Performance(parse_settings(["--config", str(config), "--no-record"]))
    assert performance.params.snapshot().anchor == "good"
    assert sorted(performance.params.presets) == [2]
    assert performance.params.recall(2).state.alpha_b == 0.5
    lines = [r.getMessage() for r in caplog.records]
    assert sum("image file image.png is missing" in line and line.endswith("skipped") for line in lines) == 1
    assert "preset 1 names anchor 'broken', which did not load; preset 1 left out" in lines
    with pytest.raises(Exception, match="unknown anchor 'lake'"):
        Performance(parse_settings(["--config", str(config), "--anchor", "lake", "--no-record"]))
