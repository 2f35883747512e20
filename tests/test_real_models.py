"""Real timm and torchvision networks (random weights, small inputs), user factories, and image folders of
real JPEG/PNG files written here: grayscale, CMYK, RGBA, palette and one truncated file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from featswap.backbones.sources import load_backbone
from featswap.cli import app
from featswap.config import ExtractionSettings
from featswap.data.collections import open_spec
from featswap.errors import DataError, ModelError, SpecError
from featswap.extraction.local import extract
from featswap.outputs.metrics_json import invariant_violations
from featswap.store import FeatureStore
from images import write_folder

SMALL = {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


@pytest.mark.parametrize(
    "spec",
    ["timm:resnet18", "timm:mobilenetv3_small_050", "timm:vit_tiny_patch16_224", "torchvision:resnet18",
     "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0"],
)  # fmt: skip
def test_logits_check_on_every_family(spec: str) -> None:
    config = {**SMALL, "input_size": (3, 224, 224)} if "vit" in spec else SMALL
    backbone = load_backbone(spec, num_classes=7, data_config=config)
    c, h, w = backbone.data_config.input_size
    assert backbone.check_logits(torch.randn(2, c, h, w)) < 1e-3
    assert backbone.num_classes == 7 and backbone.features(torch.randn(2, c, h, w)).shape == (2, backbone.feature_dim)


def test_a_head_that_is_not_the_final_affine_map_is_refused() -> None:
    # SqueezeNet's classifier is conv 1x1 -> ReLU -> pooling: no linear map from pooled features to logits.
    backbone = load_backbone(
        "torchvision:squeezenet1_0", num_classes=5, data_config=SMALL | {"input_size": (3, 64, 64)}
    )
    with pytest.raises(ModelError, match=r"reads an unpooled feature map of shape \(2, 512, 3, 3\)"):
        backbone.check_logits(torch.randn(2, 3, 64, 64))


def test_preprocessing_from_timm_and_torchvision() -> None:
    assert load_backbone("timm:resnet18").data_config.interpolation == "bicubic"
    tv = load_backbone("torchvision:resnet18").data_config
    assert tv.input_size == (3, 224, 224) and tv.crop_pct == pytest.approx(224 / 256)


@pytest.mark.parametrize("spec", ["timm:resnet18", "torchvision:resnet18"])
def test_weight_files_written_here_load_into_real_architectures(spec: str, tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = load_backbone(spec, num_classes=4, data_config=SMALL)
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.module.state_dict().items()}}, path)
    loaded = load_backbone(spec, weights=path, num_classes=4, data_config=SMALL)
    torch.testing.assert_close(loaded.head_weight, source.head_weight)
    with pytest.raises(ModelError, match="wrong shapes"):
        load_backbone(spec, weights=path, num_classes=9, data_config=SMALL)


FACTORY = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1))
        self.fc = nn.Linear(8, 3)
        if config:
            self.data_config = {"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3}

    def forward(self, x):
        return self.fc(self.body(x))

def with_config():
    return Net(True)

def without_config():
    return Net(False)

def not_a_module():
    return 3
"""


def test_user_factories(tmp_path: Path) -> None:
    path = tmp_path / "nets.py"
    path.write_text(FACTORY)
    backbone = load_backbone(f"{path}:with_config")
    assert backbone.feature_dim == 8 and backbone.check_logits(torch.randn(3, 3, 16, 16)) < 1e-5
    with pytest.raises(ModelError, match="no preprocessing known"):
        load_backbone(f"{path}:without_config")
    assert load_backbone(f"{path}:without_config", data_config=SMALL).data_config.input_size == (3, 32, 32)
    with pytest.raises(ModelError, match=r"not a torch\.nn\.Module"):
        load_backbone(f"{path}:not_a_module")
    with pytest.raises(SpecError, match="has no function 'missing'"):
        load_backbone(f"{path}:missing")
    with pytest.raises(SpecError, match="does not exist"):
        load_backbone(f"{tmp_path}/nope.py:f")
    with pytest.raises(SpecError, match="timm has no model"):
        load_backbone("timm:resnet_does_not_exist")
    with pytest.raises(SpecError, match="torchvision has no model 'resnet19'"):
        load_backbone("torchvision:resnet19")


def test_every_colour_mode_extracts_and_a_truncated_file_fails_by_id(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "imgs", truncated=True)
    (collection,) = open_spec(f"imagefolder:{root}").parts.values()
    backbone = load_backbone("timm:resnet18", num_classes=3, data_config=SMALL)
    with (
        FeatureStore.create(tmp_path / "s.zarr") as store,
        pytest.raises(DataError, match=r"Cannot read image .dog/zz_truncated\.jpg."),
    ):
        extract(backbone, collection, store, ExtractionSettings(batch_size=4), quiet=True)
    (clean,) = open_spec(f"imagefolder:{write_folder(tmp_path / 'clean')}").parts.values()
    with FeatureStore.create(tmp_path / "c.zarr") as store:
        result = extract(backbone, clean, store, ExtractionSettings(batch_size=8), quiet=True)
        assert result.rows == 36 and np.isfinite(store.features("clean", "resnet18")).all()


def test_compare_two_timm_architectures_on_an_image_folder(tmp_path: Path, runner: CliRunner) -> None:
    root = write_folder(tmp_path / "imgs", per_class=20)
    config = json.dumps(SMALL)
    result = runner.invoke(app, [
        "compare", "--model", "timm:resnet18", "--model", "timm:mobilenetv3_small_050", "--no-pretrained",
        "--data", f"imagefolder:{root}", "--val-fraction", "0.3", "--data-config", config,
        "--out", str(tmp_path / "out"), "--solver", "lstsq,heads", "--n-boot", "100", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"resnet18", "mobilenetv3_small_050"}
    assert metrics["dataset"]["num_classes"] == 3 and metrics["dataset"]["val_size"] == 18
    assert invariant_violations(metrics) == [] and (tmp_path / "out" / "report.md").is_file()
    bad = runner.invoke(app, ["extract", "--model", "timm:resnet18", "--data", "digits", "--store", "x",
                              "--data-config", "{oops"])  # fmt: skip
    assert bad.exit_code == 2 and "not valid JSON" in bad.output
    bad = runner.invoke(app, ["extract", "--model", "timm:resnet18", "--data", "digits", "--store", "x",
                              "--data-config", "[1]"])  # fmt: skip
    assert bad.exit_code == 2 and "must be a JSON object" in bad.output


@pytest.mark.parametrize("workers", [0, 1])
def test_skipped_images_are_recorded_and_left_out_for_every_model(
    tmp_path: Path, runner: CliRunner, workers: int
) -> None:
    root = write_folder(tmp_path / "imgs", per_class=20, truncated=True)
    result = runner.invoke(app, [
        "compare", "--model", "timm:resnet18", "--model", "torchvision:resnet18", "--no-pretrained",
        "--data", f"imagefolder:{root}", "--val-fraction", "0.3", "--data-config", json.dumps(SMALL),
        "--on-bad-image", "skip", "--workers", str(workers), "--out", str(tmp_path / "out"), "--solver", "lstsq",
        "--n-boot", "50", "--no-similarity", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    skipped = metrics["dataset"]["skipped"]
    assert sum(map(len, skipped.values())) == 1 and "dog/zz_truncated.jpg" in next(iter(skipped.values()))
    assert metrics["dataset"]["train_size"] + metrics["dataset"]["val_size"] == 60  # 61 files, one skipped
    assert invariant_violations(metrics) == []
    assert "Skipped as unreadable" in (tmp_path / "out" / "report.md").read_text()
    store = FeatureStore.open(tmp_path / "out" / "features.zarr")
    split = next(iter(skipped))
    assert "cannot" in store.skipped(split)["dog/zz_truncated.jpg"].lower()
    assert len(store.features(split, "resnet18")) == len(store.labels(split)) == len(store.ids(split)) - 1
    bad = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--data", "digits", "--store", str(tmp_path / "x"),
                              "--on-bad-image", "ignore"])  # fmt: skip
    assert bad.exit_code == 2 and "--on-bad-image must be one of fail, skip; got 'ignore'" in bad.output
    with pytest.raises(SpecError, match="on_bad_image must be one of fail, skip; got 'ignore'"):
        ExtractionSettings(on_bad_image="ignore")


CONV_HEAD = '''
import torch
from torch import nn

class ConvHead(nn.Module):
    """Pooled features -> identity -> 1x1 convolution classifier -> flatten (as in some classic nets)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Identity())
        self.classifier = nn.Conv2d(6, 4, 1)
        self.data_config = {"input_size": (3, 12, 12), "mean": (0.5,) * 3, "std": (0.5,) * 3}

    def forward(self, x):
        return self.classifier(self.body(x)).flatten(1)

def net():
    return ConvHead()
'''


def test_a_one_by_one_convolution_head_is_an_affine_head(tmp_path: Path) -> None:
    path = tmp_path / "conv.py"
    path.write_text(CONV_HEAD)
    backbone = load_backbone(f"{path}:net")
    assert (backbone.feature_dim, backbone.num_classes) == (6, 4)
    assert backbone.check_logits(torch.randn(5, 3, 12, 12)) < 1e-5
