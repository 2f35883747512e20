"""Where a feature store lives: a local directory or any URL fsspec reaches, and what is already there."""

from __future__ import annotations

from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from featswap.errors import StoreError

#: The file that makes a directory a zarr v3 group; featswap's own attributes are inside it.
ZARR_JSON = "zarr.json"


def store_filesystem(location: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a store location (a local path or a URL such as s3://bucket/x.zarr) and the
    store's path on it."""
    import fsspec

    try:
        fs, on_fs = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as err:
        raise StoreError(f"Cannot open the store location {location!r}: {err}") from None
    return fs, str(on_fs).rstrip("/")


def zarr_location(location: str, fs: AbstractFileSystem, on_fs: str) -> str:
    """What zarr opens: a plain path for local files (`file://` URLs too; zarr's local store makes the
    directories it writes into), else the URL."""
    return on_fs if isinstance(fs, LocalFileSystem) else location


def check_new_store_location(location: str, fs: AbstractFileSystem, on_fs: str) -> None:
    """Refuse to create a store where something else already is: a file, or a directory with contents
    (featswap never deletes or overwrites what it did not write). An empty or absent directory is fine."""
    try:
        if fs.isfile(on_fs):
            raise StoreError(f"--store {location} is a file; give a directory (new or empty) for the feature store.")
        if fs.isdir(on_fs) and fs.ls(on_fs, detail=False):
            raise StoreError(
                f"--store {location} is a directory with other contents, not a featswap feature store; featswap "
                "does not write into it. Give a new or empty directory for the store."
            )
    except OSError as err:
        raise StoreError(f"Cannot look at the store location {location}: {err}") from None
