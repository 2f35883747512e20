"""Reading features back from a store: whole arrays, streamed chunks or selected rows of the kept samples, every
chunk checked against the row range and checksum recorded when it was written."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from featswap.errors import StoreError, closest
from featswap.store.feature_writing import FeatureWriting
from featswap.store.integrity import crc32
from featswap.store.nodes import read_array
from featswap.store.pairs import StorePairs


class FeatureReading(FeatureWriting):
    """Checked reads of the features a store holds."""

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
        block = read_array(array, where, slice(start, stop)).astype(np.float32, copy=False)
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
        n = self.stored_shape(collection, name)[0]
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
        dim = self.stored_shape(collection, name)[1]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, dim), np.float32)

    def pairs(self, collection: str, source: str, target: str, *, rows: int | None = None) -> StorePairs:
        """Paired features of two models on a collection, streamed in row blocks (see `featswap.mapping.paired`;
        an engine decides where their per-chunk statistics run)."""
        return StorePairs(self, collection, source, target, rows)
