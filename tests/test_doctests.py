"""The `>>>` examples in the public API's docstrings run, and say what they show (`doctest`)."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: The modules whose docstrings carry examples: the public API's classes and the similarity measures.
MODULES = [
    "featswap.mapping.affine_map",
    "featswap.similarity.measures",
    "featswap.config",
    "featswap.store.feature_store",
]


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no >>> examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (printed above)"


def test_the_public_api_carries_examples() -> None:
    import featswap
    from featswap import similarity

    for obj in (featswap.AffineMap, featswap.RunConfig, featswap.FeatureStore, similarity.linear_cka, similarity.svcca):
        assert ">>> " in (obj.__doc__ or ""), obj
