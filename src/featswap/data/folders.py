"""Finding image files in folders: visible images searched recursively, class folders and their labels, ids
relative to a root, and each file's key and stamp."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from featswap.data.decode import IMAGE_EXTENSIONS, is_image_file, open_image
from featswap.errors import DataError


def image_loader(root: Path, files: list[Path]) -> tuple[list[str], Callable[[int], Image.Image]]:
    """Ids (paths relative to `root`) of image files, and a loader; a name that is not valid UTF-8 is refused
    (ids are stored as text, and such a name could not be told apart from another). `file_stamps` gives the files'
    keys and stamps."""
    ids = [f.relative_to(root).as_posix() for f in files]
    for i, path in zip(ids, files, strict=True):
        try:
            i.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(
                f"The file name {str(path)!r} is not valid UTF-8; rename it (featswap stores image names as text)."
            ) from None

    def load(i: int) -> Image.Image:
        return open_image(files[i], ids[i])

    return ids, load


def file_stamps(files: list[Path]) -> tuple[list[str], np.ndarray]:
    """Each file's key (its absolute, resolved path) and stamp (its size in bytes)."""
    return [str(f.resolve()) for f in files], np.asarray([f.stat().st_size for f in files], dtype=np.int64)


def visible_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively (following links to folders, each real folder once), sorted,
    outside hidden files and folders."""
    found, seen = [], set()
    for here, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:  # a link back up the tree: each real folder once
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(here) / n for n in names if not n.startswith(".") and is_image_file(Path(here) / n)]
    return sorted(found)


def existing_folder(root: Path) -> Path:
    """`root`, checked to be an existing folder."""
    if not root.exists():
        raise DataError(f"Image folder {str(root)!r} does not exist.")
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is a file; give the folder that holds the images.")
    return root


def subfolders(root: Path) -> list[str]:
    """Names of the visible folders in `root` (links to folders included), sorted."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def class_files(root: Path, classes: Sequence[str] | None = None) -> tuple[list[str], list[Path], np.ndarray]:
    """Classes (sorted folder names), image files (sorted within each class) and labels under `root`. With
    `classes` (a fixed label space, e.g. ImageNet's synsets), each folder is labelled by its place there.

    A class folder without images is refused, as torchvision's `ImageFolder` refuses it: counted as a class, it
    would shift the label of every class after it (a `__MACOSX` folder of `._` files, say)."""
    folders = subfolders(existing_folder(root))
    if not folders:
        raise DataError(f"{root} has no class folders; expected one folder of images per class.")
    index = {c: i for i, c in enumerate(classes if classes is not None else folders)}
    unknown = sorted(set(folders) - set(index))
    if unknown:
        raise DataError(
            f"{root} has folders that are not classes of its label space: {unknown[:5]} ({len(unknown)} in all)."
        )
    files, labels = [], []
    for name in folders:
        found = visible_images(root / name)
        if not found:
            raise DataError(
                f"The class folder {str(root / name)!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}). "
                "Remove it, or it would count as a class."
            )
        files += found
        labels += [index[name]] * len(found)
    return list(classes if classes is not None else folders), files, np.asarray(labels, dtype=np.int64)


def base_name(root: Path) -> str:
    """A collection name from a folder's name (letters, digits and `. _ + -`)."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", root.resolve().name).strip("-.") or "images"
    name = re.sub(r"__+", "_", name if name[0].isalnum() else f"c{name}")[:60]
    return "zarr-json" if name == "zarr.json" else name
