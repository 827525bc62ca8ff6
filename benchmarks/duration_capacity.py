"""Is the duration head too small? Train only the head, at its shipped width and wider, and compare.

    python -m benchmarks.duration_capacity [--weights weights/polydis-small.pt] [--widths 64 256] [--steps 300]

Every trainer starts from the same weights; all parameters except the duration head
(``model.widen.head_parameters``) are frozen, so each head learns to read the same ``h_notes``.
Wider heads start as exact copies of the shipped one (``model.widen.widen_duration_head``). The
trainers step in alternating blocks on the same batches (teacher-forced, constant ``--lr``) so they
see the same machine load. Printed per width: the teacher-forced duration loss and the share of
validation notes whose 5 duration bits are all right, before and after. If the wider head gains
clearly more, the head's capacity limits the lengths; if not, what limits them is upstream of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import torch

from model.dataset import Segments
from model.evaluate import DEFAULT_WEIGHTS, duration_bits_right
from model.polydis import load_model
from model.train import Trainer
from model.widen import head_parameters


def head_only_trainer(data: Segments, weights: str, width: int, out: str, lr: float) -> Trainer:
    """A teacher-forced trainer from ``weights`` with a ``width``-unit duration head, all else frozen."""
    cfg = dataclasses.replace(load_model(weights).cfg, dur_hidden=width)
    trainer = Trainer(data, cfg, out, lr=lr, schedule="cosine", total_steps=10**6, warmup=0, dur_weight=1.0,
                      init=weights, greedy_segments=0)
    head = set(head_parameters(trainer.model))
    for name, param in trainer.model.named_parameters():
        param.requires_grad_(name in head)
    return trainer


@torch.no_grad()
def exact_lengths(trainer: Trainer, limit: int, batch_size: int = 128) -> float:
    """Share of validation notes (first ``limit`` segments) with all 5 duration bits right, teacher-forced."""
    trainer.model.eval()
    idx = trainer.val_idx[:limit]
    right = total = 0
    for start in range(0, len(idx), batch_size):
        batch = trainer.segments.batch(idx[start:start + batch_size])
        out = trainer.model(batch["chords"], batch["pr_mat"], batch["grid"], sample=False)
        bits, _ = duration_bits_right(out, batch["grid"])
        right += int(bits.all(-1).sum())
        total += len(bits)
    return right / max(total, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="duration_capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/pop909.npz")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--val", type=int, default=1024, help="validation segments measured")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = Segments(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {w: head_only_trainer(data, args.weights, w, f"{tmp}/{w}", args.lr) for w in args.widths}
        before = {w: (t.validate(args.val)["dur"], exact_lengths(t, args.val)) for w, t in trainers.items()}
        for _ in range(0, args.steps, args.block):
            for trainer in trainers.values():
                for _ in range(args.block):
                    trainer.train_batch()
        after = {w: (t.validate(args.val)["dur"], exact_lengths(t, args.val)) for w, t in trainers.items()}
    print(f"duration head only, {args.steps} steps each (batch 64, teacher-forced, lr {args.lr:g}), "
          f"{args.val} validation segments: duration loss / exact length, before -> after")
    for w in args.widths:
        print(f"  {w:>4} units: {before[w][0]:.4f} / {before[w][1]:.4f} -> {after[w][0]:.4f} / {after[w][1]:.4f}")


if __name__ == "__main__":
    main()
