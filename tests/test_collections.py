"""Image collections: the data SPECs, the fitting and evaluation collections of a run, their names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featswap.config import DataSettings
from featswap.data.collections import fit_and_eval, limited, open_spec, stratified_split
from featswap.errors import DataError, SpecError
from images import write_folder


def test_digits_split_is_deterministic_stratified_and_disjoint() -> None:
    fit, (val,) = fit_and_eval(DataSettings(data="digits", val_fraction=0.3))
    again, _ = fit_and_eval(DataSettings(data="digits", val_fraction=0.3))
    assert (fit.name, val.name, len(fit), len(val)) == ("train", "val", 1257, 540)
    assert not set(fit.ids) & set(val.ids) and list(fit.ids) == list(again.ids)
    assert fit.labels is not None and val.labels is not None
    shares = np.bincount(fit.labels, minlength=10) / len(fit)
    assert np.abs(shares - np.bincount(val.labels, minlength=10) / len(val)).max() < 0.01
    image = fit.load(0)
    assert image.size == (8, 8) and image.mode == "L" and val.classes == tuple(str(c) for c in range(10))
    assert len(fit_and_eval(DataSettings(data="digits", val_fraction=0.5))[1][0]) == 899


def test_images_spec_is_recursive_unlabelled_and_fits_maps(tmp_path: Path) -> None:
    for i, sub in enumerate(("a", "a/deeper", "b")):
        (tmp_path / "photos" / sub).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "photos" / sub / f"{i}.png")
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    (collection,) = open_spec(f"images:{tmp_path / 'photos'}").parts.values()
    assert collection.name == "photos" and collection.labels is None and collection.classes is None
    assert list(collection.ids) == ["a/0.png", "a/deeper/1.png", "b/2.png"]
    root = write_folder(tmp_path / "labelled", per_class=4)
    fit, (val,) = fit_and_eval(
        DataSettings(fit_data=f"images:{tmp_path / 'photos'}", eval_data=(f"imagefolder:{root}",))
    )
    assert (fit.name, val.name, len(val)) == ("photos", "labelled", 12)
    with pytest.raises(DataError, match="has no labels; evaluation needs labelled images"):
        fit_and_eval(DataSettings(fit_data=f"imagefolder:{root}", eval_data=(f"images:{tmp_path / 'photos'}",)))
    with pytest.raises(DataError, match="cannot be split into fitting and evaluation images"):
        fit_and_eval(DataSettings(data=f"images:{tmp_path / 'photos'}"))
    # Linked folders are followed (as imagefolder: follows linked class folders), a link back up the tree once.
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "elsewhere").symlink_to(tmp_path / "photos" / "a", target_is_directory=True)
    (tmp_path / "linked" / "elsewhere" / "deeper" / "loop").symlink_to(tmp_path / "linked", target_is_directory=True)
    (linked,) = open_spec(f"images:{tmp_path / 'linked'}").parts.values()
    assert list(linked.ids) == ["elsewhere/0.png", "elsewhere/deeper/1.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        open_spec(f"images:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="does not exist"):
        open_spec(f"images:{tmp_path / 'nowhere'}")


def test_collection_names_are_explicit_or_unique_and_the_same_images_are_one_collection(tmp_path: Path) -> None:
    a = write_folder(tmp_path / "x" / "val", per_class=2)
    b = write_folder(tmp_path / "y" / "val", per_class=3)
    fit, evals = fit_and_eval(
        DataSettings(fit_data=f"imagefolder:{a}", eval_data=(f"imagefolder:{a}", f"imagefolder:{b}"))
    )
    assert [fit.name, *(e.name for e in evals)] == ["val", "val", "val-2"]  # fit and first eval are one collection
    _, named = fit_and_eval(DataSettings(fit_data=f"imagefolder:{a}", eval_data=(f"blurred=imagefolder:{b}",)))
    assert named[0].name == "blurred"
    fit, _ = fit_and_eval(DataSettings(fit_data=f"imagefolder:{a}", eval_data=(f"imagefolder:{a}",), train_limit=3))
    assert (fit.name, len(fit)) == ("val-3", 3)  # a subset is another collection, never confused with the whole


def test_imagefolder_limits_and_errors(tmp_path: Path, image_folder: Path) -> None:
    (collection,) = open_spec(f"imagefolder:{image_folder}").parts.values()
    assert collection.classes == ("cat", "dog", "fox") and len(collection) == 36
    kept = limited(collection, 6, 0)
    assert kept.labels is not None and np.bincount(kept.labels).tolist() == [2, 2, 2]
    with pytest.raises(DataError, match="below the 3 classes"):
        limited(collection, 2, 0)
    with pytest.raises(SpecError, match="needs a folder: imagefolder:DIR"):
        open_spec("imagefolder")
    with pytest.raises(SpecError, match="Unknown data kind 'digitz'"):
        open_spec("digitz")
    with pytest.raises(DataError, match="does not exist"):
        open_spec(f"imagefolder:{tmp_path / 'none'}")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=r"The class folder .*empty/a' holds no images"):
        open_spec(f"imagefolder:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="no class folders"):
        open_spec(f"imagefolder:{tmp_path / 'empty' / 'a'}")


SYNSETS = ("n01440764", "n01443537", "n15075141")  # ImageNet-1k classes 0, 1 and 999


def test_train_and_val_layouts(tmp_path: Path) -> None:
    write_folder(tmp_path / "in" / "train", per_class=4, classes=SYNSETS)
    write_folder(tmp_path / "in" / "val", per_class=2, classes=SYNSETS)
    for kind, labels in (("imagenet", [0, 0, 1, 1, 999, 999]), ("imagefolder", [0, 0, 1, 1, 2, 2])):
        fit, (val,) = fit_and_eval(DataSettings(data=f"{kind}:{tmp_path / 'in'}"))
        assert (len(fit), len(val), fit.name, val.name) == (12, 6, "train", "val")
        assert val.ids[0] == "val/n01440764/000.jpg" and val.labels is not None
        assert val.labels.tolist() == labels
        assert val.classes is not None and len(val.classes) == (1000 if kind == "imagenet" else 3)
    fit, (val,) = fit_and_eval(
        DataSettings(fit_data=f"imagenet:{tmp_path / 'in'}", eval_data=(f"imagenet:{tmp_path / 'in'}",))
    )
    assert (fit.name, val.name) == ("in-train", "in-val")
    (train,) = open_spec(f"imagenet:{tmp_path / 'in' / 'train'}").parts.values()  # synset folders: one collection
    assert train.name == "train" and train.labels is not None and train.labels.tolist() == [0] * 4 + [1] * 4 + [999] * 4
    (tmp_path / "in" / "val" / "zebra").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "val" / "zebra" / "z.png")
    with pytest.raises(DataError, match="classes that train/ lacks"):
        open_spec(f"imagefolder:{tmp_path / 'in'}")
    with pytest.raises(DataError, match=r"folders that are not classes of its label space: \['zebra'\]"):
        open_spec(f"imagenet:{tmp_path / 'in'}")


def test_evaluation_sets_share_one_label_space(tmp_path: Path) -> None:
    a = write_folder(tmp_path / "a", per_class=2)
    (tmp_path / "b" / "one").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "b" / "one" / "x.png")
    with pytest.raises(DataError, match=r"classes only in a: \['cat', 'dog', 'fox'\]; only in b: \['one'\]"):
        fit_and_eval(
            DataSettings(fit_data=f"imagefolder:{a}", eval_data=(f"imagefolder:{a}", f"imagefolder:{tmp_path / 'b'}"))
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"data": "digits", "fit_data": "digits"}, "either --data"),
        ({"fit_data": "digits"}, "--fit-data needs at least one --eval-data"),
        ({"eval_data": ("digits",)}, "--eval-data needs --fit-data"),
        ({"fit_data": "digits", "eval_data": ("digits",), "val_fraction": 0.3}, "nothing to split"),
        ({"data": "digits", "val_fraction": 1.5}, r"val_fraction must lie in \(0, 1\)"),
        ({"data": "digits", "train_limit": 0}, "train_limit must be at least 1"),
    ],
)
def test_data_settings_are_checked(settings: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        DataSettings(**settings)


def test_stratified_split_errors() -> None:
    with pytest.raises(DataError, match="between 0 and 1"):
        stratified_split(np.zeros(10), 1.5, 0)
    with pytest.raises(DataError, match="stratified by class"):
        stratified_split(np.array([0, 0, 1, 1, 2, 2, 3, 3]), 0.25, 0)  # 2 evaluation images for 4 classes
    with pytest.raises(DataError, match="4 of 4 classes have a single image") as refused:
        stratified_split(np.array([0, 1, 2, 3]), 0.25, 0)
    # One image of each of 1,000 classes (the ImageNet sample's labelled photos): the line names a few, not all.
    with pytest.raises(DataError, match=r"1000 of 1000 classes .* \(1000 in all\)\)\. Give the fitting") as refused:
        stratified_split(np.arange(1000), 0.3, 0)
    assert len(str(refused.value)) < 400
    with pytest.raises(SpecError, match="No images given"):
        fit_and_eval(DataSettings())


def test_file_names_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "ok.png")
    Image.new("RGB", (8, 8)).save(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))
    with pytest.raises(DataError, match="is not valid UTF-8; rename it"):
        open_spec(f"images:{folder}")
