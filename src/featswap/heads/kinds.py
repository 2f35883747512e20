"""Which kind of head a model's classifier is: the network's own (untouched), a zero-shot text head (CLIP's class
names under prompt templates), or a linear probe featswap trained on the fitting images' features.

`HeadKind` is recorded with each model in the feature store (its identity: a zero-shot head built from other
names or templates is another model) and read back by metrics.json (`models.NAME.head`) and the report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from featswap.errors import StoreError

#: The kinds, and how the report names them.
KINDS = {
    "own": "the network's own head (untouched)",
    "zero-shot": "a zero-shot text head",
    "probe": "a linear probe trained by featswap on the fitting images' features",
}


@dataclass(frozen=True)
class HeadKind:
    """`kind` "own" | "zero-shot" | "probe"; a zero-shot head's `names` (one per class, in order) and `templates`
    (each with one `{}` for the name)."""

    kind: str = "own"
    names: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"head kind {self.kind!r} is not one of {sorted(KINDS)}")

    def identity(self) -> dict[str, Any]:
        """What makes two heads of this kind the same head, for the store's model identity: the kind, and a
        zero-shot head's names and templates (as a sha256, so that the identity stays short)."""
        if self.kind != "zero-shot":
            return {"kind": self.kind}
        text = json.dumps([list(self.names), list(self.templates)], ensure_ascii=False)
        return {"kind": self.kind, "text_sha256": hashlib.sha256(text.encode()).hexdigest()}

    def to_json(self) -> dict[str, Any]:
        """The record metrics.json and the store keep: the identity, and a zero-shot head's names and templates."""
        if self.kind != "zero-shot":
            return self.identity()
        return {**self.identity(), "names": list(self.names), "templates": list(self.templates)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any] | None) -> HeadKind:
        """A record written by `to_json` (None, as in stores written before heads had kinds: the network's own)."""
        if record is None:
            return cls()
        try:
            return cls(str(record["kind"]), tuple(record.get("names", ())), tuple(record.get("templates", ())))
        except (KeyError, TypeError, ValueError) as err:
            raise StoreError(f"A model's head record {dict(record)!r} is not one featswap wrote ({err}).") from None


def describe(record: Mapping[str, Any] | None) -> str:
    """One line for the terminal and the report: which kind of head, and for a probe its held-out accuracy."""
    kind = HeadKind.from_json(record)
    text = KINDS[kind.kind]
    if kind.kind == "zero-shot":
        text += f" ({len(kind.names)} class names under {len(kind.templates)} prompt template(s))"
    if record is not None and kind.kind == "probe" and "heldout_accuracy" in record:
        text += (
            f"; held-out accuracy {record['heldout_accuracy']:.2%} in {record.get('cv_folds')}-fold cross-validation "
            f"on {record.get('cv_images'):,} fitting images, L2 {record.get('l2'):.3g}"
        )
    return text
