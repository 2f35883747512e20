"""Reading a feature store's zarr nodes so that damage is an error saying what to do, never a traceback or a
silent zero: a missing member, metadata that cannot be decoded, a member of the wrong kind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import zarr

from featswap.errors import StoreError, os_error_advice


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


def damaged(what: str, err: BaseException) -> StoreError:
    """The error for a store member that cannot be read."""
    return StoreError(
        f"The store is damaged: {what} cannot be read ({type(err).__name__}: {err}). Run `featswap verify STORE` "
        "to see what is damaged and how to repair it."
    )


def child(parent: zarr.Group, key: str, kind: type) -> Any:
    """`parent[key]`, checked to be a zarr `kind` (Group or Array)."""
    try:
        node = parent[key]
    except KeyError:
        raise StoreError(
            f"The store is damaged: {parent.store_path}/{key} is missing. Run `featswap verify STORE` to see what is "
            "damaged and how to repair it."
        ) from None
    except Exception as err:  # a damaged zarr.json below the group
        raise damaged(f"{parent.store_path}/{key}", err) from None
    if not isinstance(node, kind):
        raise StoreError(
            f"{parent.store_path}/{key} should be a zarr {kind.__name__.lower()}; the store is damaged. Run "
            "`featswap verify STORE`."
        )
    return node


def has_child(parent: zarr.Group, key: str) -> bool:
    """Whether `parent` holds a member `key`; a member whose metadata cannot be read is damage, not absence."""
    try:
        return key in parent
    except Exception as err:
        raise damaged(f"{parent.store_path}/{key}", err) from None


def child_keys(parent: zarr.Group, groups: bool) -> list[str]:
    """The names of `parent`'s groups (or arrays), sorted."""
    try:
        return sorted(parent.group_keys() if groups else parent.array_keys())
    except Exception as err:
        raise damaged(f"the members of {parent.store_path}", err) from None


def child_group(parent: zarr.Group, key: str) -> zarr.Group:
    """The group `parent[key]`."""
    node: zarr.Group = child(parent, key, zarr.Group)
    return node


def child_array(parent: zarr.Group, key: str) -> zarr.Array:
    """The array `parent[key]`."""
    node: zarr.Array = child(parent, key, zarr.Array)
    return node


def finished_attr(array: zarr.Array) -> dict[str, Any]:
    """The `finished` attribute of a feature array: `{chunk: [start, stop, crc32]}` as stored."""
    finished = array.attrs.asdict().get("finished", {})
    return dict(finished) if isinstance(finished, dict) else {}


def read_array(array: zarr.Array, what: str, selection: Any = slice(None)) -> np.ndarray:
    """`array[selection]`, or a StoreError naming `what` when the stored bytes cannot be decoded."""
    try:
        return np.asarray(array[selection])
    except Exception as err:
        raise damaged(what, err) from None
