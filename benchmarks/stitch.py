"""`featswap stitch` against the forward passes it cannot avoid, measured side by side in one run.

    python benchmarks/stitch.py [--images 1000] [--repeats 3] [--batch-size 256]
    python benchmarks/stitch.py --peak LAYER_A:LAYER_B --images N     # one run, prints its peak memory

A stitching run over K layer pairs (both directions) needs, per image, one forward pass of each network to fit
(every pair's moments from the same pass), one of each to evaluate natively and read the source activations, and
one of each target per pair: K + 2 passes of each network. The benchmark times those K + 2 bare forward passes of
both networks on tensors preloaded in memory, and the whole `featswap.stitch` run (image files decoded and
preprocessed, fitting pass, solves, evaluation pass, statistics, report and figures) on the same images, which
are the fitting and the evaluation images at once; it prints `bare/stitch` for each repetition, interleaved, and
the min and median.

Networks: the CIFAR-10 kit's ResNet-20 and ResNet-56 at their stage outputs (`../shared/data/cifar10`), else
featswap's two tiny networks (random weights) on the digits.

`--peak` runs one stitching run at one layer pair in this process and prints its peak resident memory: run it at
the earliest stage pair with N and 2N images to see that memory does not grow with the images.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

import featswap
from featswap.backbones.sources import load_backbone
from featswap.config import (
    DataSettings,
    EvaluationSettings,
    ExtractionSettings,
    FitSettings,
    ModelConfig,
    RunConfig,
    StitchSettings,
)
from featswap.extraction.plan import to_device
from featswap.heap import keep_freed_memory
from featswap.stitching.layers import NetworkLayers, layer_pairs
from recording import Recording, add_json_option

KIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"


def subset_folder(root: Path, images: int) -> Path:
    """A folder of links to the first `images / 10` images of each kit class (the same images every run)."""
    folder = root / "images"
    for class_dir in sorted((KIT / "images").iterdir()):
        (folder / class_dir.name).mkdir(parents=True)
        for file in sorted(class_dir.iterdir())[: images // 10]:
            (folder / class_dir.name / file.name).symlink_to(file)
    return folder


def config_for(root: Path, images: int, layers: tuple[str, ...], batch_size: int, out: Path) -> RunConfig:
    if (KIT / "weights").is_dir():
        names = ("resnet20", "resnet56")
        models = tuple(ModelConfig(f"{KIT / 'models.py'}:{n}", str(KIT / "weights" / f"{n}.th")) for n in names)
        folder = subset_folder(root, images) if not (root / "images").is_dir() else root / "images"
        data = DataSettings(fit_data=f"imagefolder:{folder}", eval_data=(f"imagefolder:{folder}",))
    else:
        models = (ModelConfig("tiny-resnet"), ModelConfig("tiny-inception"))
        data = DataSettings(data="digits", val_fraction=0.5)
    return RunConfig(models=models, data=data, fit=FitSettings(("lstsq",)), stitch=StitchSettings(layers),
                     extraction=ExtractionSettings(batch_size=batch_size), evaluation=EvaluationSettings(n_boot=1000),
                     out=str(out))  # fmt: skip


def bare_seconds(config: RunConfig, passes: int, batch_size: int) -> tuple[float, int]:
    """Seconds of `passes` forward passes of each network over the run's evaluation images, preloaded, and the
    number of images."""
    from featswap.data.collections import fit_and_eval

    _, evals = fit_and_eval(config.data)
    collection = evals[0]
    total = 0.0
    for model in config.models:
        backbone = load_backbone(model.spec, model.weights, len(collection.classes or ()))
        to_device(backbone, "cpu")  # the layout featswap runs networks in
        transform = backbone.transform()
        x = torch.stack([transform(collection.load(i)) for i in range(len(collection))])
        with torch.inference_mode():
            backbone.forward(x[:batch_size])  # warm-up
            began = time.perf_counter()
            for _ in range(passes):
                for start in range(0, len(x), batch_size):
                    backbone.forward(x[start : start + batch_size])
            total += time.perf_counter() - began
    return total, len(collection)


def peak(args: argparse.Namespace, record: Recording) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = config_for(Path(tmp), args.images, (args.peak,), args.batch_size, Path(tmp) / "out")
        began = time.perf_counter()
        featswap.stitch(config, quiet=True)
        seconds = time.perf_counter() - began
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.peak}, {args.images} images: peak resident memory {rss:.2f} GiB, {seconds:.1f} s")
    record.figure(f"peak resident memory, {args.peak}, {args.images} images", rss, unit="GiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--peak", help="LAYER_A:LAYER_B: one run at this pair, printing its peak memory")
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("stitch", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """The side-by-side runs (or, with --peak, one run's peak memory), printed and recorded."""
    keep_freed_memory()  # as featswap.stitch does: the bare passes run under the same malloc setting
    if args.peak:
        return peak(args, record)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        config = config_for(Path(tmp), args.images, ("stages",), args.batch_size, Path(tmp) / "out")
        first, second = (load_backbone(m.spec, m.weights, 10) for m in config.models)
        pairs = len(layer_pairs(("stages",), NetworkLayers(first), NetworkLayers(second)))
        print(f"{first.name} and {second.name}, {pairs} stage pairs (both directions: {2 * pairs} maps), "
              f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs")  # fmt: skip
        for repeat in range(args.repeats):
            bare, images = bare_seconds(config, pairs + 2, args.batch_size)
            began = time.perf_counter()
            featswap.stitch(config.with_(out=str(Path(tmp) / f"out{repeat}")), quiet=True)
            whole = time.perf_counter() - began
            ratios.append(bare / whole)
            print(f"repeat {repeat + 1}: {pairs + 2} bare passes of both networks over {images} images {bare:.1f} s; "
                  f"whole stitch run {whole:.1f} s; bare/stitch {bare / whole:.2f}")  # fmt: skip
    print(f"bare/stitch: min {min(ratios):.2f}, median {statistics.median(ratios):.2f}")
    record.figure("bare forward passes / whole stitch run (time, median)", statistics.median(ratios), unit="x")


if __name__ == "__main__":
    main()
