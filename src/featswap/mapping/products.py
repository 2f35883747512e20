"""Centred products of row blocks at the speed of float32 BLAS, with the accuracy of float64 sums.

Every streamed statistic (`Moments`, `GramStats`) is built from blocks of rows. A block is centred on its own
mean (two passes, so that the rounded first mean leaves no residual: features sharing an offset of 1e6 keep
their spread), its deviations are multiplied in the features' own precision (float32 for stored features: the
BLAS fast path, with `u.T @ u` a symmetric rank-k update, half the work of a general product), and the products
are widened to float64, in which blocks are merged with Chan, Golub and LeVeque's pairwise update. Centred
float32 products of a block of `BLOCK_ROWS` rows carry a relative error of about 1e-7 of the spread; the
float64 merge adds none.

That keeps well-conditioned results (linear and debiased CKA, the Procrustes distance, SVCCA of well-separated
directions) within 1e-6 of a float64 computation on centred data. Results that amplify the products' rounding by
a condition number (least-squares weights, CCA's whitening) check it: statistics record the unit roundoff of
their products (`roundoff`), and a consumer whose condition number times that roundoff exceeds `TOLERANCE`
raises `PrecisionError`, on which its caller computes the statistics again with float64 products (`precision=
"float64"`). float64 features are always multiplied in float64.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Rows per block of centred products. Large enough that a block's BLAS product dwarfs its O(D^2) float64
#: merge (8,192 rows x 3,584 features is 117 MB of float32 deviations), small enough for cache-friendly
#: centring and a bounded temporary.
BLOCK_ROWS = 8192


#: The relative error allowed in a result against a float64 computation on centred data.
TOLERANCE = 1e-6

#: Measured errors of least-squares weights from float32 products reach twice the condition number times the
#: unit roundoff (features quantised by a large offset, `benchmarks/offsets.py`); twice that again for margin.
SAFETY = 4.0

#: The unit roundoff of float64 products.
FLOAT64_ROUNDOFF = 2.0**-53

#: `"float32"`: float32 products for float32 features (float64 ones stay float64); `"float64"`: always float64.
PRECISIONS = ("float32", "float64")


class PrecisionError(ArithmeticError):
    """Statistics from float32 products are not precise enough for a result (its condition number times their
    roundoff exceeds `TOLERANCE`): compute them again with `precision="float64"`. Never reaches a user: every
    consumer that can raise it has a caller that recomputes."""


def compute_dtype(*arrays: np.ndarray, precision: str = "float32") -> np.dtype:
    """float64 when `precision` is "float64" or any array is float64 (its user asked for it), else float32."""
    if precision == "float64" or any(a.dtype == np.float64 for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def roundoff(dtype: np.dtype) -> float:
    """The unit roundoff of products in `dtype`: 2^-24 for float32, 2^-53 for float64."""
    return float(np.finfo(dtype).eps) / 2


def check_conditioning(condition: float, unit_roundoff: float, what: str) -> None:
    """Raise `PrecisionError` when a result of this `condition` number, from products of this `unit_roundoff`,
    could be off by more than `TOLERANCE` (relative): more than `TOLERANCE / SAFETY` times the condition number."""
    if unit_roundoff <= FLOAT64_ROUNDOFF:  # float64 products are the reference: nothing finer to fall back to
        return
    if not condition * unit_roundoff * SAFETY <= TOLERANCE:
        raise PrecisionError(f"{what}: condition number {condition:.3g} needs float64 products")


def row_blocks(n: int, block: int = BLOCK_ROWS) -> Iterator[slice]:
    """Slices covering `range(n)` in blocks of at most `block` rows (none when `n` is 0)."""
    for start in range(0, n, block):
        yield slice(start, min(start + block, n))


def shift(x: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(point, deviations, residual)` for the rows of `x` `(n, D)`: `point` `(D,)` (float64) is their mean rounded
    to `dtype`, `deviations` `(n, D)` in `dtype` are `x - point` (exact for features within a factor 2 of it),
    `residual` `(D,)` float64 is the deviations' mean, so that the rows' mean is `point + residual`."""
    point = x.mean(0, dtype=np.float64).astype(dtype)
    deviations = np.subtract(x, point, dtype=dtype)
    return point.astype(np.float64), deviations, deviations.mean(0, dtype=np.float64)


def centre(x: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The mean `(D,)` float64 of the rows of `x` `(n, D)` and the deviations from it `(n, D)` in `dtype`.

    The mean rounded to `dtype` leaves the deviations of `shift` a residual mean of up to half a unit in the last
    place of an offset; a second pass removes it, so that the deviations' mean is zero to rounding of the spread
    itself."""
    point, deviations, residual = shift(x, dtype)
    deviations -= residual.astype(dtype)
    return point + residual, deviations


def gram(u: np.ndarray) -> np.ndarray:
    """`u^T u` `(D, D)` float64 for deviations `u` `(n, D)`: one symmetric rank-k update in `u`'s precision
    (numpy calls BLAS syrk for a product of an array with its own transpose), widened to float64."""
    return np.asarray(u.T @ u, dtype=np.float64)


def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`u^T v` `(Du, Dv)` float64 for deviations `u` `(n, Du)`, `v` `(n, Dv)` in their precision."""
    return np.asarray(u.T @ v, dtype=np.float64)


def add_outer(matrix: np.ndarray, alpha: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`matrix += alpha * outer(a, b)` in place for a C-contiguous float64 `matrix` `(len(a), len(b))` (one BLAS
    rank-1 update, no `(Da, Db)` temporary); returns `matrix`."""
    from scipy.linalg.blas import dger

    if alpha == 0.0 or matrix.size == 0:
        return matrix
    # dger updates a Fortran-ordered matrix in place: the transpose of a C-ordered one.
    updated = dger(alpha, b, a, a=matrix.T, overwrite_a=True)
    if not np.shares_memory(updated, matrix):  # not expected for a contiguous float64 matrix; stay correct anyway
        matrix[...] = updated.T
    return matrix
