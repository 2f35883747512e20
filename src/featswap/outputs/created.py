"""What a refused run leaves: nothing. The local folders a run is about to create are noted before it creates them;
when it is refused before it has written a result (a feature, a report), exactly those folders go again, with what
this run put in them. Folders that were there before the run are never removed."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


def first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` (itself included) that does not exist yet: what creating `path` would
    create; None when `path` exists."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


@contextlib.contextmanager
def removed_if_refused(paths: list[str | None], kept: Callable[[], bool]) -> Iterator[None]:
    """Run the block; when it fails (an error, Ctrl-C, SIGTERM) and `kept()` says it wrote nothing worth keeping,
    remove the folders among `paths` (local paths; URLs and None are left alone) that the block created."""
    new = {p for p in (first_missing(Path(x)) for x in paths if x is not None and "://" not in x) if p is not None}
    try:
        yield
    except BaseException:
        if new and not kept():
            for path in sorted(new, key=lambda p: len(p.parts)):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
        raise
