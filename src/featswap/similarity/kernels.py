"""Measures of N x N kernels between images: `rbf_cka` (plain and debiased, Kornblith et al. 2019) and `cknna`
(Huh et al. 2024, platonic-rep's `AlignmentMetrics.cknna`).

`rbf_cka` holds two N x N float64 kernels (and a copy of one for its median, 27 bytes per pair of images in all):
`nxn_bytes(n)` says how much the worst N x N measure needs, and
`check_rows` refuses above `MAX_ROWS` rather than letting the machine swap. `cknna` keeps only each row's `k`
nearest neighbours (found in blocks of rows, as `mutual_knn`), so its memory grows as N k, not N^2.
"""

from __future__ import annotations

import numpy as np

from featswap.catalog.measures import MAX_ROWS, NXN_BYTES_PER_PAIR
from featswap.errors import DataError
from featswap.mapping.paired import check_paired

#: Default bandwidth of `rbf_cka`, as a fraction of the median distance (Kornblith et al.'s 0.8).
RBF_SIGMA = 0.8
#: Neighbours of `cknna` by default (platonic-rep's `topk=10`).
KNN_K = 10
#: platonic-rep's `cknna` adds this to its denominator; kept so that the values are theirs.
CKNNA_EPSILON = 1e-6


def nonempty64(x: np.ndarray, y: np.ndarray, least: int, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """`check_paired`, at least `least` rows, as float64 arrays `(N, D1)`, `(N, D2)`."""
    x, y = check_paired(x, y)
    if len(x) < least:
        raise DataError(f"{measure} needs at least {least} samples; got {len(x)}.")
    return x.astype(np.float64), y.astype(np.float64)


def rbf_gram(x: np.ndarray, sigma: float = RBF_SIGMA) -> np.ndarray:
    """`(N, N)` float64 `exp(-d_ij^2 / (2 sigma^2 median(d^2)))` of rows `x` `(N, D)`, the median over all N^2
    squared distances, the zero diagonal included (Kornblith et al.'s `gram_rbf(x, threshold=sigma)`). The rows
    are centred first: distances do not change, and a large common offset no longer cancels digits away."""
    if not sigma > 0:
        raise DataError(f"rbf_cka's bandwidth sigma must be > 0; got {sigma!r}.")
    x = x - x.mean(0)
    gram = x @ x.T
    norms = np.diagonal(gram).copy()
    gram *= -2.0
    gram += norms[:, None]
    gram += norms[None, :]
    median = float(np.median(gram))
    if not median > 0:
        raise DataError("rbf_cka is undefined: at least half of the pairs of images have identical features.")
    gram *= -1.0 / (2.0 * sigma**2 * median)
    np.exp(gram, out=gram)
    return gram


def centre_gram(gram: np.ndarray, debiased: bool) -> np.ndarray:
    """Centre a symmetric `(N, N)` kernel in place as Kornblith et al.'s `center_gram` does: doubly centred, or
    (`debiased`) the U-statistic form of Szekely and Rizzo (2014) whose inner product is the unbiased HSIC."""
    n = len(gram)
    if debiased:
        np.fill_diagonal(gram, 0.0)
        means = gram.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
    else:
        means = gram.mean(0)
        means -= means.mean() / 2
    gram -= means[:, None]
    gram -= means[None, :]
    if debiased:
        np.fill_diagonal(gram, 0.0)
    return gram


def rbf_cka(x: np.ndarray, y: np.ndarray, *, sigma: float = RBF_SIGMA, debiased: bool = False) -> float:
    """CKA of Gaussian kernels of `x` `(N, D1)` and `y` `(N, D2)` with bandwidth `sigma` times the median
    distance (Kornblith et al. 2019; `debiased`: from unbiased HSIC). Memory: `nxn_bytes(N)`."""
    x, y = nonempty64(x, y, 4 if debiased else 2, "rbf_cka")
    check_rows(len(x), "rbf_cka")
    kx = centre_gram(rbf_gram(x, sigma), debiased)
    ky = centre_gram(rbf_gram(y, sigma), debiased)
    hsic = float(np.dot(kx.ravel(), ky.ravel()))
    scale = float(np.linalg.norm(kx) * np.linalg.norm(ky))
    if not scale > 0:
        raise DataError("rbf_cka is undefined: one kernel has no variance after centring.")
    return hsic / scale


def debiased_rbf_cka(x: np.ndarray, y: np.ndarray, *, sigma: float = RBF_SIGMA) -> float:
    return rbf_cka(x, y, sigma=sigma, debiased=True)


def nxn_bytes(n: int) -> int:
    """Peak bytes of the N x N measures on `n` rows, the worst of them (`NXN_BYTES_PER_PAIR`)."""
    return NXN_BYTES_PER_PAIR * n * n


def check_rows(n: int, measure: str, limit: int = MAX_ROWS) -> None:
    """Refuse an N x N measure above `limit` rows, saying what it would need."""
    if n > limit:
        raise DataError(
            f"{measure} holds N x N matrices: {nxn_bytes(n) / 2**30:.1f} GiB for {n:,} images, above its limit of "
            f"{limit:,} images ({nxn_bytes(limit) / 2**30:.1f} GiB); pass --nxn-rows {limit} (or fewer) to compute "
            "it on a seeded random subsample of the images."
        )


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of `x` `(N, D)` over their L2 norms, float64, as `torch.nn.functional.normalize` (norms below 1e-12
    count as 1e-12)."""
    x = x.astype(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbours(unit: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """`(N, k)` indices of each row's `k` largest inner products with the others (itself excluded), as platonic-rep
    finds them (`torch.topk` on the kernel row with its diagonal set to -inf), in blocks of rows."""
    import torch

    t = torch.as_tensor(unit)
    n = len(t)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        rows = torch.arange(start, min(start + block, n))
        sims = t[rows] @ t.T
        sims[torch.arange(len(rows)), rows] = -torch.inf
        out[start : start + len(rows)] = sims.topk(k, dim=1).indices.numpy()
    return out


def _pair_products(unit: np.ndarray, i: np.ndarray, j: np.ndarray, block: int = 16_384) -> np.ndarray:
    """`(P,)` inner products of rows `i` and `j` of `unit` `(N, D)`, `block` pairs at a time (the rows gathered for
    all N k pairs at once would take N k D floats)."""
    out = np.empty(len(i))
    for start in range(0, len(i), block):
        part = slice(start, start + block)
        out[part] = np.einsum("ij,ij->i", unit[i[part]], unit[j[part]])
    return out


def _masked_hsic(codes: np.ndarray, n: int, unit_a: np.ndarray, unit_b: np.ndarray) -> float:
    """platonic-rep's `hsic_unbiased(M * K, M * L)` for the directed neighbour pairs `codes` (`i * n + j`, sorted)
    of a 0/1 mask `M`, with `K = A A^T`, `L = B B^T` of unit rows, evaluated on the mask's entries only:
    `sum K~ * L~^T` runs over pairs present in both directions; `sum K~ L~` is the column sums of one against
    the row sums of the other."""
    i, j = np.divmod(codes, n)
    k_ij = _pair_products(unit_a, i, j)
    l_ij = k_ij if unit_b is unit_a else _pair_products(unit_b, i, j)
    reverse = j * n + i  # (j, i) is in the mask where it is found at its sorted place in `codes`
    at = np.minimum(np.searchsorted(codes, reverse), len(codes) - 1)
    both = codes[at] == reverse
    trace = float((k_ij[both] * l_ij[both]).sum())
    total_k, total_l = float(k_ij.sum()), float(l_ij.sum())
    cols_k, rows_l = np.bincount(j, k_ij, minlength=n), np.bincount(i, l_ij, minlength=n)
    cross = float(cols_k @ rows_l)
    value = trace + total_k * total_l / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)
    return value / (n * (n - 3))


def cknna(x: np.ndarray, y: np.ndarray, *, k: int = KNN_K, epsilon: float = CKNNA_EPSILON) -> float:
    """Centred kernel nearest-neighbour alignment of `x` `(N, D1)` and `y` `(N, D2)` (Huh et al. 2024), as
    platonic-rep computes it: rows L2-normalised, linear kernels, the unbiased HSIC of both kernels restricted to
    each row's mutual `k` nearest neighbours (itself excluded), over the same for each side alone, plus
    `epsilon` (their 1e-6) in the denominator. Memory O(N (D1 + D2 + k)): no N x N kernel is held."""
    x, y = nonempty64(x, y, 4, "cknna")
    n = len(x)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k < n:
        raise DataError(f"cknna needs 2 <= k < N neighbours; got k={k!r} for N={n}.")
    units = []
    for side in (x, y):
        norms = np.linalg.norm(side, axis=1, keepdims=True)
        if not (norms > 0).all():
            raise DataError("cknna is undefined: a row of features is all zeros, so it has no direction.")
        units.append(side / norms)
    ux, uy = units
    rows = np.repeat(np.arange(n, dtype=np.int64) * n, k)
    codes_x = np.sort(rows + neighbours(ux, int(k)).ravel())
    codes_y = np.sort(rows + neighbours(uy, int(k)).ravel())
    mutual = np.intersect1d(codes_x, codes_y, assume_unique=True)
    kl = _masked_hsic(mutual, n, ux, uy)
    kk = _masked_hsic(codes_x, n, ux, ux)
    ll = _masked_hsic(codes_y, n, uy, uy)
    if not kk * ll > 0:
        raise DataError("cknna is undefined: a side's neighbour kernel has no variance.")
    return kl / (float(np.sqrt(kk * ll)) + epsilon)
