"""Decoding worker processes that never outlive their work: a DataLoader's batches, its workers stopped on the way
out however the loop ends (its last batch, an error, Ctrl-C, SIGTERM turned into an exception by the command line).

torch stops a loader's workers when its iterator is garbage-collected; an exception keeps the iterator alive in
its traceback until the process exits, and a process killed by a signal never collects it. Stopping them here, in
`finally`, does not depend on either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch.utils.data import DataLoader

from featswap.errors import FeatswapError


@contextmanager
def worker_batches(loader: DataLoader[Any]) -> Iterator[Iterator[Any]]:
    """The batches of `loader` as an iterator, its worker processes stopped when the block ends, however it ends
    (a loop left by an exception keeps its iterator alive in the traceback; a `with` block does not wait for that)."""
    iterator = iter(loader)
    try:
        yield iterator
    except FeatswapError as err:
        raise without_worker_traceback(err) from None
    finally:
        stop_workers(iterator)


def without_worker_traceback(err: FeatswapError) -> FeatswapError:
    """A featswap error raised in a worker process, as torch passes it on (its message prefixed with "Caught ... in
    DataLoader worker process N. Original Traceback ..." and the whole traceback), with its own message again: the
    user sees one line saying what to fix, not a traceback."""
    text = str(err)
    if "Original Traceback" not in text:
        return err
    last = text.rstrip().splitlines()[-1]  # "featswap.errors.DataError: Cannot read image ..."
    prefix = f"{type(err).__module__}.{type(err).__qualname__}: "
    return type(err)(last[len(prefix) :] if last.startswith(prefix) else last)


def stop_workers(iterator: Any) -> None:
    """Stop the worker processes of a DataLoader iterator now (a single-process iterator has none)."""
    shutdown = getattr(iterator, "_shutdown_workers", None)  # torch's own, as its iterator's __del__ calls it
    if callable(shutdown):
        shutdown()
