"""Progress bars for long work (rich), quiet when output is not a terminal unless asked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, soft_wrap=True)

#: Whether work deep in the library (a solver's iterations) shows a progress bar: off unless a run turns it on
#: (`shown`), so that the Python API and tests print nothing of their own accord.
_SHOWN: ContextVar[bool] = ContextVar("featswap_progress_shown", default=False)


def bar(unit: str = "images", disable: bool = False) -> Progress:
    """A progress bar showing done/total, rate in `unit`/s, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


#: The label of the computation whose long loops may show a bar (`steps`), or None: no bar. Set by whoever knows
#: what is being computed and whether the user wants progress (`labelled`); read by the loops, which know neither.
_LABEL: ContextVar[str | None] = ContextVar("featswap_progress_label", default=None)


@contextmanager
def labelled(label: str | None) -> Iterator[None]:
    """Within this block, `steps` shows a bar described by `label` (None: shows nothing)."""
    token = _LABEL.set(label)
    try:
        yield
    finally:
        _LABEL.reset(token)


@contextmanager
def steps(total: int, unit: str = "it") -> Iterator[Callable[[int], None]]:
    """A bar of `total` steps (a solver's iterations) with their rate and the time left, shown only inside
    `labelled(label)`; yields `advance(n)`. A loop that stops early (early stopping) simply leaves it short."""
    label = _LABEL.get()
    with counting(label or "", total, disable=label is None, unit=unit) as advance:
        yield advance


def rate(done: int, seconds: float, unit: str = "images") -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 else ""


@contextmanager
def counting(
    description: str, total: int, disable: bool = False, unit: str = "images"
) -> Iterator[Callable[[int], None]]:
    """A progress bar of `total` images (or other `unit`s); yields `advance(n)`, which counts `n` more done and
    shows the rate."""
    began = time.perf_counter()
    done = [0]
    with bar(unit, disable=disable) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            done[0] += n
            progress.update(task, advance=n, rate=rate(done[0], time.perf_counter() - began, unit))

        yield advance
