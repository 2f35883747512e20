"""featswap keeps freed memory for the next batch (`featswap.heap`): in a fresh process, forward passes on large
activations fault their pages in once, not on every pass; a user's own malloc settings win."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="M_TOP_PAD is glibc's setting"
)

#: A process that runs a small convolutional network 8 times on a batch whose activations are 51 MB each (above
#: glibc's largest mmap threshold, as most networks' first layers are at batch 32), printing the page faults of the
#: last 6 passes, what `keep_freed_memory` returned (or "unset" when not called) and a digest of the output.
ROUNDS = """
import hashlib, resource, sys, torch
from featswap.heap import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else "unset"
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU()
).eval()
x = torch.randn(32, 3, 112, 112)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with torch.inference_mode():
    for step in range(8):
        if step == 2:
            before = faults()
        out = net(x)
print(faults() - before, kept, hashlib.sha256(out.numpy().tobytes()).hexdigest())
"""

#: Pages of one activation tensor (32 x 32 x 112 x 112 float32).
PAGES = 32 * 32 * 112 * 112 * 4 // os.sysconf("SC_PAGE_SIZE")


def rounds(mode: str, **env: str) -> tuple[int, str, str]:
    out = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True, env={**os.environ, **env}
    ).stdout.split()
    return int(out[0]), out[1], out[2]


def test_freed_pages_are_reused_instead_of_faulted_in_again() -> None:
    default, _, default_output = rounds("unset")
    kept, took_effect, output = rounds("keep")
    assert took_effect == "True"
    assert output == default_output  # the same numbers, bit for bit
    assert default > 6 * PAGES  # glibc's default: every pass faults its activations' pages in anew
    # Kept: the first passes' pages serve the later ones (at most a tensor's worth faulted in, against 40 here).
    assert kept <= 2 * PAGES and 10 * kept < default, (kept, default)


@pytest.mark.parametrize("env", [{"MALLOC_TOP_PAD_": "0"}, {"FEATSWAP_KEEP_FREED_MEMORY": "0"}])
def test_a_users_own_malloc_setting_or_opting_out_is_left_alone(env: dict[str, str]) -> None:
    faults, took_effect, _ = rounds("keep", **env)
    assert took_effect == "False"
    assert faults > 6 * PAGES
