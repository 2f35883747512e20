"""`procrustes`: an orthogonal map (optionally scaled) plus bias, from streamed moments."""

from __future__ import annotations

import numpy as np

from featswap.catalog.solvers import ProcrustesSettings
from featswap.mapping.moments import Moments
from featswap.mapping.paired import PairedFeatures
from featswap.mapping.solvers.base import SOLVERS, FitResult, Heads, Solver
from featswap.mapping.solvers.lstsq import streamed_moments

#: Singular values of the cross-scatter below this fraction of the largest count as zero (as `lstsq`'s rcond).
RCOND = 1e-10

#: The unit roundoff of the features the moments were summed from: float32, as featswap stores and captures them
#: (float64 features given in Python are held to the same standard, so that both give one map).
FEATURE_ROUNDOFF = 2.0**-24


def procrustes_rank(singular: np.ndarray, moments: Moments) -> int:
    """How many of `singular` (descending, of the moments' centred cross-scatter `Cxy`) are above rounding: larger
    than the largest times `RCOND` (or times the rounding of a sum of `Cxy`'s shape of products, if larger), and
    larger than what rounding the features to float32 can put into `Cxy`, at most
    `u (||X||_F ||Y - my||_F + ||Y||_F ||X - mx||_F)` with `u = FEATURE_ROUNDOFF` (a common offset makes it larger:
    features far from 0 are rounded coarsely for their spread)."""
    if singular.size == 0 or singular[0] <= 0:
        return 0
    relative = max(RCOND, max(moments.cxy.shape) * moments.roundoff)
    _, _, cxx, _ = moments.centred()
    spread_x, spread_y = float(np.sqrt(max(np.trace(cxx), 0.0))), float(np.sqrt(max(moments.tyy, 0.0)))
    whole_x = float(np.sqrt(moments.n * float(moments.mx @ moments.mx) + spread_x**2))
    whole_y = float(np.sqrt(moments.n * float(moments.my @ moments.my) + spread_y**2))
    rounding = FEATURE_ROUNDOFF * (whole_x * spread_y + whole_y * spread_x)
    return int(np.count_nonzero(singular > max(singular[0] * relative, rounding)))


def procrustes_from_moments(moments: Moments, scale: bool = False) -> tuple[np.ndarray, np.ndarray, float, int]:
    """`(W (Dy, Dx), b (Dy,), s, r)` (float64; `r` the directions the pairs determine) minimising
    `sum ||s Q (x - mx) - (y - my)||^2` over orthogonal `Q`.

    Unequal widths: the narrower side is zero-padded to the wider one and the block of the padded orthogonal
    matrix that maps real features to real features is kept; that block is `U V^T` from the thin SVD of
    the centred cross-scatter `Cxy = U S V^T`, with orthonormal rows or columns.

    Rank-deficient `Cxy` (fewer pairs than features, dead or linearly dependent features): the pairs determine `Q`
    only on the `r` directions whose singular values stand above rounding (`procrustes_rank`); every
    orthogonal completion fits them equally well, and rounding alone would pick one (two paths to the same
    moments gave predictions that differed by 95%). The canonical choice is the partial isometry
    `U_r V_r^T`, which maps the undetermined directions to zero: deterministic, and the completion with the
    smallest expected error on directions the pairs never constrained.
    """
    mx, my, cxx, cxy = moments.centred()
    u, singular, vt = np.linalg.svd(cxy, full_matrices=False)
    rank = procrustes_rank(singular, moments)
    weight = (u[:, :rank] @ vt[:rank]).T  # (Dy, Dx)
    trace = float(np.trace(cxx))
    s = float(singular.sum() / trace) if scale and trace > 0 else 1.0
    weight = s * weight
    return weight, my - weight @ mx, s, rank


def fit_procrustes(
    pairs: PairedFeatures | None, settings: ProcrustesSettings, device: str, heads: Heads | None
) -> FitResult:
    assert pairs is not None
    weight, bias, s, rank = procrustes_from_moments(streamed_moments(pairs, False, device), settings.scale)
    return FitResult(weight, bias, info={"scale": s, "rank": rank})


SOLVERS.register("procrustes")(
    Solver(
        "procrustes",
        fit_procrustes,
        fits_scale=True,
        r2_rank=2,
        summary="orthogonal map (optional scale) plus bias",
        can_interpolate=False,
    )
)
