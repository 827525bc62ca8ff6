"""Fader feel (feel mode of live.texture.vis2mus and its rules) on the shipped weights, real ONNX
sessions: continuity at ±0.1, steady change, brightness direction, contrast on both sides,
register, melody on top, the anchor's velocities; and the rules as plain functions."""

import json
import shutil

import numpy as np
import pytest

from live.music.notes import DURATION, ONSET, PITCH, VELOCITY, join_segments, make_notes
from live.offline.feel import ALPHAS, largest_quarter_share, melody_on_top, note_f1
from live.texture import dynamics, relative
from live.texture.anchors import content_pieces, default_anchors, load_anchor
from live.texture.calibration import REACH_FACTORS, choose_reach, contrast_factor, share
from live.texture.register import fold_into, keep_under
from live.texture.transform import adjust, adjust_factor
from live.texture.vis2mus import Vis2Mus


@pytest.fixture(scope="module")
def engine():
    from export import exporter
    from live.inference.engine import Engine

    return Engine.from_weights(None, device="cpu", threads=1, exporter=exporter(), log=lambda line: None)


@pytest.fixture(scope="module")
def feel(engine):
    return Vis2Mus(engine)


def keys(notes):
    return set(map(tuple, notes[:, [ONSET, PITCH]].tolist()))


def piece(v2m, anchor, alpha_b, alpha_c, content=None, chords=None):
    segments = v2m.render(anchor, alpha_b, alpha_c, list(range(v2m.n_segments(anchor, content))), content=content,
                          chords=chords)
    return join_segments([s.accompaniment for s in segments]), join_segments([s.melody for s in segments])


# the rules on real decodes of every shipped anchor

@pytest.mark.parametrize("name", sorted(default_anchors()))
def test_small_moves_are_small_and_grow_steadily(feel, name):
    anchor = default_anchors()[name]
    own = join_segments([anchor.segment("accompaniment", t) for t in range(anchor.n_segments)])
    np.testing.assert_array_equal(piece(feel, anchor, 0.0, 0.0)[0], own)
    for fader in ("brightness", "contrast"):
        for sign in (-1.0, 1.0):
            f1 = []
            for u in (0.1, 0.4, 0.7, 1.0):
                pair = (sign * u, 0.0) if fader == "brightness" else (0.0, sign * u)
                notes = piece(feel, anchor, *pair)[0]
                f1.append(note_f1(anchor.accompaniment, notes))
            assert f1[0] >= 0.8, (fader, sign, f1)
            assert all(b <= a for a, b in zip(f1, f1[1:])), (fader, sign, f1)
            assert f1[-1] <= 0.75, (fader, sign, f1)


@pytest.mark.parametrize("name", sorted(default_anchors()))
def test_brighter_is_fuller_and_the_travel_is_even(feel, name):
    anchor = default_anchors()[name]
    pieces = [piece(feel, anchor, a, 0.0)[0] for a in ALPHAS]
    counts = [len(p) for p in pieces]
    assert all(b >= a for a, b in zip(counts, counts[1:])), counts
    assert counts[-1] > counts[10] > counts[0]
    assert largest_quarter_share(counts) <= 0.5
    mean_pitch = [pieces[k][:, PITCH].mean() for k in (0, 10, 20)]
    assert mean_pitch[0] < mean_pitch[1] < mean_pitch[2], mean_pitch
    spans = [np.ptp(pieces[k][:, PITCH]) for k in (0, 10, 20)]
    assert spans[0] <= spans[1] <= spans[2], spans


@pytest.mark.parametrize("name", sorted(default_anchors()))
def test_contrast_changes_the_anchor_on_both_sides(feel, name):
    anchor = default_anchors()[name]
    for u in (-1.0, 1.0):
        assert 1.0 - note_f1(anchor.accompaniment, piece(feel, anchor, 0.0, u)[0]) >= 0.3, u


def test_a_move_keeps_what_a_smaller_move_changed(feel):
    anchor = default_anchors()["pop_comping"]
    base = keys(anchor.accompaniment)
    for fader in (0, 1):
        for sign in (-1.0, 1.0):
            changes = []
            for u in (0.2, 0.5, 0.8):
                pair = [0.0, 0.0]
                pair[fader] = sign * u
                now = keys(piece(feel, anchor, *pair)[0])
                changes.append((now - base, base - now))
            for (add_a, rem_a), (add_b, rem_b) in zip(changes, changes[1:]):
                assert add_a <= add_b and rem_a <= rem_b


def test_every_note_stays_in_the_register(engine, feel):
    narrow = Vis2Mus(engine, register=(48, 84))
    for anchor in default_anchors().values():
        for v2m, (low, high) in ((feel, (28, 100)), (narrow, (48, 84))):
            for pair in ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (0.6, -0.6)):
                notes = piece(v2m, anchor, *pair)[0]
                assert notes[:, PITCH].min() >= low and notes[:, PITCH].max() <= high, (anchor.name, pair)
    with pytest.raises(ValueError, match="register range"):
        Vis2Mus(engine, register=(60, 65))


def test_the_melody_stays_on_top_in_style_mode(feel):
    for anchor in default_anchors().values():
        for content in content_pieces().values():
            for alpha_b in (0.0, 0.5, 1.0):
                acc, mel = piece(feel, anchor, alpha_b, 0.3, content)
                assert len(mel) and all(melody_on_top(acc, mel)), (anchor.name, content.name, alpha_b)


def test_style_mode_and_chord_overrides_move_steadily_from_their_own_decode(engine):
    from live.music.chords import progression_rows

    counting = CountingDecodes(engine)
    v2m = Vis2Mus(counting)
    override = progression_rows("Am F C G", 32)
    for anchor in (default_anchors()["arpeggios"], default_anchors()["sparse_ballad"]):
        for content, chords in ((content_pieces()["folk_tune"], None), (None, override)):
            zero = piece(v2m, anchor, 0.0, 0.0, content, chords)[0]
            for pair in ((0.1, 0.0), (-0.1, 0.0), (0.0, 0.1), (0.0, -0.1)):
                assert note_f1(zero, piece(v2m, anchor, *pair, content, chords)[0]) >= 0.8, (anchor.name, pair)
            small, large = (keys(piece(v2m, anchor, u, 0.0, content, chords)[0]) for u in (0.3, 0.9))
            assert (small - keys(zero)) <= (large - keys(zero)) and len(large) > len(small) > len(keys(zero))
            decodes = counting.decodes
            piece(v2m, anchor, 0.6, -0.4, content, chords)
            assert counting.decodes == decodes


def test_an_anchors_own_melody_plays_on_top(feel, tmp_path):
    folder = tmp_path / "ballad_with_tune"
    shutil.copytree(default_anchors()["sparse_ballad"].path, folder)
    shutil.copy(content_pieces()["lullaby"].path + "/melody.mid", folder / "melody.mid")
    anchor = load_anchor(folder)
    assert not all(melody_on_top(anchor.accompaniment, anchor.melody))
    for alpha_b in (0.0, 0.5, 1.0):
        acc, mel = piece(feel, anchor, alpha_b, 0.0)
        np.testing.assert_array_equal(mel, anchor.melody)
        assert all(melody_on_top(acc, mel)), alpha_b


def test_velocities_follow_the_anchors_dynamics(feel):
    anchor = default_anchors()["pop_comping"]
    levels = set(anchor.accompaniment[:, VELOCITY].tolist())
    assert len(levels) > 1
    own = {tuple(n[[ONSET, PITCH, DURATION]]): n[VELOCITY] for n in anchor.accompaniment}
    for pair in ((0.6, 0.0), (0.0, -0.6), (-0.5, 0.5)):
        notes = piece(feel, anchor, *pair)[0]
        assert set(notes[:, VELOCITY].tolist()) <= levels and len(set(notes[:, VELOCITY].tolist())) > 1
        for n in notes:
            if tuple(n[[ONSET, PITCH, DURATION]]) in own:
                assert n[VELOCITY] == own[tuple(n[[ONSET, PITCH, DURATION]])]


def test_paper_mode_decodes_eq_1_and_2_straight(engine):
    paper = Vis2Mus(engine, mode="paper")
    anchor = default_anchors()["stride"]
    maps, z_chd = paper.prepare(anchor)
    expected = engine.decode(z_chd[[1]], engine.texture_latent(adjust(maps[[1]], 0.4, -0.3)))[0]
    got = paper.render(anchor, 0.4, -0.3, [1])[0].accompaniment
    np.testing.assert_array_equal(got[:, :3], expected[:, :3])
    with pytest.raises(ValueError, match="unknown mode"):
        Vis2Mus(engine, mode="loud")


def test_feel_report_writes_curves_and_the_table(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the --feel curves need matplotlib (pip install -e .[report])")
    from live.offline.render import main

    folder = tmp_path / "anchors" / "mine"
    shutil.copytree(default_anchors()["broken_chords"].path, folder)
    assert main(["--feel", str(tmp_path / "anchors"), "--mode", "feel", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "feel.json").read_text())
    row = report["rows"]["feel"]["mine"]
    assert row["continuity"] >= 0.8 and row["direction"] >= 0.8 and row["style_melody"] >= 0.9
    assert row["style_continuity"] >= 0.8
    png = tmp_path / "out" / "mine_feel.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mine" in (tmp_path / "out" / "feel.txt").read_text() and "continuity" in capsys.readouterr().out


# the rules as plain functions

def test_fold_into_moves_by_octaves_into_the_range():
    notes = make_notes([(0, 21, 4), (0, 40, 4), (2, 108, 2), (3, 100, 1), (3, 28, 1)])
    out = fold_into(notes, 28, 100)
    assert sorted(out[:, PITCH].tolist()) == [28, 33, 40, 96, 100]
    assert set((out[:, PITCH] % 12).tolist()) == set((notes[:, PITCH] % 12).tolist())
    merged = fold_into(make_notes([(0, 100, 2), (0, 112, 6), (4, 60, 1)]), 28, 100)
    assert merged[:, [ONSET, PITCH, DURATION]].tolist() == [[0, 100, 6], [4, 60, 1]]


def test_keep_under_moves_overlapping_notes_below_the_melody():
    melody = make_notes([(0, 67, 8), (8, 72, 8)])
    acc = make_notes([(0, 48, 16), (0, 67, 4), (4, 76, 2), (8, 74, 8), (16, 80, 4), (2, 30, 2)])
    out = keep_under(acc, melody, low=28)
    assert all(melody_on_top(out, melody))
    by_onset = {(int(n[ONSET]), int(n[PITCH])) for n in out}
    assert {(0, 48), (0, 55), (4, 64), (8, 62), (16, 80), (2, 30)} == by_onset
    assert keep_under(make_notes([(0, 40, 4)]), make_notes([(0, 35, 4)]), low=28)[0, PITCH] == 28
    assert len(keep_under(make_notes([(0, 40, 4)]), make_notes([(0, 35, 4)]), low=30)) == 0


def test_dynamics_keep_levels_accents_and_chords():
    anchor = make_notes([(0, 48, 4, 100), (0, 60, 4, 90), (4, 60, 2, 60), (8, 55, 4, 96), (12, 60, 2, 62),
                         (16, 48, 4, 104), (20, 64, 2, 58)])
    prof = dynamics.profile(anchor)
    new = make_notes([(0, 48, 4, 80), (0, 72, 4, 80), (28, 67, 2, 80), (16, 52, 2, 80), (3, 50, 1, 80)])
    out = dynamics.follow(new, anchor, prof)
    vel = {(int(n[ONSET]), int(n[PITCH])): int(n[VELOCITY]) for n in out}
    assert vel[(0, 48)] == 100  # the anchor's own note
    assert vel[(0, 72)] == 96  # the chord's median (95), on the anchor's nearest level
    assert vel[(16, 52)] == 104  # the anchor's note at that onset
    assert vel[(28, 67)] == 62  # the anchor's level at that sixteenth of the bar
    assert vel[(3, 50)] == 90  # nothing there in the bar or the beat: the anchor's median


def test_moves_are_ordered_and_capped():
    anchor = make_notes([(0, 48, 8), (0, 60, 8), (4, 64, 2), (8, 55, 4), (12, 67, 2)])
    reference = make_notes([(0, 48, 8), (0, 60, 8), (8, 55, 4)])
    near = make_notes([(0, 48, 8), (0, 60, 8), (8, 55, 4), (2, 62, 2)])
    far = make_notes([(0, 48, 8), (2, 62, 2), (6, 90, 2), (8, 50, 2)])
    found = relative.moves(anchor, reference, [near, far], add_cap=1.0, remove_cap=1.0)
    assert [tuple(n[[ONSET, PITCH]]) for n in found.additions] == [(2, 62), (8, 50), (6, 90)]
    bass_first = [make_notes([(0, 48, 8), (6, 30, 2)]), make_notes([(0, 48, 8), (2, 62, 2), (8, 52, 2)])]
    plain = relative.moves(anchor, reference, bass_first, add_cap=1.0, remove_cap=0.0)
    assert [tuple(n[[ONSET, PITCH]]) for n in plain.additions] == [(6, 30), (8, 52), (2, 62)]
    upward = relative.moves(anchor, reference, bass_first, add_cap=1.0, remove_cap=0.0, upward=True)
    assert [tuple(n[[ONSET, PITCH]]) for n in upward.additions] == [(8, 52), (2, 62), (6, 30)]
    assert [tuple(n[[ONSET, PITCH]]) for n in found.removals] == [(8, 55), (12, 67), (4, 64)]
    capped = relative.moves(anchor, reference, [near, far], add_cap=0.2, remove_cap=0.4)
    assert len(capped.additions) == 1 and len(capped.removals) == 2
    least = relative.moves(anchor, reference, [near, far], add_cap=0.01, remove_cap=0.0)
    assert len(least.additions) == 1 and len(least.removals) == 0
    thin = relative.moves(anchor, reference, [near], add_cap=0.0, remove_cap=1.0, thin=True)
    assert len(thin.removals) == len(anchor)
    assert len(relative.moves(anchor, reference, [near], add_cap=0.0, remove_cap=1.0).removals) == 2
    few = relative.moves(anchor, reference, [near], add_cap=1.0, remove_cap=0.0, upward=True)
    assert [tuple(n[[ONSET, PITCH]]) for n in few.additions] == [(2, 62)]
    # filling: octave doublings follow the model's additions, strong metre first, none above the top,
    # none struck while the anchor holds the same key (0, 60)
    filled = relative.moves(anchor, reference, [near], add_cap=1.0, remove_cap=0.0, upward=True, fill=True, top=72)
    assert [tuple(n[[ONSET, PITCH]]) for n in filled.additions] == [(2, 62), (0, 72), (8, 67)]
    half = relative.apply(anchor, found, 0.5)
    assert len(half) == len(anchor) + share(0.5, 3) - share(0.5, len(found.removals))
    np.testing.assert_array_equal(relative.apply(anchor, found, 0.0), anchor)


def test_contrast_reach_and_shares():
    assert contrast_factor(-1.0) == 0.0 and contrast_factor(-0.25) == 0.75 and contrast_factor(0.0) == 1.0
    assert contrast_factor(1.0, 50.0) == pytest.approx(50.0) and contrast_factor(0.5, 100.0) == pytest.approx(10.0)
    distances = np.linspace(1.0, 20.0, len(REACH_FACTORS))
    assert choose_reach(5.0, distances) == REACH_FACTORS[int(np.argmax(distances >= 5.0))]
    assert choose_reach(50.0, distances) == REACH_FACTORS[int(np.argmax(distances >= 18.0))]
    assert [share(u, 10) for u in (0.0, 0.04, 0.05, 0.5, -0.5, 1.0)] == [0, 0, 1, 5, 5, 10]
    fmap = np.random.default_rng(1).gamma(1.5, 1.0, size=(10, 8, 29)).astype(np.float32)
    np.testing.assert_allclose(adjust_factor(fmap, 0.3, 1.4), adjust(fmap, 0.3, 0.4), rtol=1e-6)
    wide = adjust_factor(fmap, 0.0, 11.0)
    assert wide.std() > adjust(fmap, 0.0, 1.0).std()
    with pytest.raises(ValueError, match="contrast factor"):
        adjust_factor(fmap, 0.0, float("nan"))


class CountingDecodes:
    """The real engine, counting decode calls."""

    def __init__(self, engine):
        self.engine = engine
        self.manifest = engine.manifest
        self.decodes = 0

    def decode(self, z_chd, z_txt):
        self.decodes += 1
        return self.engine.decode(z_chd, z_txt)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def test_the_server_prepares_anchors_when_idle_and_fader_moves_then_decode_nothing(engine):
    from live.app.renderer import Renderer
    from live.control.params import State

    counting = CountingDecodes(engine)
    anchors = {name: default_anchors()[name] for name in ("stride", "sparse_ballad")}
    renderer = Renderer(anchors, content_pieces(), Vis2Mus(counting))
    assert [renderer.warm_one() for _ in range(3)] == [True, True, False]
    loaded = counting.decodes
    assert loaded >= 2
    for name in anchors:
        for b, c in ((0.3, 0.0), (-0.8, 0.5), (1.0, -1.0)):
            count, sections = renderer(State(anchor=name, alpha_b=b, alpha_c=c), [0, 1, 2, 3])
            assert count == 4 and all(len(s.accompaniment) for s in sections)
    assert counting.decodes == loaded
    assert not Renderer(anchors, content_pieces(), Vis2Mus(engine, mode="paper")).warm_one()
    assert not Renderer(anchors, content_pieces(), None).warm_one()


def engine_provider() -> str:
    from live.inference.engine import choose_provider

    return choose_provider("auto")


def test_the_server_settings_choose_the_mode_and_register():
    from live.app.config import parse_settings
    from live.app.renderer import load_renderer

    anchors = {"stride": default_anchors()["stride"]}
    settings = parse_settings(["--mode", "paper", "--register", "40-90", "--no-record"])
    renderer, note = load_renderer(settings, anchors, content_pieces())
    assert renderer.vis2mus.mode == "paper" and renderer.vis2mus.register == (40, 90) and note == engine_provider()
    renderer, note = load_renderer(parse_settings(["--no-record"]), anchors, content_pieces())
    assert renderer.vis2mus.mode == "feel" and renderer.vis2mus.register == (28, 100) and note == engine_provider()
