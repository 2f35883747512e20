"""TF-slim's Inception-ResNet-v2 (`nets/inception_resnet_v2.py`, Szegedy et al. 2017) as `torch.nn`.

As `inception_resnet_v2_arg_scope` builds it (ReLU, the default `align_feature_maps=False` and
`output_stride=16`): every convolution is followed by batch norm without gamma (`scale=False`, epsilon 1e-3) and
ReLU and has no biases, except the 1x1 `Conv2d_1x1` that closes each residual block, which has biases and
neither batch norm nor activation. The stem and every stride-2 layer are VALID (so no padding is asymmetric at
299 px), the rest SAME at stride 1. The residual blocks add `scale * Conv2d_1x1(branches)` to their input, then
ReLU: 10 `block35` (scale 0.17) under TF's scope `Repeat`, 20 `block17` (0.10) under `Repeat_1`, 9 `block8`
(0.20) under `Repeat_2`, then one more `Block8` with scale 1 and no ReLU, and `Conv2d_7b_1x1` (1536 channels,
batch norm, ReLU). The head is the mean over the whole map (`Logits/AvgPool_1a_8x8`, or TF's `global_pool` when
the size is unknown: the 1536 features, before dropout), then `Logits/Logits`, a fully connected layer with
biases and 1,001 outputs. `AuxLogits` is training-only and not built (its checkpoint variables are accepted and
left unused).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from featswap.backbones.sources.tfslim.inception_v4 import branch, conv, mixed
from featswap.backbones.sources.tfslim.ops import AvgPool, Conv, Dense, EndPointNetwork, GlobalPool, MaxPool


class Residual(nn.Module):
    """`block35` / `block17` / `block8`: `x + scale * Conv2d_1x1(concat(Branch_0(x), Branch_1(x), ...))`, then ReLU
    when `relu`. `(N, C, H, W) -> (N, C, H, W)`."""

    def __init__(self, branches: Sequence[nn.Module], mixed_channels: int, channels: int, scale: float, relu: bool):
        super().__init__()
        self.branches = [f"Branch_{index}" for index in range(len(branches))]
        for name, module in zip(self.branches, branches, strict=True):
            self.add_module(name, module)
        self.Conv2d_1x1 = Conv(mixed_channels, channels, 1, relu=False)  # biases, no batch norm
        self.scale, self.relu = scale, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.get_submodule(name)(x) for name in self.branches], dim=1)
        out = x + self.Conv2d_1x1(mixed) * self.scale
        return F.relu(out) if self.relu else out


def block35(scale: float = 0.17, relu: bool = True) -> Residual:
    return Residual(
        [
            branch(("Conv2d_1x1", conv(320, 32, 1))),
            branch(("Conv2d_0a_1x1", conv(320, 32, 1)), ("Conv2d_0b_3x3", conv(32, 32, 3))),
            branch(
                ("Conv2d_0a_1x1", conv(320, 32, 1)),
                ("Conv2d_0b_3x3", conv(32, 48, 3)),
                ("Conv2d_0c_3x3", conv(48, 64, 3)),
            ),
        ],
        128,
        320,
        scale,
        relu,
    )


def block17(scale: float = 0.10, relu: bool = True) -> Residual:
    return Residual(
        [
            branch(("Conv2d_1x1", conv(1088, 192, 1))),
            branch(
                ("Conv2d_0a_1x1", conv(1088, 128, 1)),
                ("Conv2d_0b_1x7", conv(128, 160, (1, 7))),
                ("Conv2d_0c_7x1", conv(160, 192, (7, 1))),
            ),
        ],
        384,
        1088,
        scale,
        relu,
    )


def block8(scale: float = 0.20, relu: bool = True) -> Residual:
    return Residual(
        [
            branch(("Conv2d_1x1", conv(2080, 192, 1))),
            branch(
                ("Conv2d_0a_1x1", conv(2080, 192, 1)),
                ("Conv2d_0b_1x3", conv(192, 224, (1, 3))),
                ("Conv2d_0c_3x1", conv(224, 256, (3, 1))),
            ),
        ],
        448,
        2080,
        scale,
        relu,
    )


def repeat(name: str, factory: Callable[[], Residual], count: int) -> nn.Sequential:
    """`slim.repeat`: `count` blocks named `{name}_1` ... `{name}_{count}`."""
    return nn.Sequential(OrderedDict((f"{name}_{i + 1}", factory()) for i in range(count)))


class InceptionResnetV2(EndPointNetwork):
    """`InceptionResnetV2`: images `(N, 3, 299, 299)` -> logits `(N, 1001)`; `forward_features` gives the 1536
    pooled features. Module names are TF-slim's scopes (`Conv2d_1a_3x3` ... `Mixed_5b`, `Repeat.block35_1` ...,
    `Mixed_6a`, `Repeat_1.block17_1` ..., `Mixed_7a`, `Repeat_2.block8_1` ..., `Block8`, `Conv2d_7b_1x1`)."""

    scope = "InceptionResnetV2"

    def __init__(self, num_classes: int = 1001) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = conv(3, 32, 3, 2, "VALID")
        self.Conv2d_2a_3x3 = conv(32, 32, 3, 1, "VALID")
        self.Conv2d_2b_3x3 = conv(32, 64, 3)
        self.MaxPool_3a_3x3 = MaxPool(3, 2, "VALID")
        self.Conv2d_3b_1x1 = conv(64, 80, 1, 1, "VALID")
        self.Conv2d_4a_3x3 = conv(80, 192, 3, 1, "VALID")
        self.MaxPool_5a_3x3 = MaxPool(3, 2, "VALID")
        self.Mixed_5b = mixed(
            branch(("Conv2d_1x1", conv(192, 96, 1))),
            branch(("Conv2d_0a_1x1", conv(192, 48, 1)), ("Conv2d_0b_5x5", conv(48, 64, 5))),
            branch(
                ("Conv2d_0a_1x1", conv(192, 64, 1)),
                ("Conv2d_0b_3x3", conv(64, 96, 3)),
                ("Conv2d_0c_3x3", conv(96, 96, 3)),
            ),
            branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(192, 64, 1))),
        )
        self.Repeat = repeat("block35", block35, 10)
        self.Mixed_6a = mixed(
            branch(("Conv2d_1a_3x3", conv(320, 384, 3, 2, "VALID"))),
            branch(
                ("Conv2d_0a_1x1", conv(320, 256, 1)),
                ("Conv2d_0b_3x3", conv(256, 256, 3)),
                ("Conv2d_1a_3x3", conv(256, 384, 3, 2, "VALID")),
            ),
            branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID"))),
        )
        self.Repeat_1 = repeat("block17", block17, 20)
        self.Mixed_7a = mixed(
            branch(("Conv2d_0a_1x1", conv(1088, 256, 1)), ("Conv2d_1a_3x3", conv(256, 384, 3, 2, "VALID"))),
            branch(("Conv2d_0a_1x1", conv(1088, 256, 1)), ("Conv2d_1a_3x3", conv(256, 288, 3, 2, "VALID"))),
            branch(
                ("Conv2d_0a_1x1", conv(1088, 256, 1)),
                ("Conv2d_0b_3x3", conv(256, 288, 3)),
                ("Conv2d_1a_3x3", conv(288, 320, 3, 2, "VALID")),
            ),
            branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID"))),
        )
        self.Repeat_2 = repeat("block8", block8, 9)
        self.Block8 = block8(scale=1.0, relu=False)
        self.Conv2d_7b_1x1 = conv(2080, 1536, 1)
        self.global_pool = GlobalPool()
        self.Logits = Dense(1536, num_classes)
