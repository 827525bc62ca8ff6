"""The ONNX graphs of one weights file: names, cache location, manifest, export on demand.

No torch here. Graphs live in ``<cache root>/<sha256(weights)[:16]>-v<EXPORTER_VERSION>/`` with a
``manifest.json``; the cache root is ``$VIS2MUS_CACHE`` or ``~/.cache/vis2mus-live/onnx``. When the
graphs of a weights file are missing or stale, :func:`ensure_graphs` writes them with the exporter
its caller hands in (``export.onnx_export.export_graphs``, which needs torch; see
:func:`export.exporter`). This module never imports the exporter: the names of every graph's
inputs and outputs are defined here (:data:`GRAPHS`) and the exporter reads them.

Graphs and their tensors (``B`` dynamic batch, ``L`` dynamic summary length; sizes of the model
card: ``Ht`` time hidden, ``Hn`` notes hidden, ``E`` note embedding):

- ``chord_enc``: ``rows (B, 8, 36)`` -> ``z_chd (B, 256)`` (posterior mean)
- ``texture_cnn``: ``pr_mat (B, 32, 128)`` -> ``feature_map (B, 10, 8, 29)``
- ``texture_head``: ``feature_map`` -> ``z_txt (B, 256)`` (posterior mean)
- ``dec_first``: ``z (B, 512)`` -> ``z_x (B, 3Ht)`` (time-GRU input part of ``z``), ``sos (B, E)``,
  ``sos_x (B, 3Hn)`` (notes-GRU input part of SOS), ``rest_x (B, 3Ht)`` (time-GRU input after a
  step without notes), then the outputs of ``dec_step``
- ``dec_step``: ``embs (B, L, E)`` (SOS + the previous step's notes), ``lengths (B,)`` int64,
  ``z_x``, ``sos_x``, ``h_time`` -> one time step (summary bi-GRU, time GRU, notes GRU start) and
  its first note slot: ``h_time_next (B, Ht)``, ``hx (B, 3Hn)`` (notes-GRU input part of
  ``h_time``), ``pitch (B,)`` int64, ``bits (B, 5)`` int64 (2s unless a note), ``emb (B, E)``,
  ``h_notes_next (B, Hn)``, ``hh_notes_next (B, 3Hn)`` (its recurrent projection)
- ``dec_rest``: ``rest_x``, ``sos_x``, ``h_time`` -> the outputs of ``dec_step``, for a step whose
  previous step had no notes in any segment of the batch (no summary needed)
- ``dec_note``: ``hx``, ``prev (B, E)``, ``h_notes``, ``hh_notes`` -> the next note slot:
  ``pitch``, ``bits``, ``emb``, ``h_notes_next``, ``hh_notes_next``
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from live.checks import one_line

Exporter = Callable[..., dict]
"""``export_graphs(weights, out, digest=...) -> manifest``: writes every graph of ``weights``."""

EXPORTER_VERSION = "5"
MANIFEST = "manifest.json"
STEP_OUTPUTS = ("h_time_next", "hx", "pitch", "bits", "emb", "h_notes_next", "hh_notes_next")
NOTE_OUTPUTS = STEP_OUTPUTS[2:]
GRAPHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "chord_enc": (("rows",), ("z_chd",)),
    "texture_cnn": (("pr_mat",), ("feature_map",)),
    "texture_head": (("feature_map",), ("z_txt",)),
    "dec_first": (("z",), ("z_x", "sos", "sos_x", "rest_x") + STEP_OUTPUTS),
    "dec_step": (("embs", "lengths", "z_x", "sos_x", "h_time"), STEP_OUTPUTS),
    "dec_rest": (("rest_x", "sos_x", "h_time"), STEP_OUTPUTS),
    "dec_note": (("hx", "prev", "h_notes", "hh_notes"), NOTE_OUTPUTS),
}
"""graph name -> (input names, output names), in call order."""
GRAPH_NAMES = tuple(GRAPHS)
DEFAULT_WEIGHTS_NAME = "polydis-small.pt"
EXPORT_HINT = "run `pip install -e .[train]` then `vis2mus-export --weights {weights}`"


class GraphError(RuntimeError):
    """The graphs of a weights file cannot be found or made; the message is one line."""


def feeds(name: str, *arrays: Any) -> dict[str, Any]:
    """The input feed of graph ``name``: its input names (:data:`GRAPHS`) zipped with ``arrays``."""
    return dict(zip(GRAPHS[name][0], arrays, strict=True))


def default_weights() -> Path:
    """The shipped weights: ``weights/polydis-small.pt`` next to the ``live`` package."""
    return Path(__file__).resolve().parents[2] / "weights" / DEFAULT_WEIGHTS_NAME


def cache_root() -> Path:
    """``$VIS2MUS_CACHE`` or ``~/.cache/vis2mus-live/onnx``."""
    env = os.environ.get("VIS2MUS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vis2mus-live" / "onnx"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_dir_for(digest: str) -> Path:
    """Cache folder of the graphs of the weights with SHA-256 ``digest``."""
    return cache_root() / f"{digest[:16]}-v{EXPORTER_VERSION}"


def read_manifest(folder: str | Path) -> dict | None:
    """The manifest of a graph folder, or ``None`` when absent or unreadable."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_current(folder: str | Path, digest: str) -> bool:
    """Whether ``folder`` holds every graph, exported by this exporter version from ``digest``."""
    manifest = read_manifest(folder)
    if not manifest or manifest.get("weights_sha256") != digest:
        return False
    if manifest.get("exporter_version") != EXPORTER_VERSION:
        return False
    return all((Path(folder) / f"{name}.onnx").is_file() for name in GRAPH_NAMES)


def check_weights_file(weights: Path) -> None:
    """Refuse, in one line naming the file, what cannot be a PyTorch checkpoint: an empty file or
    one that starts with neither a zip header (``torch.save``) nor a pickle protocol byte."""
    size = weights.stat().st_size
    if size == 0:
        raise GraphError(f"cannot load weights {weights}: empty file (0 bytes)")
    with open(weights, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
        raise GraphError(f"cannot load weights {weights}: not a PyTorch checkpoint (.pt) nor an exported ONNX folder "
                         f"({size} bytes starting {head.hex()})")


def check_graph_folder(folder: Path) -> Path:
    """An exported ONNX folder given as the weights (``vis2mus-export --out DIR``): every graph
    present and, with a manifest, written by this exporter version; else ``GraphError``."""
    missing = [f"{name}.onnx" for name in GRAPH_NAMES if not (folder / f"{name}.onnx").is_file()]
    if missing:
        raise GraphError(f"weights {folder}: a folder, but not an exported ONNX folder (missing {', '.join(missing)})")
    manifest = read_manifest(folder)
    if manifest is not None and manifest.get("exporter_version") != EXPORTER_VERSION:
        raise GraphError(f"weights {folder}: graphs of exporter version {manifest.get('exporter_version')}, this "
                         f"runtime reads version {EXPORTER_VERSION}: re-export with "
                         f"`vis2mus-export --weights WEIGHTS.pt --out {folder}`")
    return folder


def ensure_graphs(weights: str | Path | None = None, out: str | Path | None = None,
                  log: Callable[[str], None] | None = None, exporter: Exporter | None = None) -> Path:
    """Folder with current graphs for ``weights`` (default :func:`default_weights`).

    ``weights`` is a ``.pt`` file or an exported ONNX folder (used as it is). Graphs of a ``.pt``
    are exported with ``exporter`` (progress lines through ``log``, default this module's logger)
    when missing or stale. ``out`` overrides the cache folder. Raises :class:`GraphError` (one line
    naming the file) for missing, empty or corrupt weights, or when the graphs must be made and no
    exporter was handed in (torch not installed).
    """
    log = log or logging.getLogger(__name__).info
    weights = Path(weights) if weights is not None else default_weights()
    if weights.is_dir():
        return check_graph_folder(weights)
    if not weights.is_file():
        raise GraphError(f"weights not found: {weights}")
    check_weights_file(weights)
    digest = file_sha256(weights)
    folder = Path(out) if out is not None else graph_dir_for(digest)
    if is_current(folder, digest):
        return folder
    if exporter is None:
        raise GraphError(f"ONNX graphs for {weights} are missing or stale and the exporter cannot "
                         "run (torch is not installed): " + EXPORT_HINT.format(weights=weights))
    log(f"exporting ONNX graphs for {weights} to {folder} ...")
    try:
        manifest = exporter(weights, folder, digest=digest)
    except Exception as exc:  # torch.load and the export raise many types on a corrupt checkpoint
        line = one_line(exc)
        raise GraphError(line if str(weights) in line else f"cannot load weights {weights}: {line}") from exc
    log(f"exported {len(GRAPH_NAMES)} graphs in {manifest['export_seconds']:.1f} s")
    return folder
