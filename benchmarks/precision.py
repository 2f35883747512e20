"""What `--precision bf16` (or fp16) does to features and to Table 1, against fp32, on real networks: the sample kit's
MobileNet-v1 and -v2 (../shared/data/imagenet-sample), maps fitted on its unlabelled photos, evaluated on its 1,000
labelled ones; the same run at both precisions, side by side.

    python benchmarks/precision.py [--precision bf16] [--train-limit 500] [--device cpu] [--solver lstsq]

Prints, per network, the largest relative difference of a feature vector (||f_p - f_32|| / ||f_32||, over images)
and of one feature (|f_p - f_32| / max |f_32|), each network's top-1 count, and each map's mapped count and loss, at
fp32 and at the reduced precision, with the images whose prediction changed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import featswap
from featswap.store import FeatureStore
from recording import Recording, add_json_option

KIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"


def run(precision: str, out: Path, args: argparse.Namespace) -> tuple[dict, float]:
    models = [
        {"spec": f"{KIT / 'models.py'}:mobilenet_v1", "weights": str(KIT / "weights/mobilenet_v1_1001.safetensors")},
        {"spec": f"{KIT / 'models.py'}:mobilenet_v2", "weights": str(KIT / "weights/mobilenet_v2_1000.safetensors")},
    ]
    config = featswap.RunConfig.build(
        overrides={
            "models": models,
            "data": {
                "fit_data": f"images:{KIT / 'unlabelled'}",
                "eval_data": [f"imagenet:{KIT / 'images'}"],
                "train_limit": args.train_limit,
            },
            "extraction": {"batch_size": 50, "precision": precision},
            "fit": {"solvers": [args.solver]},
            "evaluation": {"similarity": False, "n_boot": 200},
            "engine": {"device": args.device},
            "out": str(out),
        }
    )
    began = time.perf_counter()
    metrics = featswap.run(config, quiet=True)
    return metrics, time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=("bf16", "fp16"), default="bf16")
    parser.add_argument("--train-limit", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--solver", default="lstsq")
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("precision", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """Both precisions' whole runs, compared, printed and recorded."""
    if not (KIT / "weights").is_dir():
        raise SystemExit(f"{KIT} is absent")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {p: run(p, Path(tmp) / p, args) for p in ("fp32", args.precision)}
        print(f"sample kit, fit on {args.train_limit} unlabelled photos, evaluated on 1,000; device {args.device}")
        for p, (_, seconds) in runs.items():
            print(f"{p}: whole run {seconds:.1f} s")
        stores = {p: FeatureStore.open(Path(tmp) / p / "features.zarr") for p in runs}
        for name in ("mobilenet_v1", "mobilenet_v2"):
            for collection in stores["fp32"].collections():
                f32 = stores["fp32"].features(collection, name).astype(np.float64)
                low = stores[args.precision].features(collection, name).astype(np.float64)
                vector = np.linalg.norm(low - f32, axis=1) / np.maximum(np.linalg.norm(f32, axis=1), 1e-30)
                element = np.abs(low - f32).max() / np.abs(f32).max()
                record.figure(f"{name} / {collection}: largest relative difference of a feature vector", vector.max())
                print(
                    f"{name} / {collection}: max relative difference of a feature vector {vector.max():.2e} "
                    f"(median {np.median(vector):.2e}); of one feature, against the largest {element:.2e}"
                )
        full, reduced = runs["fp32"][0], runs[args.precision][0]
        for name in full["models"]:
            a, b = full["models"][name]["val_correct"], reduced["models"][name]["val_correct"]
            print(f"top-1 {name}: fp32 {a} / {args.precision} {b} of {full['models'][name]['val_total']}")
            record.figure(f"top-1 {name}: {args.precision} - fp32", b - a, unit="images")
        for pa, pb in zip(full["pairs"], reduced["pairs"], strict=True):
            print(
                f"{pa['source']} -> {pa['target']} ({pa['solver']}): mapped correct fp32 {pa['mapped_correct']} / "
                f"{args.precision} {pb['mapped_correct']}; loss fp32 {100 * pa['loss']:+.2f} / {args.precision} "
                f"{100 * pb['loss']:+.2f} points"
            )


if __name__ == "__main__":
    main()
