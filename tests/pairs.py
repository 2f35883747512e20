"""Paired features with a planted affine map, shared by the tests of solvers and statistics."""

from __future__ import annotations

import numpy as np


def planted(
    seed: int, n: int = 600, dx: int = 12, dy: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(x (n, dx), y (n, dy), W (dy, dx), b (dy,))` float32 with `y = x W^T + b` exactly, x off-centre."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx)).astype(np.float32) + 3.0
    w = rng.normal(size=(dy, dx)).astype(np.float32)
    b = rng.normal(size=dy).astype(np.float32) * 5
    return x, x @ w.T + b, w, b
