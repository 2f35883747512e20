"""Which featswap wrote a file: its version, and the git commit of its source when that is a git checkout.

Pure Python (one `git` call, made once per process): config.toml records it in its `[featswap]` table.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from featswap import __version__

#: The commit recorded where featswap's source is not a git checkout (an installed wheel) or git is absent.
UNKNOWN = "unknown"


@functools.cache
def source_commit() -> str:
    """The commit (its hex name) checked out where featswap's source lies, or "unknown" where the source is not
    tracked by git (installed from a wheel, or inside some other repository's untracked folder), git is absent or
    does not answer within 10 s."""
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(package), *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        # Tracked: a venv's site-packages inside a user's own repository is not featswap's checkout.
        git("ls-files", "--error-unmatch", "--", "__init__.py")
        commit = git("rev-parse", "--verify", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return commit if len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit) else UNKNOWN


def provenance() -> dict[str, str]:
    """`{"version": featswap's version, "commit": source_commit()}`."""
    return {"version": __version__, "commit": source_commit()}
