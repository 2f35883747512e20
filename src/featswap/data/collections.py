"""Datasets as lists of samples: a stable id, an integer label, and a way to load the image.

A `Split` is what extraction reads: ids `(N,)`, labels `(N,)` and `load(i) -> PIL.Image`. Every model reads
the same split in the same id order, so features of two models are always paired by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from featswap.data.decode import IMAGE_EXTENSIONS, is_image_file, open_image
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


def _class_files(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """Classes (sorted folder names), image files (sorted within each class) and labels under `root`."""
    if not root.is_dir():
        raise DataError(f"Image folder {str(root)!r} does not exist.")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders; expected one folder of images per class.")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(
            f
            for f in (root / name).rglob("*")
            if is_image_file(f) and not any(p.startswith(".") for p in f.relative_to(root / name).parts)
        )
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(f"{root} has class folders but no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return classes, files, np.asarray(labels, dtype=np.int64)


def _files_split(name: str, root: Path, files: list[Path], labels: np.ndarray) -> Split:
    ids = [f.relative_to(root).as_posix() for f in files]

    def load(i: int) -> Image.Image:
        return open_image(files[i], ids[i])

    return Split(name, ids, labels, load)


def _subset(split: Split, index: np.ndarray, name: str | None = None) -> Split:
    def load(i: int) -> Image.Image:
        return split.load(int(index[i]))

    return Split(name or split.name, [split.ids[i] for i in index], split.labels[index], load)


def limit_train(dataset: Dataset, train_limit: int | None, seed: int) -> Dataset:
    """The dataset with its train split cut to a stratified, seeded subset of `train_limit` images."""
    train = dataset.split("train")
    if train_limit is None or train_limit >= len(train):
        return dataset
    if train_limit < dataset.num_classes:
        raise DataError(
            f"--train-limit {train_limit} is below the {dataset.num_classes} classes; keep at least one per class."
        )
    _, keep = stratified_split(train.labels, train_limit / len(train), seed)
    return Dataset(dataset.name, dataset.classes, {**dataset.splits, "train": _subset(train, keep)})


@DATASETS.register("imagefolder")
def image_folder(root: str | Path, val_fraction: float = 0.2, seed: int = 0, train_limit: int | None = None) -> Dataset:
    """One folder per class under `root`. With `train/` and `val/` subfolders they are the two splits;
    otherwise a seeded split stratified by class holds out `val_fraction` of the images. Ids are paths
    relative to `root`."""
    root = Path(root)
    if (root / "train").is_dir() and (root / "val").is_dir():
        return imagenet(root, seed=seed, train_limit=train_limit, name="imagefolder")
    classes, files, labels = _class_files(root)
    train, val = stratified_split(labels, val_fraction, seed)
    whole = _files_split("all", root, files, labels)
    splits = {"train": _subset(whole, train, "train"), "val": _subset(whole, val, "val")}
    return limit_train(Dataset(f"imagefolder:{root}", tuple(classes), splits), train_limit, seed)


@DATASETS.register("imagenet")
def imagenet(root: str | Path, seed: int = 0, train_limit: int | None = None, name: str = "imagenet") -> Dataset:
    """The ImageNet layout: `root/train/<synset>/*` and `root/val/<synset>/*`. Class indices follow the
    sorted synsets (the order of timm's and torchvision's 1000 ImageNet logits)."""
    root = Path(root)
    if not ((root / "train").is_dir() and (root / "val").is_dir()):
        raise DataError(f"{root} needs train/ and val/ folders with one folder per class (synset).")
    classes, train_files, train_labels = _class_files(root / "train")
    val_classes, val_files, _ = _class_files(root / "val")
    unknown = sorted(set(val_classes) - set(classes))
    if unknown:
        raise DataError(f"val/ has classes that train/ lacks: {unknown[:5]}; both need the same class folders.")
    index = {c: i for i, c in enumerate(classes)}
    val_labels = np.asarray([index[f.relative_to(root / "val").parts[0]] for f in val_files], dtype=np.int64)
    splits = {
        "train": _files_split("train", root, train_files, train_labels),
        "val": _files_split("val", root, val_files, val_labels),
    }
    return limit_train(Dataset(f"{name}:{root}", tuple(classes), splits), train_limit, seed)


def load_dataset(spec: str, **options: Any) -> Dataset:
    """A dataset from its SPEC: `digits`, `imagefolder:DIR` or `imagenet:DIR`. Options the dataset does not
    take (e.g. `val_fraction` for imagenet) are dropped when None."""
    kind, _, arg = spec.partition(":")
    factory = DATASETS.get(kind)
    options = {k: v for k, v in options.items() if v is not None}
    if kind == "digits":
        train_limit = options.pop("train_limit", None)
        dataset = factory(**options)
        return limit_train(dataset, train_limit, options.get("seed", 0))
    if not arg:
        raise SpecError(f"Data SPEC {spec!r} needs a folder: {kind}:DIR.")
    if kind == "imagenet":
        options.pop("val_fraction", None)
    return factory(arg, **options)
