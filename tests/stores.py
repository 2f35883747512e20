"""Small real feature stores of synthetic models, shared by the tests of the statistics' parts and device path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featswap.store import FeatureStore


def three_model_store(path: Path, rows: int = 300, dim: int = 24) -> list[str]:
    """A real store with three synthetic models (features of a shared latent through each model's own map and a
    ReLU, linear heads over 5 classes) on a `train` collection."""
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    z = rng.standard_normal((rows, 6)).astype(np.float32)
    labels = (z[:, 0] > 0).astype(np.int64) + 2 * (z[:, 1] > 0)
    with FeatureStore.create(path) as store:
        store.write_collection(
            "train", [f"i{k}" for k in range(rows)], labels, ("0", "1", "2", "3", "4"), spec="", role="fit"
        )
        for k, name in enumerate(names):
            features = np.maximum(z @ rng.standard_normal((6, dim + k)).astype(np.float32) + 1.0, 0)
            attrs = {"spec": name, "feature_dim": dim + k, "num_classes": 5, "weights_sha256": None}
            weight = rng.standard_normal((5, dim + k)).astype(np.float32)
            store.write_model(name, attrs, weight, np.zeros(5, np.float32))
            store.write_features("train", name, features.astype(np.float32))
    return names
