"""Paired features of a store whose chunk statistics run as Ray tasks, one task per block of rows.

Each task opens the store read-only at its path (so every node must reach it there: a shared filesystem),
reads its block of both models' features and returns `fn(x, y, start, "cpu")`: float64 moments or Gram
statistics of O(D^2) floats, whatever the number of rows. Results come back in block order and are merged
by the caller with the same `merge` the local path uses, so a Ray fit or similarity equals the local one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from featswap.engines.ray.connect import cluster_resources, connected_ray, featswap_errors
from featswap.mapping.moments import Moments
from featswap.mapping.paired import ChunkFn, R
from featswap.store import FeatureStore, StorePairs


def _block_statistic(
    path: str,
    collection: str,
    source: str,
    target: str,
    rows: int,
    index: int,
    start: int,
    kept: np.ndarray,
    fn: ChunkFn[R],
) -> R:
    """A Ray task: `fn` of block `index` (stored rows `index * rows ...`, of which `kept` are used), `start`
    the position of its first kept row among all kept rows. The driver has checked both models complete, so
    the task reads just its rows."""
    store = FeatureStore.open(path)
    first, stop = index * rows, (index + 1) * rows
    x, y = (store.read_rows(collection, name, first, stop, kept=kept) for name in (source, target))
    return fn(x, y, start, "cpu")


class RayPairs:
    """`StorePairs` whose `map_chunks` runs on the connected Ray cluster; `chunks` and `take` read here.

    At most `max_in_flight` tasks (default: twice the cluster's CPUs) run or wait at once, which bounds the
    results held in Ray's object store; they are merged in block order as they arrive."""

    def __init__(self, pairs: StorePairs, max_in_flight: int | None = None) -> None:
        connected_ray()
        self.pairs = pairs
        self.n, self.dx, self.dy, self.dtype = pairs.n, pairs.dx, pairs.dy, pairs.dtype
        cpus = int(cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or max(2, 2 * cpus)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.pairs.chunks()

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.pairs.take(rows)

    def split_moments(self, holdout: float, seed: int, normalize: bool) -> tuple[Moments, Moments] | None:
        return None

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        """`fn` of every block, each a Ray task on a worker's CPU (`device` applies to the local path only)."""
        ray = connected_ray()
        task = ray.remote(num_cpus=1)(_block_statistic)
        p = self.pairs
        kept = p.store.kept(p.collection)
        path = p.store.location
        pending: deque[Any] = deque()
        start = 0
        with featswap_errors():
            for index in range(p.n_blocks):
                block_kept = kept[index * p.rows : (index + 1) * p.rows]
                pending.append(
                    task.remote(path, p.collection, p.source, p.target, p.rows, index, start, block_kept, fn)
                )
                start += int(block_kept.sum())
                if len(pending) >= self.max_in_flight:
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
