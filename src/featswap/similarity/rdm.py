"""Representational similarity analysis (Kriegeskorte et al. 2008), with rsatoolbox's conventions: each side's
representational dissimilarity matrix (RDM) over the N images, its upper triangle (N (N - 1) / 2 pairs)
compared between the two sides.

- distances (`calc_rdm`): `euclidean`, rsatoolbox's squared Euclidean distance divided by the width
  (`||x_i - x_j||^2 / D`); `correlation`, `1 - r` of the two rows' values across features;
- comparisons (`compare`): `spearman` (Pearson of average ranks; the default), `pearson` (rsatoolbox's `corr`),
  `kendall` (Kendall's tau-a, rsatoolbox's `tau-a`: concordant minus discordant pairs over all pairs, ties
  counting as neither).

Memory: the two triangles in float64 (8 N^2 bytes together) and the ranks or sort orders of one comparison;
above `featswap.similarity.kernels.MAX_ROWS` images it refuses (or runs on a seeded subsample).
"""

from __future__ import annotations

import numpy as np

from featswap.config import RSA_COMPARE, RSA_DISTANCES
from featswap.errors import DataError
from featswap.similarity.kernels import check_rows, nonempty64

DISTANCES = RSA_DISTANCES
COMPARISONS = RSA_COMPARE
BLOCK = 512


def _check_choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise DataError(f"rsa's {name} must be one of {', '.join(options)}; got {value!r}.")


def rdm_vector(x: np.ndarray, distance: str = "euclidean") -> np.ndarray:
    """The upper triangle (row-major, `i < j`) of the RDM of rows `x` `(N, D)`, `(N (N - 1) / 2,)` float64,
    filled in blocks of rows. Euclidean distances come from centred rows (a common offset changes no distance and
    no longer cancels digits away), as differences of Gram entries."""
    _check_choice("distance", distance, DISTANCES)
    x = x.astype(np.float64)
    n, width = x.shape
    if distance == "correlation":
        x = x - x.mean(1, keepdims=True)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if not (norms > 0).all():
            raise DataError("rsa's correlation distance is undefined: a row of features is constant.")
        x = x / norms
    else:
        x = x - x.mean(0)
    squares = np.einsum("ij,ij->i", x, x)
    out = np.empty(n * (n - 1) // 2)
    at = 0
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        block = x[start:stop] @ x[start:].T  # (b, n - start): rows start..stop against every later row
        if distance == "correlation":
            np.subtract(1.0, block, out=block)
        else:
            block *= -2.0
            block += squares[start:stop, None]
            block += squares[None, start:]
            block /= width
        upper = np.arange(block.shape[1])[None, :] > np.arange(stop - start)[:, None]  # j > i, row-major
        values = block[upper]
        out[at : at + len(values)] = values
        at += len(values)
    return out


def average_ranks(a: np.ndarray) -> np.ndarray:
    """`(M,)` float64 ranks 1..M of `a`, ties sharing their average rank (scipy's `rankdata(a)`, faster)."""
    order = np.argsort(a)
    ordered = a[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ranks = np.empty(len(a))
    if len(starts) == len(a):
        ranks[order] = np.arange(1, len(a) + 1, dtype=np.float64)
        return ranks
    counts = np.diff(np.append(starts, len(a)))
    average = starts + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a @ a) * (b @ b)))
    if not scale > 0:
        raise DataError("rsa is undefined: every pair of images is equally dissimilar on one side.")
    return float(a @ b) / scale


def _tied_pairs(sorted_values: np.ndarray) -> int:
    """Pairs of equal values in a sorted array."""
    edges = np.flatnonzero(np.diff(sorted_values)) + 1
    counts = np.diff(np.concatenate(([0], edges, [len(sorted_values)])))
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a of two vectors `(M,)`: `(concordant - discordant) / (M (M - 1) / 2)`, ties counting as
    neither, from scipy's O(M log M) tau-b and the tie counts (`tau_b sqrt((P - Ta)(P - Tb))` is the
    concordant-minus-discordant count)."""
    from scipy.stats import kendalltau

    m = len(a)
    pairs = m * (m - 1) // 2
    tied_a, tied_b = _tied_pairs(np.sort(a)), _tied_pairs(np.sort(b))
    if tied_a == pairs or tied_b == pairs:
        raise DataError("rsa is undefined: every pair of images is equally dissimilar on one side.")
    tau_b = float(kendalltau(a, b, variant="b").statistic)
    return tau_b * float(np.sqrt(float(pairs - tied_a) * float(pairs - tied_b))) / pairs


def compare_rdms(a: np.ndarray, b: np.ndarray, comparison: str = "spearman") -> float:
    """rsatoolbox's `compare` of two RDM vectors `(M,)`."""
    _check_choice("comparison", comparison, COMPARISONS)
    if comparison == "pearson":
        return _pearson(a, b)
    if comparison == "spearman":
        return _pearson(average_ranks(a), average_ranks(b))
    return kendall_tau_a(a, b)


def rsa(x: np.ndarray, y: np.ndarray, *, distance: str = "euclidean", comparison: str = "spearman") -> float:
    """RSA of `x` `(N, D1)` and `y` `(N, D2)`: the `comparison` (spearman, pearson, kendall tau-a) of their
    RDMs by `distance` (euclidean, correlation), as rsatoolbox computes them. N >= 3 images."""
    _check_choice("distance", distance, DISTANCES)
    _check_choice("comparison", comparison, COMPARISONS)
    x, y = nonempty64(x, y, 3, "rsa")
    check_rows(len(x), "rsa")
    return compare_rdms(rdm_vector(x, distance), rdm_vector(y, distance), comparison)
