"""User-facing errors. Every message says what went wrong and what to do next."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FeatswapError(Exception):
    """Base class of every error featswap raises on user input."""


class SpecError(FeatswapError):
    """An unknown or malformed model / data / solver name."""


class ModelError(FeatswapError):
    """A network cannot be used as `C(F(x))` (wrong head, bad weights, logits mismatch)."""


class DataError(FeatswapError):
    """Samples, labels or features are inconsistent or unusable."""


class StoreError(FeatswapError):
    """The feature store is missing, incomplete, locked or inconsistent."""


class FitError(FeatswapError):
    """A map cannot be fitted on the given features."""


class ClusterError(FeatswapError):
    """The Ray engine cannot run: Ray is missing, the cluster is unreachable or lacks the resources asked for."""


def os_error_advice(err: OSError) -> str:
    """What a user can do about a filesystem error, by its errno."""
    import errno

    return {
        errno.ENOSPC: "Free some space or choose a location with room.",
        errno.EDQUOT: "Free some space or choose a location with room.",
        errno.EFBIG: "Choose a location that takes larger files.",
        errno.EROFS: "Choose a location on a writable filesystem.",
        errno.EACCES: "Check the permissions, or choose a location this user can use.",
        errno.EPERM: "Check the permissions, or choose a location this user can use.",
        errno.ENOENT: "Check the path.",
        errno.ENOTDIR: "A file stands where a directory is needed; check the path.",
        errno.EISDIR: "A directory stands where a file is needed; check the path.",
    }.get(err.errno or 0, "Check the path and try again.")


def few(items: list[str], n: int = 8) -> str:
    """`[first, second, ..., ] (K in all)`: the first `n` of `items` and how many there are, for a message."""
    shown = ", ".join(items[:n])
    return f"[{shown}{', ...' if len(items) > n else ''}] ({len(items)} in all)"


def closest(name: str, known: Iterable[str], n: int = 3) -> str:
    """A hint naming the known names closest to `name` ("" when none is close)."""
    known = sorted(known)
    near = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    if near:
        return f" Did you mean {', '.join(repr(k) for k in near)}?"
    return f" Known: {', '.join(known)}." if known else ""
