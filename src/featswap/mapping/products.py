"""Centred products of row blocks at the speed of float32 BLAS, with the accuracy of float64 sums.

Every streamed statistic (`Moments`, `GramStats`) is built from chunks of rows. A chunk in memory is centred on
its exact mean (`Centring`: the mean rounded to the features' precision is subtracted first, then the rounded
remainder, so that features sharing an offset of 1e6 keep their spread) block by block, and each block's
deviations are multiplied in the features' own precision (float32 for stored features: the BLAS fast path, with
`u.T @ u` a symmetric rank-k update, half the work of a general product). Every block of a chunk is centred on the
same point, so the products simply add up in float64; chunks are merged with Chan, Golub and LeVeque's pairwise
update. Centred float32 products carry a relative error of about 1e-7 of the spread; the float64 sums add none.
Where only products are needed (linear CKA, Procrustes, `GramStats.of`), blocks are shifted by a point near the
mean (the mean of a sample of rows, `Shift`), one subtraction per element and no pass for the mean, which is added up
from the deviations as they are written; the products are corrected exactly in float64 for the residual between
that point and the mean.

That keeps well-conditioned results (linear and debiased CKA, the Procrustes distance, SVCCA of well-separated
directions) within 1e-6 of a float64 computation on centred data. Results that amplify the products' rounding by
a condition number (least-squares weights, CCA's whitening) check it: statistics record the unit roundoff of
their products (`roundoff`), and a consumer whose condition number times that roundoff exceeds `TOLERANCE`
raises `PrecisionError`, on which its caller computes the statistics again with float64 products (`precision=
"float64"`). float64 features are always multiplied in float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: Bytes of deviations per block of rows (both sides together), in two buffers reused from block to block. At
#: 3,584 float32 features that is 18,724 rows. Each block's products are added to the float64 sums, a pass over
#: Dx^2 + Dy^2 + Dx Dy values: with 64 MiB blocks, linear CKA over 50,000 x (1536 + 2048) took 1.16x the bare
#: products, with 256 MiB 1.07x (2-core AMD EPYC, 2026-12-08). A chunk smaller than a block needs no more.
BLOCK_BYTES = 256 * 2**20

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
    roundoff exceeds `TOLERANCE`): compute them again with `precision="float64"`. Never reaches a command-line user:
    every consumer that can raise it has a caller that recomputes. In Python, `GramStats` made with
    `precision="float32"` raises it from CCA, SVCCA and small Procrustes distances; `PairStats` and the functions
    of `featswap.similarity` recompute."""


def check_precision(precision: object) -> str:
    """`precision` if it is one of `PRECISIONS`, else a SpecError naming them."""
    from featswap.validate import choice

    return choice("precision", precision, PRECISIONS)


def compute_dtype(*arrays: np.ndarray, precision: str = "float32") -> np.dtype:
    """float64 when `precision` is "float64" or any array is float64 (its user asked for it), else float32. Any
    other `precision` than those of `PRECISIONS` is refused (a misspelt "float46" would otherwise mean float32)."""
    check_precision(precision)
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


def row_blocks(n: int, block: int) -> Iterator[slice]:
    """Slices covering `range(n)` in blocks of at most `block` rows (none when `n` is 0)."""
    for start in range(0, n, block):
        yield slice(start, min(start + block, n))


def block_rows(width: int, dtype: np.dtype, budget: int = BLOCK_BYTES) -> int:
    """Rows per block so that a block of `width` features in `dtype` holds about `budget` bytes (at least 256)."""
    return max(256, budget // max(1, width * dtype.itemsize))


@dataclass(frozen=True)
class Centring:
    """How to centre the rows of one in-memory chunk `(n, D)` in `dtype`, block by block, on its exact mean.

    `mean` `(D,)` float64 is the rows' mean; `point` is that mean rounded to `dtype` and `rest` the rounded
    remainder, both `(D,)` in `dtype`. `deviations` subtracts the point (exact for features within a factor 2 of
    it: features sharing an offset of 1e6 keep their spread) and then the remainder, so that every block is centred
    on the same point, `point + rest`, within a unit roundoff of `dtype` of `mean - point` (below 1e-14 of the
    offset): products of all blocks then add up, in float64, with no merge update between them."""

    mean: np.ndarray
    point: np.ndarray
    rest: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, dtype: np.dtype) -> Centring:
        mean = x.mean(0, dtype=np.float64)
        point = mean.astype(dtype)
        return cls(mean, point, (mean - point).astype(dtype))

    def deviations(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """`rows - mean` `(m, D)` in `dtype` for rows `(m, D)` of the chunk, written into the first `m` rows of `out`
        when given (a buffer reused from block to block: fresh pages would cost the kernel more than the
        subtraction)."""
        target = None if out is None else out[: len(rows)]
        deviations = np.subtract(rows, self.point, out=target, dtype=self.point.dtype)
        if self.rest.any():  # in float64 the point is the mean: nothing left to subtract
            deviations -= self.rest
        return deviations


def centre(x: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The mean `(D,)` float64 of the rows of `x` `(n, D)` and the deviations from it `(n, D)` in `dtype`."""
    centring = Centring.of(x, dtype)
    return centring.mean, centring.deviations(x)


def paired_blocks(
    x: np.ndarray, y: np.ndarray, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, Iterator[tuple[np.ndarray, np.ndarray]]]:
    """The means `(Dx,)`, `(Dy,)` float64 of paired rows `x` `(n, Dx)`, `y` `(n, Dy)` (n >= 1) and their deviations
    from them in `dtype`, `(m, Dx)` and `(m, Dy)`, in blocks of about `BLOCK_BYTES` (`Centring`). The blocks are
    views of two buffers that the next block overwrites: use each before asking for the next."""
    cx, cy = Centring.of(x, dtype), Centring.of(y, dtype)
    rows = min(len(x), block_rows(x.shape[1] + y.shape[1], dtype))
    ux, uy = np.empty((rows, x.shape[1]), dtype), np.empty((rows, y.shape[1]), dtype)
    blocks = ((cx.deviations(x[r], ux), cy.deviations(y[r], uy)) for r in row_blocks(len(x), rows))
    return cx.mean, cy.mean, blocks


def scatter_matrices(
    x: np.ndarray, y: np.ndarray, dtype: np.dtype, shifts: tuple[Shift, Shift] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred scatter matrices `Cxx (Dx, Dx)`, `Cyy (Dy, Dy)`, `Cxy (Dx, Dy)` float64 of paired rows `x` `(n, Dx)`,
    `y` `(n, Dy)`: products in `dtype` block by block, added up in float64 (in float64 where float32 products
    overflow: `wider`). Nothing else is computed: the three products are all that linear CKA needs."""
    cxx, cyy, cxy = np.zeros((x.shape[1],) * 2), np.zeros((y.shape[1],) * 2), np.zeros((x.shape[1], y.shape[1]))
    if len(x):
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below, with its own message
            cx, cy, blocks = shifted_blocks(x, y, dtype, shifts)
            for u, v in blocks:  # deviations from a point `residual` away from the mean: corrected below
                cxx += u.T @ u  # numpy calls BLAS syrk for an array times its own transpose: half the work
                cyy += v.T @ v
                cxy += u.T @ v
            n, rx, ry = len(x), cx.residual, cy.residual
            add_outer(cxx, -n, rx, rx)  # sum (u + r)(u + r)^T = C + n r r^T, the deviations u summing to 0
            add_outer(cyy, -n, ry, ry)
            add_outer(cxy, -n, rx, ry)
    if not all(np.isfinite(m).all() for m in (cxx, cyy, cxy)):
        from featswap.mapping.paired import refuse_nonfinite

        refuse_nonfinite(x, y)  # NaN or inf in the features (left to this check by the caller), else an overflow
        return scatter_matrices(x, y, wider(dtype))
    if len(x) and shifts is None and (cx.far(np.diag(cxx)) or cy.far(np.diag(cyy))):
        return scatter_matrices(x, y, dtype, (cx.exact(), cy.exact()))  # a second pass, about the exact means
    return cxx, cyy, cxy


def shifted_blocks(
    x: np.ndarray, y: np.ndarray, dtype: np.dtype, shifts: tuple[Shift, Shift] | None = None
) -> tuple[Shift, Shift, Iterator[tuple[np.ndarray, np.ndarray]]]:
    """Paired rows `x` `(n, Dx)`, `y` `(n, Dy)` (n >= 1) shifted by a point near their means (`Shift.of`, or the
    `shifts` given), in blocks `(m, Dx)`, `(m, Dy)` of `dtype` of about `BLOCK_BYTES`: one subtraction per element,
    and no pass of its own for the mean, which each `Shift` accumulates from the blocks' deviations. A consumer
    corrects the products for `Shift.residual` exactly in float64 once every block is used, and computes them again
    from `Shift.exact` shifts where a point turned out to be far from its mean (`Shift.far`). The blocks are views of
    two buffers that the next block overwrites: use each before asking for the next."""
    sx, sy, rows, (ux, uy) = _shift_buffers(x, y, dtype, shifts, extra=0)
    blocks = ((sx.shifted(x[r], ux), sy.shifted(y[r], uy)) for r in row_blocks(len(x), rows))
    return sx, sy, blocks


def normed_blocks(
    x: np.ndarray, y: np.ndarray, dtype: np.dtype, shifts: tuple[Shift, Shift] | None = None
) -> tuple[Shift, Shift, Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]]:
    """`shifted_blocks` with each row's squared norm: blocks `(w (m, Dx + 1), z (m, Dy + 1), a (m,), b (m,))`, where
    `a = ||w_i||^2` and `b = ||z_i||^2` are summed in float64 (each square exact) while the row is in cache, and
    rounded to `dtype` as the blocks' last column, so that their products carry `sum w a`, `sum z a` and the like.
    Sums of the norms' own products (`sum a b`) belong in float64 from `a`, `b`: estimators that cancel them
    against the scatter (debiased CKA with more features than rows) amplify their rounding."""
    sx, sy, rows, (ux, uy, na, nb) = _shift_buffers(x, y, dtype, shifts, extra=1)
    blocks = (
        (sx.shifted(x[r], ux, na), sy.shifted(y[r], uy, nb), na[: r.stop - r.start], nb[: r.stop - r.start])
        for r in row_blocks(len(x), rows)
    )
    return sx, sy, blocks


def _shift_buffers(
    x: np.ndarray, y: np.ndarray, dtype: np.dtype, shifts: tuple[Shift, Shift] | None, extra: int
) -> tuple[Shift, Shift, int, tuple[np.ndarray, ...]]:
    """The shifts (`Shift.of`, or those given), the rows per block and the buffers of `shifted_blocks` (`extra` = 0)
    or `normed_blocks` (`extra` = 1: one more column each, and two float64 buffers for the norms)."""
    sx, sy = shifts if shifts is not None else (Shift.of(x, dtype), Shift.of(y, dtype))
    rows = min(len(x), block_rows(x.shape[1] + y.shape[1], dtype))
    buffers = [np.empty((rows, x.shape[1] + extra), dtype), np.empty((rows, y.shape[1] + extra), dtype)]
    if extra:
        buffers += [np.empty(rows), np.empty(rows)]
    return sx, sy, rows, tuple(buffers)


#: Rows whose mean `Shift.of` takes as its point: drawn at random (seeded), so that no order of the rows (sorted by
#: class, or periodic, as tokens stored image by image) can align with the sample.
SHIFT_SAMPLE = 4096

#: Rows per tile of a block that `Shift.shifted` subtracts and sums while the tile is still in the CPU's cache.
SHIFT_TILE = 256

#: How far a point may sit from the mean, as `n r_j^2` against the centred scatter `C_jj` of any feature `j`: the
#: deviations' products then round at most `1 + SHIFT_FAR` times as coarsely as centred ones (`Shift.far`).
SHIFT_FAR = 1 / 16


class Shift:
    """Deviations of one in-memory chunk's rows `(n, D)` from a point near their mean, and that mean.

    `Shift.of` takes the mean of `SHIFT_SAMPLE` rows drawn at random (all rows of a smaller chunk), rounded to
    `dtype`: about `1/sqrt(SHIFT_SAMPLE)` of the spread from the mean, wherever the features sit (an offset of 1e6
    included), so that the deviations' products lose nothing to an offset. `shifted` writes each block's
    deviations and adds them up in float64 tile by tile (the tile is still in cache), so that once every row is
    shifted, `mean` and `residual` (the deviations' own mean) are exact to float64 rounding of the spread, without
    a pass of their own over the chunk. A sample can still land far from the mean (a few rows far from the others);
    `far` says so from the products, and the consumer computes them again about the exact mean (`exact`)."""

    def __init__(self, point: np.ndarray, rows: int, norm_scale: float | None = None) -> None:
        self.point = point
        self.rows = rows
        #: The power of two the norm column is multiplied by (`shifted`): set from the first tile's norms.
        self.norm_scale = norm_scale
        self._sums = np.zeros(len(point))
        self._seen = 0

    @classmethod
    def of(cls, x: np.ndarray, dtype: np.dtype) -> Shift:
        sample = x
        if len(x) > SHIFT_SAMPLE:
            sample = x[np.sort(np.random.default_rng(0).integers(0, len(x), SHIFT_SAMPLE))]
        return cls(sample.mean(0, dtype=np.float64).astype(dtype), len(x))

    def shifted(self, rows: np.ndarray, out: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
        """`rows - point` `(m, D)` in the point's dtype, written into the first `m` rows of `out` `(>= m, D)`, and
        summed. With `norms` `(>= m,)` float64, `out` has one more column `(>= m, D + 1)`: each row's squared norm,
        summed in float64, goes into `norms` and, times `norm_scale` and rounded, into that column. `norm_scale` is
        the power of two nearest the inverse of the first tile's mean squared norm: exact, so that products with
        the column are those of the norms, exactly scaled, yet neither underflow nor overflow in float32 for tiny or
        huge features (products of a deviation and a norm scale with the cube of the features). Returns `out`'s
        first `m` rows."""
        target, width = out[: len(rows)], len(self.point)
        for tile in row_blocks(len(rows), SHIFT_TILE):
            deviations = np.subtract(rows[tile], self.point, out=target[tile, :width], dtype=self.point.dtype)
            self._sums += np.add.reduce(deviations, axis=0, dtype=np.float64)
            if norms is not None:
                np.square(deviations, dtype=np.float64).sum(axis=1, out=norms[tile])
                if self.norm_scale is None:
                    self.norm_scale = inverse_power_of_two(float(norms[tile].mean()))
                target[tile, width] = norms[tile] * self.norm_scale
        self._seen += len(rows)
        return target

    @property
    def residual(self) -> np.ndarray:
        """The mean of the deviations `(D,)` float64: `mean - point`, for a consumer's exact correction."""
        if self._seen != self.rows:
            raise RuntimeError(f"Shift.residual read after {self._seen} of {self.rows} rows were shifted")
        return self._sums / self.rows

    @property
    def mean(self) -> np.ndarray:
        """The rows' mean `(D,)` float64."""
        return self.point.astype(np.float64) + self.residual

    def far(self, scatter_diagonal: np.ndarray) -> bool:
        """Whether the point sat too far from the mean for any feature (`SHIFT_FAR`), given the centred scatter's
        diagonal `(D,)` (a constant feature, 0 there, is never far: its point is its value)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(np.any(self.rows * self.residual**2 > SHIFT_FAR * scatter_diagonal))

    def exact(self) -> Shift:
        """A fresh shift by the mean found (rounded to the point's dtype): the point of a second pass."""
        return Shift(self.mean.astype(self.point.dtype), self.rows, self.norm_scale)


def inverse_power_of_two(value: float) -> float:
    """The power of two nearest `1 / value` in log scale, within float64's range (1.0 for a value that is 0,
    negative, inf or NaN)."""
    if not (np.isfinite(value) and value > 0):
        return 1.0
    return float(2.0 ** min(1000, max(-1000, -round(float(np.log2(value))))))


def wider(dtype: np.dtype) -> np.dtype:
    """The dtype to multiply in after products in `dtype` overflowed (features of finite values, each product of two
    of them, or their sums, beyond its range): float64 after float32; after float64, a `DataError`."""
    from featswap.errors import DataError

    if dtype == np.float32:
        return np.dtype(np.float64)
    raise DataError(
        "The features are too large to multiply even in float64 (their products overflow). Divide them by a "
        "constant first: every similarity measure is unchanged by it."
    )


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
