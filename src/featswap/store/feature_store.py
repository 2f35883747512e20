"""The feature store: features of every model on every image collection, each collection in one id order, in a
zarr v3 group.

Layout (a directory, or any location zarr/fsspec reaches)::

    zarr.json                      attrs: featswap_store version
    models/<name>/                 attrs: spec, feature_dim, num_classes, head_outputs, head_offset, data_config,
                                          weights_sha256, logits_max_abs_diff, head_crc32, head (its kind, in the
                                          identity), head_record (a zero-shot head's names and templates),
                                          features (--features), probe (a trained probe's record); arrays
                                          head_weight (C, D), head_bias (C,): the head's class rows (outputs
                                          head_offset..; a probe's zeros until it is trained)
    <collection>/                  attrs: spec, classes (label names, or null), roles (fit, eval),
                                          ids_crc32, labels_crc32, skipped {id: reason}
    <collection>/ids (N,) str      one id order shared by every model
    <collection>/labels (N,) int64 (labelled collections only)
    <collection>/features/<name> (N, D) float32, chunked by rows; attrs: finished {chunk: [start, stop, crc32]}

A chunk is recorded as finished (with its row range and checksum) only after it is written whole, so an
extraction resumes from the finished chunks, and reading a missing or damaged chunk is an error (see
`featswap.store.integrity`). Features of two models are only ever paired through the shared id order.
"""

from __future__ import annotations

import contextlib
import functools
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import zarr

from featswap.errors import StoreError, closest, os_error_advice
from featswap.store.integrity import ChunkRecord, Damage, VerifyReport, crc32, crc32_of_ids
from featswap.store.location import ZARR_JSON, check_new_store_location, store_filesystem, zarr_location
from featswap.store.lock import StoreLock

if TYPE_CHECKING:  # types only: the store sits below mapping and imports none of it
    from featswap.mapping.moments import Moments
    from featswap.mapping.paired import ChunkFn

R = TypeVar("R")

STORE_VERSION = 2
DEFAULT_CHUNK_ROWS = 4096

# zarr 3 warns that variable-length strings are not yet in the v3 spec; they round-trip in zarr-python.
warnings.filterwarnings("ignore", message=".*string.*", module="zarr.*")


@contextlib.contextmanager
def writing(location: str) -> Iterator[None]:
    """Turn a filesystem failure while writing the store into a StoreError that says what to do."""
    try:
        yield
    except OSError as err:
        raise StoreError(
            f"Cannot write the store {location}: {err.strerror or err}. {os_error_advice(err)} Finished chunks are "
            "kept, so running the same command again resumes."
        ) from None


def _damaged(what: str, err: BaseException) -> StoreError:
    return StoreError(
        f"The store is damaged: {what} cannot be read ({type(err).__name__}: {err}). Run `featswap verify STORE` "
        "to see what is damaged and how to repair it."
    )


def _node(parent: zarr.Group, key: str, kind: type) -> Any:
    try:
        node = parent[key]
    except KeyError:
        raise StoreError(
            f"The store is damaged: {parent.store_path}/{key} is missing. Run `featswap verify STORE` to see what is "
            "damaged and how to repair it."
        ) from None
    except Exception as err:  # a damaged zarr.json below the group
        raise _damaged(f"{parent.store_path}/{key}", err) from None
    if not isinstance(node, kind):
        raise StoreError(
            f"{parent.store_path}/{key} should be a zarr {kind.__name__.lower()}; the store is damaged. Run "
            "`featswap verify STORE`."
        )
    return node


def _has(parent: zarr.Group, key: str) -> bool:
    """Whether `parent` holds a member `key`; a member whose metadata cannot be read is damage, not absence."""
    try:
        return key in parent
    except Exception as err:
        raise _damaged(f"{parent.store_path}/{key}", err) from None


def _keys(parent: zarr.Group, groups: bool) -> list[str]:
    """The names of `parent`'s groups (or arrays), sorted."""
    try:
        return sorted(parent.group_keys() if groups else parent.array_keys())
    except Exception as err:
        raise _damaged(f"the members of {parent.store_path}", err) from None


def _group(parent: zarr.Group, key: str) -> zarr.Group:
    node: zarr.Group = _node(parent, key, zarr.Group)
    return node


def _array(parent: zarr.Group, key: str) -> zarr.Array:
    node: zarr.Array = _node(parent, key, zarr.Array)
    return node


def _finished(array: zarr.Array) -> dict[str, Any]:
    """The `finished` attribute of a feature array: `{chunk: [start, stop, crc32]}` as stored."""
    finished = array.attrs.asdict().get("finished", {})
    return dict(finished) if isinstance(finished, dict) else {}


def _read(array: zarr.Array, what: str, selection: Any = slice(None)) -> np.ndarray:
    """`array[selection]`, or a StoreError naming `what` when the stored bytes cannot be decoded."""
    try:
        return np.asarray(array[selection])
    except Exception as err:
        raise _damaged(what, err) from None


class FeatureStore:
    """A zarr v3 feature store; open with `FeatureStore.create(path)` or `FeatureStore.open(path)`.

    `path` is a local directory or a URL that fsspec reaches (`s3://bucket/features.zarr` with s3fs
    installed, `gs://...`, `memory://...`); `self.path` keeps it as given.

    Examples:
        A collection of three labelled images and one model's features `(3, 2)`, written and read back:

        >>> import tempfile
        >>> import numpy as np
        >>> from featswap import FeatureStore
        >>> folder = tempfile.TemporaryDirectory()
        >>> model = {"spec": "m", "feature_dim": 2, "weights_sha256": None}
        >>> with FeatureStore.create(f"{folder.name}/features.zarr") as store:
        ...     store.write_collection("train", ["a.png", "b.png", "c.png"], np.array([0, 1, 0]), ("cat", "dog"))
        ...     store.write_model("m", model, head_weight=np.ones((2, 2)), head_bias=np.zeros(2))
        ...     store.write_features("train", "m", np.arange(6, dtype=np.float32).reshape(3, 2))
        >>> store = FeatureStore.open(f"{folder.name}/features.zarr")
        >>> store.collections(), store.labels("train").tolist(), store.features("train", "m").shape
        (['train'], [0, 1, 0], (3, 2))
        >>> folder.cleanup()
    """

    def __init__(self, root: zarr.Group, path: str) -> None:
        self.root = root
        self.path = path
        self._lock: StoreLock | None = None
        self._ids: dict[str, np.ndarray] = {}  # verified ids and labels, read once per collection
        self._labels: dict[str, np.ndarray] = {}
        #: Chunks of features read, per (collection, model): `full_reads()` turns them into whole passes.
        self.chunk_reads: dict[tuple[str, str], int] = {}

    @property
    def location(self) -> str:
        """Where other processes open this store: an absolute local path, or the URL."""
        return self.path if "://" in self.path else str(Path(self.path).resolve())

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False) -> FeatureStore:
        """Open an existing store; with `writable`, take the writer's lock."""
        path = str(path)
        fs, on_fs = store_filesystem(path)
        if not fs.isfile(f"{on_fs}/{ZARR_JSON}"):
            if fs.isfile(f"{on_fs}/features.zarr/{ZARR_JSON}"):
                raise StoreError(f"{path} is a run directory; its feature store is {path.rstrip('/')}/features.zarr.")
            raise StoreError(f"No feature store at {path}; create one with `featswap extract ... --store {path}`.")
        try:
            root = zarr.open_group(zarr_location(path, fs, on_fs), mode="r+" if writable else "r")
            version = root.attrs.get("featswap_store")
        except Exception as err:
            raise _damaged(f"{path}/{ZARR_JSON}", err) from None
        if version == 1:
            raise StoreError(
                f"{path} was written by an older featswap (store version 1), which recorded no checksums, so its "
                "features cannot be checked for damage. Extract again into a new --store."
            )
        if version != STORE_VERSION:
            raise StoreError(
                f"{path} is a zarr group but not a featswap feature store (featswap writes stores of format version "
                f"{STORE_VERSION}; this one has {version!r}). Give the store's own folder, or a new one."
            )
        store = cls(root, path)
        if writable:
            store._take_lock()
        return store

    @classmethod
    def check_location(cls, path: str | Path) -> None:
        """Refuse, without creating or locking anything, a location where `create` would refuse to write: a
        file, a directory with other contents, or something that is not a featswap store."""
        path = str(path)
        fs, on_fs = store_filesystem(path)
        if fs.isfile(f"{on_fs}/{ZARR_JSON}"):
            cls.open(path).close()
        else:
            check_new_store_location(path, fs, on_fs)

    @classmethod
    def create(cls, path: str | Path) -> FeatureStore:
        """Open the store at `path` for writing, creating it if nothing is there. A location holding anything
        else (a file, a directory with other contents) is refused, never overwritten."""
        path = str(path)
        fs, on_fs = store_filesystem(path)
        if fs.isfile(f"{on_fs}/{ZARR_JSON}"):
            return cls.open(path, writable=True)
        check_new_store_location(path, fs, on_fs)
        lock = StoreLock(path)  # taken before anything is created: a store being created is being written
        with writing(path):
            parent = on_fs.rpartition("/")[0]
            if parent:
                fs.makedirs(parent, exist_ok=True)
            lock.acquire()
            try:
                fs.makedirs(on_fs, exist_ok=True)
                store = cls(zarr.open_group(zarr_location(path, fs, on_fs), mode="w-"), path)
                store.root.attrs.update({"featswap_store": STORE_VERSION})
            except BaseException:
                lock.release()
                raise
        store._lock = lock
        return store

    def _take_lock(self) -> None:
        self._lock = StoreLock(self.path)
        self._lock.acquire()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections -------------------------------------------------------------------------------
    def collections(self, *, role: str | None = None) -> list[str]:
        """The collections in the store (those extracted for `role` "fit" or "eval", when given)."""
        present = [k for k in _keys(self.root, groups=True) if k != "models"]
        recorded = [n for n in self._recorded("collections") if n in present]
        names = recorded + sorted(set(present) - set(recorded))  # in the order they were first written
        return names if role is None else [n for n in names if role in self.roles(n)]

    def _collection(self, collection: str) -> zarr.Group:
        if not _has(self.root, collection):
            raise StoreError(
                f"The store {self.path} has no collection {collection!r}.{closest(collection, self.collections())}"
            )
        return _group(self.root, collection)

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
        exists = _has(self.root, collection)
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
        if not _has(self.root, collection) or "ids_crc32" not in self._attrs(collection):
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
                    if _has(group, key):
                        group.__delitem__(key)
                    dtype = str if key == "ids" else "int64"
                    group.create_array(key, shape=values.shape, dtype=dtype)[:] = values
                (self._ids if key == "ids" else self._labels).pop(collection, None)

    def ids(self, collection: str) -> np.ndarray:
        """Sample ids `(N,)` of a collection, in the store's order (checked against their checksum)."""
        if collection not in self._ids:
            group = self._collection(collection)
            # zarr returns numpy's variable-width StringDType, which does not cast to fixed-width str directly.
            ids = np.array(list(_read(_array(group, "ids"), f"the ids of collection {collection!r}")), dtype=str)
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
            labels = _read(_array(group, "labels"), f"the labels of collection {collection!r}").astype(np.int64)
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
            return np.ones(_array(self._collection(collection), "ids").shape[0], dtype=bool)
        return ~np.isin(self.ids(collection), list(skipped))

    def kept_ids(self, collection: str) -> np.ndarray:
        return self.ids(collection)[self.kept(collection)]

    # -- models ----------------------------------------------------------------------------------
    def models(self) -> list[str]:
        return _keys(_group(self.root, "models"), groups=True) if _has(self.root, "models") else []

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
        models = _group(self.root, "models") if _has(self.root, "models") else None
        if models is not None and _has(models, name):
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

    def _remember(self, key: str, name: str) -> None:
        """List `name` under the root's `key` ("models", "collections"): `verify` then notices it missing."""
        known = self._recorded(key)
        if name not in known:
            self.root.attrs[key] = [*known, name]

    def _recorded(self, key: str) -> list[str]:
        """The names the root lists under `key` ("models" or "collections")."""
        value = self.root.attrs.asdict().get(key, [])
        return [str(v) for v in value] if isinstance(value, list) else []

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
        weight = _read(_array(group, "head_weight"), f"the head of {name!r}").astype(np.float32)
        bias = _read(_array(group, "head_bias"), f"the head of {name!r}").astype(np.float32)
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
            _array(group, "head_weight")[:] = weight
            _array(group, "head_bias")[:] = bias
            group.attrs.update({"probe": json.loads(json.dumps(record)), "head_crc32": [crc32(weight), crc32(bias)]})

    def head_offset(self, name: str) -> int:
        """How many leading outputs of a model's head are not classes (and are not in `head`)."""
        return int(self.model_attrs(name).get("head_offset", 0))

    def _model(self, name: str) -> zarr.Group:
        if name not in self.models():
            raise StoreError(f"The store {self.path} has no model {name!r}.{closest(name, self.models())}")
        return _group(_group(self.root, "models"), name)

    # -- features: writing -------------------------------------------------------------------------
    def feature_array(
        self, collection: str, name: str, dim: int, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> zarr.Array:
        """The `(N, D)` float32 feature array of a model in a collection, created empty if new."""
        if chunk_rows < 1:
            raise StoreError(f"chunk_rows must be at least 1; got {chunk_rows}.")
        group = self._collection(collection)
        n = int(_array(group, "ids").shape[0])
        with writing(self.path):
            feats = group.require_group("features")
            if _has(feats, name):
                array = _array(feats, name)
                if array.shape != (n, dim):
                    raise StoreError(
                        f"Stored features of {name!r} in collection {collection!r} have shape {array.shape}, "
                        f"expected {(n, dim)}."
                    )
                self._check_identity(collection, name)
                return array
            array = feats.create_array(
                name, shape=(n, dim), chunks=(min(chunk_rows, max(n, 1)), dim), dtype="float32", fill_value=0.0
            )
            array.attrs["model"] = self.model_identity(name)
            known = list(self._attrs(collection).get("models", []))
            group.attrs["models"] = sorted({*known, name})
            return array

    def model_identity(self, name: str) -> dict[str, Any] | None:
        """What the model record says the model is: its spec, feature width, classes, weights' sha256 and
        preprocessing (None when no model of that name is recorded)."""
        if name not in self.models():
            return None
        attrs = self.model_attrs(name)
        # A key a record lacks (head_offset, head, features before featswap 0.3; precision, decode) is left out, so
        # that older stores still read.
        return {key: attrs.get(key) for key in self.MODEL_IDENTITY if key in attrs or key not in self.IDENTITY_DEFAULTS}

    def _check_identity(self, collection: str, name: str) -> None:
        """Refuse features written by another model than the one recorded under their name (copied in from
        another store, say): read as this model's, they would pair the wrong images' features."""
        recorded = self._features(collection, name).attrs.asdict().get("model")
        if recorded is not None and recorded != self.model_identity(name):
            raise StoreError(
                f"The features of {name!r} in collection {collection!r} were extracted by another model than the one "
                f"recorded as {name!r} in {self.path} (another network, weight file or preprocessing). Extract the "
                "model into a new --store."
            )

    def _features(self, collection: str, name: str) -> zarr.Array:
        return _array(_group(self._collection(collection), "features"), name)

    def chunk_rows(self, collection: str, name: str) -> int:
        """Rows per stored chunk of a model's features in a collection."""
        return int(self._features(collection, name).chunks[0])

    def _records(self, collection: str, name: str) -> dict[int, ChunkRecord]:
        """The finished chunks of a model's features, with their row ranges and checksums."""
        group = self._collection(collection)
        if not _has(group, "features") or not _has(_group(group, "features"), name):
            return {}
        records = {}
        for key, value in _finished(self._features(collection, name)).items():
            record = ChunkRecord.from_json(value)
            if record is not None and str(key).isdigit():
                records[int(key)] = record
        return records

    def _chunk_range(self, array: zarr.Array, chunk: int) -> tuple[int, int]:
        size, n = int(array.chunks[0]), int(array.shape[0])
        return chunk * size, min((chunk + 1) * size, n)

    def write_chunk(self, collection: str, name: str, chunk: int, features: np.ndarray) -> None:
        """Write the features `(rows, D)` of one whole chunk of stored rows and record it as finished, with
        its row range and checksum (only then, so an interrupted write leaves the chunk unfinished)."""
        array = self._features(collection, name)
        start, stop = self._chunk_range(array, chunk)
        features = np.asarray(features)
        if not np.can_cast(features.dtype, np.float32, casting="safe"):
            raise StoreError(
                f"The store holds float32 features; got {features.dtype}, which would lose precision silently. Cast "
                "them with .astype(np.float32) if float32's 7 significant digits are enough."
            )
        block = np.ascontiguousarray(features, dtype=np.float32)
        if block.shape != (stop - start, array.shape[1]):
            raise StoreError(
                f"Chunk {chunk} of {name!r} / {collection!r} holds rows {start}..{stop - 1}, shape "
                f"{(stop - start, array.shape[1])}; got {block.shape}."
            )
        if not np.isfinite(block).all():
            bad = start + int(np.argwhere(~np.isfinite(block))[0, 0])
            raise StoreError(
                f"Features of {name!r} for id {str(self.ids(collection)[bad])!r} hold NaN or inf; nothing of rows "
                f"{start}..{stop - 1} was written."
            )
        with writing(self.path):
            array[start:stop] = block
            finished = _finished(array)
            finished[str(chunk)] = ChunkRecord(start, stop, crc32(block)).to_json()
            array.attrs["finished"] = finished

    def write_features(
        self, collection: str, name: str, features: np.ndarray, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> None:
        """Write all features `(N, D)` of a model in a collection (every stored row, in id order), chunk by chunk.
        The model must be recorded first (`write_model`)."""
        features = np.asarray(features)
        if features.ndim != 2:
            raise StoreError(f"Features must be 2-D (samples, features); got shape {features.shape}.")
        array = self.feature_array(collection, name, features.shape[1], chunk_rows=chunk_rows)
        if len(features) != array.shape[0]:
            raise StoreError(
                f"Collection {collection!r} has {array.shape[0]} samples; got features for {len(features)}."
            )
        size = int(array.chunks[0])
        for chunk in range(-(-len(features) // size)):
            self.write_chunk(collection, name, chunk, features[chunk * size : (chunk + 1) * size])

    def forget_chunks(self, collection: str, name: str, chunks: list[int]) -> None:
        """Mark chunks unfinished again (they were found damaged), so that extraction recomputes them."""
        array = self._features(collection, name)
        finished = _finished(array)
        with writing(self.path):
            array.attrs["finished"] = {k: v for k, v in finished.items() if int(k) not in set(chunks)}

    def done_chunks(self, collection: str, name: str) -> np.ndarray:
        """`(n_chunks,)` bool: which row chunks of a model's features are finished (empty if none exist)."""
        group = self._collection(collection)
        if not _has(group, "features") or not _has(_group(group, "features"), name):
            return np.zeros(0, dtype=bool)
        array = self._features(collection, name)
        done = np.zeros(-(-int(array.shape[0]) // int(array.chunks[0])), dtype=bool)
        for chunk in self._records(collection, name):
            if chunk < len(done):
                done[chunk] = True
        return done

    def has_features(self, collection: str, name: str) -> bool:
        done = self.done_chunks(collection, name)
        return bool(done.size) and bool(done.all())

    # -- features: reading -------------------------------------------------------------------------
    def read_chunk(self, collection: str, name: str, chunk: int) -> np.ndarray:
        """The features `(rows, D)` float32 of one finished chunk, every stored row (skipped ones too), checked
        against the row range and checksum recorded when it was written."""
        array = self._features(collection, name)
        start, stop = self._chunk_range(array, chunk)
        where = f"model {name!r}, collection {collection!r}, rows {start}..{stop - 1}"
        record = self._records(collection, name).get(chunk)
        if record is None:
            raise StoreError(f"The store {self.path} has no finished features for {where}; run extract to finish them.")
        if (record.start, record.stop) != (start, stop):
            raise StoreError(
                f"The store is damaged: {where} were recorded as rows {record.start}..{record.stop - 1}. "
                "Run `featswap verify STORE`."
            )
        block = _read(array, where, slice(start, stop)).astype(np.float32, copy=False)
        self.chunk_reads[collection, name] = self.chunk_reads.get((collection, name), 0) + 1
        if crc32(block) != record.crc32:
            raise StoreError(
                f"The store is damaged: the features of {where} are missing or altered (they do not match the "
                "checksum recorded when they were written). Run the same `featswap extract` again to recompute "
                "the damaged chunks, or `featswap verify STORE` to list them."
            )
        return block

    def full_reads(self) -> float:
        """How many times, in all, whole feature arrays were read through this object (chunks read divided by
        chunks per array, summed over every model and collection)."""
        return sum(
            count / len(self.done_chunks(collection, name)) for (collection, name), count in self.chunk_reads.items()
        )

    def require_features(self, collection: str, name: str) -> None:
        """Refuse a model without complete features in a collection (saying what to do), or features that are
        not the recorded model's."""
        if self.has_features(collection, name):
            self._check_identity(collection, name)
        else:
            known = (
                [m for m in self.models() if self.has_features(collection, m)]
                if collection in self.collections()
                else []
            )
            partial = self.done_chunks(collection, name).size > 0
            hint = " (extraction was interrupted: run extract again to resume)" if partial else ""
            raise StoreError(
                f"The store {self.path} has no complete features of {name!r} for collection {collection!r}{hint}."
                f"{closest(name, known) if name not in known else ''}"
            )

    def features(self, collection: str, name: str) -> np.ndarray:
        """All features `(N, D)` float32 of a model in a collection (checked complete and intact; every value is
        finite, as `write_chunk` refuses NaN and inf)."""
        return np.concatenate(list(self.iter_features(collection, name)), axis=0)

    def iter_features(self, collection: str, name: str) -> Iterator[np.ndarray]:
        """Features of the kept samples of a complete model/collection, one stored chunk at a time `(rows, D)`, in
        id order; memory O(chunk rows * D)."""
        self.require_features(collection, name)
        kept = self.kept(collection)
        size = self.chunk_rows(collection, name)
        for chunk in range(len(self.done_chunks(collection, name))):
            yield self.read_rows(
                collection, name, chunk * size, (chunk + 1) * size, kept=kept[chunk * size : (chunk + 1) * size]
            )

    def read_rows(
        self, collection: str, name: str, start: int, stop: int, *, kept: np.ndarray | None = None
    ) -> np.ndarray:
        """Features `(k, D)` of the kept samples among stored rows `start .. stop - 1` (read whole chunks,
        each checked); `kept` is `self.kept(collection)[start:stop]` when the caller already has it."""
        size = self.chunk_rows(collection, name)
        n = int(self._features(collection, name).shape[0])
        stop = min(stop, n)
        parts = [self.read_chunk(collection, name, c) for c in range(start // size, -(-stop // size))]
        first = (start // size) * size
        block = np.concatenate(parts, axis=0)[start - first : stop - first] if parts else np.zeros((0, 0), np.float32)
        return block[self.kept(collection)[start:stop] if kept is None else kept]

    def take_rows(self, collection: str, name: str, rows: np.ndarray) -> np.ndarray:
        """Features `(k, D)` of the kept samples at sorted positions `rows` among the kept samples (reading each
        chunk they touch once, checked)."""
        stored = np.flatnonzero(self.kept(collection))[rows]
        size = self.chunk_rows(collection, name)
        parts = []
        for chunk in np.unique(stored // size):
            in_chunk = stored[(stored // size) == chunk]
            parts.append(self.read_chunk(collection, name, int(chunk))[in_chunk - chunk * size])
        dim = int(self._features(collection, name).shape[1])
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, dim), np.float32)

    def pairs(self, collection: str, source: str, target: str, *, rows: int | None = None) -> StorePairs:
        """Paired features of two models on a collection, streamed in row blocks (see `featswap.mapping.paired`;
        an engine decides where their per-chunk statistics run)."""
        return StorePairs(self, collection, source, target, rows)

    # -- integrity -----------------------------------------------------------------------------------
    def damaged_chunks(self, collection: str, name: str) -> dict[int, str]:
        """The finished chunks of a model's features in a collection that no longer match their record, each with
        what is wrong with it."""
        array = self._features(collection, name)
        damaged = {}
        for chunk, record in sorted(self._records(collection, name).items()):
            if (record.start, record.stop) != self._chunk_range(array, chunk):
                damaged[chunk] = f"recorded as rows {record.start}..{record.stop - 1}, not the chunk's own rows."
                continue
            try:
                block = np.asarray(array[record.start : record.stop], dtype=np.float32)
            except Exception as err:
                damaged[chunk] = f"its stored bytes cannot be decoded ({type(err).__name__})."
                continue
            if crc32(block) != record.crc32:
                damaged[chunk] = "the features are missing or altered (they do not match the checksum recorded when "
                damaged[chunk] += "they were written)."
        return damaged

    def verify(self) -> VerifyReport:
        """Check the whole store: every model's head, every collection's ids and labels, every finished chunk,
        and that nothing the store recorded is missing. Each problem is listed; none stops the check."""
        report = VerifyReport(self.path)
        rebuild = "extract the model again (its head is rebuilt from the network)"
        for name in sorted({*self.models(), *self._recorded("models")}):
            if name not in self.models():
                report.damage.append(Damage(f"model {name}", "its record is missing.", rebuild))
                continue
            self._check(report, f"model {name}", rebuild, functools.partial(self.head, name))
        redo = "run the same extract again (ids and labels are rewritten from the data when they match)"
        for collection in sorted({*self.collections(), *self._recorded("collections")}):
            if collection not in self.collections():
                report.damage.append(Damage(f"collection {collection}", "it is missing.", redo))
                continue
            where = f"collection {collection}"
            if not self._check(report, where, redo, functools.partial(self._check_ids_and_labels, collection)):
                continue
            self._check(report, where, redo, functools.partial(self._verify_features, collection, report))
        return report

    def _check(self, report: VerifyReport, where: str, repair: str, check: Callable[[], object]) -> bool:
        """Run one check of `verify`; a StoreError becomes a damage entry. Whether the check passed."""
        try:
            check()
        except StoreError as err:
            report.damage.append(Damage(where, str(err), repair))
            return False
        return True

    def _check_ids_and_labels(self, collection: str) -> None:
        self.ids(collection)
        if self.labelled(collection):
            self._all_labels(collection)

    def _verify_features(self, collection: str, report: VerifyReport) -> None:
        group = self._collection(collection)
        present = _keys(_group(group, "features"), groups=False) if _has(group, "features") else []
        for name in sorted({*present, *self._attrs(collection).get("models", [])}):
            spec = self.model_attrs(name).get("spec", "SPEC") if name in self.models() else "SPEC"
            redo = (
                f"run `featswap extract --model {spec} --name {name} --store {self.path}` again with the same "
                f"weights and data options (this collection was read from {self.spec(collection)}): it recomputes "
                "exactly the damaged chunks."
            )
            if name not in present:
                report.damage.append(
                    Damage(f"model {name}, collection {collection}", "its features are missing.", redo)
                )
                continue
            identity = functools.partial(self._check_identity, collection, name)
            if not self._check(report, f"model {name}, collection {collection}", redo, identity):
                continue
            records = self._records(collection, name)
            report.checked_chunks += len(records)
            for chunk, problem in self.damaged_chunks(collection, name).items():
                start, stop = records[chunk].start, records[chunk].stop
                where = f"model {name}, collection {collection}, rows {start}..{stop - 1} (chunk {chunk})"
                report.damage.append(Damage(where, problem, redo))
            if not self.has_features(collection, name):
                done = self.done_chunks(collection, name)
                report.unfinished.append(
                    f"model {name}, collection {collection}: {int(done.sum())} of {len(done)} chunks"
                )


class StorePairs:
    """Paired features read from a store: `chunks()` streams row blocks, `take(rows)` reads selected rows."""

    def __init__(self, store: FeatureStore, collection: str, source: str, target: str, rows: int | None = None) -> None:
        for name in (source, target):
            store.require_features(collection, name)
        self.store, self.collection, self.source, self.target = store, collection, source, target
        features = _group(store._collection(collection), "features")
        x, y = _array(features, source), _array(features, target)
        self.n, self.dx, self.dy = int(store.kept(collection).sum()), int(x.shape[1]), int(y.shape[1])
        self.dtype = np.dtype(np.float32)
        self._stored = int(x.shape[0])
        # One stored chunk per block keeps memory at O(chunk rows * (Dx + Dy)) and each chunk read once.
        self.rows = rows or int(x.chunks[0])

    @property
    def n_blocks(self) -> int:
        """Blocks of `rows` stored rows each (fewer rows when samples were skipped)."""
        return -(-self._stored // self.rows)

    def block(self, index: int, kept: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Block `index` of `chunks()`: `(x (k, dx), y (k, dy))`; `kept` as in `FeatureStore.read_rows`."""
        start, stop = index * self.rows, (index + 1) * self.rows
        kept = self.store.kept(self.collection)[start:stop] if kept is None else kept
        return (
            self.store.read_rows(self.collection, self.source, start, stop, kept=kept),
            self.store.read_rows(self.collection, self.target, start, stop, kept=kept),
        )

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        kept = self.store.kept(self.collection)
        for index in range(self.n_blocks):
            yield self.block(index, kept[index * self.rows : (index + 1) * self.rows])

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        """`fn(x, y, start, device)` of every chunk, in this process (the `PairedFeatures` protocol of
        `featswap.mapping.paired`, which this class follows without importing it: the store sits below mapping)."""
        start = 0
        for x, y in self.chunks():
            yield fn(x, y, start, device)
            start += len(x)

    def split_moments(self, holdout: float, seed: int, normalize: bool) -> tuple[Moments, Moments] | None:
        return None

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.store.take_rows(self.collection, self.source, rows),
            self.store.take_rows(self.collection, self.target, rows),
        )


def _identity_text(key: str, value: Any) -> str:
    """A model's identity value as a refusal names it: no weight file reads as random initial weights."""
    if key == "weights_sha256" and value is None:
        return "None (random initial weights, no weight file)"
    return repr(value)
