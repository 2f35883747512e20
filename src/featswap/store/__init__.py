"""The feature store (zarr v3, local or at an fsspec URL): features per split and model in one id order,
resumable by chunk, checked for damage on every read, written by one process at a time."""

from featswap.store.feature_store import DEFAULT_CHUNK_ROWS, STORE_VERSION, FeatureStore, StorePairs
from featswap.store.integrity import VerifyReport

__all__ = ["DEFAULT_CHUNK_ROWS", "STORE_VERSION", "FeatureStore", "StorePairs", "VerifyReport"]
