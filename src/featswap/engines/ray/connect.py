"""Connecting to Ray (the optional extra `featswap[ray]`): a local instance, a running cluster, or Ray Client.

Everything Ray-specific imports `ray` through `require_ray`, so featswap runs without it and says how to
install it when the Ray engine is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from featswap.errors import ClusterError, FeatswapError


def require_ray() -> ModuleType:
    """The `ray` module, or a ClusterError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ClusterError(
            f"The Ray engine needs Ray Data ({err.msg}). Install it with: pip install 'featswap[ray]'"
        ) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> ModuleType:
    """Connect this process to Ray once: `address` None starts a local instance (unless RAY_ADDRESS names
    a cluster), `"auto"` joins the cluster running on this machine, `"ray://HOST:PORT"` uses Ray Client.
    `num_cpus` only applies to a local instance started here."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address is None:
        options["num_cpus"] = num_cpus
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as err:
        reason = str(err).rstrip(".")
        raise ClusterError(
            f"Cannot reach a Ray cluster at {address!r}: {reason}. Start one with `ray start --head` (or give its "
            "ray://HOST:10001 address), or leave out --address for a local instance."
        ) from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # featswap draws its own
    # Errors in featswap's own code on workers (an unreadable image, a network that differs) keep their type.
    context.raise_original_map_exception = True
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


CLIENT_EXTRACTION = (
    "Extraction runs on Ray Data, which does not run through Ray Client (a ray:// address). Run featswap on "
    "the cluster's head node with --address auto, or submit it there as a Ray job: "
    "ray job submit --address http://HEAD:8265 -- featswap extract ... --engine ray --address auto"
)


def is_client_address(address: str | None) -> bool:
    """Whether `address` (or, when None, the RAY_ADDRESS environment variable) names a Ray Client server."""
    return (address or os.environ.get("RAY_ADDRESS", "")).startswith("ray://")


def check_not_client() -> None:
    """Refuse Ray Data work in a Ray Client session, which it does not support."""
    from ray.util.client import ray as client

    if client.is_connected():
        raise ClusterError(CLIENT_EXTRACTION)


def connected_ray() -> ModuleType:
    """The `ray` module of a process connected to a cluster, or a ClusterError saying to connect first."""
    ray = require_ray()
    if not ray.is_initialized():
        raise ClusterError("Not connected to Ray: call featswap.engines.ray.connect.connect() first.")
    return ray


def cluster_resources() -> dict[str, float]:
    """CPUs, GPUs and memory the connected cluster has in all."""
    return {k: float(v) for k, v in require_ray().cluster_resources().items()}


def featswap_cause(err: BaseException) -> FeatswapError | None:
    """The featswap error a Ray task or actor raised, found in the chain Ray wraps it in (None if none)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, FeatswapError) and not isinstance(getattr(current, "cause", None), BaseException):
            return current  # the innermost: Ray's wrappers derive from the cause's class and carry it as .cause
        todo += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return None


@contextlib.contextmanager
def featswap_errors() -> Iterator[None]:
    """Re-raise a featswap error that Ray wrapped (from a task or an actor) as itself, so the user sees
    featswap's one-line message; any other error passes unchanged."""
    try:
        yield
    except Exception as err:
        cause = featswap_cause(err)
        if cause is not None:
            raise cause from None
        raise
