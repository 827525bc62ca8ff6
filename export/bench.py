"""``vis2mus-bench``: latency of one 2-bar regeneration (texture head + greedy decode).

Compares, on the same weights and segments: (a) the ONNX engine, (b) eager torch decoding every
slot as upstream does (no early exit), (c) eager torch with early exit; at batch 1 and 4, one thread
each (``--threads`` to change). Prints wall-clock p50/p99 (and the CPU time of the calling thread, which shows how much of
the wall time other processes took), the ratios, notes per segment and the floor of the engine: the sequential graph
calls it actually made times the measured time of one call of each graph.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from export.onnx_export import export_graphs, load_weights, parity_segments
from live.checks import one_line
from live.inference import graphs
from live.inference.engine import DECODE_SLOTS, Engine
from live.music.notes import EOS, grid_to_notes


def _percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _timed(fn, runs: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    """Wall-clock and this thread's CPU seconds of ``runs`` calls of ``fn`` after ``warmup``."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return wall, cpu


def slots_per_step(grid: np.ndarray) -> np.ndarray:
    """Note slots the batch decoder evaluates at each step: the latest first-EOS (+1) over the batch,
    ``grid`` ``(B, 32, 15, 6)`` -> ``(32,)``."""
    is_eos = grid[..., 0] == EOS
    first = np.where(is_eos.any(-1), is_eos.argmax(-1) + 1, DECODE_SLOTS)
    return first.max(axis=0)


def _graph_call_times(engine: Engine, z: np.ndarray, runs: int) -> dict[str, float]:
    """Median seconds of one call of each decoder graph at batch ``len(z)``, on real states."""
    first = engine.run_graph("dec_first", graphs.feeds("dec_first", z))
    z_x, sos, sos_x, rest_x, h_time, hx, _, _, emb, h_notes, hh_notes = first
    embs = np.stack([sos, emb, emb], axis=1)
    feeds = {"dec_first": graphs.feeds("dec_first", z),
             "dec_step": graphs.feeds("dec_step", embs, np.full(len(z), 3, np.int64), z_x, sos_x, h_time),
             "dec_rest": graphs.feeds("dec_rest", rest_x, sos_x, h_time),
             "dec_note": graphs.feeds("dec_note", hx, emb, h_notes, hh_notes)}
    return {name: float(np.median(_timed(lambda: engine.run_graph(name, feed), runs * 4)[0]))
            for name, feed in feeds.items()}


def typical_segments(n: int = 4, pool: int = 64) -> tuple[str, np.ndarray, np.ndarray]:
    """The ``n`` segments of a ``pool`` spread over the validation songs (or generated) whose note
    counts are closest to the pool's median -> (description, chord rows, pr_mat)."""
    source, rows, pr = parity_segments(pool)
    counts = (pr > 0).sum(axis=(1, 2))
    chosen = np.sort(np.argsort(np.abs(counts - np.median(counts)), kind="stable")[:n])
    return (f"{n} segments with median note counts ({', '.join(str(c) for c in counts[chosen])} notes) "
            f"of {source}"), rows[chosen], pr[chosen]


def run_bench(weights: Path, runs: int, threads: int = 1) -> dict:
    """All figures of the benchmark as a dict (times in ms)."""
    torch.set_num_threads(threads)
    folder = graphs.ensure_graphs(weights, log=print, exporter=export_graphs)
    engine = Engine(folder, device="cpu", threads=threads)
    model = load_weights(weights)
    source, rows, pr = typical_segments()
    with torch.no_grad():
        z_chd = model.chord_enc(torch.from_numpy(rows))[0].numpy()
    maps = engine.texture_map(pr)
    result: dict = {"weights": str(weights), "segments": source, "runs": runs, "threads": threads,
                    "provider": engine.provider, "load_before": os.getloadavg(), "batches": {}}
    for batch in (1, 4):
        fmap, zc = maps[:batch], z_chd[:batch]
        fmap_t, zc_t = torch.from_numpy(fmap), torch.from_numpy(zc)

        def onnx_regen():
            return engine.decode(zc, engine.texture_latent(fmap))

        def eager(early_exit: bool):
            with torch.no_grad():
                z = torch.cat([zc_t, model.texture_head(fmap_t)[0]], dim=-1)
                return model.decoder.greedy_decode(z, early_exit=early_exit)

        rows_out = {}
        for key, fn in (("a_onnx", onnx_regen), ("b_eager_all_slots", lambda: eager(False)),
                        ("c_eager_early_exit", lambda: eager(True))):
            wall, cpu = _timed(fn, runs)
            p50, p99 = _percentiles(wall)
            rows_out[key] = {"p50_ms": p50, "p99_ms": p99, "cpu_p50_ms": _percentiles(cpu)[0]}
        grid = engine.decode_grid(zc, engine.texture_latent(fmap))
        slots = slots_per_step(grid)
        rests = int((slots[:-1] == 1).sum())
        calls = {"dec_first": 1, "dec_step": len(slots) - 1 - rests, "dec_rest": rests,
                 "dec_note": int((slots - 1).sum())}
        call_s = _graph_call_times(engine, np.concatenate([zc, engine.texture_latent(fmap)], axis=1), runs)
        floor = sum(calls[name] * call_s[name] for name in calls) * 1e3
        a, b, c = (rows_out[k]["p50_ms"] for k in ("a_onnx", "b_eager_all_slots", "c_eager_early_exit"))
        result["batches"][batch] = {
            **rows_out,
            "ratio_b_over_a_p50": b / a, "ratio_c_over_a_p50": c / a,
            "ratio_b_over_a_p99": rows_out["b_eager_all_slots"]["p99_ms"] / rows_out["a_onnx"]["p99_ms"],
            "ratio_c_over_a_p99": rows_out["c_eager_early_exit"]["p99_ms"] / rows_out["a_onnx"]["p99_ms"],
            "notes_per_segment": float(np.mean([len(grid_to_notes(g)) for g in grid])),
            "slots_per_step": float(slots.mean()),
            "graph_calls": calls,
            "graph_call_us": {k: v * 1e6 for k, v in call_s.items()},
            "sequential_gru_cells": int(len(slots) + 6 * slots.sum()),
            "floor_ms": floor,
        }
    result["load_after"] = os.getloadavg()
    return result


def print_table(result: dict) -> None:
    """Human-readable table of :func:`run_bench`'s result."""
    print(f"weights {result['weights']}; {result['segments']}; {result['runs']} runs; "
          f"{result['threads']} thread(s); "
          f"{result['provider']}; load avg before {result['load_before'][0]:.2f}, "
          f"after {result['load_after'][0]:.2f} (machine has {os.cpu_count()} cores)")
    print(f"{'method':34s} {'batch':>5s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU p50 ms':>10s}")
    names = {"a_onnx": "(a) ONNX engine", "b_eager_all_slots": "(b) eager, all slots (upstream)",
             "c_eager_early_exit": "(c) eager, early exit"}
    for batch, row in result["batches"].items():
        for key, label in names.items():
            print(f"{label:34s} {batch:>5} {row[key]['p50_ms']:8.2f} {row[key]['p99_ms']:8.2f} "
                  f"{row[key]['cpu_p50_ms']:10.2f}")
    for batch, row in result["batches"].items():
        calls = row["graph_calls"]
        us = row["graph_call_us"]
        print(f"batch {batch}: (b)/(a) {row['ratio_b_over_a_p50']:.1f}x p50, {row['ratio_b_over_a_p99']:.1f}x p99; "
              f"(c)/(a) {row['ratio_c_over_a_p50']:.1f}x p50, {row['ratio_c_over_a_p99']:.1f}x p99; "
              f"notes/segment {row['notes_per_segment']:.1f}; slots/step {row['slots_per_step']:.2f}")
        print(f"  floor {row['floor_ms']:.2f} ms = dec_first 1 x {us['dec_first']:.0f} us + dec_step "
              f"{calls['dec_step']} x {us['dec_step']:.0f} us + dec_rest {calls['dec_rest']} x "
              f"{us['dec_rest']:.0f} us + dec_note {calls['dec_note']} x {us['dec_note']:.0f} us "
              f"(sequential GRU cells: {row['sequential_gru_cells']}); "
              f"engine p50 - floor = {row['a_onnx']['p50_ms'] - row['floor_ms']:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vis2mus-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="weights .pt (default: weights/polydis-small.pt)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per figure (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime and torch threads (default 1)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    weights = Path(args.weights) if args.weights else graphs.default_weights()
    try:
        result = run_bench(weights, max(args.runs, 1), max(args.threads, 1))
    except (graphs.GraphError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"vis2mus-bench: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
