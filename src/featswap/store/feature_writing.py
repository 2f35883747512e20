"""Writing a model's features into a store, one whole chunk of rows at a time, each recorded as finished with its
row range and checksum only once written (so an interrupted extraction resumes from the finished chunks)."""

from __future__ import annotations

import numpy as np
import zarr

from featswap.errors import StoreError
from featswap.store.integrity import ChunkRecord, crc32
from featswap.store.model_records import ModelRecords
from featswap.store.nodes import child_array, child_group, finished_attr, has_child, writing

DEFAULT_CHUNK_ROWS = 4096


class FeatureWriting(ModelRecords):
    """Feature arrays `(N, D)` float32 per collection and model, and their finished chunks."""

    def feature_array(
        self, collection: str, name: str, dim: int, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> zarr.Array:
        """The `(N, D)` float32 feature array of a model in a collection, created empty if new."""
        if chunk_rows < 1:
            raise StoreError(f"chunk_rows must be at least 1; got {chunk_rows}.")
        group = self._collection(collection)
        n = int(child_array(group, "ids").shape[0])
        with writing(self.path):
            feats = group.require_group("features")
            if has_child(feats, name):
                array = child_array(feats, name)
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
        return child_array(child_group(self._collection(collection), "features"), name)

    def stored_shape(self, collection: str, name: str) -> tuple[int, int]:
        """`(N, D)` of a model's feature array in a collection: every stored row, skipped samples included."""
        rows, dim = self._features(collection, name).shape
        return int(rows), int(dim)

    def chunk_rows(self, collection: str, name: str) -> int:
        """Rows per stored chunk of a model's features in a collection."""
        return int(self._features(collection, name).chunks[0])

    def _records(self, collection: str, name: str) -> dict[int, ChunkRecord]:
        """The finished chunks of a model's features, with their row ranges and checksums."""
        group = self._collection(collection)
        if not has_child(group, "features") or not has_child(child_group(group, "features"), name):
            return {}
        records = {}
        for key, value in finished_attr(self._features(collection, name)).items():
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
            finished = finished_attr(array)
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
        finished = finished_attr(array)
        with writing(self.path):
            array.attrs["finished"] = {k: v for k, v in finished.items() if int(k) not in set(chunks)}

    def done_chunks(self, collection: str, name: str) -> np.ndarray:
        """`(n_chunks,)` bool: which row chunks of a model's features are finished (empty if none exist)."""
        group = self._collection(collection)
        if not has_child(group, "features") or not has_child(child_group(group, "features"), name):
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
