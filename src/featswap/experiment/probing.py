"""Probe heads of a run: trained on the stored features of the labelled fitting images, after their extraction,
and written into the store in place of the zeros a probe-headed model is recorded with (`FeatureStore.write_probe`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from featswap.errors import DataError

if TYPE_CHECKING:
    from featswap.data.collections import Collection
    from featswap.heads.probe import Chunks
    from featswap.store import FeatureStore


def check_probe_data(name: str, fit: Collection, evaluation: Collection) -> None:
    """Refuse, before any extraction, fitting images a probe head cannot be trained on: unlabelled ones, or ones
    labelled in another label space than the evaluation images'."""
    if fit.labels is None:
        raise DataError(
            f"{name} has a probe head, trained on labelled fitting images, but {fit.name} ({fit.spec}) has no labels. "
            "Fit on labelled images (--data, or --fit-data imagefolder:DIR), or give a model with its own head."
        )
    if tuple(fit.classes or ()) != tuple(evaluation.classes or ()):
        raise DataError(
            f"{name}'s probe head is trained on {fit.name}'s labels, whose classes are not {evaluation.name}'s (the "
            "head's outputs); fit and evaluate on images labelled with the same classes (or --class-names FILE)."
        )


def stored_chunks(store: FeatureStore, collection: str, name: str) -> Chunks:
    """A fresh pass over a model's stored features of `collection` with their labels, chunk by chunk."""
    labels = store.labels(collection)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        offset = 0
        for x in store.iter_features(collection, name):
            yield x, labels[offset : offset + len(x)]
            offset += len(x)

    return chunks


def train_probes(store: FeatureStore, collection: str, names: Sequence[str], say: Callable[[str], None]) -> None:
    """Train every probe head of `names` not trained yet on `collection`'s stored features and labels."""
    import time

    from featswap.heads.kinds import describe
    from featswap.heads.probe import fit_probe

    for name in names:
        if name not in store.models() or not store.probe_pending(name):
            continue
        if not store.labelled(collection):
            raise DataError(f"{name}'s probe head needs labelled fitting images; {collection} has no labels.")
        classes = int(store.head(name, pending_ok=True)[0].shape[0])
        start = time.perf_counter()
        say(f"{name}: training its probe head on the {len(store.labels(collection)):,} fitting images of {collection}")
        probe = fit_probe(stored_chunks(store, collection, name), classes)
        record = {**probe.record(), "fit_collection": collection}
        store.write_probe(name, probe.weight, probe.bias, record)
        say(f"{name}: {describe(store.head_record(name))} ({time.perf_counter() - start:.1f} s)")
