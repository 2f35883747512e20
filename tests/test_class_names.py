"""`--class-names FILE`: the heads' classes in order, one per line, so that a folder of some of a head's classes (the
digits 3 and 7 of a 10-class head) is labelled as the head's outputs of its folders' names and scored over the
classes present, as ImageNet subsets are. The file is checked where it enters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from featswap.backbones.sources import BackboneRecipe
from featswap.cli import app
from featswap.config import DataSettings
from featswap.data.class_names import read_class_names
from featswap.data.collections import Collection, fit_and_eval
from featswap.errors import DataError, SpecError
from runs import assert_same

DIGITS = [str(k) for k in range(10)]


@pytest.fixture(scope="module")
def two_digits(tmp_path_factory: pytest.TempPathFactory, digits_parts: tuple[Collection, Collection]) -> Path:
    """The held-out digits 3 and 7, as PNG files in folders `3/` and `7/`: 2 of the 10 classes of the heads."""
    root = tmp_path_factory.mktemp("two") / "digits37"
    val = digits_parts[1]
    assert val.labels is not None
    for k in np.flatnonzero(np.isin(val.labels, [3, 7])):
        folder = root / str(val.labels[k])
        folder.mkdir(parents=True, exist_ok=True)
        val.load(int(k)).save(folder / f"{k:04d}.png")
    return root


def names_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_folder_of_some_classes_is_scored_over_them(
    runner: CliRunner, tmp_path: Path, two_digits: Path, trained_weights: dict[str, Path]
) -> None:
    models = [x for spec, path in trained_weights.items() for x in ("--model", spec, "--weights", str(path))]
    run = ["compare", *models, "--fit-data", "digits", "--eval-data", f"imagefolder:{two_digits}", "--n-boot", "50",
           "--solver", "lstsq", "--quiet"]  # fmt: skip
    # Without names, folder k would be label k of a 2-class space: refused, as before.
    result = runner.invoke(app, [*run, "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "wrong shapes [head.bias (10,) vs (2,)" in result.output
    names = names_file(tmp_path / "digits.txt", DIGITS)
    result = runner.invoke(app, [*run, "--class-names", str(names), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    dataset = metrics["dataset"]
    assert (dataset["num_classes"], dataset["scored_classes"], dataset["val_size"]) == (
        10,
        2,
        len(list(two_digits.rglob("*.png"))),
    )
    # Each network's accuracy is its own logits, restricted to the two heads' outputs 3 and 7, against the folders.
    for spec, weights in trained_weights.items():
        backbone = BackboneRecipe(spec, str(weights), 10).build()
        files = sorted(two_digits.rglob("*.png"), key=lambda p: str(p.relative_to(two_digits)))
        with torch.inference_mode():
            logits = backbone.module(torch.stack([backbone.transform()(Image.open(f)) for f in files]))
        predicted = np.asarray([3, 7])[logits[:, [3, 7]].argmax(1).numpy()]
        truth = np.asarray([int(f.parent.name) for f in files])
        assert metrics["models"][spec]["val_accuracy"] == pytest.approx(float(np.mean(predicted == truth)))
    # The store labels the images by the heads' outputs, in the file's label space.
    config = (tmp_path / "run" / "config.toml").read_text()
    assert f'class_names = "{names}"' in config
    again = runner.invoke(app, ["compare", "--config", str(tmp_path / "run" / "config.toml"), "--out",
                                str(tmp_path / "again"), "--quiet"])  # fmt: skip
    assert again.exit_code == 0, again.output
    repeated = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert_same(repeated["pairs"], metrics["pairs"])  # equal numbers (fit seconds aside)


def test_class_names_label_train_and_val_parts_and_splits(tmp_path: Path, two_digits: Path) -> None:
    names = names_file(tmp_path / "n.txt", DIGITS)
    fit, (val,) = fit_and_eval(DataSettings(data=f"imagefolder:{two_digits}", class_names=str(names)))
    for part in (fit, val):
        assert part.classes == tuple(DIGITS) and part.labels is not None
        assert set(np.unique(part.labels)) == {3, 7}
        assert all(part.labels[i] == int(part.ids[i].split("/")[0]) for i in range(len(part)))
    # The digits themselves keep their labels: their classes are named 0..9, in the file's order.
    fit, (val,) = fit_and_eval(DataSettings(data="digits", class_names=str(names)))
    plain_fit, _ = fit_and_eval(DataSettings(data="digits"))
    assert np.array_equal(fit.labels, plain_fit.labels)  # type: ignore[arg-type]
    # Another order in the file moves every label with it.
    shuffled = names_file(tmp_path / "r.txt", DIGITS[::-1])
    fit, _ = fit_and_eval(DataSettings(data="digits", class_names=str(shuffled)))
    plain = dict(zip(plain_fit.ids, plain_fit.labels, strict=True))  # type: ignore[arg-type]
    moved = dict(zip(fit.ids, fit.labels, strict=True))  # type: ignore[arg-type]
    assert all(moved[i] == 9 - plain[i] for i in set(plain) & set(moved)) and len(set(plain) & set(moved)) > 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0\n1\n\n2\n", "Line 3 of --class-names .* is blank"),
        ("0\n1\n0\n", "names '0' twice \\(lines 1 and 3\\)"),
        ("\n\n", "names no class"),
        ("", "names no class"),
    ],
)
def test_bad_class_names_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "names.txt"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        read_class_names(path)


def test_class_names_errors_on_the_command_line(runner: CliRunner, tmp_path: Path, two_digits: Path) -> None:
    base = ["extract", "--model", "tiny-resnet", "--data", f"imagefolder:{two_digits}", "--store",
            str(tmp_path / "s.zarr")]  # fmt: skip
    cases = [
        (tmp_path / "missing.txt", "does not exist"),
        (tmp_path, "is a directory"),
        (names_file(tmp_path / "few.txt", ["0", "1", "2", "3"]), "has images of 1 class(es) that --class-names"),
        (names_file(tmp_path / "dup.txt", ["3", "7", "3"]), "names '3' twice"),
    ]
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    cases.append((tmp_path / "latin.txt", "not a text file"))
    for path, message in cases:
        result = runner.invoke(app, [*base, "--class-names", str(path)])
        assert result.exit_code == 2 and result.output.startswith("error:"), result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "s.zarr").exists()
    with pytest.raises(DataError, match="'7'"):
        fit_and_eval(DataSettings(data=f"imagefolder:{two_digits}", class_names=str(tmp_path / "few.txt")))
