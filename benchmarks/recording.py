"""What every benchmark writes with `--json PATH`: its headline figures, everything it printed, the command that ran
it, and the machine and date it ran on, so that the documentation's benchmark tables and plots are generated from
these files (`docs/hooks/benchmark_pages.py` reads `benchmarks/results/*.json`) rather than copied by hand.

    with Recording("extract", args.json) as record:   # prints go to the terminal and into the record
        ...
        record.figure("extract/forward", ratio, unit="x", target=">= 0.95")

Without a path nothing is written and the script behaves as before. The path is checked before the run (a folder,
an unwritable place or a file that is not a benchmark record is refused with one `error:` line); the file is
written when the block ends without an exception, by replacing it whole (a half-written record is never left
behind).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TextIO

FORMAT = "featswap-benchmark/1"
REPO = Path(__file__).resolve().parents[1]
TARGET = re.compile(r"^(<=|>=)\s*([0-9.]+(?:e[-+]?[0-9]+)?)$")


def target_bound(target: str) -> float:
    """The number of a target written "<= X" or ">= X"; anything else is a ValueError."""
    match = TARGET.match(target)
    if match is None:
        raise ValueError(f"target {target!r} is not '<= X' or '>= X'")
    return float(match.group(2))


def meets(value: float, target: str) -> bool:
    """Whether `value` meets `target` ("<= X" or ">= X")."""
    bound = target_bound(target)
    return value <= bound if target.startswith("<=") else value >= bound


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """The `--json PATH` option every benchmark takes (`benchmarks/results/NAME.json` feeds the docs)."""
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the figures, the printed output, the machine and the date to this JSON "
                             "file (benchmarks/results/NAME.json is what the documentation shows)")  # fmt: skip


@dataclass(frozen=True)
class Figure:
    """One headline number of a benchmark: a ratio measured side by side, a peak memory, an error."""

    name: str
    value: float
    unit: str = ""  # "x" for a ratio, "bool" for yes (1) or no (0), or a unit: "s", "GiB", "images"
    target: str | None = None  # as a reader would write it: "<= 1.10", ">= 0.95"
    met: bool | None = None  # None where there is no target


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on, as far as it can be read without extra packages."""
    found: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                found["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                found["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
        found["load_average"] = round(os.getloadavg()[0], 2)  # other work on the machine when the run began
    except OSError:
        pass
    found["gpu"] = None
    torch = sys.modules.get("torch")  # only when the benchmark itself imported it
    if torch is not None:
        found["torch"] = torch.__version__
        if torch.cuda.is_available():
            found["gpu"] = torch.cuda.get_device_name(0)
    found["python"] = platform.python_version()
    found["system"] = f"{platform.system()} {platform.release()}"
    return found


def describe(found: dict[str, Any]) -> str:
    """`machine()` in a few words, as the docs' tables show it: "2-core Intel Xeon ..., 24 GiB, no GPU"."""
    cores = found.get("cores")
    words = [f"{cores}-core {found.get('cpu', 'CPU')}" if cores else str(found.get("cpu", "CPU"))]
    if found.get("memory_gib"):
        words.append(f"{found['memory_gib']:g} GiB")
    words.append(found["gpu"] if found.get("gpu") else "no GPU")
    return ", ".join(words)


def commit() -> str | None:
    """The repository's commit, with `+changes` when the work tree differs from it; None outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def _refuse(message: str) -> NoReturn:
    """One `error:` line on stderr and exit status 2, as featswap's commands (and `benchmarks/gpu.py`) do."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Tee:
    """A text stream that writes to the terminal and keeps a copy."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal = terminal
        self.kept: list[str] = []

    def write(self, text: str) -> int:
        self.kept.append(text)
        return self.terminal.write(text)

    def flush(self) -> None:
        self.terminal.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)


@dataclass
class Recording:
    """A context that records what a benchmark prints and the figures it names, and writes them to `path`."""

    script: str
    path: Path | None
    argv: list[str] | None = None  # the script's arguments; sys.argv's by default
    figures: list[Figure] = field(default_factory=list)
    _tee: _Tee | None = None
    _started: str = ""
    _machine: dict[str, Any] = field(default_factory=dict)
    _commit: str | None = None

    def figure(self, name: str, value: float, *, unit: str = "", target: str | None = None) -> None:
        """Record one headline figure (printed lines are recorded anyway); `target` is "<= X" or ">= X", and
        whether it is met is worked out here."""
        met = None if target is None else meets(float(value), target)
        self.figures.append(Figure(name, float(value), unit, target, met))

    def check_path(self) -> None:
        """Refuse, before the run, a `--json` path that is a folder, whose folder cannot be written, or that holds a
        file this script did not write (a benchmark record is replaced; nothing else is)."""
        if self.path is None:
            return
        if self.path.is_dir():
            _refuse(f"--json {self.path} is a folder; give a file path such as {self.path}/x.json")
        if self.path.exists():
            try:
                found = json.loads(self.path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                found = None
            if not (isinstance(found, dict) and found.get("format") == FORMAT):
                _refuse(f"--json {self.path} exists and is not a benchmark record; it is left "
                                 "alone: give another path")  # fmt: skip
        folder = self.path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            _refuse(f"--json {self.path}: {folder} is not a folder this process can write to; give another path")

    def __enter__(self) -> Recording:
        self.check_path()
        self._started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._machine = machine()  # before the run: the load average of other work, not of this one
        self._commit = commit()  # the code that runs, whatever is committed while it runs
        if self.path is not None:
            self._tee = _Tee(sys.stdout)
            sys.stdout = self._tee
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        if self._tee is None:
            return
        sys.stdout = self._tee.terminal
        if kind is not None or self.path is None:
            return
        found = machine()  # again at the end: torch and the GPU are known once the benchmark has imported torch
        found["load_average"] = self._machine.get("load_average")
        record = {
            "format": FORMAT,
            "script": self.script,
            "command": " ".join(
                ["python", f"benchmarks/{self.script}.py", *(sys.argv[1:] if self.argv is None else self.argv)]
            ),
            "started": self._started,
            "date": self._started[:10],
            "commit": self._commit,
            "machine": found,
            "figures": [asdict(f) for f in self.figures],
            "output": "".join(self._tee.kept).splitlines(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        partial.replace(self.path)
        print(f"wrote {self.path}")
