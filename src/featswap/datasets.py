"""Datasets as lists of samples: a stable id, an integer label, and a way to load the image.

A `Split` is what extraction reads: ids `(N,)`, labels `(N,)` and `load(i) -> PIL.Image`. Every model reads
the same split in the same id order, so features of two models are always paired by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from featswap.errors import DataError, SpecError, closest
from featswap.registry import Registry

SPLITS = ("train", "val")


@dataclass(frozen=True)
class Split:
    """One split of a dataset: `ids` (N,) str, `labels` (N,) int64, `load(i)` the i-th image."""

    name: str
    ids: Sequence[str]
    labels: np.ndarray
    load: Callable[[int], Image.Image]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Dataset:
    """A named dataset with a `train` split (for fitting maps) and a `val` split (for evaluation)."""

    name: str
    classes: tuple[str, ...]
    splits: dict[str, Split]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise SpecError(f"Dataset {self.name!r} has no split {name!r}.{closest(name, self.splits)}")
        return self.splits[name]


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(train, val)` of a seeded split that keeps each class's share in both parts.

    Both index arrays are sorted so that the split's id order follows the source order.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive); got {val_fraction}.")
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        train, val = train_test_split(index, test_size=val_fraction, random_state=seed, stratify=labels)
    except ValueError as err:
        raise DataError(
            f"Cannot split {len(labels)} samples into train and val stratified by class: {err}. "
            "Use more samples per class or another val_fraction."
        ) from err
    return np.sort(train), np.sort(val)


DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")


@DATASETS.register("digits")
def digits(val_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 real 8x8 handwritten digits (10 classes) as grayscale images.

    Pixel values 0..16 become 0..255 so that every model reads them as ordinary 8-bit images.
    Split deterministically into train and val, stratified by class. Ids are `digits/NNNN`.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    labels = bunch.target.astype(np.int64)
    parts = stratified_split(labels, val_fraction, seed)

    def make(name: str, index: np.ndarray) -> Split:
        def load(i: int) -> Image.Image:
            return Image.fromarray(pixels[index[i]], mode="L")

        return Split(name, [f"digits/{j:04d}" for j in index], labels[index], load)

    return Dataset(
        "digits",
        tuple(str(c) for c in range(10)),
        {s: make(s, ix) for s, ix in zip(SPLITS, parts, strict=True)},
    )


def load_dataset(spec: str, **options: float | int) -> Dataset:
    """A dataset from its SPEC (`digits`; `imagefolder:DIR` and `imagenet:DIR` build on this)."""
    kind, _, _arg = spec.partition(":")
    return DATASETS.get(kind)(**options)
