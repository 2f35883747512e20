"""`procrustes`: an orthogonal map (optionally scaled) plus bias, from streamed moments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featswap import validate
from featswap.mapping.moments import Moments
from featswap.mapping.paired import PairedFeatures
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.mapping.solvers.lstsq import streamed_moments


@dataclass(frozen=True)
class ProcrustesSettings:
    """`scale`: also fit one global scale factor `s` (y = s Q x + b)."""

    scale: bool = False

    def __post_init__(self) -> None:
        validate.flag("scale", self.scale)


def procrustes_from_moments(moments: Moments, scale: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """`(W (Dy, Dx), b (Dy,), s)` (float64) minimising `sum ||s Q (x - mx) - (y - my)||^2` over orthogonal `Q`.

    Unequal widths: the narrower side is zero-padded to the wider one and the block of the padded orthogonal
    matrix that maps real features to real features is kept; that block is `U V^T` from the thin SVD of
    the centred cross-scatter `Cxy = U S V^T`, with orthonormal rows or columns.
    """
    mx, my, cxx, cxy = moments.centred()
    u, singular, vt = np.linalg.svd(cxy, full_matrices=False)
    weight = (u @ vt).T  # (Dy, Dx)
    trace = float(np.trace(cxx))
    s = float(singular.sum() / trace) if scale and trace > 0 else 1.0
    weight = s * weight
    return weight, my - weight @ mx, s


def fit_procrustes(
    pairs: PairedFeatures | None, settings: ProcrustesSettings, device: str, heads: Heads | None
) -> FitResult:
    assert pairs is not None
    weight, bias, s = procrustes_from_moments(streamed_moments(pairs, False, device), settings.scale)
    return FitResult(weight, bias, info={"scale": s})


SOLVERS.register("procrustes")(
    Solver(
        "procrustes",
        ProcrustesSettings,
        fit_procrustes,
        fits_scale=True,
        r2_rank=2,
        summary="orthogonal map (optional scale) plus bias",
        can_interpolate=False,
    )
)
