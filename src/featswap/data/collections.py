"""Image collections: ordered samples with stable ids, labels where there are any, and a way to load each image.

A run fits maps on one collection (labels optional) and evaluates on one or more labelled collections. Every
model reads a collection in the same id order, so features of two models are always paired by id.

Data SPECs (`open_spec`):

| SPEC | what | labels |
|---|---|---|
| `digits` | scikit-learn's 1,797 real 8x8 handwritten digits | the digit |
| `images:DIR` | every image under DIR, searched recursively | none: for fitting maps |
| `imagefolder:DIR` | one folder per class; with `train/` and `val/` folders, those two parts | sorted folder names |
| `imagenet:DIR` | synset folders, or `train/` and/or `val/` (layouts: `featswap.data.imagenet`) | sorted synsets |
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from featswap.config import DataSettings
from featswap.data.class_names import read_class_names, with_class_names
from featswap.data.decode import IMAGE_EXTENSIONS
from featswap.data.folders import base_name, class_files, existing_folder, file_stamps, image_loader, visible_images
from featswap.data.imagenet import imagenet_parts, imagenet_synsets
from featswap.errors import DataError, SpecError, few
from featswap.registry import Registry


@dataclass(frozen=True)
class Collection:
    """An ordered set of images: `ids` (N,), `labels` (N,) int64 or None, `classes` the label space (label
    `k` is `classes[k]`) or None, and `load(i)` the i-th image. `spec` says where it came from."""

    name: str
    spec: str
    ids: Sequence[str]
    labels: np.ndarray | None
    classes: tuple[str, ...] | None
    load: Callable[[int], Image.Image]
    #: (N,) what each image is outside the store: its absolute file path (or `digits/NNNN`); equal keys, same image.
    keys: Sequence[str] = ()
    #: (N,) int64 what each image's content measures: its file size in bytes (or a checksum of its pixels).
    stamps: np.ndarray | None = None
    #: The file the labels were read from, where they do not come from folder names (ImageNet's flat val/).
    labels_from: str | None = None
    #: Warnings about how the collection was read (a label file's repeated rows), said when a run starts.
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def content_sha256(self) -> str | None:
        """sha256 of the ids and the stamps, in order: two collections of equal ids whose files differ (a blurred
        copy under the same names, say) differ here. None when the collection has no stamps."""
        if self.stamps is None:
            return None
        digest = hashlib.sha256("\n".join(self.ids).encode())
        digest.update(np.ascontiguousarray(self.stamps, dtype="<i8").tobytes())
        return digest.hexdigest()

    def shared_images(self, other: Collection) -> int:
        """How many images of this collection are also images of `other` (by file path)."""
        return len(set(self.keys) & set(other.keys))

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def subset(self, index: np.ndarray, name: str | None = None) -> Collection:
        """The samples at `index` (sorted, so the id order follows this collection's)."""
        index = np.sort(np.asarray(index, dtype=np.int64))
        load = self.load

        def load_subset(i: int) -> Image.Image:
            return load(int(index[i]))

        labels = None if self.labels is None else self.labels[index]
        keys = [self.keys[i] for i in index] if self.keys else ()
        stamps = None if self.stamps is None else self.stamps[index]
        ids = [self.ids[i] for i in index]
        return replace(self, name=name or self.name, ids=ids, labels=labels, load=load_subset, keys=keys, stamps=stamps)

    def renamed(self, name: str) -> Collection:
        return replace(self, name=name)


@dataclass(frozen=True)
class Source:
    """What a data SPEC holds: one collection (`parts["all"]`), or a `train` and a `val` part."""

    spec: str
    parts: dict[str, Collection]

    def part(self, role: str) -> Collection:
        """The part for fitting (`train` if there is one) or for evaluation (`val`), else the whole."""
        wanted = {"fit": "train", "eval": "val"}[role]
        return self.parts.get(wanted, self.parts.get("all")) or self.parts[wanted]


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(train, val)` of a seeded split that keeps each class's share in both parts.

    Both index arrays are sorted so that each part's id order follows the source order.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive); got {val_fraction}.")
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(labels, return_counts=True)
    single = [str(c) for c in classes[counts < 2].tolist()]
    if single:
        raise DataError(
            f"Cannot split {len(labels)} labelled images into fitting and evaluation parts stratified by class: "
            f"{len(single)} of {len(classes)} classes have a single image (labels {few(single)}). Give the fitting "
            "and the evaluation images apart (--fit-data and --eval-data), or a set with two or more images per class."
        )
    index = np.arange(len(labels))
    try:
        train, val = train_test_split(index, test_size=val_fraction, random_state=seed, stratify=labels)
    except ValueError as err:
        raise DataError(
            f"Cannot split {len(labels)} samples into train and val stratified by class: {err}. "
            "Use more samples per class or another val_fraction."
        ) from err
    return np.sort(train), np.sort(val)


def limited(collection: Collection, limit: int | None, seed: int) -> Collection:
    """At most `limit` samples of a collection, named `NAME-LIMIT`: stratified by class when labelled, else
    uniform; seeded."""
    if limit is None or limit >= len(collection):
        return collection
    name = f"{collection.name}-{limit}"
    if collection.labels is None:
        keep = np.random.default_rng(seed).choice(len(collection), size=limit, replace=False)
        return collection.subset(keep, name)
    classes = len(np.unique(collection.labels))
    if limit < classes:
        raise DataError(f"--train-limit {limit} is below the {classes} classes; keep at least one per class.")
    _, keep = stratified_split(collection.labels, limit / len(collection), seed)
    return collection.subset(keep, name)


SPECS: Registry[Callable[[str, str], Source]] = Registry("data kind")


@SPECS.register("digits")
def digits(spec: str = "digits", arg: str = "") -> Source:
    """scikit-learn's 1,797 real 8x8 handwritten digits (10 classes) as grayscale images.

    Pixel values 0..16 become 0..255 so that every model reads them as ordinary 8-bit images. Ids are
    `digits/NNNN`."""
    from sklearn.datasets import load_digits

    if arg:
        raise SpecError(f"The digits SPEC takes no folder; got {spec!r}.")
    bunch = load_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)

    def load(i: int) -> Image.Image:
        return Image.fromarray(pixels[i], mode="L")

    ids = [f"digits/{j:04d}" for j in range(len(pixels))]
    classes = tuple(str(c) for c in range(10))
    stamps = np.asarray([zlib.crc32(p.tobytes()) for p in pixels], dtype=np.int64)
    labels = bunch.target.astype(np.int64)
    return Source(spec, {"all": Collection("digits", spec, ids, labels, classes, load, ids, stamps)})


def _collection(name: str, spec: str, root: Path, files: list[Path], labels: np.ndarray | None,
                classes: Sequence[str] | None) -> Collection:  # fmt: skip
    ids, load = image_loader(root, files)
    keys, stamps = file_stamps(files)
    return Collection(name, spec, ids, labels, None if classes is None else tuple(classes), load, keys, stamps)


@SPECS.register("images")
def images(spec: str, arg: str) -> Source:
    """Every image under a folder, searched recursively, in sorted path order, unlabelled. Ids are paths relative
    to the folder."""
    root = existing_folder(Path(arg))
    files = visible_images(root)
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}), searched recursively.")
    return Source(spec, {"all": _collection(base_name(root), spec, root, files, None, None)})


@SPECS.register("imagefolder")
def image_folder(spec: str, arg: str) -> Source:
    """One folder per class under DIR (labels in sorted folder order). With `train/` and `val/` folders, those
    are two parts with the classes of `train/`. Ids are paths relative to DIR."""
    root = Path(arg)
    if (root / "train").is_dir() and (root / "val").is_dir():
        return _train_val(spec, root)
    classes, files, labels = class_files(root)
    return Source(spec, {"all": _collection(base_name(root), spec, root, files, labels, classes)})


@SPECS.register("imagenet")
def imagenet(spec: str, arg: str) -> Source:
    """ImageNet-1k in one of the layouts of `featswap.data.imagenet` (synset folders; `train/` and/or `val/`; a
    flat `val/` labelled by Kaggle's CSV or the devkit): `train` and `val` parts where DIR has both, else one
    collection. Labels are indices into ImageNet-1k's 1,000 sorted synsets (`imagenet_synsets()`, the order of
    timm's and torchvision's logits) whichever synsets are present, and `classes` are all 1,000. Ids are paths
    relative to DIR."""
    root, classes = Path(arg), imagenet_synsets()
    collections = {}
    for key, part in imagenet_parts(root).items():
        collection = _collection(part.name, spec, root, part.files, part.labels, classes)
        collections[key] = replace(collection, labels_from=part.labels_from, notes=part.notes)
    return Source(spec, collections)


def _train_val(spec: str, root: Path) -> Source:
    """`imagefolder:DIR`'s `train` and `val` parts, both with the classes of `train/`."""
    classes, train_files, train_labels = class_files(root / "train")
    _, val_files, _ = class_files(root / "val")
    folders = {f.relative_to(root / "val").parts[0] for f in val_files}
    unknown = sorted(folders - {f.relative_to(root / "train").parts[0] for f in train_files})
    if unknown:
        raise DataError(f"val/ has classes that train/ lacks: {unknown[:5]}; both need the same class folders.")
    index = {c: i for i, c in enumerate(classes)}
    val_labels = np.asarray([index[f.relative_to(root / "val").parts[0]] for f in val_files], dtype=np.int64)
    base = base_name(root)
    parts = {}
    for part, files, labels in (("train", train_files, train_labels), ("val", val_files, val_labels)):
        parts[part] = _collection(f"{base}-{part}", spec, root, files, labels, classes)
    return Source(spec, parts)


def explicit_name(spec: str) -> tuple[str | None, str]:
    """`(NAME, SPEC)` of `NAME=SPEC` (an `=` before the SPEC's first `:`), else `(None, spec)`. A NAME must be
    usable as a store key: the rules of model names, and not `models`."""
    head, equals, rest = spec.partition("=")
    if not equals or ":" in head:
        return None, spec
    from featswap.catalog.naming import check_name

    check_name(head, f"In {spec!r}, NAME", "collection name", "blurred=imagefolder:DIR")
    if head in RESERVED:
        raise SpecError(f"{head!r} is reserved in a feature store (it holds the models); choose another name.")
    return head, rest


def open_spec(spec: str) -> Source:
    """The collections a data SPEC holds (see the table above); `NAME=SPEC` names them `NAME`."""
    name, text = explicit_name(spec)
    kind, _, arg = text.partition(":")
    factory = SPECS.get(kind)
    if kind != "digits" and not arg:
        raise SpecError(f"Data SPEC {text!r} needs a folder: {kind}:DIR.")
    source = factory(text, arg)
    if name is not None:
        parts = {k: c.renamed(name if len(source.parts) == 1 else f"{name}-{k}") for k, c in source.parts.items()}
        source = Source(text, parts)
    return source


def split_for_fit_and_eval(collection: Collection, val_fraction: float, seed: int) -> tuple[Collection, Collection]:
    """One labelled collection split, stratified by class and seeded, into `train` and `val` (`val_fraction`)."""
    if collection.labels is None:
        raise DataError(
            f"{collection.spec} has no labels, so it cannot be split into fitting and evaluation images. Give it as "
            "--fit-data and a labelled collection as --eval-data."
        )
    train, val = stratified_split(collection.labels, val_fraction, seed)
    return collection.subset(train, "train"), collection.subset(val, "val")


#: Names a collection may not take: the store keeps its models under `models/`.
RESERVED = ("models",)


def same_images(a: Collection, b: Collection) -> bool:
    """Whether two collections are the same images, read the same way: same SPEC, ids and contents."""
    return a.spec == b.spec and list(a.ids) == list(b.ids) and a.content_sha256() == b.content_sha256()


def unique_names(collections: list[Collection]) -> list[Collection]:
    """The collections renamed `NAME-2`, `NAME-3`... where a name repeats for other images (another SPEC, other
    ids or other file contents) or is reserved; the same images under the same name stay one collection
    (extracted once)."""
    seen: dict[str, Collection | None] = {name: None for name in RESERVED}
    result = []
    for collection in collections:
        name, k = collection.name, 2
        while name in seen and (seen[name] is None or not same_images(seen[name], collection)):  # type: ignore[arg-type]
            name, k = f"{collection.name}-{k}", k + 1
        seen[name] = collection
        result.append(collection.renamed(name))
    return result


def fit_and_eval(settings: DataSettings) -> tuple[Collection, list[Collection]]:
    """The run's fitting collection and its evaluation collections, named and checked.

    `data` with `val_fraction`: one labelled collection split (stratified, seeded) into `train` and `val`, or its
    own `train/` and `val/` parts where it has them (`NAME=SPEC`: `NAME-train` and `NAME-val`). `fit_data` with
    `eval_data`: a collection to fit on (labels optional; its `train/` part where it has one) and labelled
    collections to evaluate on (their `val/` parts). `train_limit` keeps a seeded subset of the fitting images.
    `class_names` (a file of the head's classes in order) labels every labelled collection by those names
    (`featswap.data.class_names`).
    Evaluation collections share one label space."""
    names = None if settings.class_names is None else read_class_names(settings.class_names)

    def opened(spec: str) -> Source:
        source = open_spec(spec)
        if names is None:
            return source
        parts = {k: with_class_names(c, names, settings.class_names or "") for k, c in source.parts.items()}
        return Source(source.spec, parts)

    if settings.data is not None:
        named, _ = explicit_name(settings.data)
        source = opened(settings.data)
        if "train" in source.parts:
            if settings.val_fraction is not None:
                raise DataError(
                    f"{settings.data} has its own train/ and val/ folders, which are its fitting and evaluation "
                    "images; --val-fraction does not apply to it: leave it out."
                )
            fit, evals = source.parts["train"], [source.parts["val"]]
            if named is None:
                fit, evals = fit.renamed("train"), [evals[0].renamed("val")]
        else:
            fraction = settings.val_fraction if settings.val_fraction is not None else 0.2
            fit, val = split_for_fit_and_eval(source.parts["all"], fraction, settings.seed)
            if named is not None:
                fit, val = fit.renamed(f"{named}-train"), val.renamed(f"{named}-val")
            evals = [val]
    elif settings.fit_data is not None:
        fit = opened(settings.fit_data).part("fit")
        evals = [opened(spec).part("eval") for spec in settings.eval_data]
    else:
        raise SpecError("No images given: use --data SPEC, or --fit-data SPEC with --eval-data SPEC.")
    for collection in evals:
        if collection.labels is None or collection.classes is None:
            raise DataError(
                f"--eval-data {collection.spec} has no labels; evaluation needs labelled images "
                "(imagefolder:DIR, imagenet:DIR, digits). Unlabelled images (images:DIR) serve as --fit-data."
            )
    for i, collection in enumerate(evals):
        if any(same_images(collection, earlier) for earlier in evals[:i]):
            raise SpecError(f"--eval-data {collection.spec} is given twice; give each evaluation set once.")
    check_label_spaces(evals)
    fit = limited(fit, settings.train_limit, settings.seed)
    if len(fit) < MIN_FIT_IMAGES:
        raise DataError(
            f"The fitting collection {fit.spec} has {len(fit)} image(s); fitting a map needs at least "
            f"{MIN_FIT_IMAGES}, and as many as the features are wide for an exact fit (see Solvers)."
        )
    fit, *evals = unique_names([fit, *evals])
    return fit, evals


#: The fewest fitting images a run accepts: `refine` and `lstsq` (choosing its ridge strength) hold one out, to stop
#: or to choose, and least squares needs two more (with 2 images the run failed after extracting them).
MIN_FIT_IMAGES = 3


def check_label_spaces(evals: Sequence[Collection]) -> None:
    """Every evaluation set uses one label space (the networks' heads'); a difference names its classes."""
    first = evals[0]
    for other in evals[1:]:
        if other.classes == first.classes:
            continue
        a, b = first.classes or (), other.classes or ()
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        what = (f"classes only in {first.name}: {only_a[:5]}; only in {other.name}: {only_b[:5]}" if only_a or only_b
                else "the same classes in another order")  # fmt: skip
        raise DataError(
            f"The evaluation sets {first.name} ({len(a)} classes) and {other.name} ({len(b)} classes) have different "
            f"label spaces ({what}); every evaluation set must use the label space of the networks' heads."
        )
