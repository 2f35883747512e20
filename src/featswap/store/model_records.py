"""A store's model records: each model's head `(C, D)`, `(C,)` and what identifies it (spec, weights, preprocessing),
so that features of another model are never paired under its name."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import zarr

from featswap.errors import StoreError, closest
from featswap.store.collection_records import CollectionRecords
from featswap.store.integrity import crc32
from featswap.store.nodes import child_array, child_group, child_keys, has_child, read_array, writing


class ModelRecords(CollectionRecords):
    """Model records on top of a store's collections."""

    # -- models ----------------------------------------------------------------------------------
    def models(self) -> list[str]:
        return child_keys(child_group(self.root, "models"), groups=True) if has_child(self.root, "models") else []

    #: What makes a model record the same model: features of another would be paired wrongly.
    MODEL_IDENTITY = (
        "spec", "feature_dim", "num_classes", "weights_sha256", "data_config", "head_offset", "precision", "decode",
        "head", "features",
    )  # fmt: skip
    #: What a record written before a key existed means by it (head_offset: featswap 0.2 kept every output;
    #: precision, decode: extraction ran in fp32 on Pillow's pixels before featswap had `--precision`, `--decode`;
    #: head and features: before featswap 0.3 every head was the network's own, on what it consumes).
    IDENTITY_DEFAULTS: ClassVar[dict[str, Any]] = {
        "head_offset": 0, "precision": "fp32", "decode": "pil", "head": {"kind": "own"}, "features": None
    }  # fmt: skip

    def write_model(self, name: str, attrs: dict[str, Any], head_weight: np.ndarray, head_bias: np.ndarray) -> None:
        """Record a model's head `(C, D)`, `(C,)` and metadata; refuse a different model under the same name
        (another network, weight file or preprocessing). A record whose head no longer matches its checksum
        is rewritten when the head given matches it; one left half-written by a crash is written anew."""
        attrs = json.loads(json.dumps(attrs))  # as the store keeps them (tuples become lists), to compare
        weight = np.asarray(head_weight, dtype=np.float32)
        bias = np.asarray(head_bias, dtype=np.float32)
        crc = [crc32(weight), crc32(bias)]
        models = child_group(self.root, "models") if has_child(self.root, "models") else None
        if models is not None and has_child(models, name):
            old = self.model_attrs(name)
            if "head_crc32" in old:  # a complete record: the same model, or a refusal
                for key in self.MODEL_IDENTITY:
                    if key in attrs and old.get(key, self.IDENTITY_DEFAULTS.get(key)) != attrs.get(key):
                        before, now = (_identity_text(key, v) for v in (old.get(key), attrs.get(key)))
                        raise StoreError(
                            f"The store already holds a model named {name!r} with {key} {before}, not {now}. Give "
                            "this model another name (--name) or use another store."
                        )
                try:
                    self.head(name, pending_ok=True)
                    return
                except StoreError:
                    if old["head_crc32"] != crc:
                        raise
            with writing(self.path):
                models.__delitem__(name)  # featswap's own half-written or damaged record, rebuilt below
        with writing(self.path):
            group = self.root.require_group("models").create_group(name)
            group.create_array("head_weight", shape=weight.shape, dtype="float32")[:] = weight
            group.create_array("head_bias", shape=bias.shape, dtype="float32")[:] = bias
            group.attrs.update({**attrs, "head_crc32": crc})  # last: a record without it is half-written
            self._remember("models", name)

    def model_attrs(self, name: str) -> dict[str, Any]:
        return self._model(name).attrs.asdict()

    def head(self, name: str, *, pending_ok: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A model's head `(W (C, D), b (C,))` float32 (checked against its checksum). A probe head not trained yet
        is refused, unless `pending_ok` (its zeros are then returned)."""
        group = self._model(name)
        if not pending_ok and self.probe_pending(name):
            raise StoreError(
                f"Model {name!r} in {self.path} has a probe head that is not trained yet: it is trained on the "
                "labelled fitting images' features when they are extracted (run `featswap extract` with --data or "
                "--fit-data labelled images, or `featswap compare`)."
            )
        weight = read_array(child_array(group, "head_weight"), f"the head of {name!r}").astype(np.float32)
        bias = read_array(child_array(group, "head_bias"), f"the head of {name!r}").astype(np.float32)
        if [crc32(weight), crc32(bias)] != group.attrs.get("head_crc32"):
            raise StoreError(
                f"The head of model {name!r} in {self.path} does not match its checksum: the store is damaged. "
                "Extract the model again into a new --store."
            )
        return weight, bias

    def head_record(self, name: str) -> dict[str, Any]:
        """Which kind of head a model has (`featswap.heads.kinds.HeadKind.to_json`), and a trained probe's record
        (held-out accuracy, regularisation); `{"kind": "own"}` for stores written before heads had kinds."""
        attrs = self.model_attrs(name)
        record = dict(attrs.get("head_record") or attrs.get("head") or {"kind": "own"})
        return {**record, **dict(attrs.get("probe") or {})}

    def probe_pending(self, name: str) -> bool:
        """Whether a model's head is a probe not trained yet (its head is zeros until `write_probe`)."""
        attrs = self.model_attrs(name)
        return dict(attrs.get("head") or {}).get("kind") == "probe" and not attrs.get("probe")

    def write_probe(self, name: str, weight: np.ndarray, bias: np.ndarray, record: dict[str, Any]) -> None:
        """Replace a probe-headed model's head by the probe featswap trained `(W (C, D), b (C,))`, with its record
        (`featswap.heads.probe.Probe.record`). Only a probe's head is ever replaced."""
        group = self._model(name)
        if self.model_attrs(name).get("head", {}).get("kind") != "probe":
            raise StoreError(f"Model {name!r} in {self.path} has its own head, not a probe; it is never replaced.")
        weight = np.asarray(weight, dtype=np.float32)
        bias = np.asarray(bias, dtype=np.float32)
        old_weight, _ = self.head(name, pending_ok=True)
        if weight.shape != old_weight.shape or bias.shape != (weight.shape[0],):
            raise StoreError(f"A probe of shape {weight.shape} does not fit model {name!r}'s head {old_weight.shape}.")
        with writing(self.path):
            group.attrs.update({"head_crc32": None})  # a crash from here on leaves a record `head` refuses
            child_array(group, "head_weight")[:] = weight
            child_array(group, "head_bias")[:] = bias
            group.attrs.update({"probe": json.loads(json.dumps(record)), "head_crc32": [crc32(weight), crc32(bias)]})

    def head_offset(self, name: str) -> int:
        """How many leading outputs of a model's head are not classes (and are not in `head`)."""
        return int(self.model_attrs(name).get("head_offset", 0))

    def _model(self, name: str) -> zarr.Group:
        if name not in self.models():
            raise StoreError(f"The store {self.path} has no model {name!r}.{closest(name, self.models())}")
        return child_group(child_group(self.root, "models"), name)

    def model_identity(self, name: str) -> dict[str, Any] | None:
        """What the model record says the model is: its spec, feature width, classes, weights' sha256 and
        preprocessing (None when no model of that name is recorded)."""
        if name not in self.models():
            return None
        attrs = self.model_attrs(name)
        # A key a record lacks (head_offset, head, features before featswap 0.3; precision, decode) is left out, so
        # that older stores still read.
        return {key: attrs.get(key) for key in self.MODEL_IDENTITY if key in attrs or key not in self.IDENTITY_DEFAULTS}


def _identity_text(key: str, value: Any) -> str:
    """A model's identity value as a refusal names it: no weight file reads as random initial weights."""
    if key == "weights_sha256" and value is None:
        return "None (random initial weights, no weight file)"
    return repr(value)
