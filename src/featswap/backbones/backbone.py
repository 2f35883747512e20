"""A network split into features and head: `logits = head(features(x))`, the paper's `C(F(x))`.

Every source of networks (the tiny built-ins, timm, torchvision, a user's factory) is wrapped as a
`Backbone`; featswap never looks inside a network except through this split, and refuses a network whose
head applied to its features does not reproduce its own logits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from featswap.backbones.forward_errors import network_runs
from featswap.backbones.preprocessing import DataConfig
from featswap.errors import ModelError
from featswap.heads.kinds import HeadKind

#: Head logits may differ from the network's own by this much, relative to the logits' scale, before the
#: split is refused: float32 summation order differs between one fused forward and two separate calls.
LOGITS_RTOL = 1e-4


@dataclass
class Backbone:
    """A network as `features(x) -> (N, D)` and an affine head `(W (C, D), b (C,))`.

    `forward` is the network's own `x -> logits (N, C)`, used only to check the split.
    """

    name: str
    spec: str
    module: nn.Module
    features_fn: Callable[[torch.Tensor], torch.Tensor]
    head_weight: torch.Tensor  # (C, D)
    head_bias: torch.Tensor  # (C,)
    data_config: DataConfig
    forward: Callable[[torch.Tensor], torch.Tensor]
    weights_sha256: str | None = None
    logits_max_abs_diff: float | None = field(default=None)
    #: Leading head outputs that are not classes (TF-slim's "background" logit: 1); `head_numpy` leaves them out.
    head_offset: int = 0
    #: Which kind of head: the network's own, a zero-shot text head, or a probe (then `head_weight` is zeros of the
    #: classes' shape until featswap trains it on the stored fitting features).
    head_kind: HeadKind = field(default_factory=HeadKind)
    #: Which features, when not what the head consumes (`--features`: pooled, cls, mean-tokens or a layer's name).
    features_choice: str | None = None

    @property
    def feature_dim(self) -> int:
        return int(self.head_weight.shape[1])

    @property
    def head_outputs(self) -> int:
        """Every output of the network's head, classes or not."""
        return int(self.head_weight.shape[0])

    @property
    def num_classes(self) -> int:
        """The head's class outputs: all but the first `head_offset`."""
        return self.head_outputs - self.head_offset

    def transform(self) -> Callable[[Any], torch.Tensor]:
        return self.data_config.transform()

    def tensor_transform(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """`transform` for RGB `(3, H, W)` uint8 tensors already decoded (on any device)."""
        return self.data_config.tensor_transform()

    @torch.inference_mode()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate pooled features `(N, D)` float32 for preprocessed images `x` `(N, C, H, W)`."""
        with network_runs(self.name, tuple(x.shape)):
            out = self.features_fn(x)
        if out.ndim != 2 or out.shape[1] != self.feature_dim:
            raise ModelError(
                f"{self.name}: features have shape {tuple(out.shape)}, expected (N, {self.feature_dim}). "
                "The feature function must return pooled penultimate features."
            )
        return out.float()

    def state_bytes(self) -> int:
        """Bytes of the network's parameters and buffers."""
        tensors = [*self.module.parameters(), *self.module.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def parameters_digest(self) -> str:
        """sha256 of the network's state (every parameter and buffer, by name): equal digests, same network."""
        digest = hashlib.sha256()
        for key, value in self.module.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def head_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """The head's class rows as float32 arrays `(W (C, D), b (C,))`: outputs `head_offset` onwards."""
        return (
            self.head_weight.detach().cpu().float().numpy()[self.head_offset :],
            self.head_bias.detach().cpu().float().numpy()[self.head_offset :],
        )

    @torch.inference_mode()
    def check_logits(self, x: torch.Tensor) -> float | None:
        """Check on a batch that `head(features(x))` equals the network's logits; returns the max |diff|.

        Raises `ModelError` when the difference exceeds `LOGITS_RTOL` of the logits' scale, i.e. when
        the head is not the network's final affine map. A probe head (trained later, on the stored features) has
        no logits to check: the features are checked for shape and finiteness, and None returned.
        """
        if self.head_kind.kind == "probe":
            feats = self.features(x)
            if not bool(torch.isfinite(feats).all()):
                raise ModelError(
                    f"{self.name}: the network's features are NaN or inf on the first images. Check its weights and "
                    "its preprocessing (--data-config)."
                )
            return None
        with network_runs(self.name, tuple(x.shape)):
            logits = self.forward(x).float()
        feats = self.features(x)
        if logits.shape != (x.shape[0], self.head_outputs):
            raise ModelError(
                f"{self.name}: the network outputs shape {tuple(logits.shape)} but its head has "
                f"{self.head_outputs} outputs; the head is not the network's final layer."
            )
        if not (bool(torch.isfinite(logits).all()) and bool(torch.isfinite(feats).all())):
            raise ModelError(
                f"{self.name}: the network outputs NaN or inf on the first images, so it cannot be tested. Check its "
                "weights (a damaged or diverged checkpoint) and its preprocessing (--data-config)."
            )
        rebuilt = feats @ self.head_weight.float().to(feats.device).T + self.head_bias.float().to(feats.device)
        diff = float((rebuilt - logits.to(feats.device)).abs().max())
        scale = max(1.0, float(logits.abs().max()))
        if not np.isfinite(diff) or diff > LOGITS_RTOL * scale:
            raise ModelError(
                f"{self.name}: head(features(x)) differs from the network's own logits by up to {diff:.3g} "
                f"(logits up to {scale:.3g}). The head is not the final affine map on these features, "
                "so swapping heads would not test the network; check which layer is the classifier."
            )
        self.logits_max_abs_diff = diff
        return diff


def split_module(
    name: str,
    spec: str,
    module: nn.Module,
    data_config: DataConfig,
    features_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    head: nn.Module | None = None,
) -> Backbone:
    """Wrap a module with timm's split (`forward_features` pooled, and a linear `head`) as a Backbone."""
    module.eval()
    head = head if head is not None else getattr(module, "head", None)
    if not isinstance(head, nn.Linear):
        raise ModelError(
            f"{name}: no linear head found (got {type(head).__name__}); featswap needs the final layer "
            "to be one nn.Linear on pooled features."
        )
    if features_fn is None:
        features_fn = module.forward_features  # type: ignore[assignment]
    bias = head.bias if head.bias is not None else torch.zeros(head.out_features)
    return Backbone(
        name=name,
        spec=spec,
        module=module,
        features_fn=features_fn,  # type: ignore[arg-type]
        head_weight=head.weight.detach(),
        head_bias=bias.detach(),
        data_config=data_config,
        forward=module,
    )
