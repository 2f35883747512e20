"""The paper's loss: squared distance of unit-normalised true and predicted feature vectors."""

from __future__ import annotations

import numpy as np
import torch

from featswap.mapping.paired import PairedFeatures


def paper_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of `|| t/||t|| - y/||y|| ||^2` for `(n, D)` tensors; 0 (same directions) to 4."""
    unit_y = torch.nn.functional.normalize(predicted, dim=1, eps=1e-12)
    unit_t = torch.nn.functional.normalize(target, dim=1, eps=1e-12)
    return (unit_t - unit_y).pow(2).sum(dim=1).mean()


def paper_loss_numpy(predicted: np.ndarray, target: np.ndarray) -> float:
    """`paper_loss` on arrays `(n, D)`, in float64."""
    return float(paper_loss(torch.from_numpy(predicted).double(), torch.from_numpy(target).double()))


def streamed_paper_loss(pairs: PairedFeatures, weight: np.ndarray, bias: np.ndarray) -> float:
    """The paper's loss of the map `y = W x + b` over all rows of `pairs`, chunk by chunk."""
    total = 0.0
    for x, y in pairs.chunks():
        total += paper_loss_numpy(x @ weight.T + bias, y) * len(x)
    return total / pairs.n
