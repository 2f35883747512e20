"""One name per model, derived once from its SPEC and used by every command as its key in the store."""

from __future__ import annotations

import re
from collections.abc import Sequence

from featswap.errors import SpecError

#: A model name: letters, digits and `. _ + -`, starting with a letter or digit, at most 64 characters (a safe
#: zarr key, and two names and a solver still fit in a file name of a map), without `__` (the separator of
#: map file names, `SOURCE__to__TARGET__SOLVER`) and other than `zarr.json` (zarr's own metadata file).
NAME = re.compile(r"(?!.*__)(?!zarr\.json$)[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def check_name(name: str, option: str = "--name", what: str = "model name", example: str = "resnet50-seed1") -> str:
    """`name` if it is a valid model (or collection) name, else a SpecError saying which characters are allowed."""
    if not NAME.fullmatch(name):
        raise SpecError(
            f"{option} {name!r} is not a usable {what}: use letters, digits and . _ + - (starting with a letter "
            f"or digit, at most 64 characters, no double underscore, not zarr.json), e.g. {example}."
        )
    return name


def model_name(spec: str) -> str:
    """The name of the model a SPEC describes: the function of `path/file.py:function`, the model of
    `prefix:NAME` of a family (`timm:`, `torchvision:`, `tfslim:`...), the last part of `hf:DIR_OR_NAME`,
    `ARCH[.TAG]` of `openclip:ARCH[:TAG]`, the SPEC itself for built-in models."""
    kind, _, rest = spec.partition(":")
    if ".py:" in spec:
        base = spec.rpartition(":")[2]
    elif kind == "hf":  # a directory's or hub model's last part: hf:google/vit-base-patch16-224 -> vit-base-patch16-224
        base = rest.rstrip("/").rpartition("/")[2]
    elif kind == "openclip":  # openclip:ViT-B-32:openai -> ViT-B-32.openai
        base = rest.replace(":", ".")
    elif rest and kind.isidentifier():
        base = rest
    else:
        base = spec
    if not NAME.fullmatch(base):
        raise SpecError(
            f"Cannot name a model after {spec!r}; give it a name with --name (letters, digits, . _ + -, at most 64 "
            "characters, no double underscore)."
        )
    return base


def unique_names(specs: Sequence[str], names: Sequence[str | None] = ()) -> list[str]:
    """A name per SPEC: the given name where there is one, else `model_name(spec)`, suffixed `-2`, `-3`, ...
    when it repeats an earlier one (two seeds of one architecture, say)."""
    given = list(names) + [None] * (len(specs) - len(names))
    result: list[str] = []
    for spec, name in zip(specs, given, strict=True):
        base = model_name(spec) if name is None else check_name(name)
        candidate, k = base, 2
        while candidate in result:
            candidate, k = f"{base}-{k}", k + 1
        result.append(candidate)
    return result
