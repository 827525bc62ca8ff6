"""The onnxruntime engine on real exported graphs: API shapes, greedy parity with the torch
reference, batching, thread safety, bad input and bad graphs."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort
import pytest

from live.inference import graphs
from live.inference.engine import CPU, CUDA, Engine, EngineError, choose_provider
from live.music.notes import EOS, STEPS, grid_to_notes
from tests.support.scratch import write_random_weights

NEEDS_TORCH = "making and exporting the test model needs torch (pip install -e .[train])"


def generated_segments(n: int, seed: int):
    """``export.onnx_export.generated_segments`` (imports torch; only reached from tests that have it)."""
    from export.onnx_export import generated_segments

    return generated_segments(n, seed=seed)


@pytest.fixture(scope="module")
def export_graphs():
    """The exporter; skips the test on a runtime-only install."""
    pytest.importorskip("torch", reason=NEEDS_TORCH).set_num_threads(1)
    from export.onnx_export import export_graphs

    return export_graphs


@pytest.fixture(scope="module")
def weights(tmp_path_factory, export_graphs):
    return write_random_weights(tmp_path_factory.mktemp("w") / "rand.pt", "tiny", seed=3)


@pytest.fixture(scope="module")
def folder(weights, tmp_path_factory, export_graphs):
    return graphs.ensure_graphs(weights, out=tmp_path_factory.mktemp("g") / "graphs", log=lambda _: None,
                               exporter=export_graphs)


@pytest.fixture(scope="module")
def engine(folder):
    return Engine(folder, device="cpu")


@pytest.fixture(scope="module")
def latents(engine):
    """(z_chd, z_txt) of 6 generated segments through the engine's own encoders."""
    rows, pr = generated_segments(6, seed=11)
    return engine.encode_chords(rows), engine.texture_latent(engine.texture_map(pr))


def test_engine_runs_on_the_cpu_provider(engine):
    assert engine.provider == CPU
    assert choose_provider("cpu") == CPU


def test_cuda_provider_when_available():
    if CUDA not in ort.get_available_providers():
        with pytest.raises(EngineError, match="onnxruntime-gpu"):
            choose_provider("cuda")
        assert choose_provider("auto") == CPU
        pytest.skip("CUDA: onnxruntime has no CUDAExecutionProvider here (no GPU / onnxruntime-gpu)")
    assert choose_provider("auto") == CUDA


def test_unknown_device_is_an_error():
    with pytest.raises(EngineError, match="unknown device"):
        choose_provider("tpu")


def test_shapes_of_every_method(engine, latents):
    rows, pr = generated_segments(3, seed=5)
    assert engine.encode_chords(rows).shape == (3, engine.z_dim)
    maps = engine.texture_map(pr)
    assert maps.shape == (3, 10, 8, 29) and maps.dtype == np.float32
    assert engine.texture_latent(maps).shape == (3, engine.z_dim)
    notes = engine.decode(*latents)
    assert len(notes) == 6
    for arr in notes:
        assert arr.dtype == np.int32 and arr.ndim == 2 and arr.shape[1] == 4
        assert ((arr[:, 0] >= 0) & (arr[:, 0] < STEPS)).all() and (arr[:, 2] >= 1).all()
    assert sum(len(a) for a in notes) > 0


def test_decode_matches_the_torch_reference_on_ragged_batches(weights, engine, latents):
    import torch

    from model.polydis import load_model

    z_c, z_t = latents
    model = load_model(weights)
    ref = model.decoder.greedy_decode(torch.from_numpy(np.concatenate([z_c, z_t], axis=1))).numpy()
    got = engine.decode_grid(z_c, z_t)
    np.testing.assert_array_equal(got, ref)
    is_eos = got[..., 0] == EOS
    ends = np.where(is_eos.any(-1), is_eos.argmax(-1), 15)
    assert len(np.unique(ends)) >= 3, "fixture should give steps that end at different slots"
    assert [len(a) for a in engine.decode(z_c, z_t)] == [len(grid_to_notes(g)) for g in ref]


def test_batch_decode_equals_one_by_one(engine, latents):
    z_c, z_t = latents
    batch = engine.decode_grid(z_c, z_t)
    single = np.concatenate([engine.decode_grid(z_c[i:i + 1], z_t[i:i + 1]) for i in range(len(z_c))])
    np.testing.assert_array_equal(batch, single)


def test_two_threads_decode_like_sequential(engine, latents):
    z_c, z_t = latents
    jobs = [(z_c[:3], z_t[:3]), (z_c[3:], z_t[3:])]
    expected = [engine.decode_grid(a, b) for a, b in jobs]
    results: dict[int, list[np.ndarray]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(4):
                results[i].append(engine.decode_grid(*jobs[i]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for i in (0, 1):
        assert len(results[i]) == 4
        for grid in results[i]:
            np.testing.assert_array_equal(grid, expected[i])


@pytest.mark.parametrize("bad, match", [
    (np.full((1, 8, 36), np.nan, np.float32), "NaN"),
    (np.zeros((8, 36), np.float32), "expected shape"),
    (np.zeros((0, 8, 36), np.float32), "expected shape"),
])
def test_bad_chord_rows_raise_one_line(engine, bad, match):
    with pytest.raises(ValueError, match=match) as info:
        engine.encode_chords(bad)
    assert "\n" not in str(info.value)


def test_bad_latents_raise_and_engine_keeps_working(engine, latents):
    z_c, z_t = latents
    with pytest.raises(ValueError, match="batch sizes differ"):
        engine.decode(z_c[:2], z_t[:3])
    bad = z_t.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        engine.decode(z_c, bad)
    with pytest.raises(ValueError, match="expected shape"):
        engine.texture_latent(np.zeros((1, 10, 8, 30), np.float32))
    assert len(engine.decode(z_c[:1], z_t[:1])) == 1


def test_corrupt_graph_file_is_a_clear_error(folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in graphs.GRAPH_NAMES:
        (broken / f"{name}.onnx").write_bytes((folder / f"{name}.onnx").read_bytes())
    (broken / "dec_note.onnx").write_bytes(b"\x00not a graph")
    with pytest.raises(EngineError, match="cannot load graph .*dec_note.onnx") as info:
        Engine(broken, device="cpu")
    assert "\n" not in str(info.value)


def test_from_weights_uses_the_cache(weights, export_graphs, tmp_path, monkeypatch):
    monkeypatch.setenv("VIS2MUS_CACHE", str(tmp_path / "cache"))
    lines: list[str] = []
    eng = Engine.from_weights(weights, device="cpu", log=lines.append, exporter=export_graphs)
    assert eng.graph_dir.parent == tmp_path / "cache"
    assert eng.manifest["weights_sha256"] == graphs.file_sha256(weights)
    assert lines and lines[0].startswith("exporting ONNX graphs")
    lines.clear()
    Engine.from_weights(weights, device="cpu", log=lines.append, exporter=export_graphs)
    assert lines == []


def test_from_weights_reexports_a_corrupt_cached_graph(weights, export_graphs, tmp_path, monkeypatch):
    monkeypatch.setenv("VIS2MUS_CACHE", str(tmp_path / "cache"))
    first = Engine.from_weights(weights, device="cpu", log=lambda _: None,
                               exporter=export_graphs)
    (first.graph_dir / "dec_step.onnx").write_bytes(b"truncated")
    lines: list[str] = []
    again = Engine.from_weights(weights, device="cpu", log=lines.append, exporter=export_graphs)
    assert lines[0].startswith("cannot load graph") and lines[0].endswith("exporting again")
    assert any(line.startswith("exporting ONNX graphs") for line in lines)
    z = np.zeros((1, again.z_dim), np.float32)
    np.testing.assert_array_equal(again.decode_grid(z, z), first.decode_grid(z, z))


def test_default_weights_live_next_to_the_package():
    path = graphs.default_weights()
    assert path.name == "polydis-small.pt" and path.parent.name == "weights"
    assert (path.parent.parent / "live" / "inference" / "graphs.py").is_file()


def test_threads_setting(folder, latents):
    z_c, z_t = latents
    two = Engine(folder, device="cpu", threads=2)
    np.testing.assert_array_equal(two.decode_grid(z_c, z_t), Engine(folder, device="cpu").decode_grid(z_c, z_t))
    with pytest.raises(EngineError, match="threads"):
        Engine(folder, device="cpu", threads=0)
