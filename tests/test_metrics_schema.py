"""The JSON Schema of metrics.json (`featswap/outputs/metrics.schema.json`, shipped with the package and published
in the docs): it is a valid schema, real runs follow it, and it refuses what breaks the contract. Every other
metrics.json featswap writes during the tests is validated too, by `conftest.metrics_follow_schema`."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from featswap.outputs.metrics_json import contract_violations


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(files("featswap.outputs").joinpath("metrics.schema.json").read_text())
    return loaded


def errors(metrics: Any) -> list[str]:
    """Every message, those of the layouts under `oneOf` included."""

    def flat(error: jsonschema.ValidationError) -> list[str]:
        return [error.message] + [m for inner in error.context or () for m in flat(inner)]

    return [m for e in jsonschema.Draft202012Validator(schema()).iter_errors(metrics) for m in flat(e)]


@pytest.fixture(scope="module")
def real_metrics(tmp_path_factory: pytest.TempPathFactory, digits_store: Path) -> dict[str, Any]:
    from runs import compare_on_store

    out = tmp_path_factory.mktemp("schema-run")
    compare_on_store(digits_store, out, solvers=("lstsq", "procrustes"))
    loaded: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return loaded


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_a_real_run_follows_the_schema_and_was_checked(real_metrics: dict[str, Any], schema_witness: Any) -> None:
    assert errors(real_metrics) == []
    assert contract_violations(real_metrics) == []
    assert any(path.name == "metrics.json" for path in schema_witness.checked)
    assert schema_witness.failures == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m["pairs"][0].pop("loss"), "'loss' is a required property"),
        (lambda m: m["pairs"][0].update(mapped_accuracy=80.07), "80.07 is greater than the maximum of 1"),
        (lambda m: m["pairs"][0]["venn"].update(all=-1), "-1 is less than the minimum of 0"),
        (lambda m: m["pairs"][0].update(loss_ci95=[0.1]), "is too short"),
        (lambda m: m["models"].update({name: {"spec": "x"} for name in m["models"]}), "'feature_dim' is a required"),
        (lambda m: m.update(kind="stitch"), "is not valid under any of the given schemas"),
    ],
)
def test_the_schema_refuses_what_breaks_the_contract(real_metrics: dict[str, Any], change: Any, expected: str) -> None:
    broken = copy.deepcopy(real_metrics)
    change(broken)
    found = errors(broken)
    assert found, "the schema accepted a broken metrics.json"
    assert any(expected in message for message in found), found


def test_the_schema_is_package_data_of_an_installed_featswap() -> None:
    import tomllib

    import featswap.outputs

    assert (Path(featswap.outputs.__file__).parent / "metrics.schema.json").is_file()
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "outputs/metrics.schema.json" in pyproject["tool"]["setuptools"]["package-data"]["featswap"]
