"""The embedded digits set and the stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from featswap.data.collections import digits, load_dataset, stratified_split
from featswap.errors import DataError, SpecError


def test_digits_split_is_deterministic_stratified_and_disjoint() -> None:
    a, b = digits(), digits()
    train, val = a.split("train"), a.split("val")
    assert len(train) + len(val) == 1797
    assert not set(train.ids) & set(val.ids)
    assert list(train.ids) == list(b.split("train").ids)
    shares = np.bincount(train.labels, minlength=10) / len(train)
    val_shares = np.bincount(val.labels, minlength=10) / len(val)
    assert np.abs(shares - val_shares).max() < 0.01
    image = train.load(0)
    assert image.size == (8, 8) and image.mode == "L"


def test_digits_val_fraction_changes_sizes() -> None:
    assert len(digits(val_fraction=0.5).split("val")) == 899


def test_bad_val_fraction() -> None:
    with pytest.raises(DataError, match="between 0 and 1"):
        stratified_split(np.zeros(10), 1.5, 0)


def test_too_few_samples_per_class() -> None:
    with pytest.raises(DataError, match="stratified by class"):
        stratified_split(np.array([0, 1, 2, 3]), 0.25, 0)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(SpecError, match="Unknown dataset 'digitz'"):
        load_dataset("digitz")
    with pytest.raises(SpecError, match="no split 'test'"):
        digits().split("test")
