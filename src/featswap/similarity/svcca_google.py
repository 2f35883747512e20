"""google/svcca's two measures, from a pair's streamed `GramStats` (no N x N kernel, no second pass):

- `svcca_raghu` (Raghu et al. 2017): each side reduced to the principal directions of its centred features that
  keep `variance` (99%) of its variance (or its top `k`), then the mean canonical correlation of the reduced pair;
- `pwcca` (Morcos et al. 2018, google/svcca `compute_pwcca`): the canonical correlations weighted by how much of
  the first argument's (centred) features each canonical direction accounts for. Directional.

Conventions of `compute_pwcca` kept: the directions are `u_i^T x` with `u_i` the left singular vectors of
`Cxx^-1/2 Cxy Cyy^-1/2` (not whitened again), orthonormalised in their order (Gram-Schmidt, the reference's QR),
and `alpha_i = sum_j |<p_i, x_j>|` over the first argument's neurons `x_j`. Departures: the features are centred
before weighting (the reference adds the means back, so a common offset changes its weights); widths may differ
either way (the reference raises IndexError when the first argument is wider); only the `min(rank X, rank Y)`
directions that have a canonical correlation are weighted (the reference's extra directions of a rank-deficient
side come from an arbitrary basis of a null space).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cholesky, solve_triangular

from featswap.errors import DataError
from featswap.mapping.products import check_conditioning
from featswap.similarity.gram import RCOND, GramStats

#: Share of each side's variance that `svcca_raghu` keeps by default (Raghu et al. 2017).
VARIANCE = 0.99


def principal(cov: np.ndarray, unit_roundoff: float = 2.0**-53) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues `(r,)` (descending) and eigenvectors `(D, r)` of a scatter matrix `(D, D)`, the numerically
    null directions dropped (below `RCOND` times the largest)."""
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    if not len(values) or values[0] <= 0:
        raise DataError("CCA is undefined: one feature set has no variance.")
    keep = values > RCOND * float(values[0])
    check_conditioning(float(values[0] / values[keep][-1]), unit_roundoff, "canonical correlations")
    return values[keep], vectors[:, keep]


def kept_directions(values: np.ndarray, variance: float | None, k: int | None) -> int:
    """How many of the descending eigenvalues `(r,)` to keep: the top `k`, or the fewest whose sum reaches
    `variance` of the total (google/svcca's `sum_threshold`, applied to variances)."""
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise DataError(
                f"svcca_raghu keeps the top k principal directions of each side; k must be >= 1, got {k!r}."
            )
        return min(int(k), len(values))
    if variance is None or not 0 < variance <= 1:
        raise DataError(f"svcca_raghu keeps a share of the variance in (0, 1]; got {variance!r}.")
    shares = np.cumsum(values) / values.sum()
    return min(int(np.searchsorted(shares, variance - 1e-12)) + 1, len(values))


def _check_rows(n: int, rx: int, ry: int) -> None:
    if rx + ry > n - 1:
        raise DataError(
            f"CCA is undefined here: {n} rows span at most {n - 1} centred dimensions, fewer than the {rx} + {ry} "
            f"the two feature sets use, so {rx + ry - n + 1} canonical correlations are 1 by construction. Use more "
            "rows than both widths together (or svcca_raghu with fewer directions)."
        )


def _cca(
    stats: GramStats, vx: np.ndarray, lx: np.ndarray, vy: np.ndarray, ly: np.ndarray, cxy: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors `(rx, c)` and canonical correlations `(c,)` of the two sides restricted to the
    eigen-directions `vx (D1, rx)`, `vy (D2, ry)` with variances `lx`, `ly`."""
    _check_rows(stats.n, vx.shape[1], vy.shape[1])
    m = (vx / np.sqrt(lx)).T @ (stats.cxy if cxy is None else cxy) @ (vy / np.sqrt(ly))
    a, s, _ = np.linalg.svd(m, full_matrices=False)
    return a, np.clip(s, 0.0, 1.0)


def svcca_raghu_of(stats: GramStats, variance: float | None = VARIANCE, k: int | None = None) -> float:
    """Mean canonical correlation of each side's principal directions keeping `variance` of its variance (or its
    top `k`), from the pair's centred scatter matrices."""
    sides = []
    for cov in (stats.cxx, stats.cyy):
        values, vectors = principal(cov, stats.roundoff)
        kept = kept_directions(values, variance, k)
        sides.append((vectors[:, :kept], values[:kept]))
    (vx, lx), (vy, ly) = sides
    return float(_cca(stats, vx, lx, vy, ly)[1].mean())


def pwcca_of(stats: GramStats, swapped: bool = False) -> float:
    """Projection-weighted CCA weighted by the first side (with `swapped`, by the second: `pwcca(Y, X)`)."""
    cxx, cyy, cxy = (stats.cyy, stats.cxx, stats.cxy.T) if swapped else (stats.cxx, stats.cyy, stats.cxy)
    lx, vx = principal(cxx, stats.roundoff)
    ly, vy = principal(cyy, stats.roundoff)
    a, rho = _cca(stats, vx, lx, vy, ly, cxy)  # a (rx, c), c = min(rx, ry)
    directions = vx @ a  # (D1, c): the reference's u_i, orthonormal in the first side's coordinates
    projected = directions.T @ cxx  # (c, D1): sum over rows of (x u_i) x_j
    # Gram-Schmidt of the columns of X U in their order is X U R^-1 with R^T R = U^T Cxx U (Cholesky), so the
    # projections of the neurons on the orthonormal directions are R^-T U^T Cxx, without any N x c matrix.
    factor = cholesky(projected @ directions, lower=True)
    onto = solve_triangular(factor, projected, lower=True)
    weights = np.abs(onto).sum(axis=1)
    return float((weights * rho).sum() / weights.sum())
