"""A run directory's lifecycle, for every kind of run (the experiment's `compare`, `evaluate` and `similarity`,
and stitching): `claim` it before any work (new, empty or featswap's own, never another's files), `begin`
writing (the outputs an earlier run recorded there are cleared, once, only now: a run that fails before writing
leaves the earlier results whole), and `finish` (the marker file records what this run wrote, so that the next
run clears exactly those).

It sits below the experiment and stitching, so that both use it without importing each other.
"""

from __future__ import annotations

import time
from pathlib import Path

from featswap.outputs.paths import claim_run_dir, clear_previous_outputs, record_outputs


class RunLifecycle:
    """The run directories one run claims and writes, each with the time it was claimed."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}  # run directories claimed by this run, and when
        self.cleared: set[str] = set()  # those whose earlier outputs this run has cleared

    def claim(self, out: Path) -> Path:
        """Claim `out` for this run (refusing a directory of files featswap did not write); nothing is cleared."""
        claim_run_dir(Path(out))
        self.started.setdefault(str(Path(out).resolve()), time.time())
        return Path(out)

    def begin(self, out: Path) -> Path:
        """Claim `out` if not yet claimed and, the first time this run writes there, clear the outputs an earlier
        run recorded."""
        self.claim(out)
        key = str(Path(out).resolve())
        if key not in self.cleared:
            clear_previous_outputs(Path(out))
            self.cleared.add(key)
        return Path(out)

    def finish(self, out: Path) -> None:
        """Record in `out`'s marker the outputs this run wrote since it claimed `out`."""
        record_outputs(Path(out), self.started[str(Path(out).resolve())])
