"""`featswap verify`: check a whole store (heads, ids, labels, every finished chunk) and list each damaged place with
its repair; nothing stops the check."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from featswap.errors import StoreError
from featswap.store.feature_reading import FeatureReading
from featswap.store.integrity import Damage, VerifyReport, crc32
from featswap.store.nodes import child_group, child_keys, has_child


class StoreVerification(FeatureReading):
    """Damage checks over everything a store recorded."""

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
        present = child_keys(child_group(group, "features"), groups=False) if has_child(group, "features") else []
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
