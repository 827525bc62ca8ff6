"""Two-pass scheduled sampling: mix the model's own teacher-forced predictions into its inputs.

A first, gradient-free teacher-forced pass predicts every slot's pitch and duration bits from the
true prefix; :func:`mixed_inputs` then replaces each real note of the input grid, with probability
``p``, by that prediction. The second (trained) pass reads the mixed grid as its recurrent inputs
(``PolyDis.forward(..., inputs=...)``) while its targets stay the true grid. Training stays
vectorised and learns to continue from its own mistakes, which is what greedy decoding asks of it.
"""

from __future__ import annotations

import torch

from model.polydis import PITCHES


def mixed_inputs(out: dict[str, torch.Tensor], grid: torch.Tensor, p: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Input grid ``(B, 32, S, 6)`` with real notes replaced by predictions with probability ``p``.

    ``out`` is a teacher-forced pass over ``grid``: ``pitch`` logits ``(B, 32, S - 1, 130)``,
    ``dur`` bit logits ``(N, 5, 2)`` of the ``N`` real notes and their mask ``real``
    ``(B, 32, S - 1)``. A chosen slot takes the predicted duration bits; it takes the predicted
    pitch too unless that prediction is EOS/PAD (the slot structure stays the true one).
    """
    real = out["real"]
    pick = real & (torch.rand(real.shape, generator=generator) < p)
    pred_pitch = out["pitch"].argmax(-1)
    pred_bits = grid[:, :, 1:, 1:].clone()
    pred_bits[real] = out["dur"].argmax(-1)
    mixed = grid.clone()
    body = mixed[:, :, 1:]
    body[..., 0] = torch.where(pick & (pred_pitch < PITCHES), pred_pitch, body[..., 0])
    body[..., 1:] = torch.where(pick.unsqueeze(-1), pred_bits, body[..., 1:])
    return mixed
