"""Two networks over the same image files: one pass that decodes each image once, against one extraction after
the other (each decoding every image), side by side in one run.

    python benchmarks/extract_together.py [--images 512] [--batch-size 32] [--workers 1] [--repeats 3]

The networks are timm's ResNet-18 and MobileNet-v3-small (random weights), small enough on this CPU that decoding
and preprocessing are a visible part of the work; on a GPU, where the networks cost far less, decoding is most of
it. Prints the images decoded and the seconds of each way, and the ratio together / one after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from extraction_peer import image_collection, write_images
from featswap.backbones.sources import BackboneRecipe
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.extraction.local import extract, extract_together
from featswap.heap import keep_freed_memory
from featswap.store import FeatureStore
from recording import Recording, add_json_option

SPECS = ("timm:resnet18", "timm:mobilenetv3_small_100")


def counted(collection: Collection) -> tuple[Collection, list[int]]:
    """`collection` with a list that grows by one at every image decoded in this process."""
    loads: list[int] = []

    def load(i: int) -> Image.Image:
        loads.append(i)
        return collection.load(i)

    return dataclasses.replace(collection, load=load), loads


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args(argv)
    with Recording("extract_together", args.json, argv) as record:
        measure(args, record)


def measure(args: argparse.Namespace, record: Recording) -> None:
    """One pass against one extraction after the other, in turn, printed and recorded (freed memory kept, as every
    command runs)."""
    keep_freed_memory()
    settings = ExtractionSettings(batch_size=args.batch_size, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_images(root, args.images)
        collection = image_collection(root)
        backbones = [BackboneRecipe(spec, num_classes=4).build() for spec in SPECS]
        print(f"{' and '.join(SPECS)}, {args.images} JPEG files 256 x 256, batch {args.batch_size}, "
              f"{args.workers} decoding worker(s)")  # fmt: skip
        runs = iter(range(10**6))

        def one_by_one() -> None:
            with FeatureStore.create(Path(tmp) / f"s{next(runs)}.zarr") as store:
                for backbone in backbones:
                    extract(backbone, collection, store, settings, quiet=True)

        def together() -> None:
            with FeatureStore.create(Path(tmp) / f"s{next(runs)}.zarr") as store:
                extract_together(backbones, collection, store, settings, quiet=True)

        if args.workers == 0:  # decoding in this process: count it
            for name, way in (("one after the other", extract), ("together", None)):
                counting, loads = counted(collection)
                with FeatureStore.create(Path(tmp) / f"count{name}.zarr") as store:
                    if way is None:
                        extract_together(backbones, counting, store, settings, quiet=True)
                    else:
                        for backbone in backbones:
                            extract(backbone, counting, store, settings, quiet=True)
                print(f"images decoded, {name}: {len(loads)} (logits checks included)")
        together()  # warm-up
        ratios, seconds = [], {"one after the other": [], "together": []}
        for repeat in range(args.repeats):
            order = [("one after the other", one_by_one), ("together", together)]
            for name, fn in order if repeat % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - started)
            ratios.append(seconds["together"][-1] / seconds["one after the other"][-1])
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.2f} s")
    print(f"together / one after the other: min {min(ratios):.2f}, median {statistics.median(ratios):.2f}")
    median = statistics.median(ratios)
    record.figure("together / one after the other (time)", median, unit="x")


if __name__ == "__main__":
    main()
