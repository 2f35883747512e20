"""TF-slim's ResNet-v2 (`nets/resnet_v2.py`, He et al. 2016's pre-activation ResNet) as `torch.nn`.

What TF-slim's graph computes, kept here: the root `conv1` (7x7, stride 2, `conv2d_same`'s explicit pads, with
biases and no batch norm) and a 3x3 stride-2 max pool with TF's SAME padding (asymmetric: one extra row and
column after at 299 px); bottleneck units with a pre-activation `preact` batch norm + ReLU; the shortcut a
biased 1x1 convolution of `preact` where the depth changes, else the unit's input subsampled by its stride (a
1x1 max pool); the stride in the *last* unit of blocks 1-3; `conv3` and the shortcut with biases, `conv1` and
`conv2` with batch norm (`scale=True`, epsilon 1e-5) and no biases; `postnorm` after the last block; the
global mean; a 1x1 `logits` convolution with 1,001 outputs (background first).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from featswap.backbones.sources.tfslim.ops import BatchNorm, Conv, Dense, GlobalPool, MaxPool

#: `resnet_utils.resnet_arg_scope`'s batch norm epsilon (TF 2.21's fused kernel uses it as given).
EPSILON = 1e-5

#: Units per block of each depth (`resnet_v2_50` ... `resnet_v2_200`).
UNITS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
}


def batch_norm(channels: int, relu: bool = True) -> BatchNorm:
    return BatchNorm(channels, EPSILON, scale=True, relu=relu)


class Bottleneck(nn.Module):
    """`bottleneck_v2`: `(N, depth_in, H, W) -> (N, depth, H / stride, W / stride)`."""

    def __init__(self, depth_in: int, depth: int, depth_bottleneck: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.preact = batch_norm(depth_in)
        self.shortcut: Conv | MaxPool | None
        if depth == depth_in:
            self.shortcut = MaxPool(1, stride, "SAME") if stride > 1 else None
        else:
            self.shortcut = Conv(depth_in, depth, 1, stride, relu=False)
        self.conv1 = Conv(depth_in, depth_bottleneck, 1, 1, batch_norm=batch_norm(depth_bottleneck, relu=False))
        padding = "FIXED" if stride > 1 else "SAME"
        self.conv2 = Conv(
            depth_bottleneck, depth_bottleneck, 3, stride, padding, batch_norm=batch_norm(depth_bottleneck, False)
        )
        self.conv3 = Conv(depth_bottleneck, depth, 1, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.preact(x)
        if isinstance(self.shortcut, Conv):  # a projection reads the pre-activation, a subsampling the input
            shortcut = self.shortcut(preact)
        else:
            shortcut = self.shortcut(x) if self.shortcut is not None else x
        residual = self.conv3(self.conv2(self.conv1(preact)))
        return shortcut + residual


class ResNetV2(nn.Module):
    """`resnet_v2_{depth}` at any input size: images `(N, 3, H, W)` -> logits `(N, 1001)`; `forward_features`
    gives the pooled `(N, 2048)` after `postnorm`. Module names are TF-slim's end points (`block1.unit_3` is
    `resnet_v2_50/block1/unit_3/bottleneck_v2`)."""

    def __init__(self, depth: int, num_classes: int = 1001) -> None:
        super().__init__()
        self.depth = depth
        self.scope = f"resnet_v2_{depth}"
        self.conv1 = Conv(3, 64, 7, 2, "FIXED", relu=False)
        self.pool1 = MaxPool(3, 2, "SAME")
        depth_in = 64
        for index, (units, base, stride) in enumerate(
            zip(UNITS[depth], (64, 128, 256, 512), (2, 2, 2, 1), strict=True)
        ):
            block: OrderedDict[str, nn.Module] = OrderedDict()
            for unit in range(units):
                last = unit == units - 1
                block[f"unit_{unit + 1}"] = Bottleneck(depth_in, base * 4, base, stride if last else 1)
                depth_in = base * 4
            self.add_module(f"block{index + 1}", nn.Sequential(block))
        self.block1: nn.Sequential
        self.block2: nn.Sequential
        self.block3: nn.Sequential
        self.block4: nn.Sequential
        self.postnorm = batch_norm(depth_in)
        self.pool5 = GlobalPool()
        self.logits = Dense(depth_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images `(N, 3, H, W)` -> pooled features `(N, 2048)`."""
        x = self.pool1(self.conv1(x))
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.pool5(self.postnorm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.forward_features(x))
