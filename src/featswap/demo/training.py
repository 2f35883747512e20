"""Training the built-in tiny networks on a small collection (the demo's step 1), cached as safetensors."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from featswap.backbones.sources import build_module
from featswap.data.collections import Collection
from featswap.threads import torch_threads_for


@dataclass(frozen=True)
class TrainConfig:
    """Settings for training a tiny network: Adam with cosine decay, label smoothing off."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0


def stack_images(collection: Collection, transform: object) -> torch.Tensor:
    """All images of a small collection preprocessed into one tensor `(N, C, H, W)`."""
    return torch.stack([transform(collection.load(i)) for i in range(len(collection))])  # type: ignore[operator]


def train_steps(n: int, config: TrainConfig) -> int:
    """Optimizer steps of training on `n` images: batches per epoch times epochs."""
    return config.epochs * -(-n // config.batch_size)


def train_module(
    module: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    advance: Callable[[int], None] | None = None,
) -> float:
    """Train `module` in place on `images` `(N, C, H, W)` / `labels` `(N,)`; returns train accuracy. `advance(n)`
    is told of each epoch's steps (a progress bar)."""
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = train_steps(len(images), config)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    with torch_threads_for(0):  # the tiny networks' steps: one thread (`featswap.threads`)
        for _ in range(config.epochs):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(images), config.batch_size):
                batch = order[start : start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(module(images[batch]), labels[batch]).backward()
                optimizer.step()
                schedule.step()
            if advance is not None:
                advance(-(-len(images) // config.batch_size))
        module.eval()
        with torch.inference_mode():
            return float((module(images).argmax(1) == labels).float().mean())


#: Held while a network is initialised, so that networks trained at once in threads get the same weights as one
#: by one.
_BUILDING = threading.Lock()


def train_or_load(
    spec: str,
    images: Collection,
    num_classes: int,
    cache: Path,
    config: TrainConfig,
    advance: Callable[[int], None] | None = None,
) -> tuple[Path, bool]:
    """Path of trained weights for built-in `spec`, training them on `images` (labelled) unless cached.

    Returns `(path, reused)`. The cache key includes the settings, so changed settings retrain.
    """
    from featswap.backbones.preprocessing import DataConfig

    # The images themselves (their ids), not only how many: another split of the same size trains other networks.
    ids = hashlib.sha256("\n".join(images.ids).encode()).hexdigest()
    key = json.dumps(
        {"spec": spec, "num_classes": num_classes, "n": len(images), "ids_sha256": ids, **asdict(config)},
        sort_keys=True,
    )
    path = cache / f"{spec}.safetensors"
    meta_path = cache / f"{spec}.json"
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key:
        return path, True
    with _BUILDING:  # initialisation draws from torch's global generator: one network at a time
        module = build_module(spec, num_classes, seed=config.seed)
    transform = DataConfig.from_mapping(module.data_config).transform()  # type: ignore[arg-type]
    if images.labels is None:
        raise ValueError("training needs labelled images")
    batch = stack_images(images, transform)
    accuracy = train_module(module, batch, torch.as_tensor(images.labels), config, advance)
    cache.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    meta_path.write_text(json.dumps({"key": key, "train_accuracy": accuracy}, indent=2))
    return path, False


def train_or_load_all(
    specs: Sequence[str],
    images: Collection,
    num_classes: int,
    cache: Path,
    config: TrainConfig,
    *,
    show_progress: bool = False,
) -> list[tuple[Path, bool, float]]:
    """`train_or_load` of every spec, at once: one thread per network (up to the CPU's cores), each on one torch
    thread, as each would train alone, so the weights are the same bit for bit. Returns `(path, reused, seconds)`
    per spec, in order. `show_progress`: a bar per network being trained, with the time left."""
    from featswap.progress import bar

    with bar(unit="steps", disable=not show_progress) as progress:

        def one(spec: str) -> tuple[Path, bool, float]:
            started = time.perf_counter()
            task = progress.add_task(f"training {spec}", total=train_steps(len(images), config), rate="",
                                     visible=False)  # fmt: skip

            def advance(n: int) -> None:
                progress.update(task, advance=n, visible=True)

            path, reused = train_or_load(spec, images, num_classes, cache, config, advance)
            return path, reused, time.perf_counter() - started

        workers = max(1, min(len(specs), os.cpu_count() or 1))
        with torch_threads_for(0), ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, specs))
