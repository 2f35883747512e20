"""Where an ImageNet folder (`imagenet:DIR`) keeps its parts: Kaggle's root holds them under `ILSVRC/Data/CLS-LOC`.
Pure paths, so that a config resolves `imagenet:DIR` without reading it; `featswap.data.imagenet` reads the layouts.
"""

from __future__ import annotations

from pathlib import Path

#: Where Kaggle's ImageNet root keeps its `train/` and `val/`.
KAGGLE_DATA = Path("ILSVRC", "Data", "CLS-LOC")


def has_parts(folder: Path) -> bool:
    """Whether `folder` has a `train/` or a `val/` folder."""
    return (folder / "train").is_dir() or (folder / "val").is_dir()


def data_folder(root: Path) -> Path:
    """The folder whose `train/` and `val/` an ImageNet DIR means: `DIR/ILSVRC/Data/CLS-LOC` for Kaggle's root
    (which has no `train/` or `val/` of its own), else DIR."""
    if not has_parts(root) and (root / KAGGLE_DATA).is_dir():
        return root / KAGGLE_DATA
    return root
