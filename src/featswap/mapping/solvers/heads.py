"""`heads`: the data-free map from two classifiers that predict the same classes."""

from __future__ import annotations

import numpy as np

from featswap.catalog.solvers import HeadsSettings
from featswap.errors import FitError
from featswap.mapping.paired import PairedFeatures
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver


def fit_heads(pairs: PairedFeatures | None, settings: HeadsSettings, device: str, heads: Heads | None) -> FitResult:
    """`W = pinv(W_B) W_A`, `b = pinv(W_B) (b_A - b_B)`: then `W_B (W x + b) + b_B = W_A x + b_A`, i.e. B's head
    reproduces A's logits, whenever `W_B` (C, Dy) has full row rank C (needs Dy >= C)."""
    if heads is None:
        raise FitError("The heads solver needs both networks' classifier heads; fit it from a feature store.")
    wa, ba = heads.source_weight.astype(np.float64), heads.source_bias.astype(np.float64)
    wb, bb = heads.target_weight.astype(np.float64), heads.target_bias.astype(np.float64)
    if wa.shape[0] != wb.shape[0]:
        raise FitError(
            f"The heads solver needs networks that predict the same classes; the source head predicts "
            f"{wa.shape[0]} and the target head {wb.shape[0]}. Use a data-driven solver (refine, lstsq)."
        )
    pinv = np.linalg.pinv(wb, rcond=settings.rcond)
    classes = wb.shape[0]
    rank = int(np.linalg.matrix_rank(wb, tol=settings.rcond * np.linalg.norm(wb, 2)))
    exact = rank == classes
    info = {
        "target_head_rank": rank,
        "classes": classes,
        "exact": exact,
        "message": "reproduces the source's logits through the target's head"
        if exact
        else f"the target head has rank {rank} < {classes} classes (feature width {wb.shape[1]}), so its logits "
        "can only approximate the source's (least squares)",
    }
    dtype = np.result_type(heads.source_weight, heads.target_weight, np.float32)
    return FitResult((pinv @ wa).astype(dtype), (pinv @ (ba - bb)).astype(dtype), info=info)


SOLVERS.register("heads")(
    Solver(
        "heads",
        fit_heads,
        needs_data=False,
        needs_heads=True,
        fits_scale=False,
        r2_rank=4,
        summary="data-free map from the two classifiers' weights",
        can_interpolate=False,
    )
)
