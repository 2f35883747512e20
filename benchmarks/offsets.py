"""How a common offset on the features changes featswap's streamed statistics, against float64 references.

    python benchmarks/offsets.py [--rows 20000] [--chunk-rows 4096]

Features of unit spread (24 source and 16 target dimensions) are shifted by a common offset and stored as
float32, as a feature store holds them. For each offset the script prints the relative error, against float64
computations on the same float32 values centred with two-pass means (and explicit N x N kernels for debiased
CKA, on the first 2,000 rows), of

- featswap's `lstsq` weights and its linear and debiased CKA, streamed in chunks (centred per chunk and merged
  with Chan, Golub and LeVeque's pairwise update), and
- the same quantities from raw float64 sums (`X^T X - n mx mx^T`), the method featswap used before.

The last line reads `largest featswap error: <relative error>`.
"""

from __future__ import annotations

import argparse

import numpy as np

from featswap.mapping.affine_map import AffineMap
from featswap.mapping.paired import InMemoryPairs
from featswap.similarity import GramStats
from recording import Recording, add_json_option

OFFSETS = (0.0, 1e2, 1e3, 1e4, 1e5, 1e6)
KERNEL_ROWS = 2000  # the explicit N x N reference for debiased CKA


def data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 24))
    y = x @ rng.normal(size=(24, 16)) / np.sqrt(24) + 0.5 * rng.normal(size=(rows, 16))
    return x, y


def reference(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """float64 lstsq weights, linear CKA, and debiased CKA from unbiased-centred N x N Gram matrices."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    weight = np.linalg.lstsq(xc, yc, rcond=None)[0].T
    linear = np.linalg.norm(xc.T @ yc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    k, l_ = (unbiased(a[:KERNEL_ROWS] @ a[:KERNEL_ROWS].T) for a in (xc, yc))
    debiased = (k * l_).sum() / np.sqrt((k * k).sum() * (l_ * l_).sum())
    return weight, float(linear), float(debiased)


def unbiased(gram: np.ndarray) -> np.ndarray:
    n = len(gram)
    gram = gram.copy()
    np.fill_diagonal(gram, 0)
    means = gram.sum(0) / (n - 2) - gram.sum() / (2 * (n - 1) * (n - 2))
    gram -= means[:, None] + means[None, :]
    np.fill_diagonal(gram, 0)
    return gram


def raw_sums(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """lstsq weights and linear CKA from uncentred float64 sums, as featswap computed them before."""
    n = len(x)
    mx, my = x.sum(0) / n, y.sum(0) / n
    cxx = x.T @ x - n * np.outer(mx, mx)
    cyy = y.T @ y - n * np.outer(my, my)
    cxy = x.T @ y - n * np.outer(mx, my)
    weight = np.linalg.lstsq(cxx, cxy, rcond=None)[0].T
    return weight, float((cxy**2).sum() / (np.linalg.norm(cxx) * np.linalg.norm(cyy)))


def error(a: np.ndarray | float, b: np.ndarray | float) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("offsets", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Every offset, printed and recorded."""
    x, y = data(args.rows)
    print(f"{args.rows:,} rows, 24 -> 16 dimensions of unit spread, float32, chunks of {args.chunk_rows:,} rows")
    print("relative error against float64 references on the same values (featswap | raw float64 sums)")
    print(f"{'offset':>8}  {'lstsq W':>19}  {'linear CKA':>19}  {'debiased CKA':>9}")
    worst = 0.0
    for offset in OFFSETS:
        xs, ys = (x + offset).astype(np.float32), (y - offset).astype(np.float32)
        x64, y64 = xs.astype(np.float64), ys.astype(np.float64)
        weight, linear, debiased = reference(x64, y64)
        pairs = InMemoryPairs(xs, ys, chunk_rows=args.chunk_rows)
        amap = AffineMap("lstsq").fit_pairs(pairs)
        stats = GramStats.accumulate(pairs.chunks())
        head = GramStats.accumulate(InMemoryPairs(xs[:KERNEL_ROWS], ys[:KERNEL_ROWS], args.chunk_rows).chunks())
        ours = (error(amap.weight_, weight), error(stats.linear_cka(), linear), error(head.debiased_cka(), debiased))
        raw_weight, raw_linear = raw_sums(x64, y64)
        theirs = (error(raw_weight, weight), error(raw_linear, linear))
        worst = max(worst, *ours)
        print(f"{offset:>8.0e}  {ours[0]:8.1e} | {theirs[0]:8.1e}  {ours[1]:8.1e} | {theirs[1]:8.1e}  {ours[2]:9.1e}")
    print(f"largest featswap error: {worst:.1e}")
    record.figure("largest relative error under a common offset", worst, target="<= 1e-6")


if __name__ == "__main__":
    main()
