"""ONNX export: graphs + manifest, parity with eager torch, cache staleness, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the ONNX export tests need torch (pip install -e .[train]); the runtime runs without it")

from export import onnx_export
from live.inference import graphs
from model.polydis import EOS, load_model
from tests.support.scratch import write_random_weights

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return write_random_weights(tmp_path_factory.mktemp("w") / "rand.pt", "tiny", seed=3)


@pytest.fixture(scope="module")
def folder(weights, tmp_path_factory) -> Path:
    return graphs.ensure_graphs(weights, out=tmp_path_factory.mktemp("g") / "graphs", log=lambda _: None,
                               exporter=onnx_export.export_graphs)


def test_export_writes_every_graph_and_a_manifest(weights, folder):
    manifest = json.loads((folder / graphs.MANIFEST).read_text())
    assert manifest["weights_sha256"] == graphs.file_sha256(weights)
    assert manifest["exporter_version"] == graphs.EXPORTER_VERSION
    assert manifest["config"] == load_model(weights).cfg.to_dict()
    assert manifest["opset"] == onnx_export.OPSET
    for name in graphs.GRAPH_NAMES:
        assert (folder / f"{name}.onnx").is_file()
        assert manifest["graphs"][name]["nodes"] > 0
    assert graphs.is_current(folder, manifest["weights_sha256"])


def test_parity_on_generated_segments(weights, folder):
    rows, pr = onnx_export.generated_segments(24, seed=3)
    result = onnx_export.check_parity(weights, folder, rows, pr, batch=8)
    assert result["segments"] == 24
    assert result["identical_notes"] == 24
    assert result["identical_grids"] == 24
    assert result["latent_max_diff"] <= 1e-4


def test_parity_covers_early_exit_and_ragged_batches(weights, folder):
    """The segments above must exercise steps that end at different slots within one batch."""
    rows, pr = onnx_export.generated_segments(8, seed=3)
    model = load_model(weights)
    with torch.no_grad():
        mu_c, _, mu_t, _ = model.encode(torch.from_numpy(rows), torch.from_numpy(pr))
        grid = model.decoder.greedy_decode(torch.cat([mu_c, mu_t], -1)).numpy()
    is_eos = grid[..., 0] == EOS
    notes_per_step = np.where(is_eos.any(-1), is_eos.argmax(-1), 15)
    assert (notes_per_step == 0).any() and (notes_per_step > 0).any()
    assert len(np.unique(notes_per_step)) >= 3


def test_stale_hash_triggers_reexport(tmp_path, monkeypatch):
    monkeypatch.setenv("VIS2MUS_CACHE", str(tmp_path / "cache"))
    weights = write_random_weights(tmp_path / "w.pt", "tiny", seed=2)
    lines: list[str] = []
    first = graphs.ensure_graphs(weights, log=lines.append, exporter=onnx_export.export_graphs)
    assert first.parent == tmp_path / "cache"
    assert any(line.startswith("exporting ONNX graphs") for line in lines)
    lines.clear()
    assert graphs.ensure_graphs(weights, log=lines.append, exporter=onnx_export.export_graphs) == first
    assert lines == []
    write_random_weights(weights, "tiny", seed=3)
    second = graphs.ensure_graphs(weights, log=lines.append, exporter=onnx_export.export_graphs)
    assert second != first
    assert any(line.startswith("exporting ONNX graphs") for line in lines)
    assert graphs.read_manifest(second)["weights_sha256"] == graphs.file_sha256(weights)


def test_stale_graphs_in_an_explicit_folder_are_replaced(tmp_path):
    out = tmp_path / "graphs"
    a = write_random_weights(tmp_path / "a.pt", "tiny", seed=4)
    b = write_random_weights(tmp_path / "b.pt", "tiny", seed=5)
    graphs.ensure_graphs(a, out=out, log=lambda _: None, exporter=onnx_export.export_graphs)
    before = (out / "dec_note.onnx").read_bytes()
    lines: list[str] = []
    graphs.ensure_graphs(b, out=out, log=lines.append, exporter=onnx_export.export_graphs)
    assert lines and graphs.read_manifest(out)["weights_sha256"] == graphs.file_sha256(b)
    assert (out / "dec_note.onnx").read_bytes() != before


def test_missing_weights_give_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "nope.pt"
    with pytest.raises(graphs.GraphError, match="weights not found"):
        graphs.ensure_graphs(missing, out=tmp_path / "g")
    assert onnx_export.main(["--weights", str(missing), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.pt" in err and "Traceback" not in err


def test_corrupt_weights_give_one_clear_line(tmp_path, capsys):
    bad = write_random_weights(tmp_path / "bad.pt", "tiny")
    bad.write_bytes(b"this is not a torch file")
    assert onnx_export.main(["--weights", str(bad), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vis2mus-export: error: cannot load weights") and err.count("\n") == 1
    assert not (tmp_path / "g" / graphs.MANIFEST).exists()


def test_missing_model_card_is_a_clear_error(tmp_path, capsys):
    weights = write_random_weights(tmp_path / "w.pt", "tiny")
    weights.with_suffix(".json").unlink()
    assert onnx_export.main(["--weights", str(weights), "--out", str(tmp_path / "g")]) == 2
    assert "model card not found" in capsys.readouterr().err


def test_without_torch_the_error_names_the_command(weights, tmp_path):
    """A runtime without torch: live imports fine, and missing graphs give the export command."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from export import exporter\n"
        "from live.inference import graphs, engine\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n"
        f"    graphs.ensure_graphs({str(weights)!r}, out={str(tmp_path / 'g')!r}, exporter=exporter())\n"
        "except graphs.GraphError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line
    assert "pip install -e .[train]" in line and "vis2mus-export --weights" in line


def test_cli_check_prints_parity(weights, tmp_path, capsys):
    code = onnx_export.main(["--weights", str(weights), "--out", str(tmp_path / "g"), "--check",
                             "--segments", "12"])
    out = capsys.readouterr().out
    assert "identical decoded notes: 12/12 segments (100.00 %)" in out
    assert "latent max |diff|" in out and "parity: PASS" in out
    assert code == 0


def test_export_summary_matches_the_model_summarize(weights):
    """The ONNX-layout bi-GRU (weights reordered to z, r, h) agrees with the model's masked loop."""
    dec = load_model(weights).decoder
    parts = onnx_export._DecoderParts(dec)
    embs = torch.randn(3, 5, dec.cfg.note_emb, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([1, 3, 5])
    with torch.no_grad():
        torch.testing.assert_close(parts.summary(embs, lengths), dec.summarize(embs, lengths))
