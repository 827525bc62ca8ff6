"""Vis2Mus on anchors with a real onnxruntime engine (live.texture.vis2mus, live.texture.style).

The mechanics (batching, caches, threads, style transfer) are checked on a randomly initialised
small model exported to ONNX in a temporary folder, so they run without the shipped weights.
"""

import threading

import cv2
import numpy as np
import pytest

from live.music.chords import progression_rows
from live.music.notes import DURATION, ONSET, PITCH, transpose_notes
from live.texture.anchors import content_pieces, default_anchors
from live.texture.style import blend_images, octave_shift, register_shift
from live.texture.vis2mus import Vis2Mus
from tests.support.scratch import random_weights


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from live.inference.engine import Engine

    root = tmp_path_factory.mktemp("engine")
    weights = random_weights(root)
    from export import exporter
    from live.inference.graphs import ensure_graphs

    graph_dir = ensure_graphs(weights, out=root / "graphs", log=lambda line: None, exporter=exporter())
    return Engine(graph_dir, device="cpu")


def check_segment_notes(notes: np.ndarray) -> None:
    assert notes.dtype == np.int32 and notes.shape[1] == 4
    assert np.all((notes[:, ONSET] >= 0) & (notes[:, ONSET] < 32))
    assert np.all((notes[:, PITCH] >= 0) & (notes[:, PITCH] < 128))
    assert np.all(notes[:, DURATION] >= 1) and np.all(notes[:, ONSET] + notes[:, DURATION] <= 32)


def test_render_batches_segments_and_matches_single_renders(engine):
    v2m = Vis2Mus(engine)
    anchor = default_anchors()["arpeggios"]
    batch = v2m.render(anchor, 0.4, -0.3, [0, 1, 2, 3])
    assert [s.index for s in batch] == [0, 1, 2, 3]
    for seg in batch:
        check_segment_notes(seg.accompaniment)
        assert len(seg.melody) == 0
    single = v2m.render(anchor, 0.4, -0.3, [2])[0]
    np.testing.assert_array_equal(single.accompaniment, batch[2].accompaniment)


def test_zero_alphas_keep_the_anchor_unless_asked_for_the_reconstruction(engine):
    anchor = default_anchors()["block_chords"]
    for v2m in (Vis2Mus(engine), Vis2Mus(engine, mode="paper"), Vis2Mus(engine, keep_original=False)):
        kept = v2m.render(anchor, 0.0, 0.0, [1])[0]
        np.testing.assert_array_equal(kept.accompaniment, anchor.segment("accompaniment", 1))
    decoded = Vis2Mus(engine, mode="paper", keep_original=False).render(anchor, 0.0, 0.0, [1])[0]
    check_segment_notes(decoded.accompaniment)
    assert not np.array_equal(decoded.accompaniment, kept.accompaniment)


def test_the_edited_feature_map_is_what_gets_decoded(engine):
    from live.texture.transform import adjust

    v2m = Vis2Mus(engine, mode="paper")
    anchor = default_anchors()["pop_comping"]
    maps, z_chd = v2m.prepare(anchor)
    assert maps.shape == (4, 10, 8, 29) and z_chd.shape == (4, 256)
    expected = engine.decode(z_chd[[3]], engine.texture_latent(adjust(maps[[3]], -0.7, 0.5)))[0]
    got = v2m.render(anchor, -0.7, 0.5, [3])[0].accompaniment
    np.testing.assert_array_equal(got[:, :3], expected[:, :3])


class CountingEngine:
    """The real engine, counting texture_map calls (to see whether a cache was used)."""

    def __init__(self, engine):
        self.engine = engine
        self.manifest = engine.manifest
        self.texture_map_calls = 0

    def texture_map(self, pr_mats):
        self.texture_map_calls += 1
        return self.engine.texture_map(pr_mats)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def test_feature_maps_are_cached_in_memory_and_on_disk(engine, tmp_path):
    anchor = default_anchors()["stride"]
    first = CountingEngine(engine)
    v2m = Vis2Mus(first, cache_dir=tmp_path)
    a = v2m.render(anchor, 0.5, 0.0, [0, 1])
    v2m.render(anchor, -0.5, 0.2, [2, 3])
    assert first.texture_map_calls == 1
    assert len(list(tmp_path.rglob("*.npz"))) == 1
    second = CountingEngine(engine)
    b = Vis2Mus(second, cache_dir=tmp_path).render(anchor, 0.5, 0.0, [0, 1])
    assert second.texture_map_calls == 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.accompaniment, y.accompaniment)
    next(tmp_path.rglob("*.npz")).write_bytes(b"corrupt")
    third = CountingEngine(engine)
    Vis2Mus(third, cache_dir=tmp_path).render(anchor, 0.5, 0.0, [0])
    assert third.texture_map_calls == 1


def test_concurrent_renders_agree_with_sequential_ones(engine):
    v2m = Vis2Mus(engine)
    anchors = default_anchors()
    jobs = [(name, b) for name in ("arpeggios", "sparse_ballad", "broken_chords") for b in (-0.5, 0.5)]
    expected = {job: v2m.render(anchors[job[0]], job[1], 0.1, [0, 1]) for job in jobs}
    fresh = Vis2Mus(engine)
    results, errors = {}, []

    def work(job):
        try:
            results[job] = fresh.render(anchors[job[0]], job[1], 0.1, [0, 1])
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for job in jobs:
        for x, y in zip(expected[job], results[job]):
            np.testing.assert_array_equal(x.accompaniment, y.accompaniment)


def test_style_transfer_moves_the_melody_to_a_consonant_register(engine):
    v2m = Vis2Mus(engine)
    style = default_anchors()["pop_comping"]
    content = content_pieces()["lullaby"]
    segments = v2m.render(style, 0.2, 0.0, [0, 1, 2, 3], content=content)
    shift = segments[0].shift
    assert shift % 12 in (0, 5, 7)
    assert shift == register_shift(content.melody, style.accompaniment)
    for seg in segments:
        assert seg.shift == shift
        check_segment_notes(seg.accompaniment)
        np.testing.assert_array_equal(seg.melody, transpose_notes(content.segment("melody", seg.index), shift))
    override = progression_rows("F G", 32)
    with_chords = v2m.render(style, 0.2, 0.0, [0], content=content, chords=override)[0]
    assert with_chords.shift % 12 == 0 and with_chords.shift == octave_shift(shift)


def test_bad_requests_are_rejected(engine):
    v2m = Vis2Mus(engine)
    anchor = default_anchors()["stride"]
    with pytest.raises(ValueError, match="brightness alpha"):
        v2m.render(anchor, float("nan"), 0.0, [0])
    with pytest.raises(ValueError, match="segment index 4 out of range 0..3"):
        v2m.render(anchor, 0.1, 0.0, [4])
    with pytest.raises(ValueError, match="chord rows must have shape"):
        v2m.render(anchor, 0.1, 0.0, [0], chords=np.zeros((8, 12)))
    assert v2m.render(anchor, 0.1, 0.0, []) == []


def test_register_shift_known_values():
    def notes(pitches):
        return np.array([[i, p, 1, 80] for i, p in enumerate(pitches)], dtype=np.int32)

    acc = notes([40, 50, 60, 64, 67, 71, 72, 76])
    assert register_shift(notes([70, 72]), acc) == -(71 - 74) + 2
    assert register_shift(notes([60]), acc) == 14 - 2
    assert register_shift(notes([74]), acc) == 0
    assert register_shift(notes([79]), acc) == -5
    assert register_shift(notes([80]), acc) == -5
    assert register_shift(notes([60]), notes([70, 71, 72])) == 0
    assert register_shift(np.zeros((0, 4), np.int32), acc) == 0
    for mel in range(40, 100):
        assert register_shift(notes([mel]), acc) % 12 in (0, 5, 7)


def test_blend_keeps_the_sketch_lines_in_the_style_colours():
    content = content_pieces()["folk_tune"].image
    style = default_anchors()["pop_comping"].image
    out = blend_images(content, style)
    assert out.shape == content.shape and out.dtype == np.uint8
    lum = content.astype(float) @ [0.299, 0.587, 0.114]
    out_lum = out.astype(float) @ [0.299, 0.587, 0.114]
    assert out_lum[lum < 120].mean() < out_lum[lum > 230].mean() - 40
    paper = lum > 230
    assert np.abs(out[paper].astype(float) - content[paper]).mean() > 50
    backdrop = cv2.resize(style, content.shape[1::-1], interpolation=cv2.INTER_AREA).astype(float) @ [0.299, 0.587, 0.114]
    assert np.corrcoef(out_lum[paper], backdrop[paper])[0, 1] > 0.5


def test_blend_draws_light_lines_on_a_dark_style():
    content = content_pieces()["lullaby"].image
    out = blend_images(content, default_anchors()["sparse_ballad"].image)
    lum = content.astype(float) @ [0.299, 0.587, 0.114]
    out_lum = out.astype(float) @ [0.299, 0.587, 0.114]
    assert out_lum[lum < 120].mean() > out_lum[lum > 230].mean() + 40


def test_a_texture_anchors_own_melody_plays_with_every_render(engine, tmp_path):
    from PIL import Image

    from live.music.midifile import write_midi
    from live.music.notes import make_notes
    from live.texture.anchors import DEFAULT_ANCHORS, load_anchor

    folder = tmp_path / "with_tune"
    folder.mkdir()
    shipped = DEFAULT_ANCHORS / "block_chords"
    for name in ("accompaniment.mid", "chords.txt"):
        (folder / name).write_bytes((shipped / name).read_bytes())
    Image.fromarray(np.full((6, 6, 3), 90, np.uint8)).save(folder / "image.png")
    (folder / "anchor.toml").write_text("tempo = 80\n")
    tune = make_notes([(bar * 16 + k * 4, (76, 74, 72, 74)[k], 4) for bar in range(6) for k in range(4)])
    write_midi(folder / "melody.mid", [("tune", 0, tune)], 80.0)
    anchor = load_anchor(folder)
    v2m = Vis2Mus(engine)
    for alpha_b, alpha_c in ((0.0, 0.0), (0.6, -0.4)):
        segments = v2m.render(anchor, alpha_b, alpha_c, [0, 1, 2, 3])
        for seg in segments:
            assert np.array_equal(seg.melody, anchor.segment("melody", seg.index)) and seg.shift == 0
            check_segment_notes(seg.accompaniment)
        assert [len(s.melody) for s in segments] == [8, 8, 8, 0]
    plain = v2m.render(default_anchors()["block_chords"], 0.6, 0.0, [0])
    assert len(plain[0].melody) == 0
