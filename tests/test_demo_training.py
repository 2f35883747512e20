"""The demo's networks trained at once, in threads, get exactly the weights they get trained one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from featswap.data.collections import Collection
from featswap.demo.training import TrainConfig, train_or_load, train_or_load_all

SPECS = ("tiny-resnet", "tiny-inception")


def test_networks_trained_at_once_equal_those_trained_one_by_one(
    tmp_path: Path, digits_parts: tuple[Collection, Collection]
) -> None:
    images = digits_parts[0].subset(np.arange(256), "digits-256")
    config = TrainConfig(epochs=2)
    threads_before = torch.get_num_threads()
    together = train_or_load_all(SPECS, images, 10, tmp_path / "together", config)
    assert torch.get_num_threads() == threads_before
    assert [reused for _, reused, _ in together] == [False, False]
    for spec, (path, _, seconds) in zip(SPECS, together, strict=True):
        alone, _ = train_or_load(spec, images, 10, tmp_path / "alone", config)
        ours, theirs = load_file(str(path)), load_file(str(alone))
        assert ours.keys() == theirs.keys() and seconds > 0
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), spec
    # A second call reuses the cached weights.
    again = train_or_load_all(SPECS, images, 10, tmp_path / "together", config)
    assert [reused for _, reused, _ in again] == [True, True]
