"""The source registry: every SPEC goes to exactly one family, and each family builds a Backbone that passes
the logits check with random weights."""

from __future__ import annotations

import pytest

from featswap.backbones.sources import FAMILIES, family_of, load_backbone
from featswap.backbones.sources.builtin import BUILTIN_FAMILY
from featswap.backbones.sources.factory import FACTORY_FAMILY
from featswap.errors import SpecError


def test_spec_prefixes_pick_their_family() -> None:
    assert family_of("timm:resnet18") == (FAMILIES.get("timm"), "resnet18")
    assert family_of("torchvision:resnet18") == (FAMILIES.get("torchvision"), "resnet18")
    assert family_of("models/cifar.py:resnet20") == (FACTORY_FAMILY, "models/cifar.py:resnet20")
    assert family_of("tiny-resnet") == (BUILTIN_FAMILY, "tiny-resnet")


def test_every_family_describes_itself() -> None:
    for prefix in FAMILIES:
        family = FAMILIES.get(prefix)
        assert family.prefix == prefix
        assert family.description and family.example.startswith(f"{prefix}:")


@pytest.mark.parametrize("spec", ["tiny-resnet", "timm:resnet10t", "torchvision:resnet18"])
def test_each_family_builds_a_checked_backbone(spec: str) -> None:
    import torch

    backbone = load_backbone(spec, num_classes=7)
    x = torch.randn(2, *backbone.data_config.input_size)
    assert backbone.check_logits(x) <= 1e-3
    assert backbone.num_classes == 7


def test_unknown_spec_suggests_a_builtin() -> None:
    with pytest.raises(SpecError, match="tiny-resnet"):
        load_backbone("tiny-resnett")
