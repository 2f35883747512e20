"""The whole experiment on the embedded digits set: train two tiny networks, extract, fit, evaluate, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from featswap.backbones.sources import load_backbone
from featswap.data.collections import digits
from featswap.demo.training import TrainConfig, train_or_load
from featswap.experiment import compare_stored
from featswap.extraction.local import extract
from featswap.outputs.paths import claim_run_dir
from featswap.progress import console
from featswap.store import FeatureStore, remove_store

DEMO_MODELS = ("tiny-inception", "tiny-resnet")
#: The paper ran 100,000 iterations on 1.1 M images; 3,000 reach a plateau on the 1,257 digits.
DEMO_PAPER_ITERATIONS = 3000


def run_demo(
    out: Path,
    paper_iterations: int = DEMO_PAPER_ITERATIONS,
    train: TrainConfig | None = None,
    n_boot: int = 1000,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run the paper's experiment on digits and write `out/metrics.json`, `out/report.md`, figures.

    Trained weights are cached in `out/weights/` and reused on the next run; the feature store
    `out/features.zarr` is rebuilt every run so that it always matches those weights.
    """
    started = time.perf_counter()
    claim_run_dir(out)
    torch.manual_seed(0)
    say = (lambda *_: None) if quiet else console.print
    dataset = digits()
    train = train or TrainConfig()
    say(
        f"digits: {len(dataset.split('train'))} train / {len(dataset.split('val'))} val images, "
        f"{dataset.num_classes} classes"
    )
    weights = {}
    for spec in DEMO_MODELS:
        t0 = time.perf_counter()
        path, reused = train_or_load(spec, dataset.split("train"), dataset.num_classes, out / "weights", train)
        done = f"reusing cached weights {path}" if reused else f"trained in {time.perf_counter() - t0:.1f} s"
        say(f"{spec}: {done}")
        weights[spec] = path
    store_path = out / "features.zarr"
    remove_store(store_path)
    with FeatureStore.create(store_path, dataset.name, dataset.classes) as store:
        for spec in DEMO_MODELS:
            backbone = load_backbone(spec, weights[spec], dataset.num_classes)
            for split in ("train", "val"):
                extract(backbone, dataset.split(split), store, quiet=quiet)
        say(f"paper solver: {paper_iterations:,} iterations (the paper used 100,000 on 1.1 M images)")
        metrics = compare_stored(
            store,
            DEMO_MODELS,
            out,
            solvers=("paper", "lstsq"),
            solver_params={"paper": {"iterations": paper_iterations}},
            n_boot=n_boot,
            quiet=quiet,
        )
    say(f"wrote {out / 'metrics.json'} and {out / 'report.md'} in {time.perf_counter() - started:.1f} s")
    return metrics
