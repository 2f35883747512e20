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

The class is built in layers, each a module of this package that uses only those below it: collections
(`collection_records`), model records (`model_records`), writing and reading features (`feature_writing`,
`feature_reading`), checking for damage (`verification`); this module opens, creates and locks.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import zarr

from featswap.errors import StoreError
from featswap.store.feature_writing import DEFAULT_CHUNK_ROWS
from featswap.store.location import ZARR_JSON, check_new_store_location, store_filesystem, zarr_location
from featswap.store.lock import StoreLock
from featswap.store.nodes import damaged, writing
from featswap.store.pairs import StorePairs
from featswap.store.verification import StoreVerification

__all__ = ["DEFAULT_CHUNK_ROWS", "STORE_VERSION", "FeatureStore", "StorePairs"]

STORE_VERSION = 2

# zarr 3 warns that variable-length strings are not yet in the v3 spec; they round-trip in zarr-python.
warnings.filterwarnings("ignore", message=".*string.*", module="zarr.*")


class FeatureStore(StoreVerification):
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
        super().__init__(root, path)
        self._lock: StoreLock | None = None

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
            raise damaged(f"{path}/{ZARR_JSON}", err) from None
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
