"""The paper's extraction against its bare forward passes: both networks over real-size JPEGs in one pass
(`extract_together`: each image decoded once, channels-last, pinned memory, decoding workers), against the two
networks' forward passes alone on tensors already on the device, side by side in one run; writes a JSON.

    python benchmarks/paper_gpu.py [--device cuda] [--size paper] [--batch-size 256] [--batches 8]
                                   [--workers N] [--precision fp32|bf16|fp16] [--json paper_gpu.json]

`--size paper`: TF-slim's Inception-v4 (299 px) and ResNet-v2-152 where featswap has the `tfslim:` family, else
timm's `inception_v4` and `resnetv2_152` (the same sizes and about the same work), random weights; `--size tiny`:
timm's MobileNet-v3-small and ResNet-18 at 64 px, for a check on a CPU in seconds. The JPEGs are 500 x 375, as
ImageNet's typical photo: the sample kit's photos (../shared/data/imagenet-sample) enlarged to that size, or random
pixels without the kit. The goal on a GPU: extraction at >= 0.9x the bare forward throughput of both networks.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from featswap.backbones.backbone import Backbone
from featswap.backbones.sources import FAMILIES, BackboneRecipe
from featswap.config import ExtractionSettings
from featswap.data.collections import images
from featswap.extraction.local import extract_together
from featswap.extraction.plan import AUTOCAST_DTYPES, to_device
from featswap.store import FeatureStore

KIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample" / "images"
#: ImageNet's typical photo: 500 x 375 pixels.
PHOTO_SIZE = (500, 375)
TINY_CONFIG = {"input_size": (3, 64, 64), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "crop_pct": 0.875}


def networks(size: str) -> list[BackboneRecipe]:
    """The two networks of `size` (random weights, 1,001 outputs as TF-slim's), Inception side first."""
    if size == "tiny":
        return [
            BackboneRecipe(spec, num_classes=1000, data_config=TINY_CONFIG, pretrained=False)
            for spec in ("timm:mobilenetv3_small_100", "timm:resnet18")
        ]
    if "tfslim" in FAMILIES.names():
        return [BackboneRecipe(f"tfslim:{arch}", num_classes=1000) for arch in ("inception_v4", "resnet_v2_152")]
    return [
        BackboneRecipe("timm:inception_v4", num_classes=1000, pretrained=False),
        BackboneRecipe("timm:resnetv2_152", num_classes=1000, pretrained=False),
    ]


def write_jpegs(folder: Path, count: int, seed: int = 0) -> str:
    """`count` JPEGs of 500 x 375 (quality 90) in `folder`: the kit's photos enlarged, else random pixels. Returns
    which."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(KIT.glob("*/*.JPEG"))[:count] if KIT.is_dir() else []
    rng = np.random.default_rng(seed)
    for i in range(count):
        if photos:
            with Image.open(photos[i % len(photos)]) as photo:
                image = photo.convert("RGB").resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
        else:
            image = Image.fromarray(rng.integers(0, 256, (PHOTO_SIZE[1], PHOTO_SIZE[0], 3), dtype=np.uint8))
        image.save(folder / f"{i:06d}.jpg", quality=90)
    return "the sample kit's photos, enlarged" if photos else "random pixels"


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_forward(backbone: Backbone, device: str, batch_size: int, batches: int, precision: str) -> float:
    """Images per second of the network's features alone, on random batches already on the device (channels-last,
    `precision`), after one batch of warm-up."""
    x = torch.randn(batch_size, *backbone.data_config.input_size, device=device).to(memory_format=torch.channels_last)
    dtype = AUTOCAST_DTYPES.get(precision)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    with torch.inference_mode(), torch.autocast(kind, dtype=dtype, enabled=dtype is not None):
        backbone.features(x)
        synchronize(device)
        began = time.perf_counter()
        for _ in range(batches):
            backbone.features(x)
        synchronize(device)
    return batch_size * batches / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=("paper", "tiny"), default="paper")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=8, help="batches timed (the extraction reads as many)")
    parser.add_argument("--workers", type=int, default=min(len(os.sched_getaffinity(0)), 32))
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--json", type=Path, default=Path("paper_gpu.json"))
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; use --device cpu")
    recipes = networks(args.size)
    backbones = [recipe.build() for recipe in recipes]
    for backbone in backbones:
        to_device(backbone, args.device)
    bare = {b.name: bare_forward(b, args.device, args.batch_size, args.batches, args.precision) for b in backbones}
    bare_both = 1.0 / sum(1.0 / v for v in bare.values())  # both networks on every image, one after the other
    count = args.batch_size * args.batches
    settings = ExtractionSettings(
        batch_size=args.batch_size, chunk_rows=args.batch_size, workers=args.workers, precision=args.precision
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = write_jpegs(Path(tmp) / "jpegs", count)
        collection = images(f"images:{Path(tmp) / 'jpegs'}", str(Path(tmp) / "jpegs")).parts["all"]
        with FeatureStore.create(Path(tmp) / "store.zarr") as store:
            began = time.perf_counter()
            extract_together(backbones, collection, store, settings, args.device, "fit", quiet=True)
            seconds = time.perf_counter() - began
    extraction = count / seconds
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cpus": len(os.sched_getaffinity(0)),
        "networks": {b.name: b.spec for b in backbones},
        "input_sizes": {b.name: list(b.data_config.input_size) for b in backbones},
        "jpegs": {"count": count, "size": list(PHOTO_SIZE), "from": source},
        "batch_size": args.batch_size,
        "workers": args.workers,
        "precision": args.precision,
        "bare_images_per_s": bare,
        "bare_both_images_per_s": bare_both,
        "extraction_images_per_s": extraction,
        "extraction_seconds": seconds,
        "ratio_extraction_to_bare": extraction / bare_both,
        "goal_ratio": 0.9,
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in bare.items():
        print(f"bare forward {name}: {value:,.1f} images/s")
    print(f"bare forward of both, one after the other: {bare_both:,.1f} images/s")
    print(f"extraction of both ({count:,} JPEGs 500 x 375, {args.workers} workers): {extraction:,.1f} images/s")
    print(f"ratio extraction / bare: {extraction / bare_both:.2f}x (goal >= 0.9x); wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
