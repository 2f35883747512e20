"""How often the evaluation step reads each model's held-out features, and how long it takes.

    python benchmarks/evaluate.py [--models 8] [--rows 50000] [--dim 2048] [--solvers lstsq] [--similarity]

Writes a real feature store with N synthetic models (features of one shared latent through a different random
map and ReLU per model, `dim` wide, with linear heads over 100 classes), `rows` held-out rows and 4,096 fitting
rows, fits the maps of every ordered pair with the given solvers, then times the evaluation step alone
(swap test of every map, statistics, per-image table, report; similarity measures with `--similarity`) and
counts how many whole passes over held-out features it read. The last line reads
`evaluation: <reads> full feature reads (<per model> per model), <seconds> s`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from featswap.config import EvaluationSettings, FitSettings, RunConfig
from featswap.experiment import Experiment
from featswap.store import FeatureStore

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
            store.write_collection(split, [f"{split}/{i:07d}" for i in range(n)], scores.argmax(1), classes, "", role)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--solvers", default="lstsq")
    parser.add_argument("--similarity", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="featswap-eval-"))
    try:
        started = time.perf_counter()
        names = synthetic_store(root / "s.zarr", args.models, args.rows, args.dim)
        print(f"store: {args.models} models, {args.rows:,} held-out rows x {args.dim} in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        config = RunConfig(
            store=str(root / "s.zarr"),
            fit=FitSettings(tuple(args.solvers.split(","))),
            evaluation=EvaluationSettings(n_boot=200, similarity=args.similarity),
        )
        experiment = Experiment(config, quiet=True)
        with FeatureStore.open(root / "s.zarr") as store:
            maps = experiment.fit(store, "train", names)
        store = FeatureStore.open(root / "s.zarr")  # count the evaluation's reads alone
        started = time.perf_counter()
        experiment.write(store, root / "out", maps, experiment.evaluate(store, maps, ["val"], names))
        seconds = time.perf_counter() - started
        reads = store.full_reads()
        print(f"evaluation: {reads:.0f} full feature reads ({reads / args.models:.1f} per model), {seconds:.0f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
