"""Extraction throughput against the bare forward pass, for a timm ResNet-50 on this CPU; and the Ray engine.

    python benchmarks/extract.py [--images 320] [--batch-size 32] [--workers 0] [--repeats 3] [--no-ray] [--json PATH]

Writes real JPEG files (256 x 256, so that resizing and cropping happen) into an image folder, then
measures side by side in one run, both under featswap's malloc setting (`featswap.heap`, as every command runs;
`FEATSWAP_KEEP_FREED_MEMORY=0` measures glibc's defaults): featswap's extraction (JPEG files on disk -> decoded,
preprocessed, forward, features in a zarr store) and the model's forward pass alone, in the same (channels-last)
layout, on tensors preloaded in memory, both in images/s, repeated `--repeats` times in turn (bare, extract,
bare, ...: load from other processes falls on both alike), each side warmed up once, untimed, beforehand. The
line `extract/forward: <median ratio>` compares them; each repeat's ratio, and the extraction's CPU seconds split
into user and system time (this process and its decoding workers: system time as large as user time marks threads
competing for cores, or pages faulted in anew), are printed above it.
`benchmarks/peers.py` repeats this against a DataLoader + hook loop, interleaved.

With Ray installed, the same extraction runs on a local Ray instance of this machine's CPUs with 1 and 2
inference actors (CPU workers), decoding in Ray tasks beside them; each `ray N workers/local: <ratio>`
line compares its images/s with the local engine's. Ray's start-up is timed apart; each Ray run includes
starting its actors (importing torch, building the network).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from extraction_peer import bare_forward, featswap_extract, image_collection, write_images
from featswap.backbones.sources import BackboneRecipe
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.extraction.plan import to_device
from featswap.heap import keep_freed_memory
from featswap.store import FeatureStore
from recording import Recording, add_json_option


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=320, help="JPEG files written and extracted")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="decoding processes (featswap's default: 0, in-process)")
    parser.add_argument("--repeats", type=int, default=3, help="bare and extract runs, in turn")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine's columns")
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("extract", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """The side-by-side runs, printed and recorded."""
    kept = keep_freed_memory()  # as every featswap command does; both sides run under it
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_images(root, args.images)
        collection = image_collection(root)
        recipe = BackboneRecipe("timm:resnet50", num_classes=4)  # random weights: speed does not depend on them
        backbone = recipe.build()
        to_device(backbone, "cpu")  # the layout featswap's extraction runs the network in
        transform = backbone.transform()
        size = backbone.data_config.input_size
        print(f"timm resnet50, {len(collection)} JPEG images (256 x 256 -> {size}), batch {args.batch_size}, "
              f"{torch.get_num_threads()} threads, {args.workers} loader worker(s), freed memory kept: "
              f"{kept}")  # fmt: skip

        preloaded = torch.stack([transform(collection.load(i)) for i in range(len(collection))])
        # Both sides warm up once, untimed (first-use costs: oneDNN's kernels for each batch shape, the heap's growth).
        bare_forward(backbone, preloaded[: args.batch_size], args.batch_size)
        warm = collection.subset(np.arange(min(2 * args.batch_size, len(collection))), name="warm-up")
        featswap_extract(backbone, warm, Path(tmp) / "warm-up.zarr", args.batch_size, args.workers)
        forwards, extracts, cpu = [], [], (0.0, 0.0)
        for k in range(args.repeats):
            started = time.perf_counter()
            bare_forward(backbone, preloaded, args.batch_size)
            forwards.append(len(preloaded) / (time.perf_counter() - started))
            before = cpu_seconds()
            started = time.perf_counter()
            featswap_extract(backbone, collection, Path(tmp) / f"s{k}.zarr", args.batch_size, args.workers)
            extracts.append(len(collection) / (time.perf_counter() - started))
            after = cpu_seconds()
            cpu = (cpu[0] + after[0] - before[0], cpu[1] + after[1] - before[1])
            print(f"repeat {k + 1}: bare {forwards[-1]:.1f} images/s, extract {extracts[-1]:.1f} images/s, "
                  f"ratio {extracts[-1] / forwards[-1]:.3f}")  # fmt: skip
        forward, extracted = statistics.median(forwards), statistics.median(extracts)
        ratios = sorted(e / f for e, f in zip(extracts, forwards, strict=True))
        ray_rates = {} if args.no_ray else ray_columns(recipe, collection, Path(tmp), args.batch_size)
    print(f"bare forward on preloaded tensors: {forward:.1f} images/s")
    print(f"featswap extract from JPEG files:  {extracted:.1f} images/s")
    print(f"extraction CPU time: user {cpu[0]:.1f} s, system {cpu[1]:.1f} s (system/user {cpu[1] / cpu[0]:.2f})")
    print(f"extract/forward: {statistics.median(ratios):.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f})")
    median = statistics.median(ratios)
    record.figure("extract/forward (median)", median, unit="x", target=">= 0.95")
    record.figure("extraction system/user CPU time", cpu[1] / cpu[0], unit="x")
    for workers, ray_rate in ray_rates.items():
        print(f"featswap extract, Ray, {workers} CPU worker(s): {ray_rate:.1f} images/s")
    for workers, ray_rate in ray_rates.items():
        print(f"ray {workers} workers/local: {ray_rate / extracted:.2f}")
        record.figure(f"Ray, {workers} CPU worker(s) / local engine", ray_rate / extracted, unit="x")


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU seconds of this process and its ended children (decoding workers) so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


def ray_columns(recipe: BackboneRecipe, collection: Collection, tmp: Path, batch_size: int) -> dict[int, float]:
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
        settings = ExtractionSettings(batch_size=batch_size)
        with FeatureStore.create(tmp / f"ray{workers}.zarr") as store:
            started = time.perf_counter()
            extract_ray(recipe, collection, store, settings, resources=resources, quiet=True)
            rates[workers] = len(collection) / (time.perf_counter() - started)
    return rates


if __name__ == "__main__":
    main()
