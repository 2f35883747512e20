"""Adam in chunks of iterations until a held-out loss stops improving: the loop `paper` (without a fixed number
of iterations) and `refine` share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Stopped:
    """Where the loop ended: the best held-out loss and the map `(weight (Dy, Dx), bias (Dy,))` that gave it, the
    held-out trace `[(iterations, loss), ...]` (0: the start), the batch losses of every chunk, the iterations run,
    and whether it stopped because the loss was flat (`converged`) rather than at the cap."""

    best: float
    state: tuple[torch.Tensor, torch.Tensor]
    trace: list[tuple[int, float]]
    curves: list[torch.Tensor]
    done: int
    converged: bool


def until_flat(
    run: Callable[[int], torch.Tensor],
    held_out_loss: Callable[[], float],
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    cap: int,
    every: int,
    patience: int,
    min_delta: float,
) -> Stopped:
    """Call `run(n)` (n Adam iterations on `weight` and `bias`, in place; returns their batch losses `(n,)`) in
    chunks of `every` up to `cap` iterations, measuring `held_out_loss()` after each; stop after `patience`
    measurements without a relative improvement of `min_delta`, keeping the best map."""
    best = held_out_loss()
    state = (weight.detach().clone(), bias.detach().clone())
    trace, curves, bad, done = [(0, best)], [], 0, 0
    while done < cap and bad < patience:
        chunk = min(every, cap - done)
        curves.append(run(chunk))
        done += chunk
        loss = held_out_loss()
        trace.append((done, loss))
        if loss < best * (1 - min_delta):
            best, bad = loss, 0
            state = (weight.detach().clone(), bias.detach().clone())
        else:
            bad += 1
    return Stopped(best, state, trace, curves, done, bad >= patience)
