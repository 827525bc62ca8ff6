"""Grow the duration head of a trained poly-dis without changing what it decodes.

The duration head is ``dur_hid`` (``h_notes`` + pitch logits -> the duration GRU's first state),
the duration GRU (5 steps, one per bit) and ``dur_out`` (state -> bit logits). Widening it from
``H`` to ``H' > H`` units keeps the old units' weights, gives the new units fresh random weights
(PyTorch's default initialisation of a layer of the new size) and zeroes every path from a new unit
to an old unit or to the bit logits, so the widened model's outputs equal the old model's exactly
until training moves those zeros; the new units get gradients from the first step on through
``dur_out``'s zeroed columns.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from model.polydis import PolyDis

GATES = 3
HEAD = ("decoder.dur_hid.", "decoder.dur_gru.", "decoder.dur_out.")


def _gate_rows(old: int, new: int) -> torch.Tensor:
    """Row indices of the old units inside each of the 3 gate blocks (r, z, n) of a GRU of ``new`` units."""
    return torch.cat([torch.arange(old) + g * new for g in range(GATES)])


@torch.no_grad()
def widen_duration_head(model: PolyDis, hidden: int, seed: int = 0) -> PolyDis:
    """A copy of ``model`` whose duration GRU has ``hidden`` units, decoding exactly as ``model`` does.

    ``hidden`` must be at least the current width; equal returns a plain copy.
    """
    old = model.cfg.dur_hidden
    if hidden < old:
        raise ValueError(f"duration head can only grow: {old} -> {hidden}")
    torch.manual_seed(seed)
    wide = PolyDis(dataclasses.replace(model.cfg, dur_hidden=hidden))
    state = model.state_dict()
    fresh = wide.state_dict()
    merged = {k: v.clone() for k, v in state.items() if not k.startswith(HEAD)}
    rows = _gate_rows(old, hidden)
    head = {k: fresh[k].clone() for k in fresh if k not in merged}
    head["decoder.dur_hid.weight"][:old] = state["decoder.dur_hid.weight"]
    head["decoder.dur_hid.bias"][:old] = state["decoder.dur_hid.bias"]
    for name in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
        head[f"decoder.dur_gru.{name}"][rows] = state[f"decoder.dur_gru.{name}"]
    w_hh = head["decoder.dur_gru.weight_hh_l0"]
    w_hh[rows] = 0.0
    w_hh[rows, :old] = state["decoder.dur_gru.weight_hh_l0"]
    head["decoder.dur_out.weight"].zero_()
    head["decoder.dur_out.weight"][:, :old] = state["decoder.dur_out.weight"]
    head["decoder.dur_out.bias"].copy_(state["decoder.dur_out.bias"])
    wide.load_state_dict({**merged, **head})
    return wide.train(model.training)


def head_parameters(model: nn.Module) -> list[str]:
    """Names of the duration head's parameters (what :func:`widen_duration_head` changes)."""
    return [k for k, _ in model.named_parameters() if k.startswith(HEAD)]
