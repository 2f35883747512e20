"""`timm:NAME`: any timm model; features from `forward_head(pre_logits=True)`, head `get_classifier()`."""

from __future__ import annotations

from typing import Any

from featswap.backbones.sources.family import Built, Family, published_weights_missing, register, summary
from featswap.errors import ModelError, SpecError, closest


class TimmFamily(Family):
    prefix = "timm"
    description = "any timm model (published weights from timm's download cache with --pretrained)"
    example = "timm:resnet50"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        import timm

        if arg.partition(".")[0] not in timm.list_models(arg.partition(".")[0]):
            raise SpecError(f"timm has no model {arg!r}.{closest(arg, timm.list_models())}")
        try:
            options: dict[str, Any] = {} if pretrained else {"num_classes": num_classes}
            module = timm.create_model(arg, pretrained=pretrained, **options)
        except (RuntimeError, OSError, ValueError) as err:
            if not pretrained:
                raise SpecError(f"timm cannot build {arg!r}: {summary(err)}") from err
            raise ModelError(published_weights_missing(f"timm:{arg}", err)) from err
        dynamic: Any = module
        return Built(
            module,
            dict(timm.data.resolve_data_config({}, model=module)),
            features=lambda x: dynamic.forward_head(dynamic.forward_features(x), pre_logits=True),
            head=dynamic.get_classifier(),
        )


TIMM = register(TimmFamily())
