"""Progress bars for long work (rich), quiet when output is not a terminal unless asked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


def rate(done: int, seconds: float, unit: str = "images") -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 else ""


@contextmanager
def counting(description: str, total: int, disable: bool = False) -> Iterator[Callable[[int], None]]:
    """A progress bar of `total` images; yields `advance(n)`, which counts `n` more done and shows the rate."""
    began = time.perf_counter()
    done = [0]
    with bar(disable=disable) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            done[0] += n
            progress.update(task, advance=n, rate=rate(done[0], time.perf_counter() - began))

        yield advance
