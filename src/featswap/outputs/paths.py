"""Where featswap writes, and the promise that it never deletes or overwrites what it did not write.

A run directory (`compare --out`, `evaluate --out`, `demo --out`, `similarity --out`) is claimed before
anything is written: it must be new, empty, or a directory featswap made (it holds the marker file
`.featswap-run`). A single output file (`fit --out`) may replace
only a file featswap wrote. Files are written through a temporary file and renamed, so a crash never leaves a
half-written result in place of a whole one.
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

#: Marks a directory as written by featswap.
RUN_MARKER = ".featswap-run"


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


def _is_featswap_dir(path: Path) -> bool:
    """A directory featswap made: it holds the marker file (a copied metrics.json proves nothing)."""
    return (path / RUN_MARKER).is_file()


def check_run_dir(out: Path, option: str = "--out") -> Path:
    """Refuse `out` as a run directory when it is a file or a directory with contents featswap did not write
    (without creating anything: `claim_run_dir` does that)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out} is a file; give a directory (new or empty) for the results.")
    if out.is_dir() and any(out.iterdir()) and not _is_featswap_dir(out):
        raise OutputError(
            f"{option} {out} is a directory with other contents that featswap did not write; featswap never "
            "overwrites them. Give a new or empty directory."
        )
    return out


MARKER_TEXT = "This directory holds results written by featswap.\n"


def claim_run_dir(out: Path, option: str = "--out") -> Path:
    """Make `out` featswap's: create it, or accept it when empty or already featswap's; refuse a file or a
    directory with other contents. Returns `out`."""
    out = check_run_dir(out, option)
    with writing_to(out):
        out.mkdir(parents=True, exist_ok=True)
        if not (out / RUN_MARKER).is_file():
            (out / RUN_MARKER).write_text(MARKER_TEXT)
    return out


#: A run's outputs: files at the top of OUT, and in its figures/ and maps/ folders (never the feature store,
#: nor the demo's weights/).
OUTPUT_FOLDERS = ("", "figures", "maps")


def previous_outputs(out: Path) -> list[Path]:
    """The files the last run in `out` recorded as its outputs (see `record_outputs`)."""
    try:
        lines = (out / RUN_MARKER).read_text().splitlines()[1:]
        listed = json.loads(lines[0]).get("outputs", []) if lines else []
    except (OSError, ValueError, AttributeError):
        return []
    names = [n for n in listed if isinstance(n, str) and ".." not in Path(n).parts and not Path(n).is_absolute()]
    return [out / n for n in names if Path(n).parent.as_posix().strip(".") in OUTPUT_FOLDERS]


def clear_previous_outputs(out: Path) -> None:
    """Remove the outputs an earlier run recorded in `out`, so that a new run's results never stand beside
    stale ones (another run's predictions, figures of sets or models this run does not have). Only files that
    run wrote are removed; the feature store, the demo's weights and anything else stay."""
    with writing_to(out):
        for path in previous_outputs(out):
            if path.is_file() and not path.is_symlink():
                path.unlink()
        (out / RUN_MARKER).write_text(MARKER_TEXT)


def record_outputs(out: Path, since: float) -> None:
    """Record in OUT's marker the output files this run wrote (modified since `since`, a `time.time()`), for
    the next run in OUT to clear."""
    written = sorted(
        path.relative_to(out).as_posix()
        for folder in OUTPUT_FOLDERS
        if (out / folder).is_dir()
        for path in (out / folder).iterdir()
        if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime >= since - 1
    )
    with writing_to(out):
        (out / RUN_MARKER).write_text(MARKER_TEXT + json.dumps({"outputs": written}) + "\n")


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
            os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file: mkstemp makes it private to its owner
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def _umask() -> int:
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
