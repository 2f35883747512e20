"""ImageNet-style heads and evaluation sets: a 1001-output head (TF-slim's background at index 0) drops that row,
an evaluation set that covers some of the 1,000 classes is scored over those, and a fitting set smaller than
the source's width + 1 gets a ridge strength chosen on held-out fitting images, or a warning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.data.collections import imagenet_synsets
from featswap.evaluation.swap import classify, scored_classes
from featswap.store import FeatureStore
from images import write_folder

NETS = """
import torch
from torch import nn

class Net(nn.Module):
    data_config = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

    def __init__(self, outputs, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 12, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(12, outputs)

    def forward_features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))

def slim():
    return Net(1001, 1)

def plain():
    return Net(1000, 2)
"""

#: Three of ImageNet's classes, far apart in its sorted order.
PRESENT = (3, 10, 500)


@pytest.fixture(scope="module")
def imagenet_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`train/` and `val/` with three synset folders of real images, and a file of two networks: `slim` with
    a 1001-output head, `plain` with 1000."""
    root = tmp_path_factory.mktemp("inet")
    synsets = tuple(imagenet_synsets()[i] for i in PRESENT)
    write_folder(root / "in" / "train", per_class=8, classes=synsets)
    write_folder(root / "in" / "val", per_class=6, classes=synsets)
    (root / "nets.py").write_text(NETS)
    return root


def compare(runner: CliRunner, root: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["compare", "--model", f"{root / 'nets.py'}:slim", "--model", f"{root / 'nets.py'}:plain",
         "--data", f"imagenet:{root / 'in'}", "--solver", "lstsq", "--n-boot", "50", "--out", str(out), *extra],
    )  # fmt: skip
    return result.exit_code, result.output


def test_a_1001_output_head_drops_its_background_row_and_a_partial_set_is_scored_over_its_classes(
    imagenet_tree: Path, runner: CliRunner, tmp_path: Path
) -> None:
    code, output = compare(runner, imagenet_tree, tmp_path / "run")
    assert code == 0, output
    assert "slim: its head has 1001 outputs; output 0 (TF-slim's background) left out" in output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["models"]["slim"]["head_offset"] == 1 and metrics["models"]["slim"]["head_outputs"] == 1001
    assert "head_offset" not in metrics["models"]["plain"]
    assert metrics["dataset"]["num_classes"] == 1000 and metrics["dataset"]["scored_classes"] == 3
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Scored over the 3 classes present** of the 1,000" in report
    assert "slim: its head has 1001 outputs" in report

    # The same numbers from the networks' own heads, computed here: slim's logits 1..1000, then only the
    # three classes present, for the native and the mapped predictions alike.
    import importlib.util

    spec = importlib.util.spec_from_file_location("nets", imagenet_tree / "nets.py")
    assert spec is not None and spec.loader is not None
    nets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nets)
    store = FeatureStore.open(str(tmp_path / "run" / "features.zarr"))
    labels = store.labels("val")
    assert sorted(set(labels.tolist())) == list(PRESENT)
    predictions = {}
    for name, outputs in (("slim", 1001), ("plain", 1000)):
        head = getattr(nets, name)().head
        weight, bias = head.weight.detach().numpy(), head.bias.detach().numpy()
        assert weight.shape[0] == outputs
        logits = store.features("val", name) @ weight.T + bias
        logits = logits[:, outputs - 1000 :][:, list(PRESENT)]
        predictions[name] = np.asarray(PRESENT)[logits.argmax(axis=1)]
        assert metrics["models"][name]["val_correct"] == int((predictions[name] == labels).sum())
    pair = next(p for p in metrics["pairs"] if p["source"] == "plain" and p["target"] == "slim")
    assert pair["native_correct"] == int((predictions["slim"] == labels).sum())


def test_head_offset_given_explicitly(imagenet_tree: Path, runner: CliRunner, tmp_path: Path) -> None:
    # --head-offset 0 keeps all 1001 outputs: they are not ImageNet's 1,000 classes, and featswap says so.
    code, output = compare(runner, imagenet_tree, tmp_path / "a", "--head-offset", "0")
    assert code == 2 and output.startswith("error:") and len(output.strip().splitlines()) == 1
    assert "has 1000 classes but slim's head predicts 1001" in output and "--head-offset" in output
    assert not (tmp_path / "a").exists()
    # One per model, in order: the same numbers as the automatic choice.
    code, output = compare(runner, imagenet_tree, tmp_path / "b", "--head-offset", "1", "--head-offset", "0")
    assert code == 0, output
    auto_code, auto_output = compare(runner, imagenet_tree, tmp_path / "c")
    assert auto_code == 0, auto_output
    b, c = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("b", "c"))
    assert b["models"] == c["models"] and [p["mapped_correct"] for p in b["pairs"]] == [
        p["mapped_correct"] for p in c["pairs"]
    ]
    config = (tmp_path / "b" / "config.toml").read_text()
    assert "head_offset = 1" in config and "head_offset = 0" in config


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        (["1", "0", "0"], "Got 3 --head-offset for 2 models"),
        (["-1"], "--head-offset must be"),
        (["1001"], "leaves no class outputs of its head's 1001"),
    ],
)
def test_bad_head_offsets_are_one_line(
    imagenet_tree: Path, runner: CliRunner, tmp_path: Path, offsets: list[str], message: str
) -> None:
    extra = [a for k in offsets for a in ("--head-offset", k)]
    code, output = compare(runner, imagenet_tree, tmp_path / "out", *extra)
    assert code == 2 and output.startswith("error:") and len(output.strip().splitlines()) == 1, output
    assert message in output


def test_scoring_over_present_classes_ignores_the_other_logits() -> None:
    rng = np.random.default_rng(0)
    features, weight, bias = rng.normal(size=(50, 6)), rng.normal(size=(20, 6)), rng.normal(size=20)
    labels = rng.choice([2, 7, 11], size=50)
    scored = scored_classes(labels, 20)
    assert scored is not None and scored.tolist() == [2, 7, 11]
    assert scored_classes(np.arange(20), 20) is None
    result = classify(features, weight, bias, labels, scored)
    logits = features @ weight.T + bias
    np.testing.assert_array_equal(result.top1, scored[logits[:, scored].argmax(axis=1)])
    assert set(result.top1.tolist()) <= {2, 7, 11}
    assert result.topk_ok.all()  # three classes: each label is among the top 5 of them
    assert (classify(features, weight, bias, labels).top1 != result.top1).any()  # the other logits would win


def test_a_fitting_set_smaller_than_the_features_gets_a_chosen_ridge_or_a_warning(
    trained_weights: dict[str, Path], runner: CliRunner, tmp_path: Path
) -> None:
    models = [a for spec, w in trained_weights.items() for a in ("--model", spec, "--weights", str(w))]
    base = [*models, "--data", "digits", "--train-limit", "40", "--solver", "lstsq", "--n-boot", "50"]
    result = runner.invoke(app, ["compare", *base, "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    assert "40 fitting images, fewer than 128 source features + 1: ridge strength" in result.output
    metrics = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    for pair in metrics["pairs"]:
        fit = pair["fit"]
        assert fit["fit_size"] == 40 and fit["underdetermined"] and not fit["interpolates"]
        assert fit["source_dim"] == metrics["models"][pair["source"]]["feature_dim"]
        assert fit["alpha"] > 0 and fit["train_loss"] > 1e-3
    report = (tmp_path / "auto" / "report.md").read_text()
    assert "was fitted on N = 40 images, fewer than D + 1 = 129 (its source's features + 1); ridge strength" in report

    # Ordinary least squares on 40 images reproduces them: it is flagged on the terminal and in the report.
    result = runner.invoke(app, ["compare", *base, "--param", "alpha=0", "--quiet", "--out", str(tmp_path / "ols")])
    assert result.exit_code == 0, result.output
    assert "warning: tiny-resnet -> tiny-inception (lstsq): 40 fitting images" in result.output  # even when quiet
    metrics = json.loads((tmp_path / "ols" / "metrics.json").read_text())
    assert all(p["fit"]["interpolates"] and p["fit"]["train_loss"] < 1e-3 for p in metrics["pairs"])
    assert all(p["fit"]["alpha"] == 0 for p in metrics["pairs"])
    assert "**Memorised:**" in (tmp_path / "ols" / "report.md").read_text()
    # `featswap fit` says the same of the one map it fits.
    store = str(tmp_path / "ols" / "features.zarr")
    for alpha, said in (("0", "warning: tiny-resnet -> tiny-inception (lstsq): 40 fitting images, fewer than 128"),
                        ("auto", "40 fitting images, fewer than 128 source features + 1: ridge strength")):  # fmt: skip
        result = runner.invoke(app, ["fit", "--store", store, "--source", "tiny-resnet", "--target", "tiny-inception",
                                     "--solver", "lstsq", "--param", f"alpha={alpha}",
                                     "--out", str(tmp_path / f"map-{alpha}.safetensors")])  # fmt: skip
        assert result.exit_code == 0 and said in result.output, result.output

    # An orthogonal map cannot reproduce its fitting images, but its loss is read with the same caveat.
    result = runner.invoke(app, ["compare", *base[:-3], "procrustes", "--n-boot", "50", "--out", str(tmp_path / "pro")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "pro" / "metrics.json").read_text())
    assert all(p["fit"]["underdetermined"] and not p["fit"]["interpolates"] for p in metrics["pairs"])
    assert all("alpha" not in p["fit"] for p in metrics["pairs"])
    # 40 centred pairs determine 39 directions; the others are mapped to zero, and the terminal says so.
    assert all(p["fit"]["rank"] == 39 for p in metrics["pairs"])
    assert "they determine 39 of its directions, and the others are mapped to zero" in result.output

    # With enough images nothing changes: alpha stays 0 and nothing is flagged.
    result = runner.invoke(app, ["compare", *base[:-6], "--solver", "lstsq", "--n-boot", "50",
                                 "--out", str(tmp_path / "many")])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "many" / "metrics.json").read_text())
    assert all(p["fit"]["alpha"] == 0 and "underdetermined" not in p["fit"] for p in metrics["pairs"])


def test_the_advice_on_a_memorised_map_depends_on_whether_a_ridge_was_chosen() -> None:
    from featswap.outputs.report import memorised_advice

    assert "--param alpha=auto" in memorised_advice({"alpha": 0.0})
    chosen = memorised_advice({"alpha": 16.5})
    assert "ridge strength 16.5 chosen on held-out fitting images: fit on more images" in chosen
    assert "alpha=auto" not in chosen


def test_the_terminal_names_the_label_file_of_a_flat_val_folder(
    imagenet_tree: Path, runner: CliRunner, tmp_path: Path
) -> None:
    from PIL import Image

    synsets, val = imagenet_synsets(), tmp_path / "in" / "val"
    val.mkdir(parents=True)
    rows = ["ImageId,PredictionString"]
    for n, k in enumerate(PRESENT, 1):  # a flat val/ of ImageNet's file names, labelled by Kaggle's CSV beside it
        Image.new("RGB", (20, 20), (40 * n, 90, 10)).save(val / f"ILSVRC2012_val_{n:08d}.JPEG")
        rows.append(f"ILSVRC2012_val_{n:08d},{synsets[k]} 1 2 3 4")
    (tmp_path / "in" / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(
        app,
        ["extract", "--model", f"{imagenet_tree / 'nets.py'}:plain", "--fit-data", f"images:{imagenet_tree / 'in'}",
         "--eval-data", f"imagenet:{tmp_path / 'in'}", "--store", str(tmp_path / "s.zarr"), "--train-limit", "500"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--train-limit 500 is more than the 42 fitting images of in: all are used" in result.output
    assert f"in-val: labels of 3 images from {tmp_path / 'in' / 'LOC_val_solution.csv'}" in result.output
    assert FeatureStore.open(str(tmp_path / "s.zarr")).labels("in-val").tolist() == list(PRESENT)
