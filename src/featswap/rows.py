"""Seeded choices of rows (images), shared by everything that holds rows out or samples them: the solvers
(a held-out tenth to choose a ridge strength or to stop), the similarity measures (`map_r2`) and stitching.
It sits below all of them, so that none imports another for a row split.
"""

from __future__ import annotations

import functools

import numpy as np

from featswap.errors import DataError


def sample_rows(n: int, max_rows: int | None, seed: int) -> np.ndarray:
    """Sorted row indices: all `n` rows, or a seeded uniform subset of `max_rows` of them."""
    if max_rows is None or max_rows >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def split_rows(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of `n` rows into sorted `(fit, held_out)` indices, `holdout` the held-out fraction."""
    if not 0.0 < holdout < 1.0:
        raise DataError(f"holdout must be between 0 and 1 (exclusive); got {holdout}.")
    if n < 2:
        raise DataError(f"{n} sample(s) are too few to hold any out; use at least 2.")
    rng = np.random.default_rng(seed)
    held = rng.random(n) < holdout
    if held.all() or not held.any():  # few rows: hold out exactly one, seeded
        held = np.zeros(n, dtype=bool)
        held[rng.integers(n)] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


@functools.lru_cache(maxsize=4)
def held_out_mask(n: int, holdout: float, seed: int) -> np.ndarray:
    """`(n,)` bool, read-only: True on the held-out rows of `split_rows(n, holdout, seed)`."""
    mask = np.zeros(n, dtype=bool)
    mask[split_rows(n, holdout, seed)[1]] = True
    mask.flags.writeable = False
    return mask
