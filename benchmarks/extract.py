"""Extraction throughput against the bare forward pass, for a timm ResNet-50 on this CPU; and the Ray engine.

    python benchmarks/extract.py [--images 640] [--batch-size 32] [--workers 1] [--no-ray]

Writes real JPEG files (256 x 256, so that resizing and cropping happen) into an image folder, then
measures side by side in one run: featswap's extraction (JPEG files on disk -> decoded, preprocessed,
forward, features in a zarr store) and the model's forward pass alone on tensors preloaded in memory,
both in images/s. The line `extract/forward: <ratio>` compares them.

With Ray installed, the same extraction runs on a local Ray instance of this machine's CPUs with 1 and 2
inference actors (CPU workers), decoding in Ray tasks beside them; each `ray N workers/local: <ratio>`
line compares its images/s with the local engine's. Ray's start-up is timed apart; each Ray run includes
starting its actors (importing torch, building the network).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featswap.backbones.sources import BackboneRecipe
from featswap.data.collections import Dataset, Split, image_folder
from featswap.extraction.local import extract
from featswap.store import FeatureStore


def write_images(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        smooth = rng.random((32, 32, 3)) * 255
        image = Image.fromarray(smooth.astype(np.uint8)).resize((256, 256), Image.BICUBIC)
        image.save(folder / f"{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=640, help="images written; half are extracted")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine's columns")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_images(root, args.images)
        data = image_folder(root, val_fraction=0.5)
        split = data.split("train")
        recipe = BackboneRecipe("timm:resnet50", num_classes=4)  # random weights: speed does not depend on them
        backbone = recipe.build()
        transform = backbone.transform()
        size = backbone.data_config.input_size
        print(f"timm resnet50, {len(split)} JPEG images (256 x 256 -> {size}), batch {args.batch_size}, "
              f"{torch.get_num_threads()} threads, {args.workers} loader worker(s)")  # fmt: skip

        preloaded = torch.stack([transform(split.load(i)) for i in range(len(split))])
        with torch.inference_mode():
            backbone.features(preloaded[: args.batch_size])  # warm-up
            started = time.perf_counter()
            for start in range(0, len(preloaded), args.batch_size):
                backbone.features(preloaded[start : start + args.batch_size])
            forward = len(preloaded) / (time.perf_counter() - started)

        with FeatureStore.create(Path(tmp) / "s.zarr", data.name, data.classes) as store:
            started = time.perf_counter()
            extract(backbone, split, store, batch_size=args.batch_size, num_workers=args.workers, quiet=True)
            extracted = len(split) / (time.perf_counter() - started)
        ray_rates = {} if args.no_ray else ray_columns(recipe, data, split, Path(tmp), args.batch_size)
    print(f"bare forward on preloaded tensors: {forward:.1f} images/s")
    print(f"featswap extract from JPEG files:  {extracted:.1f} images/s")
    print(f"extract/forward: {extracted / forward:.2f}")
    for workers, ray_rate in ray_rates.items():
        print(f"featswap extract, Ray, {workers} CPU worker(s): {ray_rate:.1f} images/s")
    for workers, ray_rate in ray_rates.items():
        print(f"ray {workers} workers/local: {ray_rate / extracted:.2f}")


def ray_columns(recipe: BackboneRecipe, data: Dataset, split: Split, tmp: Path, batch_size: int) -> dict[int, float]:
    """Images/s of the Ray engine with 1 and 2 inference actors on a local Ray instance of this machine."""
    try:
        from featswap.engines.ray.connect import connect
        from featswap.engines.ray.extract import RayResources, extract_ray
    except ImportError:
        print("Ray is not installed (pip install 'featswap[ray]'): no Ray columns")
        return {}
    cpus = os.cpu_count() or 2
    started = time.perf_counter()
    connect(num_cpus=cpus)
    print(f"Ray start-up (local instance, {cpus} CPUs): {time.perf_counter() - started:.1f} s")
    rates = {}
    for workers in (1, 2):
        # Actors share the CPUs with the decoding tasks: at most cpus - 1 CPUs go to the actors.
        resources = RayResources(workers=workers, cpus_per_worker=min(1.0, (cpus - 1) / workers))
        print(f"Ray {workers} worker(s): {resources.cpus_per_worker:g} CPU each, decoding on the rest")
        with FeatureStore.create(tmp / f"ray{workers}.zarr", data.name, data.classes) as store:
            started = time.perf_counter()
            extract_ray(recipe, split, store, batch_size=batch_size, resources=resources, quiet=True)
            rates[workers] = len(split) / (time.perf_counter() - started)
    return rates


if __name__ == "__main__":
    main()
