"""Every GPU row of featswap against the bare torch operations it is built from, side by side in one run; writes a
JSON.

    python benchmarks/gpu.py [--device cuda] [--rows 1280000] [--chunk-rows 65536] [--dx 1536] [--dy 2048]
                             [--fit-rows 131072] [--iterations 2000] [--repeats 3] [--json gpu.json]
                             [--no-extraction]

Rows (featswap / bare, each repeated `--repeats` times, interleaved, alternating which goes first; min and median):

- statistics: `GramStats` of `--rows` paired rows streamed in chunks of `--chunk-rows` (the same planted chunk,
  copied to the device each time, as chunks read from a store are), with each model's own sums and the cross
  sums in float64 on the device and merged on the CPU; bare: the float64 products `X^T X`, `Y^T Y`, `X^T Y` of
  each chunk on the device, uncentred. Its error column: linear CKA against the bare products' (centred
  afterwards in float64; the planted offset is small enough for that to be exact to 1e-12).
- statistics from a store: the same through `featswap.mapping.paired.map_chunks_here` over a real zarr store of
  `--fit-rows` rows (reading, decompression and prefetch included); bare: the products of the same chunks
  preloaded in memory.
- lstsq, procrustes (from `--fit-rows` rows in memory): `AffineMap(solver, device=...)`; bare: the float64
  products and a Cholesky solve (an SVD for procrustes) in torch on the device. Error: relative, of the weights,
  from the CPU float64 path.
- paper (`--iterations` steps of the paper's recipe, batch 2,048) and refine (`--iterations` at most, no early
  stop): `AffineMap`; bare: the same Adam steps written out in torch (batch indices drawn on the device).
  The time per step is extrapolated to the paper's 100,000 steps, both directions.
- extraction: `benchmarks/paper_gpu.py` (issue 22) where it is beside this script, else skipped with a note.

The paper's scale is 1.28 M fitting images x (1536 + 2048) features; the goals on one H100: statistics in under
a minute, the paper's 100,000 iterations in both directions in under 5 minutes, the whole script under 8 minutes.
On a CPU (`--device cpu:0`, torch on the CPU) the same code runs at any size: the test suite runs it tiny.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featswap.errors import FeatswapError
from featswap.mapping.affine_map import AffineMap
from featswap.mapping.device import check_device, exact_products
from featswap.mapping.losses import paper_loss_to_units, unit_rows
from featswap.mapping.paired import map_chunks_here
from featswap.similarity.gram import GramStats, chunk_gram_stats

PAPER_ITERATIONS = 100_000
BATCH = 2048


def planted(rows: int, dx: int, dy: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 features `(rows, dx)`, `(rows, dy)` sharing a 64-dimensional latent, with offsets 3 and -2."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, 64), dtype=np.float32)
    x = z @ rng.standard_normal((64, dx), dtype=np.float32) / 8 + rng.standard_normal((rows, dx), dtype=np.float32)
    y = z @ rng.standard_normal((64, dy), dtype=np.float32) / 8 + rng.standard_normal((rows, dy), dtype=np.float32)
    return x + np.float32(3), y - np.float32(2)


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Row:
    name: str
    featswap: Callable[[], Any]
    bare_name: str
    bare: Callable[[], Any]
    error: Callable[[Any, Any], float] | None = None
    ratios: list[float] = field(default_factory=list)
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"featswap": [], "bare": []})
    difference: float = float("nan")
    note: str = ""


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def linear_cka_of_products(n: int, sums: tuple[torch.Tensor, ...]) -> float:
    """Linear CKA from uncentred float64 products and column sums `(xx, yy, xy, sx, sy)`."""
    xx, yy, xy, sx, sy = (t.double().cpu() for t in sums)
    cxx, cyy = xx - torch.outer(sx, sx) / n, yy - torch.outer(sy, sy) / n
    cxy = xy - torch.outer(sx, sy) / n
    return float((cxy**2).sum() / (torch.linalg.norm(cxx) * torch.linalg.norm(cyy)))


def bare_products(chunks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], device: str) -> tuple[int, tuple]:
    """The float64 products and column sums of every chunk on `device`, uncentred: what the statistics are built
    from."""
    n, sums = 0, None
    with exact_products():
        for x, y in chunks():
            u = torch.as_tensor(x).to(device).double()
            v = torch.as_tensor(y).to(device).double()
            part = (u.T @ u, v.T @ v, u.T @ v, u.sum(0), v.sum(0))
            sums = part if sums is None else tuple(a + b for a, b in zip(sums, part, strict=True))
            n += len(x)
    assert sums is not None
    return n, sums


def bare_adam(x: torch.Tensor, y: torch.Tensor, steps: int, seed: int = 0) -> torch.Tensor:
    """`steps` Adam steps of the paper's loss on random batches, written out: the least the paper recipe costs."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    weight = torch.zeros(y.shape[1], x.shape[1], device=x.device, requires_grad=True)
    bias = torch.zeros(y.shape[1], device=x.device, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.1, eps=1e-8)
    with exact_products():
        units = unit_rows(y)  # once, as featswap's loop does
        for _ in range(steps):
            rows = torch.randint(len(x), (BATCH,), generator=generator, device=x.device)
            optimizer.zero_grad(set_to_none=True)
            loss = paper_loss_to_units(x[rows] @ weight.T + bias, units[rows])
            loss.backward()
            optimizer.step()
    return weight.detach()


def relative(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a64 - b64) / max(np.linalg.norm(b64), 1e-300))


def extraction(args: argparse.Namespace, out: Path) -> dict[str, Any] | None:
    """issue 22's extraction rows from `benchmarks/paper_gpu.py` beside this script, when it is there."""
    path = Path(__file__).with_name("paper_gpu.py")
    if args.no_extraction or not path.exists():
        print(f"extraction: skipped ({'--no-extraction' if args.no_extraction else 'no benchmarks/paper_gpu.py'})")
        return None
    spec = importlib.util.spec_from_file_location("paper_gpu", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    size = "tiny" if torch.device(args.device).type == "cpu" else "paper"
    result: dict[str, Any] = module.main(["--device", args.device, "--size", size, "--json", str(out)])
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu:0 (torch on the CPU)")
    parser.add_argument("--rows", type=int, default=1_280_000, help="rows of the streamed statistics")
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--dx", type=int, default=1536)
    parser.add_argument("--dy", type=int, default=2048)
    parser.add_argument("--fit-rows", type=int, default=131_072, help="rows held by the solvers and the store")
    parser.add_argument("--iterations", type=int, default=2000, help="Adam steps of the paper and refine rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("gpu.json"))
    parser.add_argument("--no-extraction", action="store_true")
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
    except FeatswapError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    device = args.device
    name = (
        torch.cuda.get_device_name(device)
        if torch.device(device).type == "cuda"
        else (platform.processor() or platform.machine())
    )
    chunk_x, chunk_y = planted(min(args.chunk_rows, args.rows), args.dx, args.dy)
    count = max(1, args.rows // len(chunk_x))

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for _ in range(count):
            yield chunk_x, chunk_y

    fx, fy = planted(args.fit_rows, args.dx, args.dy, seed=1)
    tmp = Path(tempfile.mkdtemp(prefix="featswap-gpu-"))
    store_pairs = store_of(tmp / "s.zarr", fx, fy, args.chunk_rows)
    preloaded = list(store_pairs.chunks())
    print(f"device: {device} ({name}), torch {torch.__version__}; statistics over {count * len(chunk_x):,} rows x "
          f"({args.dx} + {args.dy}) in chunks of {len(chunk_x):,}; solvers on {args.fit_rows:,} rows")  # fmt: skip

    on_cpu = {s: AffineMap(s).fit(fx, fy) for s in ("lstsq", "procrustes")}
    x_dev, y_dev = torch.as_tensor(fx, device=device), torch.as_tensor(fy, device=device)

    def cka_error(stats: GramStats, bare: tuple[int, tuple]) -> float:
        want = linear_cka_of_products(*bare)
        return abs(stats.linear_cka() - want) / want

    def bare_solve() -> torch.Tensor:
        with exact_products():
            u, v = x_dev.double(), y_dev.double()
            mu, mv = u.mean(0), v.mean(0)
            cxx = u.T @ u - len(u) * torch.outer(mu, mu)
            cxy = u.T @ v - len(u) * torch.outer(mu, mv)
            return torch.cholesky_solve(cxy, torch.linalg.cholesky(cxx)).T

    def bare_procrustes() -> torch.Tensor:
        with exact_products():
            u, v = x_dev.double(), y_dev.double()
            u, v = u - u.mean(0), v - v.mean(0)
            left, _, right = torch.linalg.svd(u.T @ v, full_matrices=False)
            return (left @ right).T

    steps = args.iterations
    rows = [
        Row(
            "statistics (GramStats)",
            lambda: GramStats.accumulate(chunks(), device),
            "float64 X'X, Y'Y, X'Y",
            lambda: bare_products(chunks, device),
            cka_error,
        ),
        Row(
            "statistics from a store",
            lambda: list(map_chunks_here(store_pairs, chunk_gram_stats, device)),
            "same, chunks preloaded",
            lambda: bare_products(lambda: iter(preloaded), device),
        ),
        Row(
            "lstsq",
            lambda: AffineMap("lstsq", device=device, alpha=0.0).fit(fx, fy),
            "products + Cholesky",
            bare_solve,
            lambda m, _: relative(m.weight_, on_cpu["lstsq"].weight_),
        ),
        Row(
            "procrustes",
            lambda: AffineMap("procrustes", device=device).fit(fx, fy),
            "products + SVD",
            bare_procrustes,
            lambda m, _: relative(m.weight_, on_cpu["procrustes"].weight_),
        ),
        Row(
            f"paper, {steps} steps",
            lambda: AffineMap("paper", device=device, iterations=steps).fit(fx, fy),
            "Adam steps in torch",
            lambda: bare_adam(x_dev, y_dev, steps),
        ),
        Row(
            f"refine, {steps} steps",
            lambda: AffineMap("refine", device=device, max_iterations=steps, patience=10**6).fit(fx, fy),
            "Adam steps in torch",
            lambda: bare_adam(x_dev, y_dev, steps),
        ),
    ]
    for repeat in range(args.repeats):
        for row in rows:
            order = [("featswap", row.featswap), ("bare", row.bare)]
            results = {}
            for who, fn in order if repeat % 2 == 0 else order[::-1]:
                seconds, results[who] = timed(fn, device)
                row.seconds[who].append(seconds)
            row.ratios.append(row.seconds["featswap"][-1] / row.seconds["bare"][-1])
            if row.error is not None:
                row.difference = row.error(results["featswap"], results["bare"])
    paper_row = rows[4]
    per_step = min(paper_row.seconds["featswap"]) / steps
    paper_row.note = f"100,000 steps x 2 directions: {2 * PAPER_ITERATIONS * per_step / 60:.1f} min"
    print(f"{args.repeats} repetitions; ratio = featswap time / bare time; difference: relative, from the bare "
          "products (statistics) or from the CPU float64 path (closed forms)")  # fmt: skip
    print(f"{'row':28s} {'bare':24s} {'featswap s':>10s} {'min':>6s} {'median':>7s} {'difference':>11s}")
    for row in rows:
        diff = "" if row.error is None else f"{row.difference:.1e}"
        print(f"{row.name:28s} {row.bare_name:24s} {min(row.seconds['featswap']):10.3f} {min(row.ratios):6.2f} "
              f"{statistics.median(row.ratios):7.2f} {diff:>11s} {row.note}")  # fmt: skip
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rows": [
            {
                "name": row.name,
                "bare": row.bare_name,
                "featswap_s": row.seconds["featswap"],
                "bare_s": row.seconds["bare"],
                "ratio_min": min(row.ratios),
                "ratio_median": statistics.median(row.ratios),
                "difference": None if row.error is None else row.difference,
                "note": row.note,
            }
            for row in rows
        ],
        "extraction": extraction(args, tmp / "paper_gpu.json"),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return result


def store_of(path: Path, x: np.ndarray, y: np.ndarray, chunk_rows: int) -> Any:
    """A real zarr store holding `x`, `y` as two models' features on a `train` collection, read back as pairs in
    chunks of `chunk_rows`."""
    from featswap.store import FeatureStore

    ids = [f"i{k}" for k in range(len(x))]
    with FeatureStore.create(path) as store:
        store.write_collection("train", ids, np.zeros(len(x), dtype=np.int64), ("0",), spec="", role="fit")
        for name, features in (("x", x), ("y", y)):
            attrs = {"spec": name, "feature_dim": features.shape[1], "num_classes": 1, "weights_sha256": None}
            store.write_model(name, attrs, np.zeros((1, features.shape[1]), np.float32), np.zeros(1, np.float32))
            store.write_features("train", name, features, chunk_rows=chunk_rows)
    return FeatureStore.open(path).pairs("train", "x", "y")


if __name__ == "__main__":
    main()
