"""Paired features of two models on the same images, in memory or streamed from the feature store.

Solvers read training data only through this interface, so closed-form solvers can stream any number of
samples in row chunks (memory O(chunk * (Dx + Dy))) and iterative ones can load what they need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import numpy as np

from featswap.errors import DataError
from featswap.mapping.moments import Moments

DEFAULT_CHUNK_ROWS = 16384

R = TypeVar("R")

#: A statistic of one chunk: `fn(x (m, dx), y (m, dy), start, device)`, `start` the chunk's first row.
ChunkFn = Callable[[np.ndarray, np.ndarray, int, str], R]


class PairedFeatures(Protocol):
    """Rows are images; `x` are source features `(n, dx)`, `y` target features `(n, dy)`, both of `dtype`
    (float32, or float64 for arrays a user gives in float64)."""

    n: int
    dx: int
    dy: int
    dtype: np.dtype

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(x (m, dx), y (m, dy))` blocks covering all rows in order."""
        ...

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows at sorted indices `rows` `(k,)`: `(x (k, dx), y (k, dy))`."""
        ...

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        """`fn` of every chunk of `chunks()`, in order (computed here, or by workers of a cluster)."""
        ...

    def split_moments(self, holdout: float, seed: int, normalize: bool) -> tuple[Moments, Moments] | None:
        """The moments of the fitting and the held-out rows (`split_rows(n, holdout, seed)`) when these paired
        features already have them (computed once for both directions of a pair), else None."""
        ...


def map_chunks_here(pairs: PairedFeatures, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
    """`PairedFeatures.map_chunks` in this process, chunk after chunk; on a torch device (a GPU), the next chunks
    are read from the store while the device computes (`featswap.mapping.device.prefetched`)."""
    chunks = pairs.chunks()
    if device != "cpu":
        from featswap.mapping.device import prefetched

        chunks = prefetched(chunks)
    start = 0
    for x, y in chunks:
        yield fn(x, y, start, device)
        start += len(x)


class InMemoryPairs:
    """Paired features held as two arrays `x (n, dx)`, `y (n, dy)`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.x, self.y = check_paired(x, y)
        self.n, self.dx = self.x.shape
        self.dy = self.y.shape[1]
        self.dtype = self.x.dtype
        self.chunk_rows = chunk_rows

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, self.n, self.chunk_rows):
            yield self.x[start : start + self.chunk_rows], self.y[start : start + self.chunk_rows]

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.x[rows], self.y[rows]

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        return map_chunks_here(self, fn, device)

    def split_moments(self, holdout: float, seed: int, normalize: bool) -> tuple[Moments, Moments] | None:
        return None


class Direction:
    """One direction of a pair of models whose moments are computed once for both directions: the paired
    features `base` (x = first model, y = second), read as they are (`forward`) or swapped; `shared(holdout,
    seed, swapped)` gives the `(fit, held-out)` moments of the map x -> y (or y -> x, `swapped`)."""

    def __init__(
        self,
        base: PairedFeatures,
        forward: bool,
        shared: Callable[[float, int, bool], tuple[Moments, Moments]],
    ) -> None:
        self.base, self.forward, self.shared = base, forward, shared
        self.n, self.dtype = base.n, base.dtype
        self.dx, self.dy = (base.dx, base.dy) if forward else (base.dy, base.dx)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for x, y in self.base.chunks():
            yield (x, y) if self.forward else (y, x)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.base.take(rows)
        return (x, y) if self.forward else (y, x)

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        if self.forward:
            return self.base.map_chunks(fn, device)
        return self.base.map_chunks(functools.partial(_swapped, fn=fn), device)

    def split_moments(self, holdout: float, seed: int, normalize: bool) -> tuple[Moments, Moments] | None:
        if normalize:  # unit-length targets differ per direction: computed for this direction alone
            return None
        return self.shared(holdout, seed, not self.forward)


def _swapped(x: np.ndarray, y: np.ndarray, start: int, device: str, fn: ChunkFn[R]) -> R:
    return fn(y, x, start, device)


def feature_dtype(*arrays: np.ndarray) -> np.dtype:
    """float64 when any array is float64 (kept: computing in float64 is what its user asked for), else float32
    (smaller integer and float types widen to it without loss)."""
    return np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def check_paired(source: np.ndarray, target: np.ndarray, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate paired feature matrices `(N, Dx)` and `(N, Dy)`; returns them as float32, or as float64 when
    either is float64. `finite=False` leaves NaN and inf to the caller: one whose products carry them (a product
    with a NaN or inf is never finite) calls `refuse_nonfinite` when they are not finite, and saves a pass."""
    source, target = np.asarray(source), np.asarray(target)
    for name, array in (("source", source), ("target", target)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
            raise DataError(f"The {name} features must be real numbers; got an array of {array.dtype}.")
    if source.ndim != 2 or target.ndim != 2:
        raise DataError(f"Features must be 2-D (samples, features); got shapes {source.shape} and {target.shape}.")
    if len(source) != len(target):
        raise DataError(
            f"Got {len(source)} rows in the source features but {len(target)} in the target; rows must be the "
            "same images in the same order."
        )
    if finite:
        refuse_nonfinite(source, target)
    dtype = feature_dtype(source, target)
    return source.astype(dtype, copy=False), target.astype(dtype, copy=False)


def refuse_nonfinite(source: np.ndarray, target: np.ndarray) -> None:
    """A DataError naming the first row of `source` `(N, Dx)` or `target` `(N, Dy)` that holds NaN or inf."""
    for name, array in (("source", source), ("target", target)):
        if not np.isfinite(array).all():
            row = int(np.argwhere(~np.isfinite(array))[0, 0])
            raise DataError(f"The {name} features hold NaN or inf, first in row {row}.")


#: In-memory solvers refuse to load more than this share of the machine's physical memory.
MEMORY_SHARE = 0.5


def physical_memory() -> int:
    """Bytes of physical memory of this machine."""
    import os

    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_fits_in_memory(rows: int, dx: int, dy: int, solver: str, total: int | None = None) -> None:
    """Refuse to hold `rows` x (dx + dy) float32 features when they would take more than `MEMORY_SHARE`
    of physical memory (`total`, default this machine's)."""
    need = rows * (dx + dy) * 4
    total = physical_memory() if total is None else total
    if need > MEMORY_SHARE * total:
        raise DataError(
            f"The {solver} solver holds all {rows:,} training rows in memory: {need / 2**30:.1f} GiB of the "
            f"machine's {total / 2**30:.1f} GiB. Use the refine or lstsq solver (they stream from the store), "
            "or fit on fewer rows."
        )
