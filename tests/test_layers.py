"""`featswap layers`: the named modules of real networks with their output shapes, in forward order, and their
stage outputs (timm's feature_info, else top-level feature maps)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from featswap.backbones.layers import layers_table, list_layers
from featswap.backbones.sources import load_backbone
from featswap.cli import app


def test_layers_of_a_built_in_network_in_forward_order() -> None:
    backbone = load_backbone("tiny-resnet")
    layers = list_layers(backbone.module, backbone.data_config.input_size)
    names = [layer.name for layer in layers]
    assert names.index("stem") < names.index("blocks.0") < names.index("blocks.2") < names.index("head")
    shapes = {layer.name: layer.shape for layer in layers}
    assert shapes["stem"] == (32, 8, 8) and shapes["blocks.2"] == (128, 2, 2) and shapes["head"] == (10,)
    # No feature_info: the last module at each spatial size (8, 4, 2), the Sequential opened as it changes size.
    assert [layer.name for layer in layers if layer.stage] == ["blocks.0", "blocks.1", "norm"]
    depths = [layer.depth for layer in layers]
    assert depths == sorted(depths) and depths[0] > 0 and depths[-1] < 1
    assert all(layer.calls == 1 for layer in layers)


def test_stages_of_torchvisions_resnet_and_layers_that_run_twice() -> None:
    backbone = load_backbone("torchvision:resnet18", num_classes=10)
    layers = {layer.name: layer for layer in list_layers(backbone.module, (3, 64, 64))}
    assert [n for n, layer in layers.items() if layer.stage] == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert layers["layer1.0.relu"].calls == 2 and "runs 2x per pass" in layers_table(list(layers.values()))


def test_layers_command_lists_timms_stages_with_their_shapes(runner: CliRunner) -> None:
    config = json.dumps({"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.25] * 3})
    result = runner.invoke(app, ["layers", "--model", "timm:resnet18", "--stages", "--data-config", config])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "resnet18: input 3 x 64 x 64"
    assert [line.split()[:2] for line in lines[2:]] == [
        ["act1", "ReLU"], ["layer1", "Sequential"], ["layer2", "Sequential"], ["layer3", "Sequential"],
        ["layer4", "Sequential"],
    ]  # fmt: skip
    assert "512 x 2 x 2" in lines[-1] and "64 x 16 x 16" in lines[3]
    everything = runner.invoke(app, ["layers", "--model", "timm:resnet18", "--data-config", config])
    assert everything.exit_code == 0 and "layer1.0.conv1" in everything.output and "fc " in everything.output


def test_layers_lists_every_model_given(runner: CliRunner, tmp_path: Path) -> None:
    """`--model` says "repeat for several": each network's table, in order, with its own weights where given."""
    result = runner.invoke(app, ["layers", "--model", "tiny-resnet", "--model", "tiny-inception", "--stages"])
    assert result.exit_code == 0, result.output
    blocks = result.output.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["tiny-resnet: input 1 x 8 x 8", "tiny-inception: input 1 x 16 x 16"]
    assert "blocks.0" in blocks[0] and "blocks.0" not in blocks[1] and "mixed1" in blocks[1]
    alone = runner.invoke(app, ["layers", "--model", "tiny-inception", "--stages"])
    assert alone.output.strip() == blocks[1]
    result = runner.invoke(app, ["layers", "--model", "tiny-resnet", "--model", "no-such-net"])
    assert result.exit_code == 2 and result.output.startswith("error: Unknown model 'no-such-net'"), result.output
    result = runner.invoke(app, ["layers"])
    assert result.exit_code == 2 and result.output.startswith("error: layers lists networks: give --model")
    result = runner.invoke(app, ["layers", "--model", "tiny-resnet", "--weights", "a", "--weights", "b"])
    assert result.exit_code == 2 and result.output.startswith("error: Got 2 --weights for 1 --model")
    two = ["layers", "--model", "tiny-resnet", "--model", "tiny-inception", "--weights", str(tmp_path / "a")]
    result = runner.invoke(app, two)
    assert result.exit_code == 2 and result.output.startswith("error: Got 1 --weights for 2 --model")
