"""The inference engine: onnxruntime sessions over the graphs of ``live.inference.graphs`` (no torch).

Decoding is greedy and driven by a numpy loop: per time step one ``dec_step`` call (summary of the
previous step, time GRU, first note slot; ``dec_rest`` when the previous step had no notes) and one ``dec_note`` call per further slot, stopping as
soon as every segment of the batch has emitted EOS (at most 15 slots). The grid it builds is the
one of ``model.polydis.PianoTreeDecoder.greedy_decode``.

Thread safety: the engine holds no mutable state after construction and onnxruntime sessions
accept concurrent ``run`` calls, so several threads may call any method at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from live.checks import one_line
from live.inference import graphs
from live.music.notes import DECODE_SLOTS, DUR_BITS, DUR_PAD, EOS, PAD, STEPS, grid_to_notes

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


class EngineError(RuntimeError):
    """The engine cannot start (bad device, unreadable graphs); the message is one line."""


class GraphLoadError(EngineError):
    """A graph file exists but onnxruntime cannot load it (truncated or corrupt)."""


def choose_provider(device: str = "auto") -> str:
    """``"auto"`` -> CUDA when onnxruntime-gpu sees a GPU, else CPU; ``"cpu"``; ``"cuda"`` or error."""
    available = ort.get_available_providers()
    if device == "cpu":
        return CPU
    if device == "cuda":
        if CUDA not in available:
            raise EngineError("device 'cuda' asked for but onnxruntime has no CUDA provider "
                              "(install onnxruntime-gpu: pip install -e .[gpu])")
        return CUDA
    if device == "auto":
        return CUDA if CUDA in available else CPU
    raise EngineError(f"unknown device {device!r} (auto, cpu or cuda)")


def _finite(name: str, x, shape_tail: tuple[int, ...]) -> np.ndarray:
    """``x`` as a C-contiguous float32 batch with trailing shape ``shape_tail``; ValueError if not."""
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


class Engine:
    """Encoders and greedy decoder of one poly-dis weights file on onnxruntime."""

    def __init__(self, graph_dir: str | Path, device: str = "auto", threads: int = 1):
        if threads < 1:
            raise EngineError(f"threads must be >= 1, got {threads}")
        self.provider = choose_provider(device)
        self.graph_dir = Path(graph_dir)
        self.manifest = graphs.read_manifest(self.graph_dir) or {}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [self.provider] if self.provider == CPU else [self.provider, CPU]
        self._sessions: dict[str, ort.InferenceSession] = {}
        for name in graphs.GRAPH_NAMES:
            path = self.graph_dir / f"{name}.onnx"
            try:
                self._sessions[name] = ort.InferenceSession(str(path), opts, providers=providers)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise GraphLoadError(f"cannot load graph {path}: {one_line(exc)}") from exc
        self.z_dim = int(self._sessions["dec_first"].get_inputs()[0].shape[1]) // 2

    @classmethod
    def from_weights(cls, path: str | Path | None = None, device: str = "auto", threads: int = 1,
                     log: Callable[[str], None] | None = None, exporter: graphs.Exporter | None = None) -> "Engine":
        """Engine for a weights file (default: ``live.inference.graphs.default_weights()``) or an
        exported ONNX folder (used as it is), exporting a file's
        graphs to the cache with ``exporter`` first when they are missing or stale, and once more when
        a cached graph cannot be loaded. Raises ``GraphError`` or ``EngineError`` with one line."""
        choose_provider(device)
        log = log or logging.getLogger(__name__).info
        folder = graphs.ensure_graphs(path, log=log, exporter=exporter)
        try:
            return cls(folder, device=device, threads=threads)
        except GraphLoadError as exc:
            if path is not None and Path(path).is_dir():
                raise  # the user's own exported folder: never touched, the error names the graph
            log(f"{exc}; exporting again")
            (folder / graphs.MANIFEST).unlink(missing_ok=True)
            return cls(graphs.ensure_graphs(path, log=log, exporter=exporter), device=device, threads=threads)

    def run_graph(self, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One call of graph ``name`` (see ``live.inference.graphs``) -> its outputs in order."""
        return self._sessions[name].run(None, feeds)

    def encode_chords(self, rows) -> np.ndarray:
        """Chord rows ``(B, 8, 36)`` -> ``z_chd`` ``(B, 256)`` (posterior mean)."""
        return self.run_graph("chord_enc", graphs.feeds("chord_enc", _finite("rows", rows, (8, 36))))[0]

    def texture_map(self, pr_mats) -> np.ndarray:
        """``pr_mat`` batch ``(B, 32, 128)`` -> feature maps ``(B, 10, 8, 29)``."""
        return self.run_graph("texture_cnn", graphs.feeds("texture_cnn", _finite("pr_mat", pr_mats, (32, 128))))[0]

    def texture_latent(self, maps) -> np.ndarray:
        """Feature maps ``(B, 10, 8, 29)`` -> ``z_txt`` ``(B, 256)`` (posterior mean)."""
        maps = _finite("feature_map", maps, (10, 8, 29))
        return self.run_graph("texture_head", graphs.feeds("texture_head", maps))[0]

    def decode(self, z_chd, z_txt) -> list[np.ndarray]:
        """``z_chd``, ``z_txt`` ``(B, 256)`` -> B note arrays ``(N, 4)`` int32, onsets 0..31."""
        return [grid_to_notes(g) for g in self.decode_grid(z_chd, z_txt)]

    def decode_grid(self, z_chd, z_txt) -> np.ndarray:
        """Greedy PianoTree grid ``(B, 32, 15, 6)`` int64 (no SOS slot; PAD after each EOS)."""
        z_c = _finite("z_chd", z_chd, (self.z_dim,))
        z_t = _finite("z_txt", z_txt, (self.z_dim,))
        if len(z_c) != len(z_t):
            raise ValueError(f"z_chd and z_txt batch sizes differ: {len(z_c)} != {len(z_t)}")
        z = np.concatenate([z_c, z_t], axis=1)
        batch = len(z)
        grid = np.full((batch, STEPS, DECODE_SLOTS, 1 + DUR_BITS), DUR_PAD, dtype=np.int64)
        grid[..., 0] = PAD
        run_step, run_rest = self._sessions["dec_step"].run, self._sessions["dec_rest"].run
        run_note = self._sessions["dec_note"].run
        step_in, rest_in, note_in = (graphs.GRAPHS[name][0] for name in ("dec_step", "dec_rest", "dec_note"))
        first = self.run_graph("dec_first", graphs.feeds("dec_first", z))
        z_x, sos, sos_x, rest_x, h_time, hx, pitch, bits, emb, h_notes, hh_notes = first
        for t in range(STEPS):
            if t and (lengths == 1).all():
                h_time, hx, pitch, bits, emb, h_notes, hh_notes = run_rest(
                    None, dict(zip(rest_in, (rest_x, sos_x, h_time))))
            elif t:
                h_time, hx, pitch, bits, emb, h_notes, hh_notes = run_step(
                    None, dict(zip(step_in, (embs, lengths, z_x, sos_x, h_time))))
            pitches, bit_rows, embs_t = [pitch], [bits], [sos, emb]
            done = pitch == EOS
            while len(pitches) < DECODE_SLOTS and not done.all():
                pitch, bits, emb, h_notes, hh_notes = run_note(
                    None, dict(zip(note_in, (hx, emb, h_notes, hh_notes))))
                pitches.append(pitch)
                bit_rows.append(bits)
                embs_t.append(emb)
                done |= pitch == EOS
            tokens = np.stack(pitches, axis=1)
            grid[:, t, :len(pitches), 0] = tokens
            grid[:, t, :len(pitches), 1:] = np.stack(bit_rows, axis=1)
            is_eos = tokens == EOS
            lengths = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1), DECODE_SLOTS) + 1
            embs = np.stack(embs_t, axis=1)
        eos = grid[..., 0] == EOS
        after_eos = (np.cumsum(eos, axis=-1) - eos) > 0
        grid[after_eos] = (PAD,) + (DUR_PAD,) * DUR_BITS
        return grid
