"""A refused run leaves nothing behind: whatever refuses it (a model that fails the logits check, a bad config, a bad
evaluation set that is only found after the fitting set could have been extracted, a collection the store holds with
other images), the directory tree is exactly as it was: no store, no output directory, no parent folder created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featswap.cli import app

#: A network whose output is not its last linear layer's (a scaled head): the logits check refuses it.
SCALED_HEAD = """
import torch
from torch import nn


class Scaled(nn.Module):
    data_config = {"input_size": [3, 8, 8], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return 2 * self.fc(self.body(x)) + 1


def scaled():
    torch.manual_seed(0)
    return Scaled()


def three_classes():
    torch.manual_seed(0)
    module = Scaled()
    module.fc = nn.Linear(16, 3)
    module.forward = lambda x: module.fc(module.body(x))
    return module
"""


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and modification time: any file or folder created, changed or removed
    shows."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size if name in files else 0, stat.st_mtime_ns)
    return found


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "nets.py").write_text(SCALED_HEAD)
    (tmp_path / "runs").mkdir()
    return tmp_path


def refused(runner: CliRunner, root: Path, args: list[str], message: str) -> None:
    """Run `featswap ARGS`: one `error:` line with `message`, exit 2, and `root`'s tree unchanged."""
    before = tree(root)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output, result.output
    assert tree(root) == before


def test_a_model_failing_the_logits_check_leaves_no_store_nor_out(runner: CliRunner, work: Path) -> None:
    bad = f"{work / 'nets.py'}:scaled"
    new = work / "runs" / "deep" / "er"
    logits = "differs from the network's own logits"
    refused(runner, work, ["extract", "--model", bad, "--data", "digits", "--store", str(new / "s.zarr")], logits)
    refused(runner, work, ["compare", "--model", "tiny-resnet", "--model", bad, "--data", "digits",
                           "--out", str(new / "cmp"), "--quiet"], logits)  # fmt: skip
    refused(runner, work, ["stitch", "--model", "tiny-resnet", "--model", bad, "--data", "digits",
                           "--out", str(new / "st"), "--quiet"], logits)  # fmt: skip
    # The second model's head predicts 3 classes: found before the first model's features are written.
    other = f"{work / 'nets.py'}:three_classes"
    args = ["compare", "--model", "tiny-resnet", "--model", other, "--data", "digits", "--out", str(new / "cmp")]
    refused(runner, work, args, "has 10 classes but three_classes's head predicts 3")


def test_a_bad_config_or_evaluation_set_leaves_nothing(
    runner: CliRunner, work: Path, image_folder: Path, trained_weights: dict[str, Path]
) -> None:
    out = work / "runs" / "new"
    config = work / "bad.toml"
    config.write_text('[fit]\nsolvers = ["lstsq"]\n[fit.params.lstsq]\nalpha = -1\n')
    refused(runner, work, ["compare", "--config", str(config), "--model", "tiny-resnet", "--model", "tiny-inception",
                           "--data", "digits", "--out", str(out)], "alpha must be")  # fmt: skip
    # An evaluation set none of whose images can be read: found before the fitting set is extracted.
    unreadable = work / "unreadable"
    for name in ("a", "b"):
        (unreadable / name).mkdir(parents=True)
        (unreadable / name / "x.png").write_bytes(b"not a png")
    before = tree(work)
    result = runner.invoke(app, ["compare", "--model", "tiny-resnet", "--model", "tiny-inception", "--fit-data",
                                 "digits", "--eval-data", f"imagefolder:{unreadable}", "--on-bad-image", "skip",
                                 "--out", str(out), "--quiet"])  # fmt: skip
    assert result.exit_code == 2 and "No image of collection 'unreadable'" in result.output, result.output
    assert tree(work) == before
    # An evaluation set whose classes are not the trained heads' (3 folders for 10-class heads).
    models = [x for spec, path in trained_weights.items() for x in ("--model", spec, "--weights", str(path))]
    refused(runner, work, ["compare", *models, "--fit-data", "digits", "--eval-data", f"imagefolder:{image_folder}",
                           "--out", str(out), "--quiet"], "does not fit the model: wrong shapes")  # fmt: skip


def test_a_store_holding_other_images_under_the_name_is_refused_before_writing(
    runner: CliRunner, work: Path, image_folder: Path
) -> None:
    store = work / "s.zarr"
    first = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--data", "digits", "--store", str(store),
                                "--part", "fit", "--quiet"])  # fmt: skip
    assert first.exit_code == 0, first.output
    # Another split of the same images under the same names (train, val): refused, the store untouched.
    refused(runner, work, ["extract", "--model", "tiny-inception", "--data", "digits", "--val-fraction", "0.5",
                           "--store", str(store), "--quiet"], "holds other samples")  # fmt: skip


def test_an_interrupted_first_extraction_keeps_what_it_finished(runner: CliRunner, work: Path) -> None:
    """The other side: once a feature is written, a failure keeps the store, to resume (a bad image half-way)."""
    from images import write_folder

    folder = write_folder(work / "imgs", per_class=40, truncated=True, classes=tuple("0123456789"))
    store = work / "runs" / "s.zarr"
    args = ["extract", "--model", "tiny-resnet", "--data", f"imagefolder:{folder}", "--store", str(store)]
    result = runner.invoke(app, [*args, "--chunk-rows", "8", "--batch-size", "8", "--quiet"])
    assert result.exit_code == 2 and "zz_truncated" in result.output, result.output
    assert (store / "zarr.json").is_file()
