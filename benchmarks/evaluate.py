"""How often the fitting and evaluation steps read each model's features and compute each model's own statistics,
and how long they take, for N models.

    python benchmarks/evaluate.py [--models 2,4,8] [--rows 50000] [--dim 2048] [--solvers lstsq]
                                  [--compare-side-cache] [--repeats 1] [--evaluate [--similarity]]

Writes a real feature store with N synthetic models (features of one shared latent through a different random
map and ReLU per model, `dim` wide, with linear heads over 100 classes), `rows` held-out rows and 4,096 fitting
rows. It times the fitting step (maps of every ordered pair with the given solvers: one pass of paired
statistics per unordered pair), the `GramStats` of every pair of held-out features in memory (what the
evaluation's similarity measures read), and with `--evaluate` the whole evaluation step (swap test of every map,
statistics, per-image table, report; similarity measures too with `--similarity`). It counts the whole passes
over features each step read and the self-scatters (each model's own D x D sums, `featswap.similarity.parts`)
each computed: N, where every pair computing its own made N (N - 1). `--compare-side-cache` also runs each N
that old way (`featswap.similarity.parts.CACHE_SIDES = False`), interleaved with the cached runs.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from featswap.config import EvaluationSettings, FitSettings, RunConfig
from featswap.experiment import Experiment
from featswap.experiment.evaluating import pair_stats
from featswap.similarity import parts
from featswap.store import FeatureStore
from recording import Recording, add_json_option

CLASSES = 100
LATENT = 128
FIT_ROWS = 4096


def synthetic_store(path: Path, models: int, rows: int, dim: int) -> list[str]:
    """A store with `models` synthetic models on a `train` split (4,096 rows) and a `val` split (`rows`)."""
    rng = np.random.default_rng(0)
    maps = [(rng.standard_normal((LATENT, dim)) / np.sqrt(LATENT)).astype(np.float32) for _ in range(models)]
    scores_map = rng.standard_normal((LATENT, CLASSES)).astype(np.float32)
    names = [f"model{k}" for k in range(models)]
    classes = tuple(str(c) for c in range(CLASSES))
    with FeatureStore.create(path) as store:
        for split, n, role in (("train", FIT_ROWS, "fit"), ("val", rows, "eval")):
            z = rng.standard_normal((n, LATENT), dtype=np.float32)
            scores = z @ scores_map
            store.write_collection(
                split, [f"{split}/{i:07d}" for i in range(n)], scores.argmax(1), classes, spec="", role=role
            )
            for name, a in zip(names, maps, strict=True):
                noise = rng.standard_normal((n, dim), dtype=np.float32)
                features = np.maximum(z @ a + np.float32(0.3) * noise, np.float32(0))
                if split == "train":
                    centred = features - features.mean(0)
                    weight = np.linalg.lstsq(centred, scores - scores.mean(0), rcond=None)[0].T
                    bias = scores.mean(0) - weight @ features.mean(0)
                    attrs = {"spec": name, "feature_dim": dim, "num_classes": CLASSES, "weights_sha256": None}
                    store.write_model(name, attrs, weight, bias)
                store.write_features(split, name, features)
    return names


def run_once(root: Path, names: list[str], solvers: str, similarity: bool, evaluate: bool) -> dict[str, float]:
    """Fit every ordered pair on `train`; compute the `GramStats` of every pair of `val` features in memory (the
    evaluation's similarity statistics); with `evaluate`, run the whole evaluation step on `val`. Seconds, full
    feature reads and self-scatters (each model's own D x D sums) computed, of each."""
    counted = [0]
    put = parts.SideCache.put

    def counting_put(cache: parts.SideCache[Any, Any], key: Any, value: Any) -> None:
        counted[0] += 1
        put(cache, key, value)

    config = RunConfig(
        store=str(root / "s.zarr"),
        fit=FitSettings(tuple(solvers.split(","))),
        evaluation=EvaluationSettings(n_boot=200, similarity=similarity),
    )
    experiment = Experiment(config, quiet=True)
    parts.SideCache.put = counting_put  # type: ignore[method-assign]
    try:
        store = FeatureStore.open(root / "s.zarr")
        started = time.perf_counter()
        maps = experiment.fit(store, "train", names)
        result = {"fit_s": time.perf_counter() - started, "fit_reads": store.full_reads(), "fit_sides": counted[0]}
        features = {name: store.features("val", name) for name in names}
        counted[0] = 0
        sides: parts.SideCache[tuple[str, str], parts.SideStats] = parts.SideCache()
        started = time.perf_counter()
        for a, b in itertools.combinations(names, 2):
            pair_stats(features, a, b, sides, "cpu", "float32")
        result |= {"stats_s": time.perf_counter() - started, "stats_sides": counted[0]}
        if evaluate:
            store = FeatureStore.open(root / "s.zarr")  # count the evaluation's reads alone
            started = time.perf_counter()
            out = root / f"out-{time.monotonic_ns()}"
            experiment.write(store, out, maps, experiment.evaluate(store, maps, ["val"], names=names))
            shutil.rmtree(out, ignore_errors=True)
            result |= {"eval_s": time.perf_counter() - started, "eval_reads": store.full_reads()}
        return result
    finally:
        parts.SideCache.put = put  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="8", help="numbers of models, comma-separated (e.g. 2,4,8)")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--solvers", default="lstsq")
    parser.add_argument("--evaluate", action="store_true", help="also time the whole evaluation step")
    parser.add_argument("--similarity", action="store_true", help="with --evaluate: similarity measures too")
    parser.add_argument(
        "--compare-side-cache",
        action="store_true",
        help="also run each N with each model's own statistics computed again for every pair (the behaviour "
        "before they were cached), interleaved with the cached runs",
    )
    parser.add_argument("--repeats", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("evaluate", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Every number of models, printed and recorded."""
    counts = [int(n) for n in args.models.split(",")]
    modes = [True, False] if args.compare_side_cache else [True]
    print(f"{args.rows:,} held-out rows x {args.dim}, {FIT_ROWS:,} fitting rows, solvers {args.solvers}; "
          f"times in s: min / median of {args.repeats}")  # fmt: skip
    header = (
        f"{'N':>3s} {'self-scatters':>14s} {'fit':>13s} {'reads':>6s} {'sides':>6s} {'pair stats':>13s} {'sides':>6s}"
    )
    print(header + (f" {'evaluation':>13s} {'reads':>6s}" if args.evaluate else ""))
    for count in counts:
        root = Path(tempfile.mkdtemp(prefix="featswap-eval-"))
        try:
            names = synthetic_store(root / "s.zarr", count, args.rows, args.dim)
            results: dict[bool, list[dict[str, float]]] = {mode: [] for mode in modes}
            for repeat in range(args.repeats):
                for cached in modes if repeat % 2 == 0 else modes[::-1]:
                    parts.CACHE_SIDES = cached
                    try:
                        results[cached].append(run_once(root, names, args.solvers, args.similarity, args.evaluate))
                    finally:
                        parts.CACHE_SIDES = True
            for cached in modes:
                runs = results[cached]

                def times(key: str, runs: list[dict[str, float]] = runs) -> str:
                    values = [r[key] for r in runs]
                    return f"{min(values):5.1f} / {statistics.median(values):5.1f}"

                last = runs[-1]
                label = "once per model" if cached else "per pair"
                line = f"{count:3d} {label:>14s} {times('fit_s'):>13s} {last['fit_reads']:6.0f} "
                line += f"{last['fit_sides']:6.0f} {times('stats_s'):>13s} {last['stats_sides']:6.0f}"
                if args.evaluate:
                    line += f" {times('eval_s'):>13s} {last['eval_reads']:6.0f}"
                print(line, flush=True)
                median_fit = statistics.median(r["fit_s"] for r in runs)
                record.figure(f"N = {count}, self-scatters {label}: fitting time (median)", median_fit, unit="s")
                record.figure(f"N = {count}, self-scatters {label}: self-scatters computed", last["fit_sides"])
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
