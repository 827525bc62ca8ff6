"""Poly-dis: the chord/texture disentangled VAE with a PianoTree decoder (PyTorch).

Inputs of one 2-bar segment (see ``live.music.notes`` / ``live.music.chords``):

- chord rows ``(8, 36)``: root one-hot, chroma, absolute bass one-hot; no chord = all zeros;
- ``pr_mat`` ``(32, 128)``: note duration at each onset cell;
- PianoTree grid ``(32, S, 6)`` (``S <= 16``): SOS, notes ascending, EOS, PAD.

Modules (names are part of the contract, the export code addresses them):

- ``chord_enc``: bi-GRU over ``(B, 8, 36)`` -> mean and std of ``z_chd`` ``(B, 256)``.
- ``texture_cnn``: ``(B, 32, 128)`` -> feature map ``(B, 10, 8, 29)``.
- ``texture_head``: feature map -> mean and std of ``z_txt`` ``(B, 256)``. The map is permuted to
  ``(B, 8, 10 * 29)`` so its GRU steps over the 8 beats (the upstream view without a permute mixes
  channels and beats, spec trap T1; this model does not reproduce it).
- ``chord_dec``: auxiliary chord decoder ``z_chd`` -> root, chroma, bass logits per beat.
- ``decoder``: PianoTree decoder ``[z_chd, z_txt]`` ``(B, 512)`` -> grid.

The decoder exposes step methods on plain tensors (no control flow on tensor values), so the export
code can build one ONNX graph per step; ``greedy_decode`` drives them the reference way.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from live.music.chords import ROW as CHORD_DIM
from live.music.notes import BEATS_PER_SEGMENT as BEATS
from live.music.notes import DECODE_SLOTS, DUR_BITS, DUR_PAD, EOS, PAD, PITCHES, SOS, STEPS, STEPS_PER_BEAT
from live.music.notes import FEATURE_MAP_SHAPE as MAP_SHAPE

PITCH_CLASSES = EOS + 1
BIT_START = 2
RECON_DUR_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class PolyDisConfig:
    """Layer sizes of a poly-dis model; saved in the model card under ``"config"``."""

    z_dim: int = 256
    chord_hidden: int = 256
    texture_hidden: int = 256
    texture_fc: int = 512
    chord_dec_hidden: int = 256
    time_hidden: int = 512
    notes_hidden: int = 256
    dur_hidden: int = 64
    note_emb: int = 128
    summary_hidden: int = 128
    z_in: int = 256

    def to_dict(self) -> dict:
        """Plain dict of the sizes (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PolyDisConfig":
        """Build from a dict; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown PolyDisConfig keys: {sorted(unknown)}")
        return cls(**data)


CONFIGS: dict[str, PolyDisConfig] = {
    "tiny": PolyDisConfig(z_dim=64, chord_hidden=64, texture_hidden=64, texture_fc=128,
                          chord_dec_hidden=64, time_hidden=128, notes_hidden=64, dur_hidden=32,
                          note_emb=32, summary_hidden=32, z_in=64),
    "small": PolyDisConfig(),
    "medium": PolyDisConfig(chord_hidden=512, texture_hidden=512, texture_fc=1000,
                            chord_dec_hidden=512, time_hidden=1024, notes_hidden=512),
}


def gru_cell(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
             b_ih: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step in plain linear/elementwise ops (same maths and weight layout as ``nn.GRU``).

    ``x`` ``(B, I)``, ``h`` ``(B, H)`` -> ``(B, H)``.
    """
    i_r, i_z, i_n = F.linear(x, w_ih, b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)


def _cell(gru: nn.GRU, x: torch.Tensor, h: torch.Tensor, suffix: str = "l0") -> torch.Tensor:
    """Step one direction (``l0`` or ``l0_reverse``) of a one-layer ``nn.GRU``."""
    return gru_cell(x, h, getattr(gru, f"weight_ih_{suffix}"), getattr(gru, f"weight_hh_{suffix}"),
                    getattr(gru, f"bias_ih_{suffix}"), getattr(gru, f"bias_hh_{suffix}"))


def _bigru_final(gru: nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """Final states of both directions of a bidirectional GRU over ``(B, T, I)`` -> ``(B, 2H)``."""
    _, h = gru(x)
    return torch.cat([h[0], h[1]], dim=-1)


class ChordEncoder(nn.Module):
    """Chord rows ``(B, 8, 36)`` -> ``(mu, std)``, each ``(B, z_dim)``."""

    def __init__(self, cfg: PolyDisConfig):
        super().__init__()
        self.gru = nn.GRU(CHORD_DIM, cfg.chord_hidden, batch_first=True, bidirectional=True)
        self.mu = nn.Linear(2 * cfg.chord_hidden, cfg.z_dim)
        self.log_std = nn.Linear(2 * cfg.chord_hidden, cfg.z_dim)

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = _bigru_final(self.gru, rows)
        return self.mu(h), torch.exp(self.log_std(h))


class TextureCNN(nn.Module):
    """``pr_mat`` ``(B, 32, 128)`` -> feature map ``(B, 10, 8, 29)`` (conv over 4 steps x 12 pitches)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, MAP_SHAPE[0], kernel_size=(4, 12), stride=(4, 1))
        self.pool = nn.MaxPool2d(kernel_size=(1, 4), stride=(1, 4))

    def forward(self, pr_mat: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(pr_mat.unsqueeze(1))))


class TextureHead(nn.Module):
    """Feature map ``(B, 10, 8, 29)`` -> ``(mu, std)`` of ``z_txt``, each ``(B, z_dim)``.

    The map is permuted to ``(B, 8, 290)``: one GRU step per beat, all channels and pitch bins.
    """

    def __init__(self, cfg: PolyDisConfig):
        super().__init__()
        channels, _, bins = MAP_SHAPE
        self.fc1 = nn.Linear(channels * bins, cfg.texture_fc)
        self.fc2 = nn.Linear(cfg.texture_fc, cfg.z_dim)
        self.gru = nn.GRU(cfg.z_dim, cfg.texture_hidden, batch_first=True, bidirectional=True)
        self.mu = nn.Linear(2 * cfg.texture_hidden, cfg.z_dim)
        self.log_std = nn.Linear(2 * cfg.texture_hidden, cfg.z_dim)

    def forward(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = feature_map.shape[0]
        seq = feature_map.permute(0, 2, 1, 3).reshape(b, MAP_SHAPE[1], MAP_SHAPE[0] * MAP_SHAPE[2])
        h = _bigru_final(self.gru, self.fc2(torch.relu(self.fc1(seq))))
        return self.mu(h), torch.exp(self.log_std(h))


class ChordDecoder(nn.Module):
    """Auxiliary decoder ``z_chd`` ``(B, z)`` -> per-beat root ``(B, 8, 12)``, chroma
    ``(B, 8, 12, 2)`` and bass ``(B, 8, 12)`` logits; teacher-forced with the true rows."""

    def __init__(self, cfg: PolyDisConfig):
        super().__init__()
        self.z2hid = nn.Linear(cfg.z_dim, cfg.chord_dec_hidden)
        self.z2in = nn.Linear(cfg.z_dim, cfg.z_in)
        self.token0 = nn.Parameter(torch.rand(CHORD_DIM))
        self.gru = nn.GRU(CHORD_DIM + cfg.z_in, cfg.chord_dec_hidden, batch_first=True)
        self.root = nn.Linear(cfg.chord_dec_hidden, 12)
        self.chroma = nn.Linear(cfg.chord_dec_hidden, 24)
        self.bass = nn.Linear(cfg.chord_dec_hidden, 12)

    def forward(self, z_chd: torch.Tensor, rows: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = z_chd.shape[0]
        prev = torch.cat([self.token0.expand(b, 1, CHORD_DIM), rows[:, :-1]], dim=1)
        z_in = self.z2in(z_chd).unsqueeze(1).expand(b, BEATS, -1)
        out, _ = self.gru(torch.cat([prev, z_in], dim=-1), self.z2hid(z_chd).unsqueeze(0))
        return self.root(out), self.chroma(out).view(b, BEATS, 12, 2), self.bass(out)


class PianoTreeDecoder(nn.Module):
    """Hierarchical decoder ``z`` ``(B, 2 * z_dim)`` -> PianoTree grid.

    Step API (plain tensors, batch ``B``; ``E`` = note_emb, ``Ht``/``Hn``/``Hd`` = time/notes/dur
    hidden sizes):

    - ``init(z)`` -> ``h_time (B, Ht)``, ``token0 (B, 2 * summary_hidden)``, ``z_in (B, z_in)``
    - ``time_step(token, z_in, h_time)`` -> ``h_time``
    - ``notes_init(h_time)`` -> ``h_notes (B, Hn)``
    - ``note_step(h_time, prev_note_emb (B, E), h_notes)`` -> ``pitch_logits (B, 130)``, ``h_notes``
    - ``dur_init(h_notes, pitch_logits)`` -> ``h_dur (B, Hd)``
    - ``dur_step(bit_in (B, 3), h_dur)`` -> ``bit_logits (B, 2)``, ``h_dur``; ``bit_in`` one-hot
      over (previous bit 0, previous bit 1, start)
    - ``embed_note(pitch_onehot (B, 130), bits (B, 5))`` -> ``emb (B, E)``; bits are 0/1 for
      notes and 2 for SOS/EOS
    - ``summarize(note_embs (B, L, E), lengths (B,))`` -> next ``token``: masked bi-GRU over the
      first ``lengths`` embeddings (SOS + the step's notes, EOS excluded), equal to a packed run.
    """

    def __init__(self, cfg: PolyDisConfig):
        super().__init__()
        self.cfg = cfg
        z2 = 2 * cfg.z_dim
        token = 2 * cfg.summary_hidden
        self.note_embedding = nn.Linear(PITCH_CLASSES + DUR_BITS, cfg.note_emb)
        self.z2hid = nn.Linear(z2, cfg.time_hidden)
        self.z2in = nn.Linear(z2, cfg.z_in)
        self.token0 = nn.Parameter(torch.rand(token))
        self.summary_gru = nn.GRU(cfg.note_emb, cfg.summary_hidden, batch_first=True,
                                  bidirectional=True)
        self.time_gru = nn.GRU(token + cfg.z_in, cfg.time_hidden, batch_first=True)
        self.time2notes = nn.Linear(cfg.time_hidden, cfg.notes_hidden)
        self.notes_gru = nn.GRU(cfg.time_hidden + cfg.note_emb, cfg.notes_hidden, batch_first=True)
        self.pitch_out = nn.Linear(cfg.notes_hidden, PITCH_CLASSES)
        self.dur_hid = nn.Linear(cfg.notes_hidden + PITCH_CLASSES, cfg.dur_hidden)
        self.dur_gru = nn.GRU(3, cfg.dur_hidden, batch_first=True)
        self.dur_out = nn.Linear(cfg.dur_hidden, 2)

    # --- step API -------------------------------------------------------------------------------
    def init(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = z.shape[0]
        return self.z2hid(z), self.token0.expand(b, -1), self.z2in(z)

    def time_step(self, token: torch.Tensor, z_in: torch.Tensor, h_time: torch.Tensor) -> torch.Tensor:
        return _cell(self.time_gru, torch.cat([token, z_in], dim=-1), h_time)

    def notes_init(self, h_time: torch.Tensor) -> torch.Tensor:
        return self.time2notes(h_time)

    def note_step(self, h_time: torch.Tensor, prev_note_emb: torch.Tensor, h_notes: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        h_notes = _cell(self.notes_gru, torch.cat([h_time, prev_note_emb], dim=-1), h_notes)
        return self.pitch_out(h_notes), h_notes

    def dur_init(self, h_notes: torch.Tensor, pitch_logits: torch.Tensor) -> torch.Tensor:
        return self.dur_hid(torch.cat([h_notes, pitch_logits], dim=-1))

    def dur_step(self, bit_in: torch.Tensor, h_dur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_dur = _cell(self.dur_gru, bit_in, h_dur)
        return self.dur_out(h_dur), h_dur

    def embed_note(self, pitch_onehot: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        return self.note_embedding(torch.cat([pitch_onehot, bits], dim=-1))

    def summarize(self, note_embs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, steps, _ = note_embs.shape
        h_fwd = note_embs.new_zeros(b, self.cfg.summary_hidden)
        h_bwd = note_embs.new_zeros(b, self.cfg.summary_hidden)
        for t in range(steps):
            keep = (lengths > t).unsqueeze(-1)
            h_fwd = torch.where(keep, _cell(self.summary_gru, note_embs[:, t], h_fwd), h_fwd)
        for t in range(steps - 1, -1, -1):
            keep = (lengths > t).unsqueeze(-1)
            h_bwd = torch.where(keep, _cell(self.summary_gru, note_embs[:, t], h_bwd, "l0_reverse"),
                                h_bwd)
        return torch.cat([h_fwd, h_bwd], dim=-1)

    # --- training -------------------------------------------------------------------------------
    def embed_slots(self, grid: torch.Tensor) -> torch.Tensor:
        """Embeddings of grid slots ``(..., 6)`` -> ``(..., E)`` (PAD slots embed as EOS)."""
        pitch = F.one_hot(grid[..., 0].clamp(max=EOS), PITCH_CLASSES).float()
        return self.embed_note(pitch, grid[..., 1:].float())

    def forward(self, z: torch.Tensor, grid: torch.Tensor, inputs: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced pass. ``z`` ``(B, 2 * z_dim)``, grid ``(B, 32, S, 6)`` with ``S >= 2``.

        ``inputs`` (same shape as ``grid``, default ``grid``) is what the recurrent inputs read: the
        previous slot's note for the notes GRU, the step summaries for the time GRU and the previous
        duration bits for the duration GRU. Scheduled sampling passes a grid whose notes are partly
        the model's own predictions; the targets and the slot structure always come from ``grid``.

        Returns pitch logits ``(B, 32, S - 1, 130)`` for slots ``1..S-1``, duration-bit logits
        ``(N, 5, 2)`` for the ``N`` real notes among those slots, and their mask ``(B, 32, S - 1)``.
        """
        b, steps, slots, _ = grid.shape
        tokens = grid[..., 0]
        inputs = grid if inputs is None else inputs
        emb = self.embed_slots(inputs)
        lengths = 1 + (tokens < PITCHES).sum(-1).view(-1)
        packed = pack_padded_sequence(emb.view(b * steps, slots, -1), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, h_sum = self.summary_gru(packed)
        summary = torch.cat([h_sum[0], h_sum[1]], dim=-1).view(b, steps, -1)
        h0, token0, z_in = self.init(z)
        time_in = torch.cat([token0.unsqueeze(1), summary[:, :-1]], dim=1)
        time_in = torch.cat([time_in, z_in.unsqueeze(1).expand(b, steps, -1)], dim=-1)
        h_time, _ = self.time_gru(time_in, h0.unsqueeze(0))
        h_time = h_time.reshape(b * steps, -1)
        h_notes = self._notes_teacher_forced(h_time, emb.view(b * steps, slots, -1)[:, :-1])
        pitch_logits = self.pitch_out(h_notes)
        real = tokens[:, :, 1:].reshape(b * steps, slots - 1) < PITCHES
        bits = inputs[:, :, 1:, 1:].reshape(b * steps, slots - 1, DUR_BITS)[real]
        h_dur0 = self.dur_init(h_notes[real], pitch_logits[real])
        prev = torch.cat([torch.full_like(bits[:, :1], BIT_START), bits[:, :-1]], dim=1)
        dur_hidden, _ = self.dur_gru(F.one_hot(prev, 3).float(), h_dur0.unsqueeze(0))
        return (pitch_logits.view(b, steps, slots - 1, PITCH_CLASSES), self.dur_out(dur_hidden),
                real.view(b, steps, slots - 1))

    def _notes_teacher_forced(self, h_time: torch.Tensor, prev_embs: torch.Tensor) -> torch.Tensor:
        """Notes GRU over ``prev_embs`` ``(N, K, E)`` with ``h_time`` ``(N, Ht)`` as constant input
        -> hidden states ``(N, K, Hn)``. Same maths as :meth:`note_step`, but the ``h_time`` part of
        the input projection is computed once per time step instead of once per slot."""
        gru = self.notes_gru
        ht = self.cfg.time_hidden
        gi_time = F.linear(h_time, gru.weight_ih_l0[:, :ht], gru.bias_ih_l0).unsqueeze(1)
        gi = gi_time + F.linear(prev_embs, gru.weight_ih_l0[:, ht:])
        h = self.notes_init(h_time)
        outs = []
        for gi_k in gi.unbind(1):
            i_r, i_z, i_n = gi_k.chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(h, gru.weight_hh_l0, gru.bias_hh_l0).chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = n + z * (h - n)
            outs.append(h)
        return torch.stack(outs, dim=1)

    # --- reference greedy decoding -------------------------------------------------------------
    @torch.no_grad()
    def greedy_decode(self, z: torch.Tensor, early_exit: bool = True) -> torch.Tensor:
        """Greedy decoding ``z`` ``(B, 2 * z_dim)`` -> grid ``(B, 32, 15, 6)`` int64 (SOS slot dropped).

        Each step reads slots until EOS; slots after a step's EOS hold PAD. ``early_exit=False``
        decodes all 15 slots like upstream; ``early_exit=True`` stops a step once every item has
        emitted EOS. Both give the same grid.
        """
        b = z.shape[0]
        grid = torch.full((b, STEPS, DECODE_SLOTS, 1 + DUR_BITS), DUR_PAD, dtype=torch.long)
        grid[:, :, :, 0] = PAD
        h_time, token, z_in = self.init(z)
        sos = self.embed_note(F.one_hot(torch.full((b,), SOS), PITCH_CLASSES).float(),
                              torch.full((b, DUR_BITS), float(DUR_PAD)))
        start_bit = F.one_hot(torch.full((b,), BIT_START), 3).float()
        for t in range(STEPS):
            h_time = self.time_step(token, z_in, h_time)
            h_notes = self.notes_init(h_time)
            embs = [sos]
            done = torch.zeros(b, dtype=torch.bool)
            prev = sos
            for k in range(DECODE_SLOTS):
                logits, h_notes = self.note_step(h_time, prev, h_notes)
                pitch = logits.argmax(-1)
                is_note = (pitch < PITCHES) & ~done
                bits = torch.full((b, DUR_BITS), DUR_PAD, dtype=torch.long)
                if bool(is_note.any()):
                    h_dur = self.dur_init(h_notes, logits)
                    bit_in = start_bit
                    for j in range(DUR_BITS):
                        bit_logits, h_dur = self.dur_step(bit_in, h_dur)
                        bit = bit_logits.argmax(-1)
                        bits[:, j] = torch.where(is_note, bit, DUR_PAD)
                        bit_in = F.one_hot(bit, 3).float()
                slot_pitch = torch.where(done, PAD, pitch)
                grid[:, t, k, 0] = slot_pitch
                grid[:, t, k, 1:] = bits
                prev = self.embed_note(F.one_hot(pitch, PITCH_CLASSES).float(),
                                       torch.where((pitch < PITCHES).unsqueeze(-1), bits, DUR_PAD).float())
                embs.append(prev)
                done = done | (pitch == EOS)
                if early_exit and bool(done.all()):
                    break
            first_stop = torch.where(grid[:, t, :, 0] >= EOS, torch.arange(DECODE_SLOTS), DECODE_SLOTS)
            lengths = 1 + first_stop.min(-1).values
            token = self.summarize(torch.stack(embs, dim=1), lengths)
        return grid


class PolyDis(nn.Module):
    """The whole model; see the module docstring for its parts."""

    def __init__(self, cfg: PolyDisConfig | None = None):
        super().__init__()
        self.cfg = cfg or PolyDisConfig()
        self.chord_enc = ChordEncoder(self.cfg)
        self.texture_cnn = TextureCNN()
        self.texture_head = TextureHead(self.cfg)
        self.chord_dec = ChordDecoder(self.cfg)
        self.decoder = PianoTreeDecoder(self.cfg)

    def encode(self, chords: torch.Tensor, pr_mat: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chord rows ``(B, 8, 36)`` and ``pr_mat`` ``(B, 32, 128)`` -> mu/std of z_chd and z_txt."""
        mu_c, std_c = self.chord_enc(chords)
        mu_t, std_t = self.texture_head(self.texture_cnn(pr_mat))
        return mu_c, std_c, mu_t, std_t

    def forward(self, chords: torch.Tensor, pr_mat: torch.Tensor, grid: torch.Tensor,
                sample: bool = True, inputs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Teacher-forced pass for the loss; see :func:`losses` for the returned keys and
        :meth:`PianoTreeDecoder.forward` for ``inputs`` (scheduled sampling)."""
        mu_c, std_c, mu_t, std_t = self.encode(chords, pr_mat)
        z_c = mu_c + std_c * torch.randn_like(std_c) if sample else mu_c
        z_t = mu_t + std_t * torch.randn_like(std_t) if sample else mu_t
        pitch, dur, real = self.decoder(torch.cat([z_c, z_t], dim=-1), grid, inputs)
        root, chroma, bass = self.chord_dec(z_c, chords)
        return {"mu_c": mu_c, "std_c": std_c, "mu_t": mu_t, "std_t": std_t, "pitch": pitch,
                "dur": dur, "real": real, "root": root, "chroma": chroma, "bass": bass}

    @torch.no_grad()
    def reconstruct(self, chords: torch.Tensor, pr_mat: torch.Tensor, early_exit: bool = True) -> torch.Tensor:
        """Posterior means -> greedy grid ``(B, 32, 15, 6)``."""
        mu_c, _, mu_t, _ = self.encode(chords, pr_mat)
        return self.decoder.greedy_decode(torch.cat([mu_c, mu_t], dim=-1), early_exit)


def kl_mean(mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, std) || N(0, I)) averaged over batch and dimensions (upstream's scale, trap T3)."""
    return (0.5 * (mu.square() + std.square() - 1) - torch.log(std)).mean()


def losses(out: dict[str, torch.Tensor], chords: torch.Tensor, grid: torch.Tensor,
           beta: float = 0.1, dur_weight: float = RECON_DUR_WEIGHT, beta_txt: float | None = None,
           chord_weight: float = 1.0, chord_prior: float = 0.0) -> dict[str, torch.Tensor]:
    """Loss terms of one batch: ``pitch``, ``dur``, ``recon`` (= pitch + 0.5 dur, the reported
    measure), ``kl_chd``, ``kl_txt``, ``chord`` (no-chord beats masked out), ``off_chord`` (see
    :func:`off_chord_mass`) and ``loss`` (pitch + dur_weight * dur + beta kl_chd + beta_txt kl_txt
    + chord_weight * chord + chord_prior * off_chord; with the defaults, recon + beta KL + chord).
    ``beta_txt`` defaults to ``beta``.

    ``chords`` ``(B, 8, 36)``, ``grid`` ``(B, 32, S, 6)`` as passed to :meth:`PolyDis.forward`.
    """
    pitch = F.cross_entropy(out["pitch"].reshape(-1, PITCH_CLASSES), grid[:, :, 1:, 0].reshape(-1),
                            ignore_index=PAD)
    bits = grid[:, :, 1:, 1:][out["real"]]
    if bits.numel():
        dur = F.cross_entropy(out["dur"].reshape(-1, 2), bits.reshape(-1))
    else:
        dur = pitch.new_zeros(())
    has_chord = chords[:, :, :12].sum(-1) > 0
    if bool(has_chord.any()):
        rows = chords[has_chord]
        chord = (F.cross_entropy(out["root"][has_chord], rows[:, :12].argmax(-1))
                 + F.cross_entropy(out["chroma"][has_chord].reshape(-1, 2), rows[:, 12:24].reshape(-1).long())
                 + F.cross_entropy(out["bass"][has_chord], rows[:, 24:].argmax(-1)))
    else:
        chord = pitch.new_zeros(())
    kl_c = kl_mean(out["mu_c"], out["std_c"])
    kl_t = kl_mean(out["mu_t"], out["std_t"])
    recon = pitch + RECON_DUR_WEIGHT * dur
    beta_t = beta if beta_txt is None else beta_txt
    off_chord = off_chord_mass(out["pitch"], chords, grid)
    loss = pitch + dur_weight * dur + beta * kl_c + beta_t * kl_t + chord_weight * chord + chord_prior * off_chord
    return {"loss": loss, "recon": recon, "pitch": pitch, "dur": dur,
            "kl_chd": kl_c, "kl_txt": kl_t, "chord": chord, "off_chord": off_chord}


def off_chord_mass(pitch_logits: torch.Tensor, chords: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Mean probability the pitch head gives to pitches outside the chord of the step's beat, over
    the note slots whose target is a pitch on a beat with a chord (0 when there are none).

    A prior towards the given chords: where the target is sure (a passing tone the texture spells
    out), the cross-entropy outweighs it for weights up to 1; where the decoder hesitates between
    a chord tone and another pitch (a texture put on chords it was not played on), it tips the
    choice to the chord tone. ``pitch_logits`` ``(B, 32, S - 1, PITCH_CLASSES)``, ``chords``
    ``(B, 8, 36)``, ``grid`` ``(B, 32, S, 6)``.
    """
    chroma = chords[:, :, 12:24].repeat_interleave(STEPS_PER_BEAT, dim=1)  # (B, 32, 12)
    outside = 1.0 - chroma[..., torch.arange(PITCHES) % 12]  # (B, 32, 128)
    target = grid[:, :, 1:, 0]
    slots = (target < PITCHES) & (chroma.sum(-1) > 0)[:, :, None]
    if not bool(slots.any()):
        return pitch_logits.new_zeros(())
    probs = pitch_logits.float().softmax(-1)[..., :PITCHES]
    mass = (probs * outside[:, :, None, :]).sum(-1)  # (B, 32, S - 1)
    return mass[slots].mean()


def count_params(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def card_path(weights: str | Path) -> Path:
    """The model card that belongs to a weights file: same name, ``.json``."""
    return Path(weights).with_suffix(".json")


def load_model(weights: str | Path) -> PolyDis:
    """Load ``weights`` (a state dict) with the config from its model card; eval mode.

    Raises ``FileNotFoundError`` or ``ValueError`` with a one-line reason on missing or bad files.
    """
    weights = Path(weights)
    card = card_path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"weights not found: {weights}")
    if not card.is_file():
        raise FileNotFoundError(f"model card not found: {card}")
    try:
        cfg = PolyDisConfig.from_dict(json.loads(card.read_text())["config"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad model card {card}: {exc}") from exc
    model = PolyDis(cfg)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"cannot load weights {weights}: {str(exc).splitlines()[0]}") from exc
    return model.eval()
