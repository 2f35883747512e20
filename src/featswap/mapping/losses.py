"""The paper's loss: squared distance of unit-normalised true and predicted feature vectors."""

from __future__ import annotations

import numpy as np
import torch

from featswap.mapping.paired import PairedFeatures


def paper_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of `|| t/||t|| - y/||y|| ||^2` for `(n, D)` tensors; 0 (same directions) to 4."""
    return paper_loss_to_units(predicted, unit_rows(target))


def unit_rows(target: torch.Tensor) -> torch.Tensor:
    """`target` `(n, D)` with each row divided by its norm (a row of zeros stays zeros)."""
    return torch.nn.functional.normalize(target, dim=1, eps=1e-12)


def paper_loss_to_units(predicted: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """`paper_loss` of `predicted` `(n, D)` against targets already scaled to unit rows (`unit_rows`): an Adam loop
    scales its targets once, not a batch of them at every step (a quarter of a step's time on the CPU). The same
    number to float32 rounding: torch may sum a row's squares in another order for a batch than for all rows (seen
    with 9 features; bit for bit with 96 to 2,048 on a 2-core AMD EPYC)."""
    return (units - unit_rows(predicted)).pow(2).sum(dim=1).mean()


def paper_loss_numpy(predicted: np.ndarray, target: np.ndarray) -> float:
    """`paper_loss` on arrays `(n, D)`, in float64."""
    return float(paper_loss(torch.from_numpy(predicted).double(), torch.from_numpy(target).double()))


def streamed_paper_loss(pairs: PairedFeatures, weight: np.ndarray, bias: np.ndarray) -> float:
    """The paper's loss of the map `y = W x + b` over all rows of `pairs`, chunk by chunk."""
    total = 0.0
    for x, y in pairs.chunks():
        total += paper_loss_numpy(x @ weight.T + bias, y) * len(x)
    return total / pairs.n
