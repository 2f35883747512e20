"""Paired features of two models on one collection of a store, streamed in row blocks (the `PairedFeatures`
protocol of `featswap.mapping.paired`, followed without importing it: the store sits below mapping)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from featswap.mapping.moments import Moments
    from featswap.mapping.paired import ChunkFn
    from featswap.store.feature_reading import FeatureReading

R = TypeVar("R")


class StorePairs:
    """Paired features read from a store: `chunks()` streams row blocks, `take(rows)` reads selected rows."""

    def __init__(
        self, store: FeatureReading, collection: str, source: str, target: str, rows: int | None = None
    ) -> None:
        for name in (source, target):
            store.require_features(collection, name)
        self.store, self.collection, self.source, self.target = store, collection, source, target
        (self._stored, self.dx), (_, self.dy) = (store.stored_shape(collection, m) for m in (source, target))
        self.n = int(store.kept(collection).sum())
        self.dtype = np.dtype(np.float32)
        # One stored chunk per block keeps memory at O(chunk rows * (Dx + Dy)) and each chunk read once.
        self.rows = rows or store.chunk_rows(collection, source)

    @property
    def n_blocks(self) -> int:
        """Blocks of `rows` stored rows each (fewer rows when samples were skipped)."""
        return -(-self._stored // self.rows)

    def block(self, index: int, kept: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Block `index` of `chunks()`: `(x (k, dx), y (k, dy))`; `kept` as in `FeatureStore.read_rows`."""
        start, stop = index * self.rows, (index + 1) * self.rows
        kept = self.store.kept(self.collection)[start:stop] if kept is None else kept
        return (
            self.store.read_rows(self.collection, self.source, start, stop, kept=kept),
            self.store.read_rows(self.collection, self.target, start, stop, kept=kept),
        )

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        kept = self.store.kept(self.collection)
        for index in range(self.n_blocks):
            yield self.block(index, kept[index * self.rows : (index + 1) * self.rows])

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        """`fn(x, y, start, device)` of every chunk, in this process."""
        start = 0
        for x, y in self.chunks():
            yield fn(x, y, start, device)
            start += len(x)

    def split_moments(self, holdout: float, seed: int, normalize: bool) -> tuple[Moments, Moments] | None:
        return None

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.store.take_rows(self.collection, self.source, rows),
            self.store.take_rows(self.collection, self.target, rows),
        )
