"""featswap against its peers' methods and against the bare float32 products, side by side in one run.

    python benchmarks/peers.py [--rows 50000] [--fit-rows 20000] [--dx 1536] [--dy 2048] [--repeats 3] [--offset 1e4]
                               [--images 256] [--batch-size 32] [--workers 1] [--no-extraction]
                               [--references DIR] [--only-references] [--ref-rows 10000] [--ref-dx 512]
                               [--ref-dy 768] [--nxn-rows 2000]

The peers' methods are written out here, as their authors publish them, in float32 on centred data:

- Kornblith et al.'s feature-space linear CKA (centre, then `||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`) and its
  debiased form (their `feature_space_linear_cka(..., debiased=True)`), one call per measure;
- the orthogonal Procrustes distance with `scipy.linalg.orthogonal_procrustes` (centred, unit Frobenius norm,
  the narrower side zero-padded);
- least squares with bias by scikit-learn's `Ridge` (Cholesky solver, the same ridge strength), on float64 copies
  made beforehand (the same accuracy as featswap's float64 moments), and on the float32 features;
- the bare float32 products the statistics need (`X^T X`, `Y^T Y`, `X^T Y`; `X^T X`, `X^T Y` for a map), timed
  alone on uncentred data: the limit featswap's centred products can approach; for a map at featswap's precision,
  the same products in float64 (of float64 copies made beforehand), and those plus the Cholesky solve, the least
  a float64-exact map costs;
- feature extraction as most scripts (and thingsvision) do it, for timm's ResNet-50 over `--images` JPEG files: a
  `DataLoader` with `--workers` decoding processes, the network in its default layout, the pooled output kept by a
  forward hook (`benchmarks/extraction_peer.py`); and the bare forward pass of featswap's own network (its layout,
  channels-last) on tensors preloaded in memory, the limit of any extraction. featswap's row is the whole path,
  files to features in a new zarr store, logits check included. Memory is not traced for these rows (torch's
  allocations are invisible to tracemalloc).

Every row is run `--repeats` times, featswap and its peer interleaved (alternating which goes first). A row prints
the min and median of the ratio featswap time / peer time, the largest relative difference of featswap's results
(and the peer's) from a float64 computation on centred data, and the peak memory each allocates beyond the inputs
(numpy's allocations, traced). The features are planted: a shared latent, each side's own noise and an offset
(the similarity rows' features share a common `--offset`, 1e4 by default, where centring decides the accuracy);
`lstsq, ill-conditioned` scales the source's features over four decades (condition number about 1e8), where
featswap multiplies in float64 because float32 products could not keep its weights within 1e-6.

Pass/fail rows are those measured at equal accuracy (featswap's result within 1e-6 of float64, the peer's no
closer) or against the bare products featswap's result is built from: their median ratio must stay within the
target (1.1: the issue's 1.1x of the products and 1.0x of the peers, with a 10% noise margin), and the row prints
`pass` or `FAIL`. The others are informational (target `-`): a peer at another accuracy (`lstsq map, float32
peer`: scikit-learn's float32 Ridge is off by about 1e-4; `lstsq, ill-conditioned`) or a limit no method reaches
(`lstsq vs products`, `vs float64 products`, `vs float64 limit`, `extraction vs forward`). The last line reads
`slowest pass/fail ratio: X; failing rows: ...`.

With `--references DIR`, rows for the measures of issue 24 against their reference implementations, run from
local copies outside the repository (`benchmarks/references.py` says where each is looked for under DIR; a row
whose reference is absent is skipped and says so): google/svcca's `compute_pwcca` and its SVCCA (tutorial SVD to 99%
of the variance, then `get_cca_similarity`) on `--ref-rows` x (`--ref-dx` + `--ref-dy`) features (the narrower side
first: the reference raises IndexError the other way); platonic-rep's `cknna` and `mutual_knn`, Kornblith et al.'s
RBF CKA (plain and debiased) and rsatoolbox's RSA (Spearman and Kendall's tau-a) on `--nxn-rows` images; scipy's
`jensenshannon` for `jsd`. Their "difference" column is the relative difference from the reference's own value.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.linalg import cho_factor, cho_solve, orthogonal_procrustes
from sklearn.linear_model import Ridge

from featswap.heap import keep_freed_memory
from featswap.mapping.affine_map import AffineMap
from featswap.similarity import GramStats, linear_cka
from recording import Recording, add_json_option

RIDGE = 1.0  # the same ridge strength for featswap and scikit-learn (added to the centred X^T X)
ACCURACY = 1e-6  # the relative difference from float64 that a pass/fail row's featswap result must stay within


def planted(
    rows: int, dx: int, dy: int, seed: int = 0, decades: float = 0.0, offset: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 features `(rows, dx)`, `(rows, dy)` sharing a 256-dimensional latent, with offsets (3 and -2, plus
    a common `offset`); the source's columns scaled over `decades` decades."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, 256), dtype=np.float32)
    x = z @ rng.standard_normal((256, dx), dtype=np.float32) / 16 + rng.standard_normal((rows, dx), dtype=np.float32)
    y = z @ rng.standard_normal((256, dy), dtype=np.float32) / 16 + rng.standard_normal((rows, dy), dtype=np.float32)
    x += 3.0 + offset
    y += -2.0 + offset
    if decades:
        x *= np.logspace(0, -decades, dx, dtype=np.float32)
    return x, y


# -- the peers' methods --------------------------------------------------------------------------------------
def kornblith_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    """Kornblith et al.'s `feature_space_linear_cka`, as published (numpy, the features' dtype)."""
    x = x - np.mean(x, 0, keepdims=True)
    y = y - np.mean(y, 0, keepdims=True)
    xty = np.linalg.norm(x.T.dot(y)) ** 2
    norm_x, norm_y = np.linalg.norm(x.T.dot(x)), np.linalg.norm(y.T.dot(y))
    if debiased:
        n = x.shape[0]
        rows_x, rows_y = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        sq_x, sq_y = np.sum(rows_x), np.sum(rows_y)

        def helper(value: float, ra: np.ndarray, rb: np.ndarray, sa: float, sb: float) -> float:
            return value - n / (n - 2.0) * ra.dot(rb) + sa * sb / ((n - 1) * (n - 2))

        xty = helper(xty, rows_x, rows_y, sq_x, sq_y)
        norm_x = np.sqrt(helper(norm_x**2, rows_x, rows_x, sq_x, sq_x))
        norm_y = np.sqrt(helper(norm_y**2, rows_y, rows_y, sq_y, sq_y))
    return float(xty / (norm_x * norm_y))


def scipy_procrustes(x: np.ndarray, y: np.ndarray) -> float:
    """Procrustes distance with `scipy.linalg.orthogonal_procrustes` (centred, unit norm, narrower side padded)."""
    x, y = x - x.mean(0), y - y.mean(0)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    width = max(x.shape[1], y.shape[1])
    x = np.pad(x, ((0, 0), (0, width - x.shape[1])))
    y = np.pad(y, ((0, 0), (0, width - y.shape[1])))
    _, scale = orthogonal_procrustes(x, y)
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * scale)))


def sklearn_ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return Ridge(alpha=RIDGE, solver="cholesky").fit(x, y).coef_


# -- featswap ------------------------------------------------------------------------------------------------
def featswap_two_cka(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    stats = GramStats.of(x, y, precision="float32")
    return stats.linear_cka(), stats.debiased_cka()


def featswap_one_pass(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    stats = GramStats.of(x, y, precision="float32")
    return stats.linear_cka(), stats.debiased_cka(), stats.procrustes()


def bare_float64_solve(x64: np.ndarray, y64: np.ndarray) -> np.ndarray:
    """The least a float64-exact map costs: uncentred float64 products of float64 copies made beforehand, and a
    Cholesky solve (`(Dx, Dy)`)."""
    return cho_solve(cho_factor(x64.T @ x64 + RIDGE * np.eye(x64.shape[1])), x64.T @ y64)


def featswap_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return AffineMap("lstsq", alpha=RIDGE).fit(x, y).weight_


# -- the run -------------------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    featswap: Callable[[], object]
    peer_name: str
    peer: Callable[[], object]
    reference: object = None
    compare_peer: bool = True  # False where the peer computes products, not the result
    #: The ratio a pass/fail row must not exceed (its median, 10% noise margin included); None: informational (the
    #: peer computes something else, or at another accuracy: a limit or a context, not a race).
    target: float | None = None
    traced: bool = True  # False where the work allocates outside numpy (torch): no memory column
    ratios: list[float] = field(default_factory=list)
    error: float = 0.0
    peer_error: float = float("nan")
    memory: tuple[int, int] = (0, 0)


def relative(result: object, reference: object) -> float:
    a, b = np.asarray(result, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def timed(fn: Callable[[], object], traced: bool) -> tuple[float, object, int]:
    """Seconds, result and peak traced memory of `fn()`; untraced (tracing slows allocations, and forked decoding
    processes inherit it) where memory is not reported."""
    if not traced:
        tracemalloc.stop()
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        tracemalloc.start()
        return seconds, result, 0
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return seconds, result, tracemalloc.get_traced_memory()[1] - base


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--fit-rows", type=int, default=20_000)
    parser.add_argument("--dx", type=int, default=1536)
    parser.add_argument("--dy", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--offset", type=float, default=1e4, help="common offset of the similarity rows' features")
    parser.add_argument("--only", default="", help="comma-separated names of the rows to run (default: all)")
    parser.add_argument("--images", type=int, default=256, help="JPEG files for the extraction rows")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (extraction rows)")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes (extraction rows)")
    parser.add_argument("--no-extraction", action="store_true", help="leave out the extraction rows")
    parser.add_argument("--only-extraction", action="store_true", help="only the extraction rows")
    parser.add_argument("--references", type=Path, help="folder with the reference copies (benchmarks/references.py)")
    parser.add_argument("--only-references", action="store_true", help="only the rows against reference copies")
    parser.add_argument("--ref-rows", type=int, default=10_000, help="rows for the pwcca and svcca_raghu rows")
    parser.add_argument("--ref-dx", type=int, default=512)
    parser.add_argument("--ref-dy", type=int, default=768)
    parser.add_argument("--nxn-rows", type=int, default=2000, help="images for the N x N rows")
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("peers", args.json, argv) as record, tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp), record)


def extraction_rows(args: argparse.Namespace, tmp: Path) -> list[Row]:
    """featswap's extraction of timm's ResNet-50 from JPEG files against a DataLoader + hook loop and against
    the bare forward pass on preloaded tensors."""
    import torch

    from extraction_peer import bare_forward, featswap_extract, hook_loop, image_collection, write_images
    from featswap.backbones.sources import BackboneRecipe
    from featswap.extraction.plan import to_device

    root = tmp / "images"
    write_images(root, args.images)
    collection = image_collection(root)
    files = [root / i for i in collection.ids]
    backbone = BackboneRecipe("timm:resnet50", num_classes=4).build()  # random weights: speed does not depend on them
    plain = copy.deepcopy(backbone)  # as a script would run it: the default layout
    to_device(backbone, "cpu")  # featswap's layout, for its extraction and for the bare forward pass
    transform = backbone.transform()
    preloaded = torch.stack([transform(collection.load(i)) for i in range(len(collection))])
    bare_forward(backbone, preloaded[: args.batch_size], args.batch_size)  # warm-up
    hook_loop(plain, files[: args.batch_size], args.batch_size, 0)
    runs = iter(range(10**6))

    def extract() -> np.ndarray:
        return featswap_extract(backbone, collection, tmp / f"store{next(runs)}.zarr", args.batch_size, args.workers)

    def loop() -> np.ndarray:
        return hook_loop(plain, files, args.batch_size, args.workers)

    print(f"extraction: timm resnet50, {args.images} JPEG files 256 x 256 -> 224, batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch threads, {args.workers} decoding worker(s)")  # fmt: skip
    reference = loop()
    return [
        Row("extraction, files -> store", extract, "DataLoader + hook loop", loop, reference, traced=False, target=1.1),
        Row(
            "extraction vs forward",
            extract,
            "bare forward, preloaded",
            lambda: bare_forward(backbone, preloaded, args.batch_size),
            traced=False,
        ),
    ]


def run(args: argparse.Namespace, tmp: Path, record: Recording) -> None:
    """Every row, interleaved with its peer, printed and recorded; under featswap's malloc setting, as every command
    runs (`featswap.heap`), for featswap and its peers alike."""
    keep_freed_memory()
    if args.only_references:
        args.rows = args.fit_rows = 8  # the main rows are left out: no large features
    x, y = planted(args.rows, args.dx, args.dy, offset=args.offset)
    fx, fy = planted(args.fit_rows, args.dx, args.dy, seed=1)
    fx64, fy64 = fx.astype(np.float64), fy.astype(np.float64)
    ix, iy = planted(args.fit_rows, args.dx, args.dy, seed=2, decades=4.0)
    print(f"features: {args.rows:,} x ({args.dx} + {args.dy}) float32 for similarity (common offset "
          f"{args.offset:g}), {args.fit_rows:,} rows for maps")  # fmt: skip

    exact = GramStats.of(x, y, precision="float64")  # float64 products of centred data: the reference

    def exact_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        a64 -= a64.mean(0)
        b64 -= b64.mean(0)
        return np.linalg.solve(a64.T @ a64 + RIDGE * np.eye(a.shape[1]), a64.T @ b64).T

    def products() -> object:
        return x.T @ x, y.T @ y, x.T @ y

    rows = [
        Row(
            "linear CKA",
            lambda: linear_cka(x, y),
            "Kornblith CKA",
            lambda: kornblith_cka(x, y),
            exact.linear_cka(),
            target=1.1,
        ),
        Row(
            "linear + debiased CKA",
            lambda: featswap_two_cka(x, y),
            "Kornblith, two calls",
            lambda: (kornblith_cka(x, y), kornblith_cka(x, y, debiased=True)),
            (exact.linear_cka(), exact.debiased_cka()),
            target=1.1,
        ),
        Row(
            "CKA x2 + Procrustes, one pass",
            lambda: featswap_one_pass(x, y),
            "Kornblith x2 + scipy",
            lambda: (kornblith_cka(x, y), kornblith_cka(x, y, debiased=True), scipy_procrustes(x, y)),
            (exact.linear_cka(), exact.debiased_cka(), exact.procrustes()),
            target=1.1,
        ),
        Row(
            "linear CKA vs products",
            lambda: linear_cka(x, y),
            "bare X'X, Y'Y, X'Y",
            products,
            exact.linear_cka(),
            compare_peer=False,
            target=1.1,
        ),
        Row(
            "lin. + debiased CKA vs products",
            lambda: featswap_two_cka(x, y),
            "bare X'X, Y'Y, X'Y",
            products,
            (exact.linear_cka(), exact.debiased_cka()),
            compare_peer=False,
            target=1.1,
        ),
        Row(
            "lstsq map",
            lambda: featswap_lstsq(fx, fy),
            "Ridge, float64 copies",
            lambda: sklearn_ridge(fx64, fy64),
            exact_map(fx, fy),
            target=1.1,  # the 1.0x with the 10% noise margin
        ),
        Row(
            "lstsq, float64 data",
            lambda: featswap_lstsq(fx64, fy64),
            "sklearn Ridge, float64",
            lambda: sklearn_ridge(fx64, fy64),
            exact_map(fx, fy),
            target=1.1,
        ),
        Row(
            "lstsq map, float32 peer",
            lambda: featswap_lstsq(fx, fy),
            "sklearn Ridge, float32",
            lambda: sklearn_ridge(fx, fy),
            exact_map(fx, fy),
        ),
        Row("lstsq vs products", lambda: featswap_lstsq(fx, fy), "bare X'X, X'Y", lambda: (fx.T @ fx, fx.T @ fy)),
        Row(
            "lstsq vs float64 products",
            lambda: featswap_lstsq(fx, fy),
            "bare float64 X'X, X'Y",
            lambda: (fx64.T @ fx64, fx64.T @ fy64),
        ),
        Row(
            "lstsq vs float64 limit",
            lambda: featswap_lstsq(fx, fy),
            "float64 X'X, X'Y + solve",
            lambda: bare_float64_solve(fx64, fy64),
        ),
        Row(
            "lstsq, ill-conditioned",
            lambda: featswap_lstsq(ix, iy),
            "sklearn Ridge, float32",
            lambda: sklearn_ridge(ix, iy),
            exact_map(ix, iy),
        ),
    ]
    if args.only:
        wanted = args.only.split(",")
        rows = [row for row in rows if row.name in wanted]
    if args.only_extraction or args.only_references:
        rows = []
    if not args.no_extraction and not args.only_references:
        rows += extraction_rows(args, tmp)
    if args.references is not None:
        from references import reference_rows

        for name, fs, peer_name, peer, skipped in reference_rows(args, planted):
            if skipped:
                print(f"skipped {name}: {skipped}")
            else:
                rows.append(Row(name, fs, peer_name, peer, compare_peer=False, traced=name != "mutual_knn"))
    tracemalloc.start()
    for repeat in range(args.repeats):
        for row in rows:
            order = [("featswap", row.featswap), ("peer", row.peer)]
            seconds, results, memory = {}, {}, {}
            for who, fn in order if repeat % 2 == 0 else order[::-1]:
                seconds[who], results[who], memory[who] = timed(fn, row.traced)
            row.ratios.append(seconds["featswap"] / seconds["peer"])
            row.memory = (max(row.memory[0], memory["featswap"]), max(row.memory[1], memory["peer"]))
            if row.reference is None and row.peer_name.startswith("ref:"):  # the reference's own value
                row.error = max(row.error, relative(results["featswap"], results["peer"]))
                row.peer_error = 0.0
            elif row.reference is not None:
                row.error = max(row.error, relative(results["featswap"], row.reference))
                if row.compare_peer:
                    row.peer_error = relative(results["peer"], row.reference)
        print(f"repetition {repeat + 1} of {args.repeats} done", flush=True)
    tracemalloc.stop()

    print(f"{args.repeats} repetitions; ratio = featswap time / peer time; difference: relative, from float64 on "
          "centred data (featswap / peer); memory: peak beyond the inputs, featswap / peer; target: the most a "
          "pass/fail row's median may reach (10% noise margin included), '-' for an informational row")  # fmt: skip
    print(f"{'task':32s} {'peer':24s} {'min':>6s} {'median':>7s} {'target':>7s} {'difference':>20s} "
          f"{'memory (MB)':>14s}")  # fmt: skip
    failed = []
    for row in rows:
        known = row.reference is not None or row.peer_name.startswith("ref:")
        diff = f"{row.error:.1e} / {row.peer_error:.1e}" if known else ""
        mem = f"{row.memory[0] / 2**20:.0f} / {row.memory[1] / 2**20:.0f}" if row.traced else "-"
        median = statistics.median(row.ratios)
        target = "-" if row.target is None else f"{row.target:.2f}"
        verdict = ""
        if row.target is not None:
            ok = median <= row.target and (row.reference is None or row.error <= ACCURACY)
            verdict = "pass" if ok else "FAIL"
            if not ok:
                failed.append(row.name)
        print(f"{row.name:32s} {row.peer_name:24s} {min(row.ratios):6.2f} {median:7.2f} {target:>7s} {diff:>20s} "
              f"{mem:>14s} {verdict}")  # fmt: skip
        shown = None if row.target is None else f"<= {row.target:.2f}"
        record.figure(f"{row.name} / {row.peer_name} (time, median)", median, unit="x", target=shown)
        if row.target is not None and row.reference is not None:
            record.figure(f"{row.name}: difference from float64", row.error, target=f"<= {ACCURACY:g}")
    gates = [statistics.median(row.ratios) for row in rows if row.target is not None]
    if gates:
        print(f"slowest pass/fail ratio: {max(gates):.2f}; failing rows: {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()
