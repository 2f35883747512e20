"""TF-slim's Inception-v4 (`nets/inception_v4.py`, Szegedy et al. 2017) as `torch.nn`.

Every convolution is followed by batch norm without gamma (`scale=False`, epsilon 1e-3) and ReLU, and has no
biases; every stride-2 layer is VALID (so no asymmetric padding at 299 px); the 3x3 average pools of the
Inception blocks are SAME and do not count padding; the head is `Logits/AvgPool_1a` (the mean over the 8x8
map: the 1536 features, before dropout) then `Logits/Logits` with 1,001 outputs. `AuxLogits` is training-only
and not built (its checkpoint variables are accepted and left unused).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from featswap.backbones.sources.tfslim.ops import AvgPool, BatchNorm, Conv, Dense, EndPointNetwork, GlobalPool, MaxPool

#: `inception_utils.inception_arg_scope`'s batch norm epsilon.
EPSILON = 1e-3


def conv(c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1, padding: str = "SAME") -> Conv:
    return Conv(c_in, c_out, kernel, stride, padding, batch_norm=BatchNorm(c_out, EPSILON, scale=False))


class Branches(nn.Module):
    """A mixed block: `Branch_0`, `Branch_1`, ... run on the same input, concatenated along channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


class Split(nn.Module):
    """Inception-C's forked tail: `head` once, then the two convolutions in `tails` on its output, concatenated."""

    def __init__(self, head: Sequence[tuple[str, nn.Module]], tails: Sequence[tuple[str, nn.Module]]) -> None:
        super().__init__()
        for name, module in head:
            self.add_module(name, module)
        self.first = [name for name, _ in head]
        for name, module in tails:
            self.add_module(name, module)
        self.tails = [name for name, _ in tails]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.first:
            x = self.get_submodule(name)(x)
        return torch.cat([self.get_submodule(name)(x) for name in self.tails], dim=1)


def branch(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def mixed(*branches: nn.Module) -> Branches:
    block = Branches()
    for index, module in enumerate(branches):
        block.add_module(f"Branch_{index}", module)
    return block


def inception_a(c_in: int) -> Branches:
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 96, 1))),
        branch(("Conv2d_0a_1x1", conv(c_in, 64, 1)), ("Conv2d_0b_3x3", conv(64, 96, 3))),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, 64, 1)), ("Conv2d_0b_3x3", conv(64, 96, 3)), ("Conv2d_0c_3x3", conv(96, 96, 3))
        ),
        branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(c_in, 96, 1))),
    )


def reduction_a(c_in: int) -> Branches:
    return mixed(
        branch(("Conv2d_1a_3x3", conv(c_in, 384, 3, 2, "VALID"))),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, 192, 1)),
            ("Conv2d_0b_3x3", conv(192, 224, 3)),
            ("Conv2d_1a_3x3", conv(224, 256, 3, 2, "VALID")),
        ),
        branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID"))),
    )


def inception_b(c_in: int) -> Branches:
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 384, 1))),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, 192, 1)),
            ("Conv2d_0b_1x7", conv(192, 224, (1, 7))),
            ("Conv2d_0c_7x1", conv(224, 256, (7, 1))),
        ),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, 192, 1)),
            ("Conv2d_0b_7x1", conv(192, 192, (7, 1))),
            ("Conv2d_0c_1x7", conv(192, 224, (1, 7))),
            ("Conv2d_0d_7x1", conv(224, 224, (7, 1))),
            ("Conv2d_0e_1x7", conv(224, 256, (1, 7))),
        ),
        branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(c_in, 128, 1))),
    )


def reduction_b(c_in: int) -> Branches:
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 192, 1)), ("Conv2d_1a_3x3", conv(192, 192, 3, 2, "VALID"))),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, 256, 1)),
            ("Conv2d_0b_1x7", conv(256, 256, (1, 7))),
            ("Conv2d_0c_7x1", conv(256, 320, (7, 1))),
            ("Conv2d_1a_3x3", conv(320, 320, 3, 2, "VALID")),
        ),
        branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID"))),
    )


def inception_c(c_in: int) -> Branches:
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 256, 1))),
        Split(
            [("Conv2d_0a_1x1", conv(c_in, 384, 1))],
            [("Conv2d_0b_1x3", conv(384, 256, (1, 3))), ("Conv2d_0c_3x1", conv(384, 256, (3, 1)))],
        ),
        Split(
            [
                ("Conv2d_0a_1x1", conv(c_in, 384, 1)),
                ("Conv2d_0b_3x1", conv(384, 448, (3, 1))),
                ("Conv2d_0c_1x3", conv(448, 512, (1, 3))),
            ],
            [("Conv2d_0d_1x3", conv(512, 256, (1, 3))), ("Conv2d_0e_3x1", conv(512, 256, (3, 1)))],
        ),
        branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(c_in, 256, 1))),
    )


class InceptionV4(EndPointNetwork):
    """`InceptionV4`: images `(N, 3, 299, 299)` -> logits `(N, 1001)`; `forward_features` gives the 1536 pooled
    features. Module names are TF-slim's end points (`Conv2d_1a_3x3`, `Mixed_3a` ... `Mixed_7d`)."""

    scope = "InceptionV4"

    def __init__(self, num_classes: int = 1001) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = conv(3, 32, 3, 2, "VALID")
        self.Conv2d_2a_3x3 = conv(32, 32, 3, 1, "VALID")
        self.Conv2d_2b_3x3 = conv(32, 64, 3)
        self.Mixed_3a = mixed(
            branch(("MaxPool_0a_3x3", MaxPool(3, 2, "VALID"))), branch(("Conv2d_0a_3x3", conv(64, 96, 3, 2, "VALID")))
        )
        self.Mixed_4a = mixed(
            branch(("Conv2d_0a_1x1", conv(160, 64, 1)), ("Conv2d_1a_3x3", conv(64, 96, 3, 1, "VALID"))),
            branch(
                ("Conv2d_0a_1x1", conv(160, 64, 1)),
                ("Conv2d_0b_1x7", conv(64, 64, (1, 7))),
                ("Conv2d_0c_7x1", conv(64, 64, (7, 1))),
                ("Conv2d_1a_3x3", conv(64, 96, 3, 1, "VALID")),
            ),
        )
        self.Mixed_5a = mixed(
            branch(("Conv2d_1a_3x3", conv(192, 192, 3, 2, "VALID"))), branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID")))
        )
        for letter in "bcde":
            self.add_module(f"Mixed_5{letter}", inception_a(384))
        self.Mixed_6a = reduction_a(384)
        for letter in "bcdefgh":
            self.add_module(f"Mixed_6{letter}", inception_b(1024))
        self.Mixed_7a = reduction_b(1024)
        for letter in "bcd":
            self.add_module(f"Mixed_7{letter}", inception_c(1536))
        self.AvgPool_1a = GlobalPool()
        self.Logits = Dense(1536, num_classes)
