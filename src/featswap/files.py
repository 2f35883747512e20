"""Writing files safely, for every part of featswap that writes (maps, metrics, reports, configs): through a
temporary file renamed into place, so that a crash never leaves half a result, with filesystem failures turned
into one `OutputError` that says what to do; and the refusal to replace a file featswap did not write.

It sits below everything that writes (`mapping`, `outputs`, `experiment`), so none of them imports another to
write a file. Where run directories are claimed and cleared is `featswap.outputs.paths`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from featswap.errors import FeatswapError, os_error_advice


class OutputError(FeatswapError):
    """An output location that featswap may not or cannot write."""


@contextlib.contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Turn a filesystem failure while writing `path` into an OutputError that says what to do."""
    try:
        yield
    except (NotADirectoryError, FileExistsError) as err:
        raise OutputError(
            f"Cannot write {path}: {err.filename or path} is a file where a directory is needed. Choose another "
            "output path."
        ) from None
    except IsADirectoryError as err:
        raise OutputError(
            f"Cannot write {path}: {err.filename or path} is a directory where a file is needed. Choose another "
            "output path."
        ) from None
    except OSError as err:
        raise OutputError(f"Cannot write {path}: {err.strerror or err}. {os_error_advice(err)}") from None


def check_output_file(path: Path, is_ours: Callable[[Path], bool], what: str, option: str = "--out") -> Path:
    """Refuse to write `path` when it is a directory, or an existing file that `is_ours` does not recognise
    as featswap's own `what`."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a directory; give a file path for the {what}.")
    if path.exists() and not is_ours(path):
        raise OutputError(
            f"{option} {path} exists and is not a {what} written by featswap; featswap never overwrites it. "
            "Give another path."
        )
    return path


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    with writing_to(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(fd)
        try:
            write(Path(tmp))
            os.chmod(tmp, 0o666 & ~umask())  # as an ordinary new file: mkstemp makes it private to its owner
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: Any) -> Path:
    """Write `data` as strict JSON (no NaN or infinity, which JSON does not have) atomically."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    except ValueError as err:
        raise FeatswapError(f"Cannot write {path}: {err} (featswap writes undefined values as null).") from None
    return write_text(path, text)
