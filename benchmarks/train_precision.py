"""Is bfloat16 autocast worth it for training here? Speed and quality of fp32 against bf16.

    python -m benchmarks.train_precision [--weights weights/polydis-small.pt] [--steps 40]

Two trainers start from the same weights with the same seed, batches, learning rate and
scheduled sampling; one runs its passes in float32, the other under bfloat16 autocast (parameters
and optimiser float32 in both). Each trains ``--steps`` steps, alternating in blocks of
``--block`` steps so that both see the same machine load. Printed: median seconds per step of
each and their ratio, and the teacher-forced validation losses (float32, posterior means) of the
start and of both results on ``--val`` segments, so equal quality can be read as well as speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from model.dataset import Segments
from model.evaluate import DEFAULT_WEIGHTS
from model.polydis import load_model
from model.train import Trainer


def make_trainer(data: Segments, weights: str, out: str, bf16: bool, lr: float, sched_sampling: float) -> Trainer:
    """A trainer from ``weights`` with a constant learning rate (cosine over a long horizon)."""
    cfg = load_model(weights).cfg
    return Trainer(data, cfg, out, lr=lr, schedule="cosine", total_steps=10**6, warmup=0, dur_weight=1.5,
                   sched_sampling=sched_sampling, ss_ramp=1, bf16=bf16, init=weights, greedy_segments=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="train_precision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/pop909.npz")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--val", type=int, default=1024, help="validation segments for the losses")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--sched-sampling", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = Segments(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: make_trainer(data, args.weights, f"{tmp}/{name}", name == "bf16", args.lr,
                                       args.sched_sampling) for name in ("fp32", "bf16")}
        with torch.no_grad():
            start = trainers["fp32"].validate(args.val)
        times: dict[str, list[float]] = {name: [] for name in trainers}
        for _ in range(0, args.steps, args.block):
            for name, trainer in trainers.items():
                for _ in range(args.block):
                    t0 = time.perf_counter()
                    trainer.train_batch()
                    times[name].append(time.perf_counter() - t0)
        with torch.no_grad():
            after = {name: trainer.validate(args.val) for name, trainer in trainers.items()}
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"{len(times['fp32'])} steps each (batch {trainers['fp32'].hparams['batch_size']}, "
          f"scheduled sampling {args.sched_sampling}, {args.threads} thread(s), lr {args.lr:g})")
    for name in trainers:
        print(f"  {name}: median {med[name]:.3f} s/step (p90 {sorted(times[name])[int(0.9 * len(times[name]))]:.3f})")
    print(f"  bf16 speed-up: {med['fp32'] / med['bf16']:.2f}x")
    print(f"validation on {args.val} segments (teacher-forced, float32): recon / pitch / dur")
    for label, v in (("start", start), ("after fp32", after["fp32"]), ("after bf16", after["bf16"])):
        print(f"  {label:<11} {v['recon']:.4f} / {v['pitch']:.4f} / {v['dur']:.4f}")
    print(f"  recon difference bf16 - fp32: {after['bf16']['recon'] - after['fp32']['recon']:+.4f}")


if __name__ == "__main__":
    main()
