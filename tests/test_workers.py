"""Decoding workers: `--workers` is bounded by the machine (its CPUs and its open-file limit), and no worker process
outlives its command, however the command ends: success, an error, Ctrl-C (exit 130), SIGTERM (exit 143). The
commands run as real processes, each in its own process group, whose members are counted in /proc."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from featswap.cli import app
from featswap.config import ExtractionSettings, RunConfig
from featswap.errors import SpecError
from featswap.threads import FILES_PER_WORKER, RESERVED_FILES, WORKERS_PER_CPU, max_workers, usable_cpus

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts processes in /proc (Linux)")


def test_workers_beyond_the_machine_are_refused_where_they_enter(runner: CliRunner, tmp_path: Path) -> None:
    most, why = max_workers()
    assert (most <= WORKERS_PER_CPU * usable_cpus() and "CPU" in why) or "open-file" in why
    assert ExtractionSettings(workers=most).workers == most  # the bound itself is accepted
    with pytest.raises(SpecError, match=rf"workers {most + 1:,} is more worker processes than this machine allows"):
        ExtractionSettings(workers=most + 1)
    result = runner.invoke(app, ["extract", "--model", "tiny-resnet", "--data", "digits", "--workers", "100000",
                                 "--store", str(tmp_path / "s.zarr")])  # fmt: skip
    assert result.exit_code == 2
    assert result.output.startswith("error: --workers 100,000 is more worker processes than this machine allows")
    assert f"use at most {most:,}" in result.output and len(result.output.strip().splitlines()) == 1
    config = tmp_path / "run.toml"
    config.write_text("[extraction]\nworkers = 10000\n")
    with pytest.raises(SpecError, match="workers 10,000 is more worker processes"):
        RunConfig.build(config)
    assert not (tmp_path / "s.zarr").exists()


def test_the_open_file_limit_bounds_the_workers_too(tmp_path: Path) -> None:
    """Under `ulimit -n 300` a worker's pipes and shared batches leave room for (300 - 256) / 16 = 2 workers."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 300:
        pytest.skip("the hard open-file limit is below 300")
    room = (300 - RESERVED_FILES) // FILES_PER_WORKER
    code = (
        "from featswap.threads import max_workers, check_workers\n"
        "print(max_workers()[0])\n"
        f"check_workers('--workers', {room + 1})\n"
    )

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))

    done = subprocess.run([sys.executable, "-c", code], preexec_fn=limited, capture_output=True, text=True)
    assert done.stdout.split()[0] == str(min(room, WORKERS_PER_CPU * usable_cpus()))
    if room < WORKERS_PER_CPU * usable_cpus():
        assert "its open-file limit of 300 (ulimit -n) leaves room for 2" in done.stderr


# -- no worker outlives its command -------------------------------------------------------------------------
def group_members(group: int) -> list[int]:
    """Processes of process group `group` that are still alive (zombies are dead: only their entry is left)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes of 120 small PNG images: enough batches of 2 that a command is still extracting when signalled."""
    root = tmp_path_factory.mktemp("many") / "imgs"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(120):
            Image.fromarray((rng.random((12, 12, 3)) * 255).astype(np.uint8)).save(root / name / f"{i:04d}.png")
    return root


def start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "featswap.cli", *args],
        env=env,
        start_new_session=True,  # its own process group: the command and every worker it starts
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def extract_args(images: Path, store: Path, workers: int = 2) -> list[str]:
    return ["extract", "--model", "tiny-resnet", "--data", f"imagefolder:{images}", "--store", str(store),
            "--workers", str(workers), "--batch-size", "2", "--chunk-rows", "16", "--quiet"]  # fmt: skip


def assert_no_process_left(process: subprocess.Popen[str]) -> None:
    """Once the command has exited, nothing of its process group is alive: no decoding worker outlives it."""
    assert process.returncode is not None
    deadline = time.monotonic() + 1.0  # a process that has exited is reaped by the kernel in milliseconds
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = group_members(process.pid)
    for pid in left:  # never leave them running, whatever the test finds
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} process(es) of the command outlived it"


def signalled(process: subprocess.Popen[str], sig: int, group: bool, seconds: float = 180) -> tuple[str, str]:
    """Send `sig` to the command (`group`: to its whole process group, as Ctrl-C in a terminal, `timeout` or a batch
    scheduler do; else to the command alone, as `kill PID` does) once its decoding workers are running; returns
    its output."""
    deadline = time.monotonic() + seconds
    while len(children(process.pid)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the command ended before its workers could be signalled"
    time.sleep(0.2)  # the workers are decoding
    if group:
        os.killpg(process.pid, sig)
    else:
        os.kill(process.pid, sig)
    out, err = process.communicate(timeout=120)
    return out, err


def test_no_worker_outlives_a_successful_command(many_images: Path, tmp_path: Path) -> None:
    process = start(extract_args(many_images, tmp_path / "s.zarr"))
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert_no_process_left(process)


def test_no_worker_outlives_a_failed_command(many_images: Path, tmp_path: Path) -> None:
    broken = tmp_path / "imgs"
    subprocess.run(["cp", "-r", str(many_images), str(broken)], check=True)
    (broken / "b" / "0060.png").write_bytes(b"not a png")  # met by a worker half-way through
    process = start(extract_args(broken, tmp_path / "s.zarr"))
    _out, err = process.communicate(timeout=600)
    # One line saying which file to fix, not the worker's traceback that torch passes on.
    assert process.returncode == 2 and err.startswith("error: Cannot read image 'b/0060.png'"), err
    said = err.replace(str(tmp_path), "TMP")  # the test's own folder name holds the word "worker"
    assert len(said.strip().splitlines()) == 1 and "Traceback" not in said and "worker" not in said, err
    assert_no_process_left(process)


@pytest.mark.parametrize(
    ("sig", "group", "code", "said"),
    [
        (signal.SIGINT, True, 130, "interrupted"),
        (signal.SIGTERM, False, 143, "terminated (SIGTERM)"),
        (signal.SIGTERM, True, 143, "terminated (SIGTERM)"),
    ],
    ids=["ctrl-c", "kill", "kill-group"],
)
def test_no_worker_outlives_ctrl_c_or_sigterm(
    many_images: Path, tmp_path: Path, sig: signal.Signals, group: bool, code: int, said: str
) -> None:
    process = start(extract_args(many_images, tmp_path / "s.zarr"))
    _out, err = signalled(process, sig, group)
    assert process.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith(f"error: {said}") and "Traceback" not in err, err
    assert_no_process_left(process)
    if sig == signal.SIGTERM:
        return
    # What was finished is kept: the same command resumes and completes.
    again = start(extract_args(many_images, tmp_path / "s.zarr", workers=0))
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
