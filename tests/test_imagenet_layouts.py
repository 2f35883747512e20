"""`imagenet:DIR` reads ImageNet-1k in each layout it is shipped in: synset folders, `train/` and `val/` of synset
folders, a flat `val/` beside Kaggle's `LOC_val_solution.csv`, a flat `val/` with the devkit; labels are indices
into the 1,000 sorted synsets whichever layout, and any other layout is one error naming those it reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featswap.config import DataSettings
from featswap.data.collections import fit_and_eval, imagenet_synsets, open_spec
from featswap.errors import DataError

SYNSETS = imagenet_synsets()
#: Synsets of sorted index 0, 1, 500 and 999.
A, B, M, Z = SYNSETS[0], SYNSETS[1], SYNSETS[500], SYNSETS[999]


def jpeg(path: Path, shade: int = 0) -> Path:
    """A real 8x8 JPEG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade % 256, 40, 90)).save(path, format="JPEG")
    return path


def synset_folders(root: Path, counts: dict[str, int]) -> Path:
    """`root/<synset>/<k>.JPEG`, `counts[synset]` images each."""
    for s, (synset, n) in enumerate(counts.items()):
        for k in range(n):
            jpeg(root / synset / f"{k}.JPEG", 30 * s + k)
    return root


def flat_val(folder: Path, numbers: list[int]) -> Path:
    """`folder/ILSVRC2012_val_<number>.JPEG` for each number (ImageNet's validation file names)."""
    for n in numbers:
        jpeg(folder / f"ILSVRC2012_val_{n:08d}.JPEG", n)
    return folder


def kaggle_csv(path: Path, rows: dict[int, str]) -> Path:
    """A LOC_val_solution.csv: one row per image number, its PredictionString starting with the given synset
    (followed by boxes, and by a second object as Kaggle's rows have)."""
    lines = ["ImageId,PredictionString"]
    lines += [f"ILSVRC2012_val_{n:08d},{s} 255 142 454 329 {SYNSETS[7]} 44 21 322 295 " for n, s in rows.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


#: meta.mat's synsets: ILSVRC2012_ID -> WNID, in an order where the ids are not sorted-synset indices, and a
#: non-leaf synset (id 1001, outside the 1,000) as the real file has.
META = {1: M, 2: A, 3: Z, 4: B, 1001: "n00001740"}


def devkit(folder: Path, truth: list[int], meta: dict[int, str] = META) -> Path:
    """`ILSVRC2012_validation_ground_truth.txt` (line k: the id of image k) and `meta.mat` in `folder`."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{i}\n" for i in truth))
    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    table = [(np.uint16(i), w, f"words of {w}", np.uint16(0 if i <= 1000 else 5)) for i, w in meta.items()]
    savemat(folder / "meta.mat", {"synsets": np.array(table, dtype=dtype)})
    return folder


def labels_of(spec: str, part: str = "all") -> list[int]:
    labels = open_spec(spec).parts[part].labels
    assert labels is not None
    return labels.tolist()


def test_synset_folders_directly_in_dir_are_one_collection(tmp_path: Path) -> None:
    root = synset_folders(tmp_path / "tiny-imagenet", {Z: 1, A: 2, M: 1})
    jpeg(root / A / "deeper" / "x.JPEG")  # searched recursively within a synset folder
    jpeg(root / A / ".hidden.JPEG")  # hidden: not an image
    (tmp_path / "elsewhere").mkdir()
    jpeg(tmp_path / "elsewhere" / "linked.JPEG")
    (root / B).symlink_to(tmp_path / "elsewhere", target_is_directory=True)  # a linked synset folder is followed
    source = open_spec(f"imagenet:{root}")
    (collection,) = source.parts.values()
    assert list(source.parts) == ["all"] and collection.name == "tiny-imagenet"
    assert list(collection.ids) == [
        f"{A}/0.JPEG", f"{A}/1.JPEG", f"{A}/deeper/x.JPEG", f"{B}/linked.JPEG", f"{M}/0.JPEG", f"{Z}/0.JPEG"
    ]  # fmt: skip
    assert collection.labels is not None and collection.labels.tolist() == [0, 0, 0, 1, 500, 999]
    assert collection.classes == SYNSETS and len(SYNSETS) == 1000
    assert collection.keys[3] == str((tmp_path / "elsewhere" / "linked.JPEG").resolve())
    assert collection.stamps is not None and collection.stamps[0] == (root / A / "0.JPEG").stat().st_size
    assert collection.load(0).size == (8, 8)
    # The train/ folder of the train/ and val/ layout is itself a folder of synset folders.
    synset_folders(tmp_path / "in" / "train", {A: 2, Z: 1})
    (train,) = open_spec(f"imagenet:{tmp_path / 'in' / 'train'}").parts.values()
    assert (train.name, list(train.ids), train.labels is not None and train.labels.tolist()) == (
        "train", [f"{A}/0.JPEG", f"{A}/1.JPEG", f"{Z}/0.JPEG"], [0, 0, 999]
    )  # fmt: skip


def test_train_and_val_folders_are_the_fitting_and_evaluation_parts(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    synset_folders(root / "train", {A: 3, M: 2})
    synset_folders(root / "val", {M: 1, Z: 1})
    flat_val(root / "test", [1, 2])  # other folders beside train/ and val/ (Kaggle's test/) are not read
    source = open_spec(f"imagenet:{root}")
    assert {k: c.name for k, c in source.parts.items()} == {"train": "imagenet-train", "val": "imagenet-val"}
    val = source.parts["val"]
    assert list(val.ids) == [f"val/{M}/0.JPEG", f"val/{Z}/0.JPEG"]
    assert labels_of(f"imagenet:{root}", "val") == [500, 999]
    assert labels_of(f"imagenet:{root}", "train") == [0, 0, 0, 500, 500]
    assert source.parts["train"].classes == val.classes == SYNSETS
    fit, (evaluated,) = fit_and_eval(DataSettings(fit_data=f"imagenet:{root}", eval_data=(f"imagenet:{root}",)))
    assert (fit.name, len(fit), evaluated.name, len(evaluated)) == ("imagenet-train", 5, "imagenet-val", 2)
    assert list(evaluated.ids) == list(val.ids)
    fit, (evaluated,) = fit_and_eval(DataSettings(data=f"imagenet:{root}"))
    assert (fit.name, len(fit), evaluated.name, len(evaluated)) == ("train", 5, "val", 2)
    # Only one of the two: one collection, named after its folder, used whole for fitting or evaluation.
    synset_folders(tmp_path / "only-val" / "val", {A: 2, Z: 2})
    source = open_spec(f"imagenet:{tmp_path / 'only-val'}")
    assert list(source.parts) == ["all"] and source.parts["all"].name == "only-val-val"
    assert source.parts["all"].ids[0] == f"val/{A}/0.JPEG"
    synset_folders(tmp_path / "only-train" / "train", {A: 3})
    fit, (evaluated,) = fit_and_eval(
        DataSettings(fit_data=f"imagenet:{tmp_path / 'only-train'}", eval_data=(f"imagenet:{tmp_path / 'only-val'}",))
    )
    assert (fit.name, len(fit), evaluated.name, len(evaluated)) == ("only-train-train", 3, "only-val-val", 4)


def test_a_flat_val_folder_is_labelled_by_kaggles_solution_file(tmp_path: Path) -> None:
    kaggle = tmp_path / "imagenet-object-localization-challenge"
    data = kaggle / "ILSVRC" / "Data" / "CLS-LOC"
    synset_folders(data / "train", {A: 2, Z: 1})
    flat_val(data / "val", [8726, 1, 2])
    flat_val(data / "test", [1])  # unlabelled, not read
    jpeg(data / "val" / "._ILSVRC2012_val_00000001.JPEG")  # hidden (macOS's copy of the metadata): not an image
    (data / "val" / "notes.txt").write_text("not an image")
    kaggle_csv(kaggle / "LOC_val_solution.csv", {2: Z, 8726: M, 1: A, 5: B})  # rows in any order, more than images
    (kaggle / "LOC_synset_mapping.txt").write_text(f"{A} tench, Tinca tinca\n")
    source = open_spec(f"imagenet:{data}")  # the CSV three folders above
    val = source.parts["val"]
    assert (source.parts["train"].name, val.name) == ("CLS-LOC-train", "CLS-LOC-val")
    assert list(val.ids) == ["val/ILSVRC2012_val_00000001.JPEG", "val/ILSVRC2012_val_00000002.JPEG",
                             "val/ILSVRC2012_val_00008726.JPEG"]  # fmt: skip
    assert labels_of(f"imagenet:{data}", "val") == [0, 999, 500] and val.classes == SYNSETS
    assert val.labels_from == str(kaggle / "LOC_val_solution.csv") and source.parts["train"].labels_from is None
    assert labels_of(f"imagenet:{data}", "train") == [0, 0, 999]
    fit, (evaluated,) = fit_and_eval(DataSettings(fit_data=f"imagenet:{data}", eval_data=(f"imagenet:{data}",)))
    assert (fit.name, len(fit), evaluated.name, len(evaluated)) == ("CLS-LOC-train", 3, "CLS-LOC-val", 3)
    # Kaggle's root: its ILSVRC/Data/CLS-LOC, ids relative to the root given.
    source = open_spec(f"imagenet:{kaggle}")
    root_val = source.parts["val"]
    assert (source.parts["train"].name, root_val.name) == (f"{kaggle.name}-train", f"{kaggle.name}-val")
    assert root_val.ids[0] == "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000001.JPEG"
    assert root_val.labels is not None and root_val.labels.tolist() == [0, 999, 500]
    assert list(root_val.keys) == list(val.keys)  # the same files
    fit, (evaluated,) = fit_and_eval(DataSettings(fit_data=f"imagenet:{kaggle}", eval_data=(f"imagenet:{kaggle}",)))
    assert (len(fit), len(evaluated)) == (3, 3)
    assert evaluated.ids[2] == "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00008726.JPEG"
    # The CSV in DIR itself, a flat val/ alone: one collection.
    flat_val(tmp_path / "here" / "val", [3])
    kaggle_csv(tmp_path / "here" / "LOC_val_solution.csv", {3: Z})
    (alone,) = open_spec(f"imagenet:{tmp_path / 'here'}").parts.values()
    assert (alone.name, list(alone.ids), alone.labels is not None and alone.labels.tolist()) == (
        "here-val", ["val/ILSVRC2012_val_00000003.JPEG"], [999]
    )  # fmt: skip
    # Beside the devkit too, Kaggle's labels are those read.
    devkit(tmp_path / "here", [1, 1, 1])
    assert labels_of(f"imagenet:{tmp_path / 'here'}") == [999]


def test_a_flat_val_folder_is_labelled_by_the_devkit_through_meta_mat(tmp_path: Path) -> None:
    root = tmp_path / "ilsvrc2012"
    synset_folders(root / "train", {A: 2, M: 1})
    flat_val(root / "val", [1, 2, 3, 4])
    devkit(root / "ILSVRC2012_devkit_t12" / "data", [2, 1, 3, 1, 4])  # line 5: an image not here
    source = open_spec(f"imagenet:{root}")
    val = source.parts["val"]
    assert (source.parts["train"].name, val.name) == ("ilsvrc2012-train", "ilsvrc2012-val") and val.classes == SYNSETS
    assert val.ids[0] == "val/ILSVRC2012_val_00000001.JPEG"
    # ids 2, 1, 3, 1 are A, M, Z, M: sorted indices 0, 500, 999, 500 (not the ids, nor the ids less one).
    assert labels_of(f"imagenet:{root}", "val") == [0, 500, 999, 500]
    assert val.labels_from is not None and val.labels_from.endswith("ground_truth.txt with " + str(
        root / "ILSVRC2012_devkit_t12" / "data" / "meta.mat"))  # fmt: skip
    fit, (evaluated,) = fit_and_eval(DataSettings(fit_data=f"imagenet:{root}", eval_data=(f"imagenet:{root}",)))
    assert (fit.name, len(fit), evaluated.name, len(evaluated)) == ("ilsvrc2012-train", 3, "ilsvrc2012-val", 4)
    # Both files in DIR itself; a val/ alone is one collection.
    flat_val(tmp_path / "devkit-here" / "val", [2])
    devkit(tmp_path / "devkit-here", [3, 4])
    (alone,) = open_spec(f"imagenet:{tmp_path / 'devkit-here'}").parts.values()
    assert (alone.name, alone.labels is not None and alone.labels.tolist()) == ("devkit-here-val", [1])


def test_a_folder_in_no_imagenet_layout_is_one_error_naming_the_layouts(tmp_path: Path) -> None:
    message = (
        r"found no ImageNet layout in .*; it reads: synset folders in DIR; train/ and val/ with synset folders; a "
        r"flat val/ beside Kaggle's LOC_val_solution.csv; a flat val/ with the devkit's "
        r"ILSVRC2012_validation_ground_truth.txt and meta.mat.$"
    )
    (tmp_path / "empty").mkdir()
    synset_folders(tmp_path / "animals", {"cat": 1, "dog": 1})
    flat_val(tmp_path / "flat", [1])
    flat_val(tmp_path / "unlabelled" / "val", [1])
    (tmp_path / "kaggle" / "ILSVRC" / "Data" / "CLS-LOC" / "test").mkdir(parents=True)
    for folder in ("empty", "animals", "flat", "unlabelled", "kaggle"):
        with pytest.raises(DataError, match=message) as caught:
            open_spec(f"imagenet:{tmp_path / folder}")
        assert "\n" not in str(caught.value) and str(caught.value).startswith(f"imagenet:{tmp_path / folder} found")
    with pytest.raises(DataError, match="does not exist"):
        open_spec(f"imagenet:{tmp_path / 'nowhere'}")


def test_folders_that_are_not_imagenet_synsets_are_refused(tmp_path: Path) -> None:
    root = synset_folders(tmp_path / "mixed", {A: 1, "zebra": 1, "n99999999": 1})
    with pytest.raises(DataError, match=r"folders that are not classes of its label space: \['n99999999', 'zebra'\]"):
        open_spec(f"imagenet:{root}")
    synset_folders(tmp_path / "tv" / "train", {A: 1, "zebra": 1})
    with pytest.raises(DataError, match=r"train has folders that are not classes of its label space: \['zebra'\]"):
        open_spec(f"imagenet:{tmp_path / 'tv'}")
    flat_val(tmp_path / "flat-train" / "train", [1])
    with pytest.raises(DataError, match="train has no class folders"):
        open_spec(f"imagenet:{tmp_path / 'flat-train'}")


def test_kaggle_solution_file_errors(tmp_path: Path) -> None:
    flat_val(tmp_path / "in" / "val", [1, 2, 3, 4, 5])
    solution = tmp_path / "in" / "LOC_val_solution.csv"
    solution.write_text("image,label\nILSVRC2012_val_00000001,n01440764\n")
    with pytest.raises(DataError, match=r"is not Kaggle's LOC_val_solution.csv: its header is \['image', 'label'\]"):
        open_spec(f"imagenet:{tmp_path / 'in'}")
    kaggle_csv(solution, {1: A})
    with pytest.raises(
        DataError,
        match=r"Images in .*val have no row in .*LOC_val_solution.csv: 4 \(ILSVRC2012_val_00000002.JPEG, "
        r"ILSVRC2012_val_00000003.JPEG, ILSVRC2012_val_00000004.JPEG, \.\.\.\); remove them",
    ):
        open_spec(f"imagenet:{tmp_path / 'in'}")
    kaggle_csv(solution, {1: A, 2: A, 3: "n99999999", 4: A, 5: A})
    with pytest.raises(DataError, match=r"labels ILSVRC2012_val_00000003.JPEG 'n99999999', which is not one of"):
        open_spec(f"imagenet:{tmp_path / 'in'}")
    kaggle_csv(solution, {1: A, 2: A, 4: A, 5: A})
    solution.write_text(f"{solution.read_text()}ILSVRC2012_val_00000003,\n")  # a row without objects
    with pytest.raises(DataError, match=r"labels ILSVRC2012_val_00000003.JPEG '', which is not one of"):
        open_spec(f"imagenet:{tmp_path / 'in'}")


def test_devkit_errors(tmp_path: Path) -> None:
    root = tmp_path / "in"
    val = flat_val(root / "val", [1, 2])
    data = devkit(root / "ILSVRC2012_devkit_t12" / "data", [1, 2])
    (data / "meta.mat").rename(tmp_path / "meta.mat")
    with pytest.raises(DataError, match=r"ground_truth.txt labels them only together with the devkit's meta.mat"):
        open_spec(f"imagenet:{root}")
    (tmp_path / "meta.mat").rename(data / "meta.mat")
    (data / "ILSVRC2012_validation_ground_truth.txt").rename(tmp_path / "truth.txt")
    with pytest.raises(DataError, match=r"meta.mat labels them only .* ILSVRC2012_validation_ground_truth.txt, which"):
        open_spec(f"imagenet:{root}")
    (tmp_path / "truth.txt").rename(data / "ILSVRC2012_validation_ground_truth.txt")
    assert labels_of(f"imagenet:{root}") == [500, 0]

    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("1\nn01440764\n")
    with pytest.raises(DataError, match=r"Line 2 of .*ground_truth.txt is 'n01440764', not an ILSVRC2012_ID"):
        open_spec(f"imagenet:{root}")
    devkit(data, [1])
    with pytest.raises(
        DataError, match=r"have numbers outside 1..1, the lines of .*: 1 \(ILSVRC2012_val_00000002.JPEG\); remove"
    ):
        open_spec(f"imagenet:{root}")
    jpeg(val / "photo.JPEG")
    with pytest.raises(DataError, match=r"are not named ILSVRC2012_val_NNNNNNNN, .* label: 1 \(photo.JPEG\)"):
        open_spec(f"imagenet:{root}")
    (val / "photo.JPEG").unlink()
    devkit(data, [1, 1001])  # a synset of meta.mat outside the 1,000 leaves
    with pytest.raises(DataError, match=r"labels ILSVRC2012_val_00000002.JPEG 'n00001740', which is not one of"):
        open_spec(f"imagenet:{root}")
    devkit(data, [1, 7])  # an id meta.mat does not have
    with pytest.raises(DataError, match=r"labels ILSVRC2012_val_00000002.JPEG 'ILSVRC2012_ID 7', which is not one"):
        open_spec(f"imagenet:{root}")

    from scipy.io import savemat

    savemat(data / "meta.mat", {"other": np.arange(3)})
    with pytest.raises(DataError, match=r"Cannot read .*meta.mat as the devkit's meta.mat .*KeyError"):
        open_spec(f"imagenet:{root}")
    savemat(data / "meta.mat", {"synsets": np.arange(3)})
    with pytest.raises(DataError, match=r"Cannot read .*meta.mat as the devkit's meta.mat"):
        open_spec(f"imagenet:{root}")
    (data / "meta.mat").write_bytes(b"not a MATLAB file" * 10)
    with pytest.raises(DataError, match=r"Cannot read .*meta.mat as the devkit's meta.mat"):
        open_spec(f"imagenet:{root}")


def test_label_files_beside_the_images_come_before_a_csv_further_up(tmp_path: Path) -> None:
    # A subset with its own devkit files, inside a Kaggle download whose CSV labels the same names otherwise.
    kaggle_csv(tmp_path / "LOC_val_solution.csv", {1: Z, 2: Z})
    subset = tmp_path / "mysubset"
    flat_val(subset / "val", [1, 2])
    devkit(subset / "ILSVRC2012_devkit_t12" / "data", [1, 2])
    assert labels_of(f"imagenet:{subset}") == [500, 0]  # the devkit's (ids 1, 2: M, A), not the CSV's (Z, Z)
    (subset / "ILSVRC2012_devkit_t12" / "data" / "meta.mat").unlink()
    (subset / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt").unlink()
    assert labels_of(f"imagenet:{subset}") == [999, 999]  # with none beside the images, the CSV above


def test_contradicting_or_unreadable_label_files_are_refused(tmp_path: Path) -> None:
    flat_val(tmp_path / "in" / "val", [1, 2])
    solution = kaggle_csv(tmp_path / "in" / "LOC_val_solution.csv", {1: A, 2: B})
    assert open_spec(f"imagenet:{tmp_path / 'in'}").parts["all"].notes == ()
    solution.write_text(solution.read_text() + f"ILSVRC2012_val_00000001,{A} 1 2 3 4\n")  # the same label again
    assert labels_of(f"imagenet:{tmp_path / 'in'}") == [0, 1]
    # Accepted, but said, with the count of repeated rows (an edited or concatenated file would pass unseen).
    solution.write_text(solution.read_text() + f"ILSVRC2012_val_00000001,{A} 1 2 3 4\nILSVRC2012_val_00000002,{B}\n")
    (note,) = open_spec(f"imagenet:{tmp_path / 'in'}").parts["all"].notes
    assert "has 3 repeated row(s), giving 2 (ILSVRC2012_val_00000001, ILSVRC2012_val_00000002) image(s)" in note
    solution.write_text(solution.read_text() + f"ILSVRC2012_val_00000001,{Z} 1 2 3 4\n")
    with pytest.raises(DataError, match=rf"labels ILSVRC2012_val_00000001 twice, as {A} and as {Z}; the file is"):
        open_spec(f"imagenet:{tmp_path / 'in'}")
    solution.write_bytes(solution.read_bytes() + b"\xff\xfe")
    with pytest.raises(DataError, match=r"LOC_val_solution.csv is not a text file \(not valid UTF-8\)"):
        open_spec(f"imagenet:{tmp_path / 'in'}")

    flat_val(tmp_path / "dk" / "val", [1, 2])
    data = devkit(tmp_path / "dk", [1, 2], {1: M, 2: A, 3: Z})
    truth = data / "ILSVRC2012_validation_ground_truth.txt"
    truth.write_bytes(b"1\n\xff\n")
    with pytest.raises(DataError, match=r"ground_truth.txt is not a text file"):
        open_spec(f"imagenet:{tmp_path / 'dk'}")
    devkit(tmp_path / "dk", [1, 2], {1: M, 2: A})
    assert labels_of(f"imagenet:{tmp_path / 'dk'}") == [500, 0]
    from scipy.io import savemat

    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O")]
    table = [(np.uint16(1), M), (np.uint16(2), A), (np.uint16(1), Z)]  # id 1 given twice
    savemat(data / "meta.mat", {"synsets": np.array(table, dtype=dtype)})
    with pytest.raises(DataError, match=rf"meta.mat gives ILSVRC2012_ID 1 twice, as {M} and as {Z}"):
        open_spec(f"imagenet:{tmp_path / 'dk'}")
