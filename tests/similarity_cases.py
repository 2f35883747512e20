"""The inputs on which featswap's similarity measures are checked against their reference implementations.

`cases()` draws them from one seed; the reference script (run once, outside the repository, on google/svcca,
platonic-rep, rsatoolbox and Kornblith et al.'s notebook code) imports this very module, so that both sides see
the same float32 values. Only the numbers it produced are kept: tests/fixtures/similarity_references.json.

Each case exercises a convention: `unequal` widths (24 and 40), a common `offset` of 1e4 added to both,
`rank_deficient` features (a width of 16 spanning 10 directions: linear combinations, a duplicated and a
constant column), `duplicated_rows` (60 of 160 rows repeat earlier ones), and `barely` (46 rows for widths
20 + 24: N barely above D1 + D2).
"""

from __future__ import annotations

import numpy as np

SEED = 20261207
RECIPE = (
    "numpy.random.default_rng(20261207); planted(n, dx, dy, latent, noise): z ~ N(0,1) (n, latent), "
    "x = z A + noise e, y = z B + noise f with A, B, e, f standard normal; drawn in this order: unequal = "
    "planted(240, 24, 40, 8, 0.7); rank_deficient = planted(200, 10, 16, 6, 0.5) with x widened by x[:, :3] C "
    "(C (3, 4) normal), x[:, :1] and a column of 2.0; duplicated_rows = planted(100, 12, 20, 5, 0.6) indexed by "
    "concat(arange(100), integers(0, 100, 60)); barely = planted(46, 20, 24, 6, 0.8); every array cast to "
    "float32; offset = the float32 unequal pair + float32(1e4)."
)


def cases(seed: int = SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{name: (x (N, D1), y (N, D2))}` float32, drawn as `RECIPE` says."""
    rng = np.random.default_rng(seed)

    def planted(n: int, dx: int, dy: int, latent: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        z = rng.standard_normal((n, latent))
        x = z @ rng.standard_normal((latent, dx)) + noise * rng.standard_normal((n, dx))
        y = z @ rng.standard_normal((latent, dy)) + noise * rng.standard_normal((n, dy))
        return x, y

    out = {"unequal": planted(240, 24, 40, 8, 0.7)}
    x, y = planted(200, 10, 16, 6, 0.5)
    x = np.hstack([x, x[:, :3] @ rng.standard_normal((3, 4)), x[:, :1], np.full((200, 1), 2.0)])
    out["rank_deficient"] = (x, y)
    x, y = planted(100, 12, 20, 5, 0.6)
    rows = np.concatenate([np.arange(100), rng.integers(0, 100, 60)])
    out["duplicated_rows"] = (x[rows], y[rows])
    out["barely"] = planted(46, 20, 24, 6, 0.8)
    found = {name: (a.astype(np.float32), b.astype(np.float32)) for name, (a, b) in out.items()}
    x, y = found["unequal"]
    found["offset"] = (x + np.float32(1e4), y + np.float32(1e4))
    return found
