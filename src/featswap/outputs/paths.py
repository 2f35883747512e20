"""Where featswap writes, and the promise that it never deletes or overwrites what it did not write.

A run directory (`compare --out`, `evaluate --out`, `demo --out`, `similarity --out`) is claimed before
anything is written: it must be new, empty, or a directory featswap made (it holds the marker file
`.featswap-run`). A single output file (`fit --out`) may replace
only a file featswap wrote. Files are written through a temporary file and renamed, so a crash never leaves a
half-written result in place of a whole one.
"""

from __future__ import annotations

import json
from pathlib import Path

from featswap.files import OutputError, atomic_write, check_output_file, write_json, write_text, writing_to

#: Writing files lives in `featswap.files`, below every writer; its names are re-exported here for the outputs.
__all__ = ["RUN_MARKER", "OutputError", "atomic_write", "check_output_file", "check_run_dir", "claim_run_dir",
           "clear_previous_outputs", "previous_outputs", "record_outputs", "write_json", "write_text",
           "writing_to"]  # fmt: skip

#: Marks a directory as written by featswap.
RUN_MARKER = ".featswap-run"


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
