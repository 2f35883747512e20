"""`torchvision:NAME`: any torchvision classification model; the head is its last `nn.Linear`."""

from __future__ import annotations

from featswap.backbones.sources.family import Built, Family, published_weights_missing, register
from featswap.errors import ModelError, SpecError, closest

#: torchvision's evaluation preprocessing of ImageNet classifiers (resize 256, centre crop 224).
IMAGENET_CONFIG = {"input_size": (3, 224, 224), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                   "interpolation": "bilinear", "crop_pct": 224 / 256}  # fmt: skip


class TorchvisionFamily(Family):
    prefix = "torchvision"
    description = "any torchvision classification model (published weights with --pretrained)"
    example = "torchvision:resnet18"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        from torchvision.models import get_model, get_model_weights, list_models

        if arg not in list_models():
            raise SpecError(f"torchvision has no model {arg!r}.{closest(arg, list_models())}")
        if not pretrained:
            return Built(get_model(arg, weights=None, num_classes=num_classes), dict(IMAGENET_CONFIG))
        weights = get_model_weights(arg).DEFAULT
        try:
            module = get_model(arg, weights=weights)
        except (RuntimeError, OSError, ValueError) as err:
            raise ModelError(published_weights_missing(f"torchvision:{arg}", err)) from err
        t = weights.transforms()
        crop, resize = t.crop_size[0], t.resize_size[0]
        config = {"input_size": (3, crop, crop), "mean": tuple(t.mean), "std": tuple(t.std),
                  "interpolation": t.interpolation.value, "crop_pct": crop / resize}  # fmt: skip
        return Built(module, config)


TORCHVISION = register(TorchvisionFamily())
