"""TF-slim's Inception-v3 (`nets/inception_v3.py`, Szegedy et al. 2016) as `torch.nn`.

As `inception_v3_arg_scope` builds it: every convolution is followed by batch norm without gamma (`scale=False`,
epsilon 1e-3) and ReLU, and has no biases; the stem is VALID but for `Conv2d_2b_3x3`, the Inception blocks SAME
(stride 1, so symmetric), and every stride-2 layer VALID, so no padding is asymmetric at 299 px. The 3x3 average
pools of the blocks are SAME and do not count padding. The head is `Logits/AvgPool_1a_8x8` (see `LogitsPool`:
the 2048 features, before dropout) then the 1x1 convolution `Logits/Conv2d_1c_1x1`, with biases and 1,001
outputs. `AuxLogits` is training-only and not built (its checkpoint variables are accepted and left unused).

TF-slim's scope names are kept as they are, including their slips (`Mixed_5c/Branch_1/Conv_1_0c_5x5`, a 3x3
convolution named `Mixed_6a/Branch_0/Conv2d_1a_1x1`, `Mixed_7b/Branch_1/Conv2d_0b_3x1`): Google's checkpoint
uses them.
"""

from __future__ import annotations

import torch
from torch import nn

from featswap.backbones.sources.tfslim.inception_v4 import Branches, Split, branch, conv, mixed
from featswap.backbones.sources.tfslim.ops import AvgPool, Dense, EndPointNetwork, MaxPool


def inception_a(c_in: int, pool_depth: int, branch_1: tuple[str, str]) -> Branches:
    """`Mixed_5b` ... `Mixed_5d`; `branch_1` names Branch_1's two convolutions (TF-slim's `Mixed_5c` differs)."""
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 64, 1))),
        branch((branch_1[0], conv(c_in, 48, 1)), (branch_1[1], conv(48, 64, 5))),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, 64, 1)), ("Conv2d_0b_3x3", conv(64, 96, 3)), ("Conv2d_0c_3x3", conv(96, 96, 3))
        ),
        branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(c_in, pool_depth, 1))),
    )


def inception_b(c_in: int, depth: int) -> Branches:
    """`Mixed_6b` ... `Mixed_6e`: factorised 7x7 convolutions of `depth` channels inside (128, 160, 160, 192)."""
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 192, 1))),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, depth, 1)),
            ("Conv2d_0b_1x7", conv(depth, depth, (1, 7))),
            ("Conv2d_0c_7x1", conv(depth, 192, (7, 1))),
        ),
        branch(
            ("Conv2d_0a_1x1", conv(c_in, depth, 1)),
            ("Conv2d_0b_7x1", conv(depth, depth, (7, 1))),
            ("Conv2d_0c_1x7", conv(depth, depth, (1, 7))),
            ("Conv2d_0d_7x1", conv(depth, depth, (7, 1))),
            ("Conv2d_0e_1x7", conv(depth, 192, (1, 7))),
        ),
        branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(c_in, 192, 1))),
    )


def inception_c(c_in: int, tail_3x1: str) -> Branches:
    """`Mixed_7b`, `Mixed_7c`: forked 1x3 / 3x1 tails (Branch_1's 3x1 is `tail_3x1`: TF-slim names it
    `Conv2d_0b_3x1` in `Mixed_7b` and `Conv2d_0c_3x1` in `Mixed_7c`)."""
    return mixed(
        branch(("Conv2d_0a_1x1", conv(c_in, 320, 1))),
        Split(
            [("Conv2d_0a_1x1", conv(c_in, 384, 1))],
            [("Conv2d_0b_1x3", conv(384, 384, (1, 3))), (tail_3x1, conv(384, 384, (3, 1)))],
        ),
        Split(
            [("Conv2d_0a_1x1", conv(c_in, 448, 1)), ("Conv2d_0b_3x3", conv(448, 384, 3))],
            [("Conv2d_0c_1x3", conv(384, 384, (1, 3))), ("Conv2d_0d_3x1", conv(384, 384, (3, 1)))],
        ),
        branch(("AvgPool_0a_3x3", AvgPool(3, 1, "SAME")), ("Conv2d_0b_1x1", conv(c_in, 192, 1))),
    )


class LogitsPool(nn.Module):
    """`Logits/AvgPool_1a_8x8`: `(N, C, H, W) -> (N, C)`.

    TF-slim pools a VALID window of `min(H, 8) x min(W, 8)` at stride 2: at 299 px (an 8x8 map) and below, the
    mean of the whole map. Up to a 9x9 map (inputs up to 362 px) it is one window, the top-left one, which is
    what this takes. Larger maps give TF-slim a map of logits and no vector; there this takes the mean of the
    whole map, as `global_pool=True` of TF-slim's later `inception_v3` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = min(x.shape[2], 8), min(x.shape[3], 8)
        if x.shape[2] - height < 2 and x.shape[3] - width < 2:
            x = x[:, :, :height, :width]
        return x.mean(dim=(2, 3))


class InceptionV3(EndPointNetwork):
    """`InceptionV3`: images `(N, 3, 299, 299)` -> logits `(N, 1001)`; `forward_features` gives the 2048 pooled
    features. Module names are TF-slim's end points (`Conv2d_1a_3x3` ... `MaxPool_5a_3x3`, `Mixed_5b` ...
    `Mixed_7c`)."""

    scope = "InceptionV3"

    def __init__(self, num_classes: int = 1001) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = conv(3, 32, 3, 2, "VALID")
        self.Conv2d_2a_3x3 = conv(32, 32, 3, 1, "VALID")
        self.Conv2d_2b_3x3 = conv(32, 64, 3)
        self.MaxPool_3a_3x3 = MaxPool(3, 2, "VALID")
        self.Conv2d_3b_1x1 = conv(64, 80, 1, 1, "VALID")
        self.Conv2d_4a_3x3 = conv(80, 192, 3, 1, "VALID")
        self.MaxPool_5a_3x3 = MaxPool(3, 2, "VALID")
        self.Mixed_5b = inception_a(192, 32, ("Conv2d_0a_1x1", "Conv2d_0b_5x5"))
        self.Mixed_5c = inception_a(256, 64, ("Conv2d_0b_1x1", "Conv_1_0c_5x5"))
        self.Mixed_5d = inception_a(288, 64, ("Conv2d_0a_1x1", "Conv2d_0b_5x5"))
        self.Mixed_6a = mixed(
            branch(("Conv2d_1a_1x1", conv(288, 384, 3, 2, "VALID"))),
            branch(
                ("Conv2d_0a_1x1", conv(288, 64, 1)),
                ("Conv2d_0b_3x3", conv(64, 96, 3)),
                ("Conv2d_1a_1x1", conv(96, 96, 3, 2, "VALID")),
            ),
            branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID"))),
        )
        for letter, depth in zip("bcde", (128, 160, 160, 192), strict=True):
            self.add_module(f"Mixed_6{letter}", inception_b(768, depth))
        self.Mixed_7a = mixed(
            branch(("Conv2d_0a_1x1", conv(768, 192, 1)), ("Conv2d_1a_3x3", conv(192, 320, 3, 2, "VALID"))),
            branch(
                ("Conv2d_0a_1x1", conv(768, 192, 1)),
                ("Conv2d_0b_1x7", conv(192, 192, (1, 7))),
                ("Conv2d_0c_7x1", conv(192, 192, (7, 1))),
                ("Conv2d_1a_3x3", conv(192, 192, 3, 2, "VALID")),
            ),
            branch(("MaxPool_1a_3x3", MaxPool(3, 2, "VALID"))),
        )
        self.Mixed_7b = inception_c(1280, "Conv2d_0b_3x1")
        self.Mixed_7c = inception_c(2048, "Conv2d_0c_3x1")
        self.AvgPool_1a = LogitsPool()
        self.Logits = Dense(2048, num_classes)
