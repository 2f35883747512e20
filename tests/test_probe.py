"""Probe heads: multinomial logistic regression at float64 accuracy (the same optimum as scikit-learn's), streamed
over chunks (the same probe however the features are split), its regularisation chosen by cross-validation, and
the store's record of it; on the real CIFAR-10 kit, a probe on ResNet-20's features, its own head removed, comes
within 3 points of the native head, and two probe-headed networks are swapped end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featswap.cli import app
from featswap.errors import DataError, StoreError
from featswap.heads.probe import fit_probe
from featswap.outputs.metrics_json import invariant_violations
from featswap.store import FeatureStore

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"


def blobs(n: int = 600, dim: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Gaussian classes with unequal feature scales and offsets `(n, dim)` float32, labels `(n,)`."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, dim)) * 1.5
    x = centres[labels] + rng.normal(size=(n, dim))
    return (x * np.linspace(0.1, 20, dim) + 7).astype(np.float32), labels


def chunked(x: np.ndarray, y: np.ndarray, size: int):  # type: ignore[no-untyped-def]
    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(y), size):
            yield x[start : start + size], y[start : start + size]

    return chunks


def test_probe_is_scikit_learns_logistic_regression_optimum() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = blobs()
    lam = 1e-2
    probe = fit_probe(chunked(x, y, 10_000), 3, lambdas=(lam,))
    mean, std = x.astype(np.float64).mean(0), x.astype(np.float64).std(0)
    # scikit-learn minimises C * sum(CE) + ||W||^2 / 2: the same optimum at C = 1 / (lam * n).
    reference = LogisticRegression(C=1 / (lam * len(y)), tol=1e-12, max_iter=10_000)
    reference.fit((x - mean) / std, y)
    ours = x.astype(np.float64) @ probe.weight.T.astype(np.float64) + probe.bias
    theirs = reference.decision_function((x - mean) / std)
    # Logits are defined up to a constant per image: compare centred logits (float32 weights: ~1e-5).
    np.testing.assert_allclose(ours - ours.mean(1, keepdims=True), theirs - theirs.mean(1, keepdims=True), atol=2e-4)
    assert probe.l2 == lam and probe.fit_images == 600 and probe.cv_images == 600


def test_streamed_probe_equals_the_probe_of_one_chunk() -> None:
    x, y = blobs(n=900, seed=1)
    whole = fit_probe(chunked(x, y, 900), 3, cv_rows=300)
    streamed = fit_probe(chunked(x, y, 64), 3, cv_rows=300)
    assert whole.l2 == streamed.l2 and whole.cv_accuracy == streamed.cv_accuracy
    np.testing.assert_allclose(whole.weight, streamed.weight, rtol=1e-4, atol=1e-5)
    assert whole.cv_images == 300 and whole.fit_images == 900


def test_cross_validation_picks_strong_regularisation_for_noise() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 40)).astype(np.float32)  # labels unrelated to features: only shrinkage helps
    y = rng.integers(0, 2, 120)
    probe = fit_probe(chunked(x, y, 50), 2)
    assert probe.l2 == max(probe.cv_accuracy) or probe.cv_accuracy[probe.l2] == max(probe.cv_accuracy.values())
    assert 0.2 < probe.heldout_accuracy < 0.8


@pytest.mark.parametrize(
    ("labels", "classes", "message"),
    [(np.zeros(0, int), 3, "needs labelled fitting images"), (np.array([0, 5, 1, 2, 0, 1]), 3, "outside the 3"),
     (np.array([0, 1, 0, 1]), 2, "at least 6 labelled"), (np.zeros(10, int), 1, "at least 2 classes")],
)  # fmt: skip
def test_probe_refusals(labels: np.ndarray, classes: int, message: str) -> None:
    x = np.ones((len(labels), 3), np.float32)
    with pytest.raises(DataError, match=message):
        fit_probe(chunked(x, labels, 4), classes)


def test_store_keeps_the_probe_and_refuses_it_untrained(tmp_path: Path) -> None:
    store = FeatureStore.create(tmp_path / "s.zarr")
    attrs = {"spec": "x", "feature_dim": 3, "num_classes": 2, "head": {"kind": "probe"}}
    store.write_model("enc", attrs, np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(StoreError, match="probe head that is not trained yet"):
        store.head("enc")
    store.write_probe("enc", np.ones((2, 3)), np.array([1.0, 2.0]), {"kind": "probe", "heldout_accuracy": 0.5})
    weight, bias = store.head("enc")
    assert weight.sum() == 6 and bias.tolist() == [1.0, 2.0] and store.head_record("enc")["heldout_accuracy"] == 0.5
    store.write_model("enc", attrs, np.zeros((2, 3)), np.zeros(2))  # extracting again keeps the trained probe
    assert store.head("enc")[0].sum() == 6
    store.write_model("own", {**attrs, "head": {"kind": "own"}}, np.ones((2, 3)), np.zeros(2))
    with pytest.raises(StoreError, match="has its own head, not a probe"):
        store.write_probe("own", np.zeros((2, 3)), np.zeros(2), {})
    with pytest.raises(StoreError, match="does not fit"):
        store.write_probe("enc", np.zeros((3, 3)), np.zeros(3), {})
    with pytest.raises(StoreError, match="already holds a model named 'enc' with head"):
        store.write_model("enc", {**attrs, "head": {"kind": "own"}}, np.zeros((2, 3)), np.zeros(2))


@pytest.mark.skipif(not (CIFAR / "weights").is_dir(), reason=f"{CIFAR} is absent")
def test_probe_on_resnet20_features_matches_its_own_head_and_probes_swap(tmp_path: Path, runner: CliRunner) -> None:
    """ResNet-20 with its own head and with a probe in its place (trained on 5,000 labelled CIFAR-10 test images,
    evaluated on the other 5,000), and Tiny10 with a probe: the probe within 3 points of the native head, and every
    swap, probe to probe included, runs."""
    out = tmp_path / "cifar"
    models = CIFAR / "models.py"
    result = runner.invoke(app, [
        "compare",
        "--model", f"{models}:resnet20", "--weights", str(CIFAR / "weights" / "resnet20.th"), "--name", "resnet20",
        "--model", f"{models}:resnet20", "--weights", str(CIFAR / "weights" / "resnet20.th"), "--name", "r20-probe",
        "--model", f"{models}:tiny10", "--weights", str(CIFAR / "weights" / "tiny10_seed0.pt"), "--name", "t10-probe",
        "--head", "own", "--head", "probe", "--head", "probe",
        "--data", f"imagefolder:{CIFAR / 'images'}", "--val-fraction", "0.5", "--solver", "lstsq", "--n-boot", "50",
        "--no-similarity", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    models_ = metrics["models"]
    assert models_["resnet20"]["head"] == {"kind": "own"}
    assert models_["r20-probe"]["head"]["kind"] == "probe" and models_["t10-probe"]["head"]["kind"] == "probe"
    assert models_["r20-probe"]["head"]["fit_images"] == 5000
    native, probe = models_["resnet20"]["val_accuracy"], models_["r20-probe"]["val_accuracy"]
    assert abs(native - 0.8103) < 0.02 and probe > native - 0.03, (native, probe)
    assert abs(models_["r20-probe"]["head"]["heldout_accuracy"] - probe) < 0.03  # its own estimate holds
    pairs = {(p["source"], p["target"]): p for p in metrics["pairs"]}
    assert pairs["t10-probe", "r20-probe"]["mapped_accuracy"] > 0.6 and invariant_violations(metrics) == []
    # The same features through a probe: the identity map's swap loses nothing beyond the two heads' difference.
    assert pairs["resnet20", "r20-probe"]["mapped_accuracy"] > probe - 0.01
