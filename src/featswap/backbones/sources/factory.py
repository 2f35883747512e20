"""`path/to/file.py:function`: a user's factory returning an `nn.Module`; the head is its last `nn.Linear`
(or `head`, with `forward_features`, as in timm); preprocessing from its `data_config` attribute or the caller."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from featswap.backbones.sources.family import Built, Family, summary
from featswap.errors import ModelError, SpecError


def is_factory_spec(spec: str) -> bool:
    """`path/to/file.py:function`."""
    return ".py:" in spec


class FactoryFamily(Family):
    description = "a user's factory function in a Python file"
    example = "models.py:resnet20"

    def build(self, arg: str, *, num_classes: int, pretrained: bool) -> Built:
        """Call `function` of `path/to/file.py` (`arg` is the whole SPEC `path/to/file.py:function`)."""
        module = call_factory(arg)
        config = getattr(module, "data_config", None)
        return Built(module, dict(config) if isinstance(config, Mapping) else None)


def call_factory(spec: str) -> nn.Module:
    path_text, _, function = spec.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"Model factory file {path_text!r} does not exist (spec {spec!r}, form file.py:function).")
    loader_spec = importlib.util.spec_from_file_location(f"featswap_user_{path.stem}", path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"{path} is not a Python module featswap can import; the factory file must end in .py.")
    user = importlib.util.module_from_spec(loader_spec)
    try:
        loader_spec.loader.exec_module(user)
    except (Exception, SystemExit) as err:
        raise ModelError(
            f"Importing {path} failed: {summary(err)}. Fix the module so that `python {path}` runs."
        ) from err
    factory = getattr(user, function, None)
    if not callable(factory):
        raise SpecError(f"{path} has no function {function!r}.")
    try:
        module = factory()
    except TypeError as err:
        raise ModelError(
            f"Calling {function}() from {path} failed: {summary(err)}. featswap calls the factory with no "
            f"arguments; wrap the constructor, e.g. `def {function}_default(): return {function}(...)`."
        ) from err
    except (Exception, SystemExit) as err:
        raise ModelError(f"Calling {function}() from {path} failed: {summary(err)}.") from err
    if not isinstance(module, nn.Module):
        raise ModelError(f"{spec} returned {type(module).__name__}, not a torch.nn.Module.")
    return module


FACTORY_FAMILY = FactoryFamily()
