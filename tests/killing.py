"""Kill a running extraction with SIGKILL once some chunks are finished: the shared step of the resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from featswap.store import FeatureStore


def extract_until_killed(
    args: list[str], store: Path, model: str, collection: str, done: int = 3, seconds: float = 240
) -> np.ndarray:
    """Run `featswap ARGS` in a new process group and SIGKILL the group once `done` chunks of `model`'s
    features of `collection` are finished; returns which chunks were finished then, `(n_chunks,)` bool."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "featswap.cli", *args],
        env=env,
        start_new_session=True,  # its own process group: the command and any Ray instance it starts
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if FeatureStore.open(store).done_chunks(collection, model).sum() >= done:
                    break
            except Exception:  # not created yet, or the writer is mid-way through creating arrays
                pass
            time.sleep(0.05)
        assert process.poll() is None, "the extraction finished (or failed) before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    finished = FeatureStore.open(store).done_chunks(collection, model)
    assert done <= finished.sum() < len(finished)
    return finished
