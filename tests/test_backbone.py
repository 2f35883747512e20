"""The backbone wrapper: head(features(x)) must reproduce the network's logits, or the model is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from featswap.backbones.backbone import split_module
from featswap.backbones.preprocessing import DataConfig
from featswap.backbones.sources import BUILTIN, load_backbone
from featswap.errors import ModelError


@pytest.mark.parametrize("spec", BUILTIN.names())
def test_logits_check_passes_for_every_builtin(spec: str) -> None:
    backbone = load_backbone(spec)
    c, h, w = backbone.data_config.input_size
    x = torch.randn(16, c, h, w)
    diff = backbone.check_logits(x)
    assert diff < 1e-5
    assert backbone.features(x).shape == (16, backbone.feature_dim)
    assert backbone.num_classes == 10


def test_builtin_feature_widths_differ() -> None:
    assert load_backbone("tiny-resnet").feature_dim == 128
    assert load_backbone("tiny-inception").feature_dim == 96


class ScaledHead(nn.Module):
    """A network whose logits are twice its head's output: the head is not its final affine map."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU())
        self.head = nn.Linear(12, 10)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * self.head(self.body(x)) + 1


CONFIG = DataConfig((1, 8, 8), (0.5,), (0.5,))


def test_logits_check_refuses_a_head_that_is_not_final() -> None:
    backbone = split_module("scaled", "scaled", ScaledHead(), CONFIG)
    with pytest.raises(ModelError, match="differs from the network's own logits"):
        backbone.check_logits(torch.randn(4, 1, 8, 8))


def test_logits_check_refuses_class_count_mismatch() -> None:
    module = ScaledHead()
    backbone = split_module("other", "other", module, CONFIG, head=nn.Linear(12, 7))
    with pytest.raises(ModelError, match="its head has 7 outputs"):
        backbone.check_logits(torch.randn(4, 1, 8, 8))


def test_non_linear_head_is_refused() -> None:
    module = ScaledHead()
    with pytest.raises(ModelError, match="no linear head"):
        split_module("conv", "conv", module, CONFIG, head=nn.Conv2d(12, 10, 1))


def test_features_of_wrong_shape_are_refused() -> None:
    module = ScaledHead()
    backbone = split_module("bad", "bad", module, CONFIG, features_fn=lambda x: x)
    with pytest.raises(ModelError, match="expected \\(N, 12\\)"):
        backbone.features(torch.randn(2, 1, 8, 8))


def test_unknown_model_suggests_the_closest() -> None:
    from featswap.errors import SpecError

    with pytest.raises(SpecError, match="Did you mean 'tiny-resnet'"):
        load_backbone("tiny-resnt")
