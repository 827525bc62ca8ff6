"""``--weights`` of every kind the help names: a .pt, an exported ONNX folder, and what is neither."""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest

from export import exporter
from live.app.config import load_settings
from live.app.renderer import load_renderer
from live.inference import graphs
from live.inference.engine import Engine, GraphLoadError
from live.texture.anchors import content_pieces, default_anchors


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory):
    """The shipped weights exported (or taken from the cache) and copied into a folder of their own."""
    cached = graphs.ensure_graphs(graphs.default_weights(), log=lambda _: None, exporter=exporter())
    folder = tmp_path_factory.mktemp("exported") / "polydis-onnx"
    shutil.copytree(cached, folder)
    return folder


def renderer_line(tmp_path, weights: str, caplog):
    """``load_renderer`` as the render child runs it: the renderer, its note, the lines it logged."""
    settings = load_settings(["--weights", weights, "--record", str(tmp_path / "r.mid")])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        renderer, note = load_renderer(settings, default_anchors(), content_pieces())
    return renderer, note, "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.mark.parametrize("content,what", [(b"", "empty file (0 bytes)"),
                                          (b"\x00" + os.urandom(4095), "not a PyTorch checkpoint")])
def test_random_or_empty_weights_are_one_line_naming_the_file(tmp_path, caplog, content, what):
    bad = tmp_path / "w.pt"
    bad.write_bytes(content)
    for make in (exporter(), None):  # with torch and in a runtime-only install alike
        with pytest.raises(graphs.GraphError) as caught:
            graphs.ensure_graphs(bad, out=tmp_path / "g", log=lambda _: None, exporter=make)
        assert str(bad) in str(caught.value) and what in str(caught.value)
    renderer, note, err = renderer_line(tmp_path, str(bad), caplog)
    assert renderer.vis2mus is None and what in note
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and what in lines[0], err
    assert not (tmp_path / "g").exists()


@pytest.mark.skipif(exporter() is None, reason="reading a pickle's contents needs torch (the runtime refuses it unread)")
def test_a_pickle_that_is_not_a_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"\x80\x04\x95" + os.urandom(200))
    with pytest.raises(graphs.GraphError, match=f"cannot load weights {bad}"):
        graphs.ensure_graphs(bad, out=tmp_path / "g", log=lambda _: None, exporter=exporter())


def test_an_exported_onnx_folder_works_as_weights(tmp_path, caplog, onnx_folder):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in onnx_folder.iterdir())
    engine = Engine.from_weights(onnx_folder, device="cpu", log=lambda _: None, exporter=None)
    z = np.zeros((1, engine.z_dim), np.float32)
    assert len(engine.decode(z, z)) == 1
    renderer, note, err = renderer_line(tmp_path, str(onnx_folder), caplog)
    assert renderer.vis2mus is not None and note == "CPUExecutionProvider", err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in onnx_folder.iterdir()) == before


def test_a_folder_that_is_not_an_export_says_what_is_missing(tmp_path, onnx_folder):
    partial = tmp_path / "partial"
    shutil.copytree(onnx_folder, partial)
    (partial / "dec_step.onnx").unlink()
    with pytest.raises(graphs.GraphError, match="missing dec_step.onnx"):
        graphs.ensure_graphs(partial)
    (partial / "dec_step.onnx").write_bytes(b"broken")
    with pytest.raises(GraphLoadError, match="dec_step.onnx"):
        Engine.from_weights(partial, device="cpu", log=lambda _: None, exporter=exporter())
    assert (partial / graphs.MANIFEST).exists(), "the user's folder is left as it was"
    manifest = graphs.read_manifest(onnx_folder)
    stale = tmp_path / "stale"
    shutil.copytree(onnx_folder, stale)
    (stale / graphs.MANIFEST).write_text(__import__("json").dumps({**manifest, "exporter_version": "1"}))
    with pytest.raises(graphs.GraphError, match="exporter version 1.*re-export"):
        graphs.ensure_graphs(stale)
