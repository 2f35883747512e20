"""Extraction as most scripts (and thingsvision) do it, and the bare forward pass: the two baselines that
`benchmarks/peers.py` and `benchmarks/extract.py` time featswap's extraction against.

- `hook_loop`: a torch `Dataset` that opens each JPEG with PIL and applies the model's own transform, a
  `DataLoader` with worker processes, and a forward hook on the network's pooling layer that keeps its output.
- `bare_forward`: the feature function alone, on tensors preprocessed and preloaded in memory.
- `featswap_extract`: `featswap.extraction.local.extract` from the image files into a new zarr store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from featswap.backbones.backbone import Backbone
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection, images
from featswap.extraction.local import extract
from featswap.store import FeatureStore


def write_images(root: Path, count: int, size: int = 256) -> None:
    """`count` smooth random RGB JPEG files `size` x `size` (so that resizing and cropping happen) in 4 folders."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        smooth = rng.random((32, 32, 3)) * 255
        image = Image.fromarray(smooth.astype(np.uint8)).resize((size, size), Image.BICUBIC)
        image.save(folder / f"{i:05d}.jpg", quality=90)


def image_collection(root: Path) -> Collection:
    """Every image under `root`, as `featswap --data images:ROOT` reads them."""
    return images(f"images:{root}", str(root)).parts["all"]


class JpegFiles(TorchDataset[torch.Tensor]):
    """The files, opened with PIL and preprocessed by `transform`: the loop of a typical script."""

    def __init__(self, files: list[Path], transform: Callable[[Any], torch.Tensor]) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.files[i]) as image:
            return self.transform(image.convert("RGB"))


def hook_loop(backbone: Backbone, files: list[Path], batch_size: int, workers: int) -> np.ndarray:
    """Features `(N, D)` float32: DataLoader over the files, the whole network run, the pooled output taken by a
    forward hook on its pooling layer (timm's `global_pool`)."""
    module = backbone.module
    kept: list[torch.Tensor] = []
    handle = module.get_submodule("global_pool").register_forward_hook(lambda _m, _i, out: kept.append(out))
    loader = DataLoader(JpegFiles(files, backbone.transform()), batch_size=batch_size, num_workers=workers)
    try:
        with torch.inference_mode():
            for batch in loader:
                module(batch)
    finally:
        handle.remove()
    return torch.cat(kept).flatten(1).float().numpy()


def bare_forward(backbone: Backbone, preloaded: torch.Tensor, batch_size: int) -> None:
    """The feature function alone over preprocessed images `(N, C, H, W)` already in memory."""
    with torch.inference_mode():
        for start in range(0, len(preloaded), batch_size):
            backbone.features(preloaded[start : start + batch_size])


def featswap_extract(
    backbone: Backbone, collection: Collection, store_path: Path, batch_size: int, workers: int
) -> np.ndarray:
    """featswap's extraction from the files into a new store at `store_path`; returns the stored features."""
    settings = ExtractionSettings(batch_size=batch_size, workers=workers)
    with FeatureStore.create(store_path) as store:
        extract(backbone, collection, store, settings, quiet=True)
        return np.asarray(store.features(collection.name, backbone.name))
