"""`tfslim:ARCH`: `resnet_v2_50`, `resnet_v2_101`, `resnet_v2_152`, `resnet_v2_200`, `inception_v3`, `inception_v4`,
`inception_resnet_v2`.

Random weights unless `--weights` gives Google's checkpoint (TF V1 file or V2 prefix, read with the `tf` extra)
or a file `featswap convert` wrote (safetensors, read without TensorFlow). 1,001 outputs, background first
(head offset 1); preprocessing `inception_preprocessing.preprocess_for_eval` at 299 x 299 for every network,
as Google's checkpoints were evaluated (TF-slim's README for the ResNet-v2 checkpoints: "Inception
pre-processing and input image size of 299").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from featswap.backbones.checkpoints import load_into
from featswap.backbones.sources.family import Built, Family, FeatureFn, register
from featswap.backbones.sources.tfslim.inception_resnet_v2 import InceptionResnetV2
from featswap.backbones.sources.tfslim.inception_v3 import InceptionV3
from featswap.backbones.sources.tfslim.inception_v4 import InceptionV4
from featswap.backbones.sources.tfslim.resnet_v2 import UNITS, ResNetV2
from featswap.errors import ModelError, SpecError, closest

#: TF-slim's ImageNet outputs: background, then the 1,000 classes.
OUTPUTS = 1001
EVAL_SIZE = 299


def resnet_variable(depth: int) -> Callable[[str], str]:
    """State-dict key -> TF variable: `block1.unit_1.conv1.weights` -> `resnet_v2_50/block1/unit_1/bottleneck_v2/
    conv1/weights`."""

    def name(key: str) -> str:
        parts = key.split(".")
        if parts[0].startswith("block") and len(parts) > 2:
            parts.insert(2, "bottleneck_v2")
        return "/".join([f"resnet_v2_{depth}", *parts])

    return name


def inception_variable(scope: str, classifier: str) -> Callable[[str], str]:
    """State-dict key -> TF variable under `scope`: `Mixed_5b.Branch_0.Conv2d_0a_1x1.weights` ->
    `{scope}/Mixed_5b/Branch_0/Conv2d_0a_1x1/weights`; the classifier `Logits.weights` -> `{scope}/Logits/
    {classifier}/weights` (`Logits` for Inception-v4 and Inception-ResNet-v2, Inception-v3's 1x1 convolution
    `Conv2d_1c_1x1`)."""

    def name(key: str) -> str:
        parts = key.split(".")
        if parts[0] == "Logits":
            parts.insert(1, classifier)
        return "/".join([scope, *parts])

    return name


inception_v3_variable = inception_variable("InceptionV3", "Conv2d_1c_1x1")
inception_v4_variable = inception_variable("InceptionV4", "Logits")
inception_resnet_v2_variable = inception_variable("InceptionResnetV2", "Logits")


def resnet(depth: int) -> Callable[[], nn.Module]:
    return lambda: ResNetV2(depth, OUTPUTS)


ARCHITECTURES: dict[str, tuple[Callable[[], nn.Module], Callable[[str], str]]] = {
    **{f"resnet_v2_{d}": (resnet(d), resnet_variable(d)) for d in UNITS},
    "inception_v3": (lambda: InceptionV3(OUTPUTS), inception_v3_variable),
    "inception_v4": (lambda: InceptionV4(OUTPUTS), inception_v4_variable),
    "inception_resnet_v2": (lambda: InceptionResnetV2(OUTPUTS), inception_resnet_v2_variable),
}


def data_config() -> dict[str, Any]:
    """`inception_preprocessing.preprocess_for_eval` at 299 x 299 (central fraction 0.875)."""
    return {
        "input_size": (3, EVAL_SIZE, EVAL_SIZE),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "interpolation": "bilinear",
        "crop_pct": 0.875,
        "pipeline": "tf-inception",
    }


class TfSlimFamily(Family):
    prefix = "tfslim"
    description = "TF-slim's ImageNet networks (Google's checkpoints with --weights; TF reading: featswap[tf])"
    example = "tfslim:resnet_v2_152"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        if arg not in ARCHITECTURES:
            known = list(ARCHITECTURES)
            raise SpecError(f"tfslim has no network {arg!r}; it has {', '.join(known)}.{closest(arg, known)}")
        if pretrained:
            raise ModelError(
                f"tfslim:{arg} has no weights featswap can download: give Google's checkpoint (or a file featswap "
                f"convert wrote) with --weights CKPT, or use --no-pretrained for random weights."
            )
        factory, variable = ARCHITECTURES[arg]
        module = factory()
        return Built(module, data_config(), head_offset=1, notes={"tf_variable": variable, "spec": f"tfslim:{arg}"})

    def load_weights(self, built: Built, path: Path) -> str:
        """Google's TF checkpoint (through TensorFlow), or a converted safetensors / PyTorch file."""
        from featswap.backbones.sources.tfslim.checkpoint import find_checkpoint, load_checkpoint

        files = find_checkpoint(path)
        if files is None:
            if path.is_file() or path.suffix in (".safetensors", ".pt", ".pth", ".bin"):
                return load_into(built.module, path)
            raise ModelError(
                f"No checkpoint at {path}: neither a file nor a TF checkpoint prefix ({path}.index). Give the "
                "checkpoint as unpacked from Google's tarball (e.g. resnet_v2_152.ckpt, or model.ckpt for "
                "model.ckpt.index + model.ckpt.data-*), or a file featswap convert wrote."
            )
        return load_checkpoint(built.module, files, built.notes["spec"], built.notes["tf_variable"])

    def split(self, built: Built, name: str) -> tuple[FeatureFn, nn.Module]:
        module: Any = built.module
        classifier = getattr(module, "logits", None) or module.Logits  # ResNet-v2's `logits`, Inception's `Logits`
        return module.forward_features, classifier.as_linear()


TFSLIM = register(TfSlimFamily())
