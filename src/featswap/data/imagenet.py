"""ImageNet-1k on disk: the layouts that `imagenet:DIR` reads, and each image's label.

| DIR holds | parts | fits on | evaluates |
|---|---|---|---|
| 1. synset folders (`DIR/n01440764/*.JPEG`, ...) | one, named after DIR | all of it | all of it |
| 2. `train/` and/or `val/`, each of synset folders | `train`, `val` (or the one there is) | `train/` | `val/` |
| 3. a flat `val/` (`ILSVRC2012_val_00000001.JPEG`, ...) beside Kaggle's `LOC_val_solution.csv` | as 2 | as 2 | as 2 |
| 4. a flat `val/` with the devkit's `ILSVRC2012_validation_ground_truth.txt` and `meta.mat` | as 2 | as 2 | as 2 |

- Labels are indices into ImageNet-1k's 1,000 synsets in sorted order (`imagenet_synsets()`), the order of
  timm's and torchvision's 1,000 logits, whichever synsets are present; every part's classes are all 1,000.
- 3: `LOC_val_solution.csv` (`ImageId,PredictionString`) is looked for in DIR and up to 3 folders above it; an
  image's label is the first word (a synset) of its row's PredictionString, its row found by the file's name
  without extension. DIR may be Kaggle's root, holding `LOC_val_solution.csv` and `ILSVRC/Data/CLS-LOC/`: it reads
  as that `CLS-LOC/` (its `train/` of synset folders and its flat `val/`).
- 4: both files are looked for in DIR and in `DIR/ILSVRC2012_devkit_t12/data/`. Line k of the ground truth is the
  ILSVRC2012_ID (1..1000) of `ILSVRC2012_val_<k, 8 digits>`; `meta.mat` translates the id into a synset (ids are
  not sorted-synset indices). Label files in DIR (or its devkit folder) come first: a CSV beside the images, else
  the devkit's files there, else a CSV up to 3 folders above. A CSV that labels one image twice differently, or a
  meta.mat that gives one id two synsets, is refused.
- Ids are paths relative to DIR, as for every folder SPEC.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featswap.catalog.imagenet import data_folder, has_parts
from featswap.data.folders import base_name, class_files, existing_folder, subfolders, visible_images
from featswap.errors import DataError

SYNSET = re.compile(r"n\d{8}")
KAGGLE_CSV = "LOC_val_solution.csv"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META = "meta.mat"
DEVKIT_DATA = Path("ILSVRC2012_devkit_t12", "data")
DEVKIT_NAME = re.compile(r"ILSVRC2012_val_(\d+)")
#: The layouts `imagenet:DIR` reads, as its error for any other says.
LAYOUTS = (
    "synset folders in DIR; train/ and val/ with synset folders; a flat val/ beside Kaggle's LOC_val_solution.csv; "
    "a flat val/ with the devkit's ILSVRC2012_validation_ground_truth.txt and meta.mat"
)


@dataclass(frozen=True)
class Part:
    """One collection of an ImageNet folder: its name, its image files (sorted) and their labels ((N,) int64,
    indices into `imagenet_synsets()`)."""

    name: str
    files: list[Path]
    labels: np.ndarray
    #: The label file the labels were read from (a flat `val/`), or None (synset folders).
    labels_from: str | None = None
    #: Warnings about how the labels were read (repeated rows of a label file), said when a run starts.
    notes: tuple[str, ...] = ()


def imagenet_synsets() -> tuple[str, ...]:
    """ImageNet-1k's 1,000 WordNet ids in sorted order: the index of each is its class in the 1,000 logits of
    timm's and torchvision's ImageNet networks (read from timm's own list)."""
    from importlib import resources

    text = resources.files("timm.data").joinpath("_info/imagenet_synsets.txt").read_text()
    synsets = tuple(line.strip() for line in text.splitlines() if line.strip())
    assert len(synsets) == 1000 and list(synsets) == sorted(synsets)
    return synsets


def imagenet_parts(root: Path) -> dict[str, Part]:
    """The parts of the ImageNet folder `root` (see the table above): `{"train": ..., "val": ...}` where it has
    both, else `{"all": ...}`. Raises a DataError naming the layouts it reads where `root` has none of them."""
    base = base_name(existing_folder(root))
    synsets = imagenet_synsets()
    if any(SYNSET.fullmatch(name) for name in subfolders(root)):
        _, files, labels = class_files(root, synsets)
        return {"all": Part(base, files, labels)}
    data = data_folder(root)
    if not has_parts(data):
        raise unknown_layout(root)
    parts = {}
    if (data / "train").is_dir():
        _, files, labels = class_files(data / "train", synsets)
        parts["train"] = Part(f"{base}-train", files, labels)
    if (data / "val").is_dir():
        parts["val"] = Part(f"{base}-val", *_val_files(root, data, synsets))
    return parts if len(parts) == 2 else {"all": next(iter(parts.values()))}


def unknown_layout(root: Path) -> DataError:
    """The error for a folder in none of the layouts `imagenet:DIR` reads."""
    return DataError(f"imagenet:{root} found no ImageNet layout in {root}; it reads: {LAYOUTS}.")


def _val_files(
    root: Path, data: Path, synsets: tuple[str, ...]
) -> tuple[list[Path], np.ndarray, str | None, tuple[str, ...]]:
    """Files and labels of `data/val`, the label file read (None for synset folders; else its flat images labelled
    by Kaggle's CSV or by the devkit), and warnings about that file."""
    val = data / "val"
    files = [] if subfolders(val) else visible_images(val)  # without subfolders: the images in val/ itself
    if not files:
        _, files, labels = class_files(val, synsets)
        return files, labels, None, ()
    # Label files beside the images come first; a Kaggle CSV further up only where there are none (so that a
    # subset with its own devkit files is never labelled by another download's CSV).
    own = list(dict.fromkeys([root, data]))
    solution = _first(KAGGLE_CSV, own)
    if solution is not None:
        labels, notes = _kaggle_labels(solution, val, files, synsets)
        return files, labels, str(solution), notes
    devkit = [p for folder in own for p in (folder, folder / DEVKIT_DATA)]
    truth, meta = _first(GROUND_TRUTH, devkit), _first(META, devkit)
    if truth is not None and meta is not None:
        return files, _devkit_labels(truth, meta, files, synsets), f"{truth} with {meta}", ()
    if truth is not None or meta is not None:
        found, lacking = (truth, META) if truth is not None else (meta, GROUND_TRUTH)
        raise DataError(
            f"{val} holds images without class folders, and {found} labels them only together with the devkit's "
            f"{lacking}, which is not beside it; put {lacking} there (both are in ILSVRC2012_devkit_t12/data/)."
        )
    solution = _first(KAGGLE_CSV, list(data.resolve().parents)[:3])
    if solution is not None:
        labels, notes = _kaggle_labels(solution, val, files, synsets)
        return files, labels, str(solution), notes
    raise unknown_layout(root)


def _text_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """The lines of a label file; one that is not text is a DataError naming it."""
    try:
        return path.read_text(encoding=encoding).splitlines()
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not a text file (not valid UTF-8); replace it with the file from its download."
        ) from None


def _first(name: str, folders: list[Path]) -> Path | None:
    """The file `name` in the first of `folders` that holds it, or None."""
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def _few(names: list[str]) -> str:
    """`N (first, second, third, ...)`: how many names, and the first few."""
    return f"{len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"


def _kaggle_labels(
    solution: Path, val: Path, files: list[Path], synsets: tuple[str, ...]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(N,) labels of `files` from Kaggle's LOC_val_solution.csv: the first synset of each file's row; and a
    warning when rows repeat an image with the same label (rows that disagree are refused)."""
    first: dict[str, str] = {}
    repeated: list[str] = []
    reader = csv.DictReader(_text_lines(solution, "utf-8-sig"))
    if not {"ImageId", "PredictionString"} <= set(reader.fieldnames or ()):
        raise DataError(
            f"{solution} is not Kaggle's {KAGGLE_CSV}: its header is {reader.fieldnames}, not "
            "ImageId,PredictionString. Replace it with the file from Kaggle's download."
        )
    for row in reader:
        words = (row["PredictionString"] or "").split()
        label = words[0] if words else ""
        if first.get(row["ImageId"], label) != label:
            raise DataError(
                f"{solution} labels {row['ImageId']} twice, as {first[row['ImageId']]} and as {label}; the file is "
                "damaged or edited. Replace it with the file from Kaggle's download."
            )
        if row["ImageId"] in first:
            repeated.append(row["ImageId"])
        first[row["ImageId"]] = label
    missing = [f.name for f in files if f.stem not in first]
    if missing:
        raise DataError(
            f"Images in {val} have no row in {solution}: {_few(missing)}; remove them, or use the {KAGGLE_CSV} "
            "that came with these images."
        )
    notes: tuple[str, ...] = ()
    if repeated:
        notes = (
            f"{solution} has {len(repeated):,} repeated row(s), giving {_few(sorted(set(repeated)))} image(s) the "
            "same label again; each image counts once. An edited or concatenated file? Compare it with Kaggle's "
            "download.",
        )
    return _indices([(f.name, first[f.stem]) for f in files], synsets, str(solution)), notes


def _devkit_labels(truth: Path, meta: Path, files: list[Path], synsets: tuple[str, ...]) -> np.ndarray:
    """(N,) labels of `files` (`ILSVRC2012_val_NNNNNNNN.*`) from the devkit: line N of the ground truth gives an
    ILSVRC2012_ID, which meta.mat translates into a synset."""
    lines = "\n".join(_text_lines(truth)).rstrip().splitlines()
    ids = []
    for k, line in enumerate(lines, 1):
        try:
            ids.append(int(line))
        except ValueError:
            raise DataError(
                f"Line {k} of {truth} is {line!r}, not an ILSVRC2012_ID (a number 1..1000 on each line); replace "
                "it with the devkit's file."
            ) from None
    numbers = {f: DEVKIT_NAME.fullmatch(f.stem) for f in files}
    unnamed = [f.name for f, match in numbers.items() if match is None]
    if unnamed:
        raise DataError(
            f"Images in {files[0].parent} are not named ILSVRC2012_val_NNNNNNNN, so {truth.name} gives them no "
            f"label: {_few(unnamed)}; remove or rename them."
        )
    number = {f: int(match[1]) for f, match in numbers.items() if match is not None}
    beyond = [f.name for f in files if not 1 <= number[f] <= len(ids)]
    if beyond:
        raise DataError(
            f"Images in {files[0].parent} have numbers outside 1..{len(ids)}, the lines of {truth}: {_few(beyond)}; "
            "remove them, or use the ground truth that came with these images."
        )
    wnids = _meta_wnids(meta)
    named = [(f.name, wnids.get(ids[number[f] - 1], f"ILSVRC2012_ID {ids[number[f] - 1]}")) for f in files]
    return _indices(named, synsets, f"{truth} with {meta.name}")


def _meta_wnids(meta: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> WNID of every synset in the devkit's meta.mat."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        table = np.atleast_1d(loadmat(meta, squeeze_me=True)["synsets"])
        ids, wnids = np.atleast_1d(table["ILSVRC2012_ID"]), np.atleast_1d(table["WNID"])
        pairs = [(int(i), str(w)) for i, w in zip(ids, wnids, strict=True)]
    except (MatReadError, OSError, KeyError, ValueError, TypeError, IndexError) as err:
        raise DataError(
            f"Cannot read {meta} as the devkit's meta.mat (a struct array `synsets` with fields ILSVRC2012_ID and "
            f"WNID): {err!r}. Replace it with the devkit's file."
        ) from err
    wnid: dict[int, str] = {}
    for i, w in pairs:
        if wnid.setdefault(i, w) != w:
            raise DataError(
                f"{meta} gives ILSVRC2012_ID {i} twice, as {wnid[i]} and as {w}; the file is damaged. Replace it with "
                "the devkit's meta.mat."
            )
    return wnid


def _indices(named: list[tuple[str, str]], synsets: tuple[str, ...], source: str) -> np.ndarray:
    """(N,) the index in `synsets` of each `(file name, synset)`; a synset outside them is an error."""
    index = {s: i for i, s in enumerate(synsets)}
    for name, synset in named:
        if synset not in index:
            raise DataError(
                f"{source} labels {name} {synset!r}, which is not one of ImageNet-1k's 1,000 synsets; use the label "
                "file that came with these images."
            )
    return np.asarray([index[synset] for _, synset in named], dtype=np.int64)
