"""A store's image collections: their id order, labels, label space, roles and skipped images (the bottom layer
of `FeatureStore`: models and features build on it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from featswap.errors import StoreError, closest
from featswap.store.integrity import crc32, crc32_of_ids
from featswap.store.nodes import child_array, child_group, child_keys, has_child, read_array, writing


class CollectionRecords:
    """The collections of a store opened at `root` (zarr group) from `path` (as the user gave it)."""

    def __init__(self, root: zarr.Group, path: str) -> None:
        self.root = root
        self.path = path
        self._ids: dict[str, np.ndarray] = {}  # verified ids and labels, read once per collection
        self._labels: dict[str, np.ndarray] = {}
        #: Chunks of features read, per (collection, model): `full_reads()` turns them into whole passes.
        self.chunk_reads: dict[tuple[str, str], int] = {}

    @property
    def location(self) -> str:
        """Where other processes open this store: an absolute local path, or the URL."""
        return self.path if "://" in self.path else str(Path(self.path).resolve())

    # -- collections -------------------------------------------------------------------------------
    def collections(self, *, role: str | None = None) -> list[str]:
        """The collections in the store (those extracted for `role` "fit" or "eval", when given)."""
        present = [k for k in child_keys(self.root, groups=True) if k != "models"]
        recorded = [n for n in self._recorded("collections") if n in present]
        names = recorded + sorted(set(present) - set(recorded))  # in the order they were first written
        return names if role is None else [n for n in names if role in self.roles(n)]

    def _collection(self, collection: str) -> zarr.Group:
        if not has_child(self.root, collection):
            raise StoreError(
                f"The store {self.path} has no collection {collection!r}.{closest(collection, self.collections())}"
            )
        return child_group(self.root, collection)

    def _attrs(self, collection: str) -> dict[str, Any]:
        attrs: dict[str, Any] = self._collection(collection).attrs.asdict()
        return attrs

    def classes(self, collection: str) -> tuple[str, ...] | None:
        """The label space of a collection (label k names class `classes[k]`), or None when unlabelled."""
        classes = self._attrs(collection).get("classes")
        return None if classes is None else tuple(classes)

    def labelled(self, collection: str) -> bool:
        return "labels_crc32" in self._attrs(collection)

    def spec(self, collection: str) -> str:
        """The data SPEC a collection was read from."""
        return str(self._attrs(collection).get("spec", collection))

    def record_overlap(self, collection: str, fit_collection: str, shared: int) -> None:
        """Record that `shared` images of `collection` are also images of `fit_collection` (by file path)."""
        overlaps = {**self._attrs(collection).get("fit_overlap", {}), fit_collection: int(shared)}
        with writing(self.path):
            self._collection(collection).attrs["fit_overlap"] = overlaps

    def overlap(self, collection: str, fit_collection: str) -> int | None:
        """How many images of `collection` are also images of `fit_collection`; None when not recorded."""
        value = self._attrs(collection).get("fit_overlap", {}).get(fit_collection)
        return None if value is None else int(value)

    def roles(self, collection: str) -> list[str]:
        """What a collection was extracted for: "fit", "eval", or both."""
        return list(self._attrs(collection).get("roles", []))

    def write_collection(
        self,
        collection: str,
        ids: list[str] | np.ndarray,
        labels: np.ndarray | None,
        classes: tuple[str, ...] | None = None,
        *,
        spec: str = "",
        role: str | None = None,
        content: str | None = None,
    ) -> None:
        """Record a collection's id order, labels (None for unlabelled images) and label space, or check they
        equal the ones already stored; `role` ("fit" or "eval") is added to the collection's roles. `content`
        (a digest of the images' files, `Collection.content_sha256`) tells apart other images under the same
        ids, such as a blurred copy of a folder."""
        ids = np.asarray(ids, dtype=str)
        labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if labels is not None and len(ids) != len(labels):
            raise StoreError(f"{len(ids)} ids but {len(labels)} labels for collection {collection!r}.")
        if len(set(ids.tolist())) != len(ids):
            raise StoreError(f"Collection {collection!r} has duplicate ids; every sample needs a unique id.")
        exists = has_child(self.root, collection)
        if exists and "ids_crc32" not in self._attrs(collection):
            with writing(self.path):  # featswap's own collection, half-written by a crash: no features yet
                self.root.__delitem__(collection)
            exists = False
        if exists:
            self.check_collection(collection, ids, labels, classes, content=content)
            self._check_collection(collection, ids, labels, classes)
        else:
            with writing(self.path):
                group = self.root.create_group(collection)
                group.create_array("ids", shape=ids.shape, dtype=str)[:] = ids
                attrs: dict[str, Any] = {"spec": spec or collection, "roles": [], "ids_crc32": crc32_of_ids(ids)}
                if content is not None:
                    attrs["content_sha256"] = content
                if labels is not None:
                    group.create_array("labels", shape=labels.shape, dtype="int64")[:] = labels
                    attrs.update(labels_crc32=crc32(labels), classes=None if classes is None else list(classes))
                # Written last: a collection whose checksums are missing was interrupted while being created.
                group.attrs.update(attrs)
                self._remember("collections", collection)
        if role is not None and role not in self.roles(collection):
            with writing(self.path):
                self._collection(collection).attrs["roles"] = sorted({*self.roles(collection), role})

    def check_collection(
        self,
        collection: str,
        ids: list[str] | np.ndarray,
        labels: np.ndarray | None,
        classes: tuple[str, ...] | None = None,
        *,
        content: str | None = None,
    ) -> None:
        """Refuse, without writing anything, a collection that `write_collection` would refuse: other ids, id
        order, labels, label space or image contents than those stored under its name (nothing to check when the
        store has no such collection)."""
        if not has_child(self.root, collection) or "ids_crc32" not in self._attrs(collection):
            return
        ids = np.asarray(ids, dtype=str)
        labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        attrs = self._attrs(collection)
        if attrs["ids_crc32"] != crc32_of_ids(ids):
            raise StoreError(
                f"Collection {collection!r} in {self.path} holds other samples, or another id order, than the "
                f"{len(ids)} given; features are only paired by id. Name the collection otherwise (NAME=SPEC) or use "
                "a new store."
            )
        if ("labels_crc32" in attrs) != (labels is not None) or (
            labels is not None and attrs["labels_crc32"] != crc32(labels)
        ):
            raise StoreError(f"Collection {collection!r} in {self.path} holds other labels for the same ids.")
        if classes is not None and self.classes(collection) != tuple(classes):
            raise StoreError(f"Collection {collection!r} in {self.path} has another label space (classes).")
        stored = attrs.get("content_sha256")
        if content is not None and stored is not None and stored != content:
            raise StoreError(
                f"Collection {collection!r} in {self.path} holds features of other images under the same "
                f"{len(ids)} ids (the files differ from those extracted: another copy, or changed since). "
                "Name the collection otherwise (NAME=SPEC) or use a new store."
            )

    def _check_collection(
        self, collection: str, ids: np.ndarray, labels: np.ndarray | None, classes: tuple[str, ...] | None
    ) -> None:
        """Rewrite stored ids or labels that no longer match their checksum when the ones given do (the data are
        the same, the copy in the store was damaged); `check_collection` has refused other ones."""
        group = self._collection(collection)
        for key, values, read in (("ids", ids, self.ids), ("labels", labels, self._all_labels)):
            if values is None:
                continue
            try:
                read(collection)
            except StoreError:
                with writing(self.path):  # repair: the values given have the checksum the store recorded
                    if has_child(group, key):
                        group.__delitem__(key)
                    dtype = str if key == "ids" else "int64"
                    group.create_array(key, shape=values.shape, dtype=dtype)[:] = values
                (self._ids if key == "ids" else self._labels).pop(collection, None)

    def ids(self, collection: str) -> np.ndarray:
        """Sample ids `(N,)` of a collection, in the store's order (checked against their checksum)."""
        if collection not in self._ids:
            group = self._collection(collection)
            # zarr returns numpy's variable-width StringDType, which does not cast to fixed-width str directly.
            ids = np.array(
                list(read_array(child_array(group, "ids"), f"the ids of collection {collection!r}")), dtype=str
            )
            if crc32_of_ids(ids) != group.attrs.get("ids_crc32"):
                raise StoreError(
                    f"The ids of collection {collection!r} in {self.path} do not match their checksum: the store is "
                    "damaged or was interrupted while the collection was created. Extract into a new --store."
                )
            self._ids[collection] = ids
        return self._ids[collection]

    def _all_labels(self, collection: str) -> np.ndarray:
        """Labels `(N,)` int64 of every sample of a collection, skipped ones included (checked)."""
        if collection not in self._labels:
            if not self.labelled(collection):
                raise StoreError(
                    f"Collection {collection!r} has no labels ({self.spec(collection)}): it serves to fit maps. "
                    "Evaluate on a labelled collection."
                )
            group = self._collection(collection)
            labels = read_array(child_array(group, "labels"), f"the labels of collection {collection!r}").astype(
                np.int64
            )
            if crc32(labels) != group.attrs.get("labels_crc32"):
                raise StoreError(
                    f"The labels of collection {collection!r} in {self.path} do not match their checksum: the store is "
                    "damaged or was interrupted while the collection was created. Extract into a new --store."
                )
            self._labels[collection] = labels
        return self._labels[collection]

    def labels(self, collection: str) -> np.ndarray:
        """Labels `(K,)` int64 of the kept (not skipped) samples of a collection."""
        return self._all_labels(collection)[self.kept(collection)]

    # -- skipped samples -------------------------------------------------------------------------
    def skipped(self, collection: str) -> dict[str, str]:
        """Ids of a collection's unreadable images skipped by extraction, with the reason for each."""
        skipped: dict[str, str] = self._collection(collection).attrs.asdict().get("skipped", {})  # type: ignore[assignment]
        return dict(skipped)

    def add_skipped(self, collection: str, reasons: dict[str, str]) -> None:
        group = self._collection(collection)
        with writing(self.path):
            group.attrs["skipped"] = {**self.skipped(collection), **reasons}

    def kept(self, collection: str) -> np.ndarray:
        """`(N,)` bool: samples every reader uses (all but skipped ones, for every model alike)."""
        skipped = self.skipped(collection)
        if not skipped:  # the common case: no need to read every id string
            return np.ones(child_array(self._collection(collection), "ids").shape[0], dtype=bool)
        return ~np.isin(self.ids(collection), list(skipped))

    def kept_ids(self, collection: str) -> np.ndarray:
        return self.ids(collection)[self.kept(collection)]

    def _remember(self, key: str, name: str) -> None:
        """List `name` under the root's `key` ("models", "collections"): `verify` then notices it missing."""
        known = self._recorded(key)
        if name not in known:
            self.root.attrs[key] = [*known, name]

    def _recorded(self, key: str) -> list[str]:
        """The names the root lists under `key` ("models" or "collections")."""
        value = self.root.attrs.asdict().get(key, [])
        return [str(v) for v in value] if isinstance(value, list) else []
