"""``vis2mus-export``: turn ``weights/<name>.pt`` into the ONNX graphs of ``live.inference.graphs``.

The decoder is cut into three graphs that a numpy loop drives (``live.inference.engine``): ``dec_first``
(z -> first time step), ``dec_step`` (summary of the previous step's notes + one time step + the
step's first note slot) and ``dec_note`` (one note slot: notes GRU, pitch head, the 5 duration bits
fed back greedily, and the embedding of the chosen note). Parts of a GRU input that stay fixed over
the inner loops (``z_in`` for the time GRU, ``h_time`` for the notes GRU) are projected once and
passed along. ``--check`` compares the graphs with eager torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from live.checks import one_line
from live.inference import graphs
from model.polydis import (BIT_START, DUR_BITS, DUR_PAD, PITCH_CLASSES, PITCHES, SOS, PianoTreeDecoder, PolyDis,
                           load_model)

OPSET = 17


def _cell(x_proj: torch.Tensor, h_proj: torch.Tensor, h: torch.Tensor, size: int) -> torch.Tensor:
    """GRU step from its projections: ``x_proj = W_ih x + b_ih``, ``h_proj = W_hh h + b_hh``, each
    ``(B, 3H)``, and ``h`` ``(B, H)`` -> ``(B, H)`` (gate order r, z, n as in ``nn.GRU``). ``size``
    is ``H`` as a Python int, so the export sees constant split sizes."""
    x_rz, x_n = torch.split(x_proj, [2 * size, size], dim=-1)
    h_rz, h_n = torch.split(h_proj, [2 * size, size], dim=-1)
    r, z = torch.split(torch.sigmoid(x_rz + h_rz), [size, size], dim=-1)
    n = torch.tanh(x_n + r * h_n)
    return n + z * (h - n)


def _onnx_gates(weight: torch.Tensor) -> torch.Tensor:
    """Rows of a torch GRU matrix or bias in gate order r, z, n -> ONNX order z, r, h."""
    r, z, n = weight.detach().chunk(3, dim=0)
    return torch.cat([z, r, n], dim=0)


def _onnx_cell(x: torch.Tensor, h: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor
               ) -> torch.Tensor:
    """One GRU step with ONNX-layout weights of one direction (``w`` ``(3H, I)``, ``r`` ``(3H, H)``,
    ``b`` ``(6H,)``, gates z, r, h, ``linear_before_reset``): ``x`` ``(B, I)``, ``h`` ``(B, H)``."""
    size = h.shape[-1]
    gx = x @ w.t() + b[:3 * size]
    gh = h @ r.t() + b[3 * size:]
    z = torch.sigmoid(gx[:, :size] + gh[:, :size])
    reset = torch.sigmoid(gx[:, size:2 * size] + gh[:, size:2 * size])
    n = torch.tanh(gx[:, 2 * size:] + reset * gh[:, 2 * size:])
    return (1 - z) * n + z * h


class _PackedBiGRU(torch.autograd.Function):
    """Final states of a bidirectional GRU over the first ``lengths`` steps of ``x`` ``(B, L, I)``
    -> ``(B, 2H)`` (forward state, backward state), as a packed sequence gives them.

    Weights are in ONNX layout: ``w`` ``(2, 3H, I)``, ``r`` ``(2, 3H, H)``, ``b`` ``(2, 6H)``, gates
    z, r, h, ``linear_before_reset``. Exports as one ONNX ``GRU`` op with ``sequence_lens``.
    """

    @staticmethod
    def forward(ctx, x, lengths, w, r, b):
        size = r.shape[-1]
        finals = []
        for d, order in ((0, range(x.shape[1])), (1, reversed(range(x.shape[1])))):
            h = x.new_zeros(x.shape[0], size)
            for t in order:
                h = torch.where((lengths > t).unsqueeze(-1), _onnx_cell(x[:, t], h, w[d], r[d], b[d]), h)
            finals.append(h)
        return torch.cat(finals, dim=-1)

    @staticmethod
    def symbolic(g, x, lengths, w, r, b):
        seq_major = g.op("Transpose", x, perm_i=[1, 0, 2])
        seq_lens = g.op("Cast", lengths, to_i=6)  # INT32
        hidden = r.type().sizes()[-1]
        _, y_h = g.op("GRU", seq_major, w, r, b, seq_lens, hidden_size_i=hidden,
                      direction_s="bidirectional", linear_before_reset_i=1, outputs=2)
        batch_major = g.op("Transpose", y_h, perm_i=[1, 0, 2])
        return g.op("Reshape", batch_major, g.op("Constant", value_t=torch.tensor([0, -1])))


class _GRUStep(torch.autograd.Function):
    """One step of a one-layer GRU, ``x`` ``(B, I)``, ``h`` ``(B, H)`` -> ``(B, H)``, with weights in
    ONNX layout (``w`` ``(1, 3H, I)``, ``r`` ``(1, 3H, H)``, ``b`` ``(1, 6H)``, gates z, r, h,
    ``linear_before_reset``). Exports as one ONNX ``GRU`` op."""

    @staticmethod
    def forward(ctx, x, h, w, r, b):
        return _onnx_cell(x, h, w[0], r[0], b[0])

    @staticmethod
    def symbolic(g, x, h, w, r, b):
        axis = g.op("Constant", value_t=torch.tensor([0]))
        hidden = r.type().sizes()[-1]
        no_lengths = g.op("prim::Constant")
        no_lengths.setType(torch._C.OptionalType.ofTensor())
        _, y_h = g.op("GRU", g.op("Unsqueeze", x, axis), w, r, b, no_lengths, g.op("Unsqueeze", h, axis),
                      hidden_size_i=hidden, linear_before_reset_i=1, outputs=2)
        return g.op("Squeeze", y_h, axis)


def _buffer(*parts: torch.Tensor) -> torch.Tensor:
    """Detached copy of ``parts`` concatenated along dim 0."""
    return torch.cat([p.detach() for p in parts], dim=0).clone()


class _DecoderParts(nn.Module):
    """The decoder's weights regrouped for few, large products; shared by the decoder graphs.

    Products that feed several consumers are fused into one matrix (e.g. the new notes state feeds
    the pitch head, the duration start state and the next slot's recurrent projection), and one-hot
    inputs become row look-ups.
    """

    def __init__(self, dec: PianoTreeDecoder):
        super().__init__()
        cfg = dec.cfg
        token, ht = 2 * cfg.summary_hidden, cfg.time_hidden
        time_gru, notes_gru, dur_gru = dec.time_gru, dec.notes_gru, dec.dur_gru
        self.register_buffer("z2hid_w", _buffer(dec.z2hid.weight))
        self.register_buffer("z2hid_b", _buffer(dec.z2hid.bias))
        self.register_buffer("z2in_w", _buffer(dec.z2in.weight))
        self.register_buffer("z2in_b", _buffer(dec.z2in.bias))
        self.register_buffer("token0", _buffer(dec.token0.unsqueeze(0)))
        self.register_buffer("time_token_w", _buffer(time_gru.weight_ih_l0[:, :token]))
        self.register_buffer("time_z_w", _buffer(time_gru.weight_ih_l0[:, token:]))
        self.register_buffer("time_ih_b", _buffer(time_gru.bias_ih_l0))
        self.register_buffer("time_hh_w", _buffer(time_gru.weight_hh_l0))
        self.register_buffer("time_hh_b", _buffer(time_gru.bias_hh_l0))
        # h_time -> [notes GRU input projection of h_time, notes start state]
        self.register_buffer("time_post_w", _buffer(notes_gru.weight_ih_l0[:, :ht], dec.time2notes.weight))
        self.register_buffer("time_post_b", _buffer(notes_gru.bias_ih_l0, dec.time2notes.bias))
        self.register_buffer("notes_emb_w", _buffer(notes_gru.weight_ih_l0[:, ht:]))
        self.register_buffer("notes_hh_w", _buffer(notes_gru.weight_hh_l0))
        self.register_buffer("notes_hh_b", _buffer(notes_gru.bias_hh_l0))
        # h_notes -> [pitch logits, duration start (h_notes part), next recurrent projection]
        hn = cfg.notes_hidden
        self.register_buffer("notes_post_w", _buffer(dec.pitch_out.weight, dec.dur_hid.weight[:, :hn],
                                                     notes_gru.weight_hh_l0))
        self.register_buffer("notes_post_b", _buffer(dec.pitch_out.bias, dec.dur_hid.bias, notes_gru.bias_hh_l0))
        self.register_buffer("dur_logit_w", _buffer(dec.dur_hid.weight[:, hn:]))
        self.register_buffer("dur_w", _onnx_gates(dur_gru.weight_ih_l0).unsqueeze(0))
        self.register_buffer("dur_r", _onnx_gates(dur_gru.weight_hh_l0).unsqueeze(0))
        self.register_buffer("dur_b", torch.cat([_onnx_gates(dur_gru.bias_ih_l0),
                                                 _onnx_gates(dur_gru.bias_hh_l0)]).unsqueeze(0))
        self.register_buffer("dur_out_w", _buffer(dec.dur_out.weight))
        self.register_buffer("dur_out_b", _buffer(dec.dur_out.bias))
        self.register_buffer("bit_onehot", torch.eye(3))
        # pitch token -> its embedding column plus bias; duration bits -> their columns
        emb_w = dec.note_embedding.weight
        self.register_buffer("emb_table", _buffer((emb_w[:, :PITCH_CLASSES] + dec.note_embedding.bias[:, None]).t()))
        self.register_buffer("emb_bits_w", _buffer(emb_w[:, PITCH_CLASSES:].t()))
        self.sizes = (PITCH_CLASSES, cfg.dur_hidden, 3 * hn)
        summary = dec.summary_gru
        self.register_buffer("summary_w", torch.stack([_onnx_gates(summary.weight_ih_l0),
                                                       _onnx_gates(summary.weight_ih_l0_reverse)]))
        self.register_buffer("summary_r", torch.stack([_onnx_gates(summary.weight_hh_l0),
                                                       _onnx_gates(summary.weight_hh_l0_reverse)]))
        self.register_buffer("summary_b", torch.stack([
            torch.cat([_onnx_gates(summary.bias_ih_l0), _onnx_gates(summary.bias_hh_l0)]),
            torch.cat([_onnx_gates(summary.bias_ih_l0_reverse), _onnx_gates(summary.bias_hh_l0_reverse)])]))
        self.time_hidden, self.notes_hidden, self.dur_hidden = ht, hn, cfg.dur_hidden

    def summary(self, embs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Bi-GRU final states over the first ``lengths`` of ``embs`` ``(B, L, E)`` -> ``(B, 2S)``."""
        return _PackedBiGRU.apply(embs, lengths, self.summary_w, self.summary_r, self.summary_b)

    def sos(self, batch_like: torch.Tensor) -> torch.Tensor:
        """Embedding of SOS with duration tokens 2, ``(B, E)``."""
        pads = torch.full((1, DUR_BITS), float(DUR_PAD), device=batch_like.device)
        row = self.emb_table[SOS].unsqueeze(0) + pads @ self.emb_bits_w
        return row.expand(batch_like.shape[0], -1)

    def token_x(self, token: torch.Tensor, z_x: torch.Tensor) -> torch.Tensor:
        """Time-GRU input projection of ``[token, z_in]`` given ``z_x`` (the ``z_in`` part)."""
        return torch.addmm(z_x, token, self.time_token_w.t())

    def time_step(self, x_proj: torch.Tensor, h_time: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Time-GRU input projection ``x_proj`` -> new ``h_time``, its notes-GRU projection ``hx``,
        the notes start state and its recurrent projection."""
        h_proj = torch.addmm(self.time_hh_b, h_time, self.time_hh_w.t())
        h_time = _cell(x_proj, h_proj, h_time, self.time_hidden)
        hx, h_notes = torch.split(torch.addmm(self.time_post_b, h_time, self.time_post_w.t()),
                                  [3 * self.notes_hidden, self.notes_hidden], dim=-1)
        hh_notes = torch.addmm(self.notes_hh_b, h_notes, self.notes_hh_w.t())
        return h_time, hx, h_notes, hh_notes

    def note_slot(self, x_proj: torch.Tensor, h_notes: torch.Tensor, hh_notes: torch.Tensor
                  ) -> tuple[torch.Tensor, ...]:
        """One greedy note slot from the notes-GRU input projection ``x_proj`` (``hx`` plus the
        previous note's part) -> ``pitch (B,)``, ``bits (B, 5)``, ``emb (B, E)``, ``h_notes``,
        ``hh_notes`` (the recurrent projection of the new ``h_notes``)."""
        h_notes = _cell(x_proj, hh_notes, h_notes, self.notes_hidden)
        logits, dur_part, hh_notes = torch.split(torch.addmm(self.notes_post_b, h_notes, self.notes_post_w.t()),
                                                 list(self.sizes), dim=-1)
        pitch = logits.argmax(-1)
        h_dur = torch.addmm(dur_part, logits, self.dur_logit_w.t())
        bit_in = self.bit_onehot[BIT_START].unsqueeze(0).expand(h_dur.shape[0], 3)
        bits = []
        for _ in range(DUR_BITS):
            h_dur = _GRUStep.apply(bit_in, h_dur, self.dur_w, self.dur_r, self.dur_b)
            bit = torch.addmm(self.dur_out_b, h_dur, self.dur_out_w.t()).argmax(-1)
            bits.append(bit)
            bit_in = F.embedding(bit, self.bit_onehot)
        is_note = (pitch < PITCHES).unsqueeze(-1)
        bits = torch.where(is_note, torch.stack(bits, dim=-1), torch.full_like(pitch, DUR_PAD).unsqueeze(-1))
        emb = F.embedding(pitch, self.emb_table) + bits.float() @ self.emb_bits_w
        return pitch, bits, emb, h_notes, hh_notes


class ChordEncGraph(nn.Module):
    """Chord rows -> posterior mean of ``z_chd``."""

    def __init__(self, model: PolyDis):
        super().__init__()
        self.enc = model.chord_enc

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.enc(rows)[0]


class TextureHeadGraph(nn.Module):
    """Feature map -> posterior mean of ``z_txt``."""

    def __init__(self, model: PolyDis):
        super().__init__()
        self.head = model.texture_head

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.head(feature_map)[0]


class DecFirstGraph(nn.Module):
    """``z`` -> the per-segment projections and the first time step with its first slot."""

    def __init__(self, parts: _DecoderParts):
        super().__init__()
        self.parts = parts

    def forward(self, z: torch.Tensor):
        parts = self.parts
        h_time = torch.addmm(parts.z2hid_b, z, parts.z2hid_w.t())
        z_in = torch.addmm(parts.z2in_b, z, parts.z2in_w.t())
        z_x = torch.addmm(parts.time_ih_b, z_in, parts.time_z_w.t())
        token = parts.token0.expand(z.shape[0], -1)
        sos = parts.sos(z)
        sos_x = sos @ parts.notes_emb_w.t()
        rest_token = parts.summary(sos.unsqueeze(1), torch.ones_like(z[:, 0], dtype=torch.long))
        rest_x = parts.token_x(rest_token, z_x)
        h_time, hx, h_notes, hh_notes = parts.time_step(parts.token_x(token, z_x), h_time)
        pitch, bits, emb, h_notes, hh_notes = parts.note_slot(hx + sos_x, h_notes, hh_notes)
        return z_x, sos, sos_x, rest_x, h_time, hx, pitch, bits, emb, h_notes, hh_notes


class DecStepGraph(nn.Module):
    """Summary of the previous step + one time step + its first note slot."""

    def __init__(self, parts: _DecoderParts):
        super().__init__()
        self.parts = parts

    def forward(self, embs, lengths, z_x, sos_x, h_time):
        token = self.parts.summary(embs, lengths)
        h_time, hx, h_notes, hh_notes = self.parts.time_step(self.parts.token_x(token, z_x), h_time)
        pitch, bits, emb, h_notes, hh_notes = self.parts.note_slot(hx + sos_x, h_notes, hh_notes)
        return h_time, hx, pitch, bits, emb, h_notes, hh_notes


class DecRestGraph(nn.Module):
    """One time step after a step without notes (its summary is that of SOS alone, so its input
    projection ``rest_x`` is fixed per segment) + its first note slot."""

    def __init__(self, parts: _DecoderParts):
        super().__init__()
        self.parts = parts

    def forward(self, rest_x, sos_x, h_time):
        h_time, hx, h_notes, hh_notes = self.parts.time_step(rest_x, h_time)
        pitch, bits, emb, h_notes, hh_notes = self.parts.note_slot(hx + sos_x, h_notes, hh_notes)
        return h_time, hx, pitch, bits, emb, h_notes, hh_notes


class DecNoteGraph(nn.Module):
    """One further note slot."""

    def __init__(self, parts: _DecoderParts):
        super().__init__()
        self.parts = parts

    def forward(self, hx, prev, h_notes, hh_notes):
        parts = self.parts
        return parts.note_slot(torch.addmm(hx, prev, parts.notes_emb_w.t()), h_notes, hh_notes)


def _graph_specs(model: PolyDis) -> dict[str, tuple[nn.Module, tuple, list[str], list[str], dict]]:
    """name -> (module, example inputs, input names, output names, dynamic axes)."""
    cfg = model.cfg
    parts = _DecoderParts(model.decoder).eval()
    b, steps = 2, 3
    batch = {0: "batch"}
    z_x = torch.randn(b, 3 * cfg.time_hidden)
    h_time = torch.randn(b, cfg.time_hidden)
    io = graphs.GRAPHS
    made = {
        "chord_enc": (ChordEncGraph(model), (torch.rand(b, 8, 36),)),
        "texture_cnn": (model.texture_cnn, (torch.rand(b, 32, 128),)),
        "texture_head": (TextureHeadGraph(model), (torch.rand(b, 10, 8, 29),)),
        "dec_first": (DecFirstGraph(parts), (torch.randn(b, 2 * cfg.z_dim),)),
        "dec_step": (DecStepGraph(parts), (torch.randn(b, steps, cfg.note_emb), torch.tensor([1, steps]), z_x,
                                           torch.randn(b, 3 * cfg.notes_hidden), h_time)),
        "dec_rest": (DecRestGraph(parts), (z_x, torch.randn(b, 3 * cfg.notes_hidden), h_time)),
        "dec_note": (DecNoteGraph(parts), (torch.randn(b, 3 * cfg.notes_hidden), torch.randn(b, cfg.note_emb),
                                           torch.randn(b, cfg.notes_hidden), torch.randn(b, 3 * cfg.notes_hidden))),
    }
    specs = {}
    for name, (module, args) in made.items():
        inputs, outputs = io[name]
        axes = {n: batch for n in inputs + outputs}
        if name == "dec_step":
            axes["embs"] = {0: "batch", 1: "length"}
        specs[name] = (module, args, list(inputs), list(outputs), axes)
    return specs


def load_weights(weights: str | Path) -> PolyDis:
    """:func:`model.polydis.load_model`, with any failure of a corrupt file turned into a one-line
    ``ValueError`` (``torch.load`` raises many exception types on garbage)."""
    try:
        return load_model(weights)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as exc:
        raise ValueError(f"cannot load weights {weights}: {type(exc).__name__}: {one_line(exc)}") from exc


def export_graphs(weights: str | Path, out: str | Path, digest: str | None = None,
                  log=lambda line: None) -> dict:
    """Export every graph of ``weights`` into ``out``; write and return the manifest.

    Raises ``FileNotFoundError`` / ``ValueError`` (one line) for missing or bad weights.
    """
    import onnx

    weights = Path(weights)
    model = load_weights(weights)
    digest = digest or graphs.file_sha256(weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    nodes = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (module, args, inputs, outputs, axes) in _graph_specs(model).items():
            log(f"  {name}")
            path = out / f"{name}.onnx"
            tmp = out / f"{name}.onnx.{os.getpid()}.tmp"
            torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
            tmp.replace(path)
            nodes[name] = len(onnx.load(str(path)).graph.node)
    manifest = {
        "weights": str(weights.resolve()),
        "weights_sha256": digest,
        "exporter_version": graphs.EXPORTER_VERSION,
        "config": model.cfg.to_dict(),
        "opset": OPSET,
        "torch": torch.__version__,
        "graphs": {name: {"file": f"{name}.onnx", "nodes": nodes[name]} for name in graphs.GRAPH_NAMES},
        "export_seconds": round(time.perf_counter() - start, 2),
    }
    tmp = out / f"{graphs.MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out / graphs.MANIFEST)
    return manifest


def repo_root() -> Path:
    """The repository (parent of ``export/``)."""
    return Path(__file__).resolve().parent.parent


def prepared_pop909() -> Path:
    """Where ``vis2mus-data prepare`` puts the prepared POP909 file: ``.cache/pop909.npz``."""
    return repo_root() / ".cache" / "pop909.npz"


def validation_segments(path: str | Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` validation segments spread evenly over the prepared POP909 file ->
    chord rows ``(n, 8, 36)`` and ``pr_mat`` ``(n, 32, 128)`` float32."""
    from live.music.notes import notes_to_pr_mat

    with np.load(path) as data:
        chosen = np.flatnonzero(data["split"] == 1)
        chosen = chosen[np.linspace(0, len(chosen) - 1, min(n, len(chosen))).astype(int)]
        offsets, notes = data["acc_offsets"], data["acc_notes"]
        rows = data["chords"][chosen].astype(np.float32)
        pr = np.stack([notes_to_pr_mat(notes[offsets[i]:offsets[i + 1]].astype(np.int32)) for i in chosen])
    return rows, pr


def generated_segments(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random segments: 2-beat chords over 12 roots and 4 qualities, and 1-4-note onsets at
    about 40 % of steps, pitches 36-84, durations 1-8 -> chord rows ``(n, 8, 36)``, ``pr_mat``
    ``(n, 32, 128)``."""
    from live.music.chords import NOTE_NAMES, label_to_row
    from live.music.notes import make_notes, notes_to_pr_mat

    rng = np.random.default_rng(seed)
    rows = np.zeros((n, 8, 36), np.float32)
    pr = np.zeros((n, 32, 128), np.float32)
    for i in range(n):
        for beat in range(0, 8, 2):
            label = f"{NOTE_NAMES[rng.integers(12)]}:{rng.choice(['maj', 'min', '7', 'min7'])}"
            rows[i, beat:beat + 2] = label_to_row(label)
        notes = [(t, p, d, 80) for t in np.flatnonzero(rng.random(32) < 0.4)
                 for p, d in zip(rng.choice(np.arange(36, 85), rng.integers(1, 5), replace=False),
                                 rng.integers(1, 9, 4))]
        pr[i] = notes_to_pr_mat(make_notes(notes))
    return rows, pr


def parity_segments(n: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(source description, chord rows, pr_mat) of ``n`` segments for ``--check``: validation
    songs of the prepared POP909 file when present, else generated ones."""
    path = prepared_pop909()
    if path.is_file():
        rows, pr = validation_segments(path, n)
        return f"{len(rows)} validation segments of {path}", rows, pr
    rows, pr = generated_segments(n)
    return f"{n} generated segments (no {path})", rows, pr


def check_parity(weights: str | Path, graph_dir: str | Path, rows: np.ndarray, pr: np.ndarray,
                 batch: int = 50) -> dict:
    """Compare the ONNX engine with eager torch on segments ``rows`` ``(N, 8, 36)``,
    ``pr`` ``(N, 32, 128)``: each side encodes (posterior means) and decodes greedily on its own.

    Returns ``segments``, ``identical_notes`` (count), ``identical_grids``, ``latent_max_diff``.
    """
    from live.inference.engine import Engine
    from live.music.notes import grid_to_notes

    model = load_weights(weights)
    engine = Engine(graph_dir, device="cpu")
    same_notes = same_grids = 0
    worst = 0.0
    for start in range(0, len(rows), batch):
        r, p = rows[start:start + batch], pr[start:start + batch]
        with torch.no_grad():
            mu_c, _, mu_t, _ = model.encode(torch.from_numpy(r), torch.from_numpy(p))
            ref = model.decoder.greedy_decode(torch.cat([mu_c, mu_t], dim=-1)).numpy()
        z_c = engine.encode_chords(r)
        z_t = engine.texture_latent(engine.texture_map(p))
        worst = max(worst, float(np.abs(z_c - mu_c.numpy()).max()), float(np.abs(z_t - mu_t.numpy()).max()))
        got = engine.decode_grid(z_c, z_t)
        for a, b in zip(got, ref):
            same_grids += bool(np.array_equal(a, b))
            same_notes += bool(np.array_equal(grid_to_notes(a), grid_to_notes(b)))
    return {"segments": len(rows), "identical_notes": same_notes, "identical_grids": same_grids,
            "latent_max_diff": worst}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vis2mus-export", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="weights .pt (default: weights/polydis-small.pt)")
    parser.add_argument("--out", help="graph folder (default: the cache, see live.inference.graphs)")
    parser.add_argument("--force", action="store_true", help="export even when the graphs are current")
    parser.add_argument("--check", action="store_true", help="compare ONNX with eager torch")
    parser.add_argument("--segments", type=int, default=500, help="segments for --check (default 500)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    weights = Path(args.weights) if args.weights else graphs.default_weights()
    try:
        if args.force:
            folder = Path(args.out) if args.out else graphs.graph_dir_for(graphs.file_sha256(weights))
            (folder / graphs.MANIFEST).unlink(missing_ok=True)
        folder = graphs.ensure_graphs(weights, out=args.out, log=print, exporter=export_graphs)
        manifest = graphs.read_manifest(folder)
        print(f"graphs: {folder}")
        print("nodes: " + ", ".join(f"{k} {v['nodes']}" for k, v in manifest["graphs"].items()))
        if not args.check:
            return 0
        source, rows, pr = parity_segments(args.segments)
        print(f"checking ONNX against eager torch on {source} ...")
        result = check_parity(weights, folder, rows, pr)
    except (graphs.GraphError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"vis2mus-export: error: {one_line(exc)}", file=sys.stderr)
        return 2
    share = 100.0 * result["identical_notes"] / result["segments"]
    ok = share >= 99.5 and result["latent_max_diff"] <= 1e-4
    print(f"identical decoded notes: {result['identical_notes']}/{result['segments']} segments ({share:.2f} %); "
          f"identical grids: {result['identical_grids']}")
    print(f"latent max |diff|: {result['latent_max_diff']:.3g}")
    print("parity: PASS" if ok else "parity: FAIL (needs >= 99.5 % identical and max |diff| <= 1e-4)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
