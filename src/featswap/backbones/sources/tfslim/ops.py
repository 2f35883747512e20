"""TF-slim's layers as plain `torch.nn` modules whose parameters carry TF-slim's variable names.

A parameter's dotted path is the TF variable's name relative to the network's scope with `/` read as `.`
(`block1.unit_1.conv1.BatchNorm.moving_mean` <- `resnet_v2_50/block1/unit_1/bottleneck_v2/conv1/BatchNorm/
moving_mean`), so mapping a checkpoint is renaming plus one transpose per kernel (`checkpoint.py`).
Padding follows TF: `SAME` pads `(total // 2, total - total // 2)` from the input's size, which is asymmetric
when the total is odd (a stride-2 layer on an even size); `VALID` pads nothing; `conv2d_same` pads explicitly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's `SAME` padding of one spatial axis of `size`: (before, after); the extra pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def fixed_pads(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """`resnet_utils.conv2d_same`'s explicit padding for a strided convolution, independent of the input size."""
    total = (kernel - 1) * dilation
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    """`x (N, C, H, W)` padded as TF's `SAME` pads it before a window of `kernel` at `stride`."""
    top, bottom = same_pads(x.shape[2], kernel[0], stride[0])
    left, right = same_pads(x.shape[3], kernel[1], stride[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


class BatchNorm(nn.Module):
    """`slim.batch_norm` in inference: `gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta`, with
    `gamma` only where TF-slim has it (`scale=True`: ResNet-v2; Inception's have none), ReLU when `relu`."""

    def __init__(self, channels: int, epsilon: float, scale: bool, relu: bool = False) -> None:
        super().__init__()
        self.epsilon, self.relu = epsilon, relu
        self.gamma = nn.Parameter(torch.ones(channels)) if scale else None
        self.beta = nn.Parameter(torch.zeros(channels))
        self.moving_mean: torch.Tensor
        self.moving_variance: torch.Tensor
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta, False, 0.0, self.epsilon)
        return F.relu(out) if self.relu else out


class Conv(nn.Module):
    """`slim.conv2d`: a convolution, then `BatchNorm` and ReLU where TF-slim's arg scope puts them, else biases.

    `weights` is `(out, in, kh, kw)` (TF keeps `(kh, kw, in, out)`); `padding` is "SAME", "VALID" or "FIXED"
    (`conv2d_same`'s explicit pads, then VALID).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: str = "SAME",
        batch_norm: BatchNorm | None = None,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = (stride, stride)
        self.padding = padding
        self.relu = relu
        self.weights = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel))
        nn.init.kaiming_normal_(self.weights, nonlinearity="relu")
        self.biases = nn.Parameter(torch.zeros(out_channels)) if batch_norm is None else None
        self.BatchNorm = batch_norm
        self.symmetric = self._symmetric_padding()

    def _symmetric_padding(self) -> tuple[int, int] | None:
        """The padding when it does not depend on the input's size (stride 1 with odd kernels under SAME)."""
        if self.padding == "VALID":
            return (0, 0)
        if self.padding == "SAME" and self.stride == (1, 1) and all(k % 2 == 1 for k in self.kernel):
            return (self.kernel[0] // 2, self.kernel[1] // 2)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.symmetric is not None:
            out = F.conv2d(x, self.weights, self.biases, self.stride, self.symmetric)
        else:
            if self.padding == "FIXED":
                (top, bottom), (left, right) = fixed_pads(self.kernel[0]), fixed_pads(self.kernel[1])
                x = F.pad(x, (left, right, top, bottom))
            else:
                x = pad_same(x, self.kernel, self.stride)
            out = F.conv2d(x, self.weights, self.biases, self.stride)
        if self.BatchNorm is not None:
            out = self.BatchNorm(out)
        return F.relu(out) if self.relu else out


class MaxPool(nn.Module):
    """`slim.max_pool2d`; SAME pads with -inf (TF never takes a padded value as the maximum)."""

    def __init__(self, kernel: int, stride: int, padding: str) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "SAME":
            x = pad_same(x, (self.kernel, self.kernel), (self.stride, self.stride), value=-math.inf)
        return F.max_pool2d(x, self.kernel, self.stride)


class AvgPool(nn.Module):
    """`slim.avg_pool2d`; under SAME TF averages only the pixels inside the image (padding is not counted)."""

    def __init__(self, kernel: int, stride: int, padding: str) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "SAME":
            top, bottom = same_pads(x.shape[2], self.kernel, self.stride)
            left, right = same_pads(x.shape[3], self.kernel, self.stride)
            if top == bottom and left == right:
                return F.avg_pool2d(x, self.kernel, self.stride, (top, left), count_include_pad=False)
            ones = torch.ones_like(x[:1, :1])
            total = F.avg_pool2d(F.pad(x, (left, right, top, bottom)), self.kernel, self.stride, divisor_override=1)
            count = F.avg_pool2d(F.pad(ones, (left, right, top, bottom)), self.kernel, self.stride, divisor_override=1)
            return total / count
        return F.avg_pool2d(x, self.kernel, self.stride)


class GlobalPool(nn.Module):
    """The mean over all positions: `(N, C, H, W) -> (N, C)` (`tf.reduce_mean(net, [1, 2])`, or Inception's
    VALID average pool over the whole map)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Dense(nn.Module):
    """A classifier `(N, D) -> (N, C)`: `slim.fully_connected`, or ResNet-v2's 1x1 `logits` convolution on the
    pooled map. `weights` is `(C, D)`."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.normal_(self.weights, std=in_features**-0.5)
        self.biases = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weights, self.biases)

    def as_linear(self) -> nn.Linear:
        """The same map as an `nn.Linear` sharing these tensors (featswap's head type)."""
        linear = nn.Linear(self.weights.shape[1], self.weights.shape[0])
        linear.weight = self.weights
        linear.bias = self.biases
        return linear


class EndPointNetwork(nn.Module):
    """A network whose children are TF-slim's end points in order, the last one `Logits` (a `Dense` on the pooled
    features): Inception-v3, Inception-v4, Inception-ResNet-v2."""

    Logits: Dense

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images `(N, 3, H, W)` -> pooled features `(N, D)` (the input of dropout, i.e. of the logits)."""
        for name, module in self.named_children():
            if name == "Logits":
                break
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images `(N, 3, H, W)` -> logits `(N, C)` (1,001 for Google's checkpoints: background first)."""
        return self.Logits(self.forward_features(x))
