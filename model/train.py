"""``vis2mus-train``: train poly-dis on the prepared POP909 file, resumable at any batch.

Recipe: vectorised training, Adam with either the exponential schedule (lr multiplied by
``--lr-decay`` every batch, floor 1e-5) or ``--schedule cosine`` (linear warm-up, cosine down to the
floor at ``--total-steps``), gradient clipping at global norm 1.0, constant beta 0.1 on KL means (what
upstream effectively runs, spec §3.3; ``--beta-txt`` sets the texture latent's apart, ``--chord-weight``
weights the chord loss), random transposition -6..+5 per example, song-level split from
the file; ``--cross-shift P`` gives a share ``P`` of the examples a texture input transposed apart
from their chords and target (``model.dataset``). ``--dur-weight`` weights the duration loss in the
trained objective (the reported recon keeps upstream's 0.5). ``--sched-sampling P`` mixes the model's own predictions into its inputs
(``model.sampling``), ramped from 0 to ``P`` over ``--ss-ramp`` steps from ``--ss-start``. ``--bf16`` runs the passes
under bfloat16 autocast (parameters and optimiser stay float32). ``--init WEIGHTS`` starts a new run
from shipped weights and carries their card's training history forward; with ``--dur-hidden N`` wider
than the shipped duration GRU, its head is widened first (``model.widen``: same decodes at the start).

Outputs under ``--out``: ``last.pt`` (full state: model, optimiser, schedule, RNG, epoch and batch
position; written atomically every ``--checkpoint-minutes``, at each epoch end and on SIGTERM or
Ctrl-C), ``best_recon.pt`` / ``best_greedy.pt`` (model state dicts, best validation recon and best
greedy note F1), ``epochs.csv`` (per-epoch train/val losses and greedy F1) and ``history.json``.
``--ship WEIGHTS`` writes a float32 state dict and its model card from a finished run instead.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import os
import pickle
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.dataset import CROSS_SHIFT_MAX, TRAIN, VALIDATION, Segments, epoch_plan, texture_offsets
from model.metrics import f1_from_counts, grids_to_notes, match_counts
from model.polydis import CONFIGS, PolyDis, PolyDisConfig, card_path, count_params, load_model, losses
from model.sampling import mixed_inputs
from model.widen import widen_duration_head

LOSS_KEYS = ("loss", "recon", "pitch", "dur", "kl_chd", "kl_txt", "chord", "off_chord")
LR_MIN = 1e-5


class Trainer:
    """Owns the model, optimiser, schedule and the position in the epoch plan."""

    def __init__(self, segments: Segments, cfg: PolyDisConfig, out: str | Path, batch_size: int = 64,
                 lr: float = 1e-3, lr_decay: float = 0.9999, beta: float = 0.1, seed: int = 0,
                 greedy_segments: int = 256, config_name: str = "custom", schedule: str = "exp",
                 total_steps: int = 0, warmup: int = 0, dur_weight: float = 0.5,
                 sched_sampling: float = 0.0, ss_ramp: int = 1, bf16: bool = False,
                 init: str | None = None, ss_start: int = 0, beta_txt: float | None = None,
                 chord_weight: float = 1.0, cross_shift: float = 0.0, chord_prior: float = 0.0):
        self.segments = segments
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        if schedule == "cosine" and total_steps <= 0:
            raise ValueError("--schedule cosine needs --total-steps")
        self.hparams = {"config_name": config_name, "batch_size": batch_size, "lr": lr,
                        "lr_decay": lr_decay, "lr_min": LR_MIN, "beta": beta, "seed": seed,
                        "grad_clip": 1.0, "greedy_segments": greedy_segments,
                        "torch_threads": torch.get_num_threads(), "schedule": schedule,
                        "total_steps": total_steps, "warmup": warmup, "dur_weight": dur_weight,
                        "sched_sampling": sched_sampling, "ss_ramp": max(ss_ramp, 1), "ss_start": ss_start,
                        "bf16": bf16, "beta_txt": beta if beta_txt is None else beta_txt,
                        "chord_weight": chord_weight, "cross_shift": cross_shift, "chord_prior": chord_prior,
                        "init": init}
        torch.manual_seed(seed)
        self.model = PolyDis(cfg)
        self.previous_sessions: list[dict] = []
        if init:
            start = load_model(init)
            if start.cfg.dur_hidden != cfg.dur_hidden:
                start = widen_duration_head(start, cfg.dur_hidden, seed)
            self.model.load_state_dict(start.state_dict())
            self.previous_sessions = sessions_of(json.loads(card_path(init).read_text()))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.train_idx = segments.indices(TRAIN)
        self.val_idx = segments.indices(VALIDATION)
        if len(self.train_idx) == 0 or len(self.val_idx) == 0:
            raise ValueError("the prepared file needs both train and validation segments")
        self.epoch = 0
        self.batch = 0
        self.step = 0
        self.wall = 0.0
        self.sums = dict.fromkeys(LOSS_KEYS, 0.0)
        self.count = 0
        self.history: list[dict] = []
        self.best = {"recon": math.inf, "greedy_f1": -1.0}
        self._plan: tuple = (-1, None, None, None)

    def lr_factor(self, step: int) -> float:
        """Learning rate at ``step`` as a multiple of ``lr`` (never below the floor)."""
        h = self.hparams
        floor = LR_MIN / h["lr"]
        if h["schedule"] == "cosine":
            if step < h["warmup"]:
                return max((step + 1) / h["warmup"], floor)
            progress = min((step - h["warmup"]) / max(h["total_steps"] - h["warmup"], 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        return max(h["lr_decay"] ** step, floor)

    def sampling_p(self) -> float:
        """Scheduled-sampling probability at the current step (linear ramp to its maximum)."""
        h = self.hparams
        return h["sched_sampling"] * min(1.0, max(0.0, (self.step - h.get("ss_start", 0)) / h["ss_ramp"]))

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.train_idx) / self.hparams["batch_size"])

    def train_batch(self) -> dict[str, float]:
        """Run the next batch of the current epoch's plan and advance the position."""
        bs = self.hparams["batch_size"]
        if self._plan[0] != self.epoch:
            order, shifts = epoch_plan(self.train_idx, self.epoch, self.hparams["seed"])
            offsets = texture_offsets(len(order), self.epoch, self.hparams["seed"],
                                      self.hparams.get("cross_shift", 0.0))
            self._plan = (self.epoch, order, shifts, offsets)
        _, order, shifts, offsets = self._plan
        sel = slice(self.batch * bs, (self.batch + 1) * bs)
        batch = self.segments.batch(order[sel], shifts[sel], offsets[sel])
        self.model.train()
        p = self.sampling_p()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.hparams["bf16"]):
            inputs = None
            if p > 0:
                with torch.no_grad():
                    first = self.model(batch["chords"], batch["pr_mat"], batch["grid"])
                inputs = mixed_inputs(first, batch["grid"], p)
            out = self.model(batch["chords"], batch["pr_mat"], batch["grid"], inputs=inputs)
        out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
        terms = losses(out, batch["chords"], batch["grid"], self.hparams["beta"], self.hparams["dur_weight"],
                       self.hparams.get("beta_txt"), self.hparams.get("chord_weight", 1.0),
                       self.hparams.get("chord_prior", 0.0))
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hparams["grad_clip"])
        self.optimizer.step()
        self.scheduler.step()
        values = {k: v.item() for k, v in terms.items()}
        for k in LOSS_KEYS:
            self.sums[k] += values[k] * len(order[sel])
        self.count += len(order[sel])
        self.batch += 1
        self.step += 1
        return values

    @torch.no_grad()
    def validate(self, limit: int | None = None, batch_size: int = 128) -> dict[str, float]:
        """Teacher-forced validation losses with posterior means (no transposition)."""
        self.model.eval()
        idx = self.val_idx[:limit]
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        for start in range(0, len(idx), batch_size):
            part = idx[start:start + batch_size]
            batch = self.segments.batch(part)
            out = self.model(batch["chords"], batch["pr_mat"], batch["grid"], sample=False)
            for k, v in losses(out, batch["chords"], batch["grid"], self.hparams["beta"]).items():
                sums[k] += float(v) * len(part)
        return {k: v / len(idx) for k, v in sums.items()}

    @torch.no_grad()
    def greedy_f1(self, batch_size: int = 32) -> dict[str, float]:
        """Note F1 of greedy reconstructions (posterior means) on an evenly spaced validation
        subset of ``greedy_segments`` segments."""
        self.model.eval()
        n = min(self.hparams["greedy_segments"], len(self.val_idx))
        idx = self.val_idx[np.linspace(0, len(self.val_idx) - 1, n).astype(int)]
        counts = np.zeros(3, np.int64)
        counts_dur = np.zeros(3, np.int64)
        for start in range(0, n, batch_size):
            part = idx[start:start + batch_size]
            batch = self.segments.batch(part)
            for i, est in zip(part, grids_to_notes(self.model.reconstruct(batch["chords"], batch["pr_mat"]))):
                ref = self.segments.notes(i)
                counts += match_counts(ref, est)
                counts_dur += match_counts(ref, est, with_duration=True)
        return {"greedy_f1": f1_from_counts(counts), "greedy_f1_dur": f1_from_counts(counts_dur)}

    def end_epoch(self) -> dict:
        """Validate, record the epoch, update the best checkpoints and move to the next epoch."""
        train = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        val = self.validate()
        greedy = self.greedy_f1()
        row = {"epoch": self.epoch + 1, "step": self.step, "lr": self.scheduler.get_last_lr()[0],
               "wall_s": round(self.wall, 1)}
        row.update({f"train_{k}": train[k] for k in LOSS_KEYS})
        row.update({f"val_{k}": val[k] for k in LOSS_KEYS})
        row.update({f"val_{k}": v for k, v in greedy.items()})
        self.history.append(row)
        state = self.model.state_dict()
        torch.save(state, self.out / f"epoch{self.epoch + 1}.pt")
        if val["recon"] < self.best["recon"]:
            self.best["recon"] = val["recon"]
            self.best["recon_epoch"] = self.epoch + 1
            _atomic_save(state, self.out / "best_recon.pt")
        if greedy["greedy_f1"] > self.best["greedy_f1"]:
            self.best["greedy_f1"] = greedy["greedy_f1"]
            self.best["greedy_epoch"] = self.epoch + 1
            _atomic_save(state, self.out / "best_greedy.pt")
        self.epoch += 1
        self.batch = 0
        self.sums = dict.fromkeys(LOSS_KEYS, 0.0)
        self.count = 0
        self.write_logs()
        return row

    def write_logs(self) -> None:
        """Rewrite ``epochs.csv`` and ``history.json`` from the recorded epochs."""
        if self.history:
            tmp = self.out / "epochs.csv.tmp"
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(self.history[0]))
                writer.writeheader()
                writer.writerows(self.history)
            os.replace(tmp, self.out / "epochs.csv")
        info = {"hparams": self.hparams, "config": self.model.cfg.to_dict(), "epochs": self.history,
                "best": self.best, "steps": self.step, "wall_s": self.wall,
                "data": self.segments.meta, "previous_sessions": self.previous_sessions}
        tmp = self.out / "history.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, self.out / "history.json")

    def state(self) -> dict:
        """Everything needed to continue exactly where the run is now."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                "epoch": self.epoch, "batch": self.batch, "step": self.step, "wall": self.wall,
                "sums": self.sums, "count": self.count, "history": self.history, "best": self.best,
                "hparams": self.hparams, "config": self.model.cfg.to_dict(),
                "previous_sessions": self.previous_sessions}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the full state atomically (default ``OUT/last.pt``)."""
        path = Path(path) if path else self.out / "last.pt"
        _atomic_save(self.state(), path)
        self.write_logs()
        return path

    def load(self, path: str | Path) -> None:
        """Restore a state written by :meth:`save` (same config and hyper-parameters).

        Loaded with ``weights_only=True``: a checkpoint holds tensors and plain values only, so a
        crafted file cannot run code."""
        state = load_checkpoint(path)
        if state["config"] != self.model.cfg.to_dict():
            raise ValueError(f"{path}: checkpoint config differs from --config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        for key in ("epoch", "batch", "step", "wall", "sums", "count", "history", "best", "hparams",
                    "previous_sessions"):
            setattr(self, key, state[key])

    def run(self, epochs: int, checkpoint_minutes: float = 10.0, max_minutes: float | None = None,
            stop: list | None = None) -> None:
        """Train until ``epochs`` are done, ``max_minutes`` of this call have passed, or ``stop``
        becomes non-empty (set by the signal handler); the state is saved in every case."""
        started = time.monotonic()
        last_save = started
        stop = stop if stop is not None else []
        while self.epoch < epochs and not stop:
            bar = tqdm(total=self.batches_per_epoch, initial=self.batch, desc=f"epoch {self.epoch + 1}/{epochs}",
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
            while self.batch < self.batches_per_epoch and not stop:
                t0 = time.monotonic()
                self.train_batch()
                self.wall += time.monotonic() - t0
                bar.update(1)
                bar.set_postfix({k: f"{self.sums[k] / self.count:.3f}" for k in ("recon", "pitch", "dur", "chord", "kl_txt")},
                                refresh=False)
                now = time.monotonic()
                if max_minutes is not None and now - started > 60 * max_minutes:
                    stop.append("time budget")
                if self.hparams.get("total_steps") and self.step >= self.hparams["total_steps"]:
                    stop.append("total steps reached")
                if now - last_save > 60 * checkpoint_minutes:
                    self.save()
                    last_save = now
            bar.close()
            if self.batch >= self.batches_per_epoch:
                row = self.end_epoch()
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      flush=True)
            self.save()
            last_save = time.monotonic()
        if stop:
            print(f"stopped ({stop[0]}) at epoch {self.epoch + 1} batch {self.batch}; state in {self.out / 'last.pt'}",
                  flush=True)


def load_checkpoint(path: str | Path) -> dict:
    """A ``last.pt`` state, loaded without unpickling arbitrary objects (``weights_only=True``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a plain checkpoint (refused to unpickle: "
                         f"{str(exc).splitlines()[0]})") from exc


CURVE_KEYS = ("epoch", "step", "val_recon", "val_greedy_f1", "val_greedy_f1_dur")


def curve_of(epochs: list[dict]) -> list[dict]:
    """A session's learning curve: per epoch the step and the validation recon and greedy F1s."""
    return [{k: (round(row[k], 4) if isinstance(row[k], float) else row[k]) for k in CURVE_KEYS if k in row}
            for row in epochs]


def sessions_of(card: dict) -> list[dict]:
    """The training sessions recorded in a model card (older cards: one session from ``training``).

    The card's per-epoch rows belong to its last session; that session keeps them as its ``curve``
    when it has none yet, so a card carried forward by ``--init`` keeps every session's curve."""
    if "sessions" in card:
        sessions = [dict(x) for x in card["sessions"]]
    else:
        t = card.get("training", {})
        sessions = [{"steps": t.get("steps"), "examples": t.get("steps", 0) * t.get("batch_size", 0),
                     "wall_s": t.get("wall_s"), "hardware": t.get("hardware"), "recipe": {
                         k: t.get(k) for k in ("lr", "lr_decay", "beta", "batch_size", "teacher_forcing")}}]
    if "curve" not in sessions[-1] and card.get("epochs"):
        sessions[-1]["curve"] = curve_of(card["epochs"])
    return sessions


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def ship(run_dir: str | Path, weights: str | Path, which: str = "best_greedy") -> dict:
    """Write ``weights`` (float32 state dict of ``RUN/<which>.pt``, or of the model in ``last.pt``
    for ``which="last"``) and its model card from the run's ``history.json``; returns the card."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "history.json").read_text())
    if which == "last":
        last = load_checkpoint(run_dir / "last.pt")
        state = last["model"]
        info.update(steps=last["step"], wall_s=last["wall"])
        position = {"epochs_completed": last["epoch"], "batches_into_next_epoch": last["batch"]}
    else:
        state = torch.load(run_dir / f"{which}.pt", map_location="cpu", weights_only=True)
        position = {"epoch": info["best"].get("greedy_epoch" if which == "best_greedy" else "recon_epoch")}
    state = {k: v.float().contiguous() for k, v in state.items()}
    model = PolyDis(PolyDisConfig.from_dict(info["config"]))
    model.load_state_dict(state)
    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, weights)
    card = {
        "name": weights.stem,
        "config": info["config"],
        "parameters": count_params(model),
        "architecture": "poly-dis (chord/texture VAE, PianoTree decoder); texture map permuted to (8 beats, 10*29) "
                        "before its GRU (not upstream's view quirk T1); absolute bass; no-chord rows all zero and "
                        "masked out of the chord loss; decoder step summary excludes EOS; duration GRU teacher-forced",
        "checkpoint": which,
        "checkpoint_position": position,
        "training": {**info["hparams"], "steps": info["steps"], "epochs": len(info["epochs"]),
                     "wall_s": round(info["wall_s"], 1), "hardware": _hardware(),
                     "torch": torch.__version__,
                     "teacher_forcing": 1.0 - info["hparams"].get("sched_sampling", 0.0),
                     "transposition": "uniform -6..+5 per example"},
        "sessions": info.get("previous_sessions", []) + [{
            "date": time.strftime("%Y-%m-%d"), "steps": info["steps"],
            "examples": info["steps"] * info["hparams"]["batch_size"], "wall_s": round(info["wall_s"], 1),
            "hardware": _hardware(), "init": info["hparams"].get("init"),
            "recipe": {k: info["hparams"].get(k) for k in (
                "lr", "schedule", "total_steps", "warmup", "lr_decay", "beta", "beta_txt", "chord_weight",
                "cross_shift", "chord_prior", "batch_size", "dur_weight",
                "sched_sampling", "ss_start", "ss_ramp", "bf16", "torch_threads")},
            "curve": curve_of(info["epochs"])}],
        "data": {k: info["data"].get(k) for k in ("songs", "segments", "train_segments", "validation_segments",
                                                  "split_seed", "validation_songs")},
        "epochs": info["epochs"],
    }
    card["examples_seen"] = sum(x.get("examples") or 0 for x in card["sessions"])
    card["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    card_path(weights).write_text(json.dumps(card, indent=1))
    return card


def _hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}), shared with other jobs, no GPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vis2mus-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/pop909.npz", help="prepared POP909 file (vis2mus-data prepare)")
    parser.add_argument("--out", default="runs/polydis-small", help="run folder (checkpoints, CSV)")
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--dur-hidden", type=int, default=None, metavar="N",
                        help="duration GRU width (with --init: the shipped head widened, same decodes at the start)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=0.9999, help="lr factor per batch (floor 1e-5)")
    parser.add_argument("--beta", type=float, default=0.1, help="weight of the KL terms")
    parser.add_argument("--beta-txt", type=float, default=None, help="weight of the texture latent's KL (default: --beta)")
    parser.add_argument("--chord-weight", type=float, default=1.0, help="weight of the chord loss")
    parser.add_argument("--cross-shift", type=float, default=0.0, metavar="P",
                        help=f"share of examples whose texture input is 1..{CROSS_SHIFT_MAX} semitones off "
                             "the chords and target (a chord swap with a known answer)")
    parser.add_argument("--chord-prior", type=float, default=0.0, metavar="W",
                        help="weight of the pitch head's mass outside the beat's chord (a prior towards chord tones)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--greedy-segments", type=int, default=256, help="validation segments decoded greedily per epoch")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this much wall time")
    parser.add_argument("--schedule", default="exp", choices=["exp", "cosine"])
    parser.add_argument("--total-steps", type=int, default=0, help="length of the cosine schedule")
    parser.add_argument("--warmup", type=int, default=0, help="warm-up steps of the cosine schedule")
    parser.add_argument("--dur-weight", type=float, default=0.5, help="weight of the duration loss in training")
    parser.add_argument("--sched-sampling", type=float, default=0.0, metavar="P",
                        help="share of input notes replaced by the model's own predictions (maximum)")
    parser.add_argument("--ss-ramp", type=int, default=1, help="steps over which that share ramps up from 0")
    parser.add_argument("--ss-start", type=int, default=0, help="step at which the ramp starts")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the passes")
    parser.add_argument("--init", metavar="WEIGHTS", help="start a new run from shipped weights (+ card history)")
    parser.add_argument("--ship", metavar="WEIGHTS", help="write WEIGHTS (.pt) + card (.json) from OUT and exit")
    parser.add_argument("--which", default="best_greedy", choices=["best_greedy", "best_recon", "last"],
                        help="checkpoint to ship")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.bf16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print("vis2mus-train: this CPU has no native bfloat16 (AVX512-BF16/AMX); --bf16 is emulated here "
              "and measured 15x slower per step (20 s against 1.3 s on 2 AVX2 cores), so drop it", file=sys.stderr)
    try:
        if args.ship:
            card = ship(args.out, args.ship, args.which)
            print(f"wrote {args.ship} ({card['parameters']} parameters) and {card_path(args.ship)}")
            return 0
        segments = Segments(args.data)
    except (OSError, ValueError, KeyError) as exc:
        print(f"vis2mus-train: {exc}", file=sys.stderr)
        return 2
    try:
        cfg = CONFIGS[args.config]
        if args.dur_hidden:
            cfg = dataclasses.replace(cfg, dur_hidden=args.dur_hidden)
        trainer = Trainer(segments, cfg, args.out, args.batch_size, args.lr, args.lr_decay,
                          args.beta, args.seed, args.greedy_segments, args.config, args.schedule,
                          args.total_steps, args.warmup, args.dur_weight, args.sched_sampling, args.ss_ramp,
                          args.bf16, args.init, args.ss_start, args.beta_txt, args.chord_weight,
                          args.cross_shift, args.chord_prior)
    except (OSError, ValueError) as exc:
        print(f"vis2mus-train: {exc}", file=sys.stderr)
        return 2
    last = Path(args.out) / "last.pt"
    if args.resume and last.is_file():
        try:
            trainer.load(last)
        except (OSError, ValueError, RuntimeError) as exc:
            print(f"vis2mus-train: {exc}", file=sys.stderr)
            return 2
        print(f"resumed at epoch {trainer.epoch + 1} batch {trainer.batch} (step {trainer.step})", flush=True)
        if args.total_steps and args.total_steps != trainer.hparams["total_steps"]:
            print(f"schedule length {trainer.hparams['total_steps']} -> {args.total_steps} steps", flush=True)
            trainer.hparams["total_steps"] = args.total_steps
    print(f"{count_params(trainer.model)} parameters, {len(trainer.train_idx)} train / {len(trainer.val_idx)} val "
          f"segments, {trainer.batches_per_epoch} batches per epoch", flush=True)
    stop: list = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
    trainer.run(args.epochs, args.checkpoint_minutes, args.max_minutes, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
