"""Several networks over one collection in one pass: each image decoded once, each network's features equal to
those it gets alone, and a network whose chunks are finished is not run again."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from featswap import DataSettings, Experiment, ModelConfig, RunConfig
from featswap.backbones.backbone import Backbone
from featswap.backbones.sources import BackboneRecipe
from featswap.config import ExtractionSettings
from featswap.data.collections import Collection
from featswap.extraction.local import extract, extract_together
from featswap.extraction.plan import LOGITS_CHECK_IMAGES, ExtractResult
from featswap.store import FeatureStore

SPECS = ("tiny-resnet", "tiny-inception")  # different inputs: 1x8x8 and 1x16x16, other normalisations
SETTINGS = ExtractionSettings(batch_size=50, chunk_rows=64)


def counting(collection: Collection, count: int) -> tuple[Collection, list[int]]:
    """The first `count` images of `collection`, with a list that records every image loaded."""
    loads: list[int] = []
    part = collection.subset(np.arange(count), f"{collection.name}-{count}")

    def load(i: int) -> Image.Image:
        loads.append(i)
        return part.load(i)

    return dataclasses.replace(part, load=load), loads


def test_each_image_is_decoded_once_for_all_networks(
    tmp_path: Path, digits_parts: tuple[Collection, Collection], trained_weights: dict[str, Path]
) -> None:
    collection, loads = counting(digits_parts[1], 150)
    backbones = [BackboneRecipe(s, str(trained_weights[s]), 10, name=s).build() for s in SPECS]
    with FeatureStore.create(tmp_path / "together.zarr") as store:
        results = extract_together(backbones, collection, store, SETTINGS, quiet=True)
        together = {b.name: np.asarray(store.features(collection.name, b.name)) for b in backbones}
    # Every image once for the pass, and the first few once per network for its logits check.
    assert sorted(loads) == sorted([*range(150), *list(range(LOGITS_CHECK_IMAGES)) * len(SPECS)])
    assert [(r.model, r.computed_rows) for r in results] == [(s, 150) for s in SPECS]
    for spec in SPECS:
        with FeatureStore.create(tmp_path / f"{spec}.zarr") as store:
            alone = BackboneRecipe(spec, str(trained_weights[spec]), 10, name=spec).build()
            extract(alone, collection, store, SETTINGS, quiet=True)
            np.testing.assert_array_equal(together[spec], np.asarray(store.features(collection.name, spec)))


def test_a_network_whose_chunks_are_finished_is_not_run_again(
    tmp_path: Path, digits_parts: tuple[Collection, Collection], trained_weights: dict[str, Path]
) -> None:
    collection, loads = counting(digits_parts[1], 150)
    first, second = (BackboneRecipe(s, str(trained_weights[s]), 10, name=s).build() for s in SPECS)
    with FeatureStore.create(tmp_path / "s.zarr") as store:
        extract(first, collection, store, SETTINGS, quiet=True)
        before = np.asarray(store.features(collection.name, first.name))
        results = extract_together([first, second], collection, store, SETTINGS, quiet=True)
        assert [r.computed_rows for r in results] == [0, 150]
        np.testing.assert_array_equal(np.asarray(store.features(collection.name, first.name)), before)
        assert np.asarray(store.features(collection.name, second.name)).shape == (150, second.feature_dim)
        loads.clear()
        results = extract_together([first, second], collection, store, SETTINGS, quiet=True)
    assert [r.computed_rows for r in results] == [0, 0]
    assert len(loads) == LOGITS_CHECK_IMAGES * 2  # nothing left to do: only the logits checks read images


@pytest.mark.parametrize(("budget", "passes"), [(None, [2, 2]), (1, [1, 1, 1, 1])])
def test_models_share_a_pass_while_their_weights_fit_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int | None, passes: list[int]
) -> None:
    import featswap.experiment
    import featswap.extraction.local as local

    if budget is not None:
        monkeypatch.setattr(featswap.experiment, "TOGETHER_BYTES", budget)
    calls: list[int] = []
    together = local.extract_together

    def counted(backbones: list[Backbone], *args: Any, **kwargs: Any) -> list[ExtractResult]:
        calls.append(len(backbones))
        return together(backbones, *args, **kwargs)

    monkeypatch.setattr(local, "extract_together", counted)
    config = RunConfig(
        models=(ModelConfig("tiny-inception"), ModelConfig("tiny-resnet")),
        data=DataSettings(data="digits", train_limit=100),
        out=str(tmp_path / "run"),
    )
    results = Experiment(config, quiet=True).extract()
    assert calls == passes  # per collection (fitting, evaluation): both models at once, or one at a time
    assert sorted((r.model, r.collection) for r in results) == sorted(
        (m, c) for m in ("tiny-inception", "tiny-resnet") for c in {r.collection for r in results}
    )


def test_networks_whose_stores_have_other_chunk_sizes_run_one_after_the_other(
    tmp_path: Path, digits_parts: tuple[Collection, Collection], trained_weights: dict[str, Path]
) -> None:
    collection, loads = counting(digits_parts[1], 150)
    first, second = (BackboneRecipe(s, str(trained_weights[s]), 10, name=s).build() for s in SPECS)
    with FeatureStore.create(tmp_path / "s.zarr") as store:
        extract(first, collection, store, ExtractionSettings(batch_size=50, chunk_rows=100), quiet=True)
        loads.clear()
        results = extract_together([first, second], collection, store, SETTINGS, quiet=True)  # 64-row chunks
        assert [r.computed_rows for r in results] == [0, 150]
        assert store.feature_array(collection.name, first.name, first.feature_dim).chunks[0] == 100
        ours = np.asarray(store.features(collection.name, second.name))
    # Each logits check once, then the second network's pass alone: the first has nothing left to do.
    assert sorted(loads) == sorted([*list(range(LOGITS_CHECK_IMAGES)) * 2, *range(150)])
    with FeatureStore.create(tmp_path / "alone.zarr") as store:
        extract(second, collection, store, SETTINGS, quiet=True)
        np.testing.assert_array_equal(ours, np.asarray(store.features(collection.name, second.name)))
