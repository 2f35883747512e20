"""The images of a collection preprocessed for two networks at once: each file is read and decoded once, then
transformed by each network's own preprocessing."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from featswap.backbones.backbone import Backbone
from featswap.data.collections import Collection
from featswap.errors import DataError
from featswap.extraction.workers import worker_batches


class PairedImages(TorchDataset[tuple[torch.Tensor, torch.Tensor, str]]):
    """Image `i` of `collection` as `(x_first (C, H, W), x_second (C', H', W'), problem)`; with `skip`, an unreadable
    image gives zeros and why (`problem`, "" when readable), else it raises."""

    def __init__(
        self,
        collection: Collection,
        transforms: tuple[Callable[[Any], torch.Tensor], Callable[[Any], torch.Tensor]],
        shapes: tuple[tuple[int, ...], tuple[int, ...]],
        skip: bool,
    ) -> None:
        self.collection, self.transforms, self.shapes, self.skip = collection, transforms, shapes, skip

    def __len__(self) -> int:
        return len(self.collection)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        try:
            image = self.collection.load(i)
            return self.transforms[0](image), self.transforms[1](image), ""
        except DataError as err:
            if not self.skip:
                raise
            return torch.zeros(self.shapes[0]), torch.zeros(self.shapes[1]), str(err)


def paired_batches(
    collection: Collection, backbones: Sequence[Backbone], batch_size: int, workers: int, skip: bool
) -> Generator[tuple[torch.Tensor, torch.Tensor, list[str]], None, None]:
    """`(x_first (B, ...), x_second (B, ...), problems)` batches of the collection in order, decoded by `workers`
    worker processes (0: here)."""
    first, second = backbones
    images = PairedImages(
        collection,
        (first.transform(), second.transform()),
        (first.data_config.input_size, second.data_config.input_size),
        skip,
    )
    loader = DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers)
    with worker_batches(loader) as loaded:  # its workers stop when this generator ends or is closed
        for x_first, x_second, problems in loaded:
            yield x_first, x_second, list(problems)
