"""Two small networks of the two families the paper compares, in plain `torch.nn`.

Both expose timm's split: `forward_features(x) -> (N, D)` pooled penultimate features and `head`, one
`nn.Linear(D, num_classes)`; `forward(x) = head(forward_features(x))`. Each carries a timm-style
`data_config` that says how its inputs are preprocessed, and the two differ on purpose (as Inception-v4
and ResNet-v2 do): the residual network reads 8x8 inputs, the Inception network 16x16 upsampled ones.
"""

from __future__ import annotations

import torch
from torch import nn


class PreActBlock(nn.Module):
    """ResNet-v2 block: BN-ReLU-conv, BN-ReLU-conv, added to an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        short = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + short


class TinyResNet(nn.Module):
    """Pre-activation residual network for 1x8x8 inputs: features (N, 128)."""

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.blocks = nn.Sequential(
            PreActBlock(width, width, 1),
            PreActBlock(width, 2 * width, 2),
            PreActBlock(2 * width, 4 * width, 2),
        )
        self.norm = nn.BatchNorm2d(4 * width)  # ResNet-v2 ends with BN-ReLU before pooling
        self.num_features = 4 * width
        self.head = nn.Linear(self.num_features, num_classes)
        self.data_config = {
            "input_size": (1, 8, 8),
            "mean": (0.5,),
            "std": (0.5,),
            "interpolation": "bilinear",
        }

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return torch.relu(self.norm(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1) -> None:
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        pad = (k[0] // 2, k[1] // 2)
        super().__init__(nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class InceptionModule(nn.Module):
    """Parallel 1x1, 3x3, factorised 1x3 -> 3x1, and pool -> 1x1 branches, concatenated on channels."""

    def __init__(self, cin: int, branch: int) -> None:
        super().__init__()
        self.b1 = ConvBNReLU(cin, branch, 1)
        self.b3 = nn.Sequential(ConvBNReLU(cin, branch, 1), ConvBNReLU(branch, branch, 3))
        self.bf = nn.Sequential(
            ConvBNReLU(cin, branch, 1), ConvBNReLU(branch, branch, (1, 3)), ConvBNReLU(branch, branch, (3, 1))
        )
        self.bp = nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), ConvBNReLU(cin, branch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.bf(x), self.bp(x)], dim=1)


class TinyInception(nn.Module):
    """Inception-style network for 1x16x16 inputs: features (N, 96)."""

    def __init__(self, num_classes: int = 10, branch: int = 24) -> None:
        super().__init__()
        self.stem = ConvBNReLU(1, 32, 3, stride=2)  # 16x16 -> 8x8
        self.mixed1 = InceptionModule(32, 16)  # 64 channels
        self.reduce = nn.MaxPool2d(2)  # 8x8 -> 4x4
        self.mixed2 = InceptionModule(64, branch)  # 4 * branch channels
        self.num_features = 4 * branch
        self.head = nn.Linear(self.num_features, num_classes)
        self.data_config = {
            "input_size": (1, 16, 16),
            "mean": (0.25,),
            "std": (0.35,),
            "interpolation": "bilinear",
        }

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mixed2(self.reduce(self.mixed1(self.stem(x))))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
