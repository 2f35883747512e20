"""The feature store: features of every model aligned to one id order per split, in a zarr v3 group.

Layout (a directory, or any location zarr/fsspec reaches)::

    zarr.json                      attrs: featswap_store version, dataset {name, classes}
    models/<name>/                 attrs: spec, feature_dim, num_classes, data_config, weights_sha256,
                                          logits_max_abs_diff; arrays head_weight (C, D), head_bias (C,)
    <split>/ids (N,) str           one id order shared by every model
    <split>/labels (N,) int64
    <split>/features/<name> (N, D) float32, chunked by rows
    <split>/done/<name> (n_chunks,) bool   set after a chunk of rows is written: extraction resumes here

Features of two models are only ever paired through this shared id order.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import zarr
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from featswap.errors import StoreError, closest
from featswap.paired import ChunkFn, PairedFeatures, R, map_chunks_here
from featswap.ray_cluster import check_engine

STORE_VERSION = 1
DEFAULT_CHUNK_ROWS = 4096

# zarr 3 warns that variable-length strings are not yet in the v3 spec; they round-trip in zarr-python.
warnings.filterwarnings("ignore", message=".*string.*", module="zarr.*")


def store_filesystem(location: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a store location (a local path or a URL such as s3://bucket/x.zarr) and the
    store's path on it."""
    try:
        fs, on_fs = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as err:
        raise StoreError(f"Cannot open the store location {location!r}: {err}") from None
    return fs, str(on_fs).rstrip("/")


def _zarr_location(location: str, fs: AbstractFileSystem, on_fs: str) -> str:
    """What zarr opens: a plain path for local files (`file://` URLs too; zarr's local store makes the
    directories it writes into), else the URL."""
    return on_fs if isinstance(fs, LocalFileSystem) else location


class StoreLock:
    """One writer at a time: a lock file `<store>.lock` beside the store, naming its holder.

    On a local or shared filesystem the lock file is created atomically (O_EXCL). Object stores have no
    create-if-absent through fsspec, so there the lock is written and read back: it refuses a store that is
    being written, but two writers starting in the same instant could both pass. A lock left by a process
    that no longer runs on this host is taken over; any other is refused.
    """

    def __init__(self, location: str) -> None:
        # Beside the store rather than inside it, where zarr would list it as an unknown member.
        self.store = location
        self.fs, on_fs = store_filesystem(location)
        self.path = on_fs + ".lock"
        self.held = False

    def acquire(self) -> None:
        holder = f"{socket.gethostname()} pid {os.getpid()}"
        for _ in range(2):
            if self._create(holder):
                self.held = True
                return
            if self._stale():
                self.fs.rm_file(self.path)
                continue
            raise StoreError(
                f"The store {self.store} is being written by {self._holder()} (lock file {self.path}). Wait for "
                "it to finish; if that process is gone, delete the lock file."
            )

    def _create(self, holder: str) -> bool:
        """Create the lock file naming `holder`; False when it exists already."""
        if isinstance(self.fs, LocalFileSystem):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(holder)
            return True
        if self.fs.exists(self.path):
            return False
        self.fs.pipe_file(self.path, holder.encode())
        return self._holder() == holder

    def release(self) -> None:
        if self.held:
            if self.fs.exists(self.path):
                self.fs.rm_file(self.path)
            self.held = False

    def _holder(self) -> str:
        try:
            return bytes(self.fs.cat_file(self.path)).decode().strip() or "another process"
        except (OSError, UnicodeDecodeError):
            return "another process"

    def _stale(self) -> bool:
        host, _, pid = self._holder().partition(" pid ")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _group(parent: zarr.Group, key: str) -> zarr.Group:
    node = parent[key]
    if not isinstance(node, zarr.Group):
        raise StoreError(f"{parent.store_path}/{key} should be a zarr group; the store is damaged.")
    return node


def _array(parent: zarr.Group, key: str) -> zarr.Array:
    node = parent[key]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"{parent.store_path}/{key} should be a zarr array; the store is damaged.")
    return node


class FeatureStore:
    """A zarr v3 feature store; open with `FeatureStore.create(path)` or `FeatureStore.open(path)`.

    `path` is a local directory or a URL that fsspec reaches (`s3://bucket/features.zarr` with s3fs
    installed, `gs://...`, `memory://...`); `self.path` keeps it as given."""

    def __init__(self, root: zarr.Group, path: str) -> None:
        self.root = root
        self.path = path
        self._lock: StoreLock | None = None

    @property
    def location(self) -> str:
        """Where other processes open this store: an absolute local path, or the URL."""
        return self.path if "://" in self.path else str(Path(self.path).resolve())

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, writable: bool = False) -> FeatureStore:
        """Open an existing store; with `writable`, take the writer's lock."""
        path = str(path)
        fs, on_fs = store_filesystem(path)
        if not fs.isfile(f"{on_fs}/zarr.json"):
            raise StoreError(f"No feature store at {path}; create one with `featswap extract ... --store {path}`.")
        root = zarr.open_group(_zarr_location(path, fs, on_fs), mode="r+" if writable else "r")
        if root.attrs.get("featswap_store") != STORE_VERSION:
            raise StoreError(f"{path} is a zarr group but not a featswap feature store (version {STORE_VERSION}).")
        store = cls(root, path)
        if writable:
            store._take_lock()
        return store

    @classmethod
    def create(cls, path: str | Path, dataset: str, classes: tuple[str, ...]) -> FeatureStore:
        """Open the store at `path` for writing, creating it for `dataset` if it does not exist."""
        path = str(path)
        fs, on_fs = store_filesystem(path)
        if fs.isfile(f"{on_fs}/zarr.json"):
            store = cls.open(path, writable=True)
            known = store._dataset
            if known.get("name") != dataset or tuple(known.get("classes", ())) != tuple(classes):
                store.close()
                raise StoreError(
                    f"The store {path} holds dataset {known.get('name')!r} with {len(known.get('classes', []))} "
                    f"classes, not {dataset!r} with {len(classes)}; use another --store path."
                )
            return store
        fs.makedirs(on_fs, exist_ok=True)
        root = zarr.open_group(_zarr_location(path, fs, on_fs), mode="w")
        root.attrs.update({"featswap_store": STORE_VERSION, "dataset": {"name": dataset, "classes": list(classes)}})
        store = cls(root, path)
        store._take_lock()
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

    # -- dataset ---------------------------------------------------------------------------------
    @property
    def _dataset(self) -> dict[str, Any]:
        dataset: dict[str, Any] = self.root.attrs.asdict()["dataset"]  # type: ignore[assignment]
        return dataset

    @property
    def dataset_name(self) -> str:
        return str(self._dataset["name"])

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self._dataset["classes"])

    def splits(self) -> list[str]:
        return sorted(k for k in self.root.group_keys() if k != "models")

    def _split(self, split: str) -> zarr.Group:
        if split not in self.root:
            raise StoreError(f"The store {self.path} has no split {split!r}.{closest(split, self.splits())}")
        return _group(self.root, split)

    def write_split(self, split: str, ids: list[str] | np.ndarray, labels: np.ndarray) -> None:
        """Record a split's id order and labels, or check they equal the ones already stored."""
        ids = np.asarray(ids, dtype=str)
        labels = np.asarray(labels, dtype=np.int64)
        if len(ids) != len(labels):
            raise StoreError(f"{len(ids)} ids but {len(labels)} labels for split {split!r}.")
        if len(set(ids.tolist())) != len(ids):
            raise StoreError(f"Split {split!r} has duplicate ids; every sample needs a unique id.")
        if split in self.root:
            stored_ids = self.ids(split)
            stored_labels = np.asarray(_array(self._split(split), "labels")[:], dtype=np.int64)
            if len(stored_ids) != len(ids) or not np.array_equal(stored_ids, ids):
                raise StoreError(
                    f"Split {split!r} in {self.path} holds {len(stored_ids)} samples in another id order than "
                    f"the {len(ids)} given; features are only paired by id. Use a new store for other data."
                )
            if not np.array_equal(stored_labels, labels):
                raise StoreError(f"Split {split!r} in {self.path} holds other labels for the same ids.")
            return
        group = self.root.create_group(split)
        group.create_array("ids", shape=ids.shape, dtype=str)[:] = ids
        group.create_array("labels", shape=labels.shape, dtype="int64")[:] = labels

    def ids(self, split: str) -> np.ndarray:
        """Sample ids `(N,)` of a split, in the store's order."""
        # zarr returns numpy's variable-width StringDType, which does not cast to fixed-width str directly.
        return np.array(list(_array(self._split(split), "ids")[:]), dtype=str)  # type: ignore[arg-type]

    def labels(self, split: str) -> np.ndarray:
        """Labels `(K,)` int64 of the kept (not skipped) samples of a split."""
        return np.asarray(_array(self._split(split), "labels")[:], dtype=np.int64)[self.kept(split)]

    # -- skipped samples -------------------------------------------------------------------------
    def skipped(self, split: str) -> dict[str, str]:
        """Ids of a split's unreadable images skipped by extraction, with the reason for each."""
        skipped: dict[str, str] = self._split(split).attrs.asdict().get("skipped", {})  # type: ignore[assignment]
        return dict(skipped)

    def add_skipped(self, split: str, reasons: dict[str, str]) -> None:
        group = self._split(split)
        group.attrs["skipped"] = {**self.skipped(split), **reasons}

    def kept(self, split: str) -> np.ndarray:
        """`(N,)` bool: samples every reader uses (all but skipped ones, for every model alike)."""
        skipped = self.skipped(split)
        if not skipped:  # the common case: no need to read every id string
            return np.ones(_array(self._split(split), "ids").shape[0], dtype=bool)
        return ~np.isin(self.ids(split), list(skipped))

    def kept_ids(self, split: str) -> np.ndarray:
        return self.ids(split)[self.kept(split)]

    # -- models ----------------------------------------------------------------------------------
    def models(self) -> list[str]:
        return sorted(_group(self.root, "models").group_keys()) if "models" in self.root else []

    def write_model(self, name: str, attrs: dict[str, Any], head_weight: np.ndarray, head_bias: np.ndarray) -> None:
        """Record a model's head `(C, D)`, `(C,)` and metadata; refuse a different model under the same name."""
        models = self.root.require_group("models")
        if name in models:
            old = _group(models, name).attrs.asdict()
            for key in ("spec", "feature_dim", "weights_sha256"):
                if old.get(key) != attrs.get(key):
                    raise StoreError(
                        f"The store already holds a model named {name!r} with {key} {old.get(key)!r}, not "
                        f"{attrs.get(key)!r}. Give this model another name or use another store."
                    )
            return
        group = models.create_group(name)
        group.attrs.update(attrs)
        group.create_array("head_weight", shape=head_weight.shape, dtype="float32")[:] = head_weight
        group.create_array("head_bias", shape=head_bias.shape, dtype="float32")[:] = head_bias

    def model_attrs(self, name: str) -> dict[str, Any]:
        return self._model(name).attrs.asdict()

    def head(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A model's head `(W (C, D), b (C,))` float32."""
        group = self._model(name)
        return np.asarray(_array(group, "head_weight")[:]), np.asarray(_array(group, "head_bias")[:])

    def _model(self, name: str) -> zarr.Group:
        if name not in self.models():
            raise StoreError(f"The store {self.path} has no model {name!r}.{closest(name, self.models())}")
        return _group(_group(self.root, "models"), name)

    # -- features --------------------------------------------------------------------------------
    def feature_array(self, split: str, name: str, dim: int, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> zarr.Array:
        """The `(N, D)` float32 feature array of a model in a split, created empty if new."""
        group = self._split(split)
        feats = group.require_group("features")
        done = group.require_group("done")
        n = int(_array(group, "ids").shape[0])
        if name in feats:
            array = _array(feats, name)
            if array.shape != (n, dim):
                raise StoreError(
                    f"Stored features of {name!r} in split {split!r} have shape {array.shape}, expected {(n, dim)}."
                )
            return array
        array = feats.create_array(name, shape=(n, dim), chunks=(min(chunk_rows, max(n, 1)), dim), dtype="float32")
        n_chunks = -(-n // array.chunks[0])
        done.create_array(name, shape=(n_chunks,), dtype="bool", fill_value=False)
        return array

    def done_chunks(self, split: str, name: str) -> np.ndarray:
        """`(n_chunks,)` bool: which row chunks of a model's features are complete."""
        group = self._split(split)
        if "done" not in group or name not in _group(group, "done"):
            return np.zeros(0, dtype=bool)
        return np.asarray(_array(_group(group, "done"), name)[:], dtype=bool)

    def mark_done(self, split: str, name: str, chunk: int) -> None:
        _array(_group(self._split(split), "done"), name)[chunk] = True

    def has_features(self, split: str, name: str) -> bool:
        done = self.done_chunks(split, name)
        return bool(done.size) and bool(done.all())

    def features(self, split: str, name: str) -> np.ndarray:
        """All features `(N, D)` float32 of a model in a split (checked complete and finite)."""
        return np.concatenate(list(self.iter_features(split, name)), axis=0)

    def iter_features(self, split: str, name: str, rows: int | None = None) -> Iterator[np.ndarray]:
        """Features of a complete model/split in row blocks `(rows, D)`, in id order; memory O(rows * D)."""
        if not self.has_features(split, name):
            known = [m for m in self.models() if self.has_features(split, m)] if split in self.splits() else []
            partial = self.done_chunks(split, name).size > 0
            hint = " (extraction was interrupted: run extract again to resume)" if partial else ""
            raise StoreError(
                f"The store {self.path} has no complete features of {name!r} for split {split!r}{hint}."
                f"{closest(name, known) if name not in known else ''}"
            )
        array = _array(_group(self._split(split), "features"), name)
        kept = self.kept(split)
        step = rows or array.chunks[0]
        for start in range(0, array.shape[0], step):
            yield self.read_rows(split, name, start, start + step, kept[start : start + step])

    def read_rows(self, split: str, name: str, start: int, stop: int, kept: np.ndarray | None = None) -> np.ndarray:
        """Features `(k, D)` of the kept samples among stored rows `start .. stop - 1`, checked finite;
        `kept` is `self.kept(split)[start:stop]` when the caller already has it."""
        array = _array(_group(self._split(split), "features"), name)
        block = np.asarray(array[start:stop], dtype=np.float32)
        block = block[self.kept(split)[start:stop] if kept is None else kept]
        if not np.isfinite(block).all():
            bad = int(self.kept(split)[:start].sum()) + int(np.argwhere(~np.isfinite(block))[0, 0])
            raise StoreError(
                f"Features of {name!r} in split {split!r} hold NaN/inf, first at id {str(self.kept_ids(split)[bad])!r}."
            )
        return block

    def pairs(
        self, split: str, source: str, target: str, rows: int | None = None, engine: str = "local"
    ) -> PairedFeatures:
        """Paired features of two models in a split, streamed in row blocks (see `featswap.paired`); with
        engine "ray", chunk statistics are computed by Ray tasks (see `featswap.ray_pairs`)."""
        pairs = StorePairs(self, split, source, target, rows)
        if engine == "ray":
            from featswap.ray_pairs import RayPairs

            return RayPairs(pairs)
        check_engine(engine)
        return pairs


class StorePairs:
    """Paired features read from a store: `chunks()` streams row blocks, `take(rows)` reads selected rows."""

    def __init__(self, store: FeatureStore, split: str, source: str, target: str, rows: int | None = None) -> None:
        for name in (source, target):
            if not store.has_features(split, name):
                next(store.iter_features(split, name))  # raises the store's explanation
        self.store, self.split, self.source, self.target = store, split, source, target
        self._x = _array(_group(store._split(split), "features"), source)
        self._y = _array(_group(store._split(split), "features"), target)
        self._rows = np.flatnonzero(store.kept(split))  # stored row of each kept sample
        self.n, self.dx = len(self._rows), self._x.shape[1]
        self.dy = self._y.shape[1]
        # One stored chunk per block keeps memory at O(chunk rows * (Dx + Dy)) and matrix products efficient.
        self.rows = rows or self._x.chunks[0]

    @property
    def n_blocks(self) -> int:
        """Blocks of `rows` stored rows each (fewer rows when samples were skipped)."""
        return -(-int(self._x.shape[0]) // self.rows)

    def block(self, index: int, kept: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Block `index` of `chunks()`: `(x (k, dx), y (k, dy))`; `kept` as in `FeatureStore.read_rows`."""
        start, stop = index * self.rows, (index + 1) * self.rows
        kept = self.store.kept(self.split)[start:stop] if kept is None else kept
        return (
            self.store.read_rows(self.split, self.source, start, stop, kept),
            self.store.read_rows(self.split, self.target, start, stop, kept),
        )

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        kept = self.store.kept(self.split)
        for index in range(self.n_blocks):
            yield self.block(index, kept[index * self.rows : (index + 1) * self.rows])

    def map_chunks(self, fn: ChunkFn[R], device: str = "cpu") -> Iterator[R]:
        return map_chunks_here(self, fn, device)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(rows) == self.n:
            return self.store.features(self.split, self.source), self.store.features(self.split, self.target)
        stored = self._rows[rows]
        x = np.asarray(self._x.get_orthogonal_selection((stored, slice(None))), dtype=np.float32)
        y = np.asarray(self._y.get_orthogonal_selection((stored, slice(None))), dtype=np.float32)
        for name, block in ((self.source, x), (self.target, y)):
            if not np.isfinite(block).all():
                bad = int(rows[np.argwhere(~np.isfinite(block))[0, 0]])
                raise StoreError(
                    f"Features of {name!r} in split {self.split!r} hold NaN/inf, first at id "
                    f"{str(self.store.kept_ids(self.split)[bad])!r}."
                )
        return x, y
