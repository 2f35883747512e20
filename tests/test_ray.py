"""The Ray engine on a local Ray instance (2 CPUs, no GPU): the same features and statistics as the local
engine, a killed job resumes, a dying worker is retried, and clear errors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("ray.data", reason="Ray is an optional extra: pip install 'featswap[ray]'")

from featswap.backbones.sources import BackboneRecipe
from featswap.cli import app
from featswap.config import EngineSettings, ExtractionSettings
from featswap.data.collections import Collection, open_spec
from featswap.engines import LocalEngine
from featswap.engines.ray.connect import connect
from featswap.engines.ray.engine import RayEngine
from featswap.engines.ray.extract import RayResources, extract_ray
from featswap.engines.ray.statistics import RayPairs
from featswap.errors import ClusterError, DataError, ModelError, SpecError
from featswap.experiment.fitting import fit_pair_maps
from featswap.extraction.local import extract
from featswap.mapping.moments import merge_all
from featswap.mapping.solvers.lstsq import streamed_moments, streamed_split_moments
from featswap.similarity.gram import chunk_gram_stats
from featswap.store import FeatureStore
from killing import extract_until_killed

Digits = tuple[Collection, Collection]


@pytest.fixture
def ray_cluster() -> Iterator[None]:
    """A local Ray instance with 2 CPUs, started once and kept (tests that stop it restart it)."""
    connect(num_cpus=2)
    yield


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Local runs on one thread, torch's and BLAS's, as Ray's one-CPU actors and tasks run: the same kernels give
    bit-identical features and sums (OpenBLAS on some CPUs rounds a float64 product differently on two threads)."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        yield
    torch.set_num_threads(threads)


def recipe_of(weights: dict[str, Path], spec: str = "tiny-resnet") -> BackboneRecipe:
    return BackboneRecipe(spec, str(weights[spec]), 10, name=spec)


def test_ray_features_identical_to_local(
    tmp_path: Path, ray_cluster: None, one_thread: None, digits_parts: Digits, trained_weights: dict[str, Path]
) -> None:
    recipe = recipe_of(trained_weights)
    settings = ExtractionSettings(batch_size=64, chunk_rows=100)
    stores = {}
    for engine in ("local", "ray"):
        with FeatureStore.create(tmp_path / f"{engine}.zarr") as store:
            for collection in digits_parts:
                if engine == "ray":
                    result = extract_ray(recipe, collection, store, settings, quiet=True)
                else:
                    result = extract(recipe.build(), collection, store, settings, quiet=True)
                assert result.computed_rows == result.rows == len(collection)
            stores[engine] = store
    for split in ("train", "val"):
        local = stores["local"].features(split, "tiny-resnet")
        assert np.array_equal(stores["ray"].features(split, "tiny-resnet"), local)
        assert stores["ray"].done_chunks(split, "tiny-resnet").all()
    assert stores["ray"].model_attrs("tiny-resnet") == stores["local"].model_attrs("tiny-resnet")


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 255, size=(20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.jpg")
    broken = root / "dog" / "3.jpg"
    broken.write_bytes(broken.read_bytes()[:60])  # a truncated JPEG
    return root


def test_ray_bad_images_skip_or_fail_like_local(tmp_path: Path, ray_cluster: None, one_thread: None) -> None:
    (images,) = open_spec(f"imagefolder:{_image_folder(tmp_path / 'images')}").parts.values()
    config = {"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3}
    recipe = BackboneRecipe("timm:resnet18", None, 2, name="r18", data_config=config)
    skip = ExtractionSettings(batch_size=4, chunk_rows=8, on_bad_image="skip")
    with FeatureStore.create(tmp_path / "ray.zarr") as store:
        extract_ray(recipe, images, store, skip, quiet=True)
        ray_skipped, ray_features = store.skipped(images.name), store.features(images.name, "r18")
    with FeatureStore.create(tmp_path / "local.zarr") as store:
        extract(recipe.build(), images, store, skip, quiet=True)
        assert store.skipped(images.name) == ray_skipped and list(ray_skipped) == ["dog/3.jpg"]
        assert np.array_equal(store.features(images.name, "r18"), ray_features)
    with FeatureStore.create(tmp_path / "fail.zarr") as store, pytest.raises(DataError, match="dog/3"):
        extract_ray(recipe, images, store, ExtractionSettings(batch_size=4, chunk_rows=8), quiet=True)


def test_ray_merged_statistics_equal_local(
    tmp_path: Path, ray_cluster: None, one_thread: None, digits_store: Path
) -> None:
    # Ray's one-CPU tasks multiply on one thread; so does this process here, so sums agree to the last bit.
    store = FeatureStore.open(digits_store)
    local = store.pairs("train", "tiny-inception", "tiny-resnet", rows=200)
    remote = RayPairs(store.pairs("train", "tiny-inception", "tiny-resnet", rows=200))
    for a, b in [
        (streamed_moments(local, False, "cpu"), streamed_moments(remote, False, "cpu")),
        *zip(
            streamed_split_moments(local, 0.1, 0, True, "cpu"),
            streamed_split_moments(remote, 0.1, 0, True, "cpu"),
            strict=True,
        ),
    ]:
        assert a.n == b.n > 0
        for field in ("mx", "my", "cxx", "cxy", "tyy"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    gram_local, gram_ray = (merge_all(p.map_chunks(chunk_gram_stats)) for p in (local, remote))
    assert gram_local is not None and gram_ray is not None
    assert gram_local.linear_cka() == gram_ray.linear_cka() and gram_local.debiased_cka() == gram_ray.debiased_cka()
    solvers = ["lstsq", "procrustes", "refine"]
    mine = fit_pair_maps(store, "tiny-inception", "tiny-resnet", "train", solvers, {}, LocalEngine())
    theirs = fit_pair_maps(
        store, "tiny-inception", "tiny-resnet", "train", solvers, {}, RayEngine(EngineSettings("ray"))
    )
    for key, fitted in mine.items():  # both directions of the pair, every solver
        assert np.array_equal(fitted.amap.weight_, theirs[key].amap.weight_), key
        assert np.array_equal(fitted.amap.bias_, theirs[key].amap.bias_), key


CONFIG = json.dumps({"input_size": [3, 64, 64], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})


def ray_extract_args(store: Path, weights: Path) -> list[str]:
    return ["extract", "--model", "timm:resnet18", "--weights", str(weights), "--data-config", CONFIG,
            "--data", "digits", "--part", "fit", "--store", str(store), "--chunk-rows", "64",
            "--batch-size", "32", "--quiet", "--engine", "ray"]  # fmt: skip


def test_killed_ray_job_resumes_without_recomputing(tmp_path: Path, ray_cluster: None, runner: CliRunner) -> None:
    weights = tmp_path / "resnet18.pt"
    torch.save(BackboneRecipe("timm:resnet18", data_config=json.loads(CONFIG)).build().module.state_dict(), weights)
    killed = tmp_path / "killed.zarr"
    finished_before = extract_until_killed(ray_extract_args(killed, weights), killed, "resnet18", "train")
    import zarr

    array = zarr.open_array(str(killed / "train" / "features" / "resnet18"), mode="r")
    rows_done = np.repeat(finished_before, 64)[: array.shape[0]]
    before = np.asarray(array[:])[rows_done]

    result = runner.invoke(app, ray_extract_args(killed, weights))  # takes over the dead driver's lock
    assert result.exit_code == 0, result.output
    recomputed = 1257 - 64 * int(finished_before.sum())
    assert f"1257 rows ({recomputed} computed)" in result.output
    resumed = FeatureStore.open(killed).features("train", "resnet18")
    assert np.array_equal(resumed[rows_done], before)  # finished chunks were not rewritten

    whole = tmp_path / "whole.zarr"
    assert runner.invoke(app, ray_extract_args(whole, weights)[:-2]).exit_code == 0  # the local engine
    np.testing.assert_allclose(resumed, FeatureStore.open(whole).features("train", "resnet18"), atol=1e-5)


CRASHING = """
import os
from pathlib import Path

from torch import nn

MARKER = Path({marker!r})
DRIVER = {driver}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 10)
        self.data_config = {{"input_size": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.5,) * 3}}

    def forward(self, x):
        if os.getpid() != DRIVER and not MARKER.exists():  # the first Ray worker to run it dies
            MARKER.write_text(str(os.getpid()))
            os._exit(1)
        return self.fc(self.body(x))


def net():
    return Net()
"""


def test_dead_worker_is_retried(tmp_path: Path, ray_cluster: None, one_thread: None, digits_parts: Digits) -> None:
    marker = tmp_path / "crashed"
    factory = tmp_path / "crashing.py"
    factory.write_text(CRASHING.format(marker=str(marker), driver=os.getpid()))
    recipe = BackboneRecipe(f"{factory}:net", None, 10, name="net")
    split = digits_parts[1]
    settings = ExtractionSettings(batch_size=64, chunk_rows=128)
    with FeatureStore.create(tmp_path / "ray.zarr") as store:
        result = extract_ray(recipe, split, store, settings, quiet=True)
        assert marker.is_file() and int(marker.read_text()) != os.getpid()  # a worker did die
        assert result.computed_rows == len(split) and store.has_features("val", "net")
        features = store.features("val", "net")
    with FeatureStore.create(tmp_path / "local.zarr") as store:
        extract(recipe.build(), split, store, settings, quiet=True)
        assert np.array_equal(store.features("val", "net"), features)


def test_cli_extract_and_fit_on_ray_match_local(
    tmp_path: Path,
    ray_cluster: None,
    one_thread: None,
    runner: CliRunner,
    trained_weights: dict[str, Path],
    digits_store: Path,
) -> None:
    store = f"file://{tmp_path}/ray.zarr"  # a URL store: the driver writes it, the tasks read it by URL
    for spec, weights in trained_weights.items():
        args = ["extract", "--model", spec, "--weights", str(weights), "--data", "digits", "--store", store]
        result = runner.invoke(app, [*args, "--engine", "ray", "--ray-workers", "1", "--quiet"])
        assert result.exit_code == 0, result.output
        assert "rows (" in result.output
    local = FeatureStore.open(digits_store)
    for spec in trained_weights:
        np.testing.assert_allclose(
            FeatureStore.open(store).features("val", spec), local.features("val", spec), atol=1e-5
        )
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.safetensors"
        args = ["fit", "--store", store, "--source", "tiny-inception", "--target", "tiny-resnet"]
        result = runner.invoke(app, [*args, "--solver", "lstsq", "--out", str(out), "--engine", engine])
        assert result.exit_code == 0, result.output
    from featswap.mapping.affine_map import AffineMap

    ray_map, local_map = AffineMap.load(tmp_path / "ray.safetensors"), AffineMap.load(tmp_path / "local.safetensors")
    assert np.array_equal(ray_map.weight_, local_map.weight_) and np.array_equal(ray_map.bias_, local_map.bias_)


def test_probe_head_trained_after_ray_extraction_equals_local(
    tmp_path: Path, ray_cluster: None, one_thread: None, runner: CliRunner, trained_weights: dict[str, Path]
) -> None:
    """`--head probe` on Ray's engine: the driver trains the probe on the features the actors wrote, the same
    probe, bit for bit, as a local extraction's (one thread both: the same features)."""
    stores = {"ray": f"file://{tmp_path}/ray.zarr", "local": str(tmp_path / "local.zarr")}
    for engine, store in stores.items():
        args = ["extract", "--model", "tiny-inception", "--weights", str(trained_weights["tiny-inception"]),
                "--head", "probe", "--data", "digits", "--store", store, "--engine", engine, "--quiet"]  # fmt: skip
        result = runner.invoke(app, [*args, "--ray-workers", "1"] if engine == "ray" else args)
        assert result.exit_code == 0, result.output
    ray_store, local_store = FeatureStore.open(stores["ray"]), FeatureStore.open(stores["local"])
    assert not ray_store.probe_pending("tiny-inception")
    for ours, theirs in zip(ray_store.head("tiny-inception"), local_store.head("tiny-inception"), strict=True):
        assert np.array_equal(ours, theirs) and np.any(ours != 0)


def test_ray_resource_errors(
    tmp_path: Path, ray_cluster: None, digits_parts: Digits, trained_weights: dict[str, Path]
) -> None:
    recipe = recipe_of(trained_weights)
    split = digits_parts[1]
    with FeatureStore.create(tmp_path / "s.zarr") as store:
        with pytest.raises(ClusterError, match="GPUs"):
            extract_ray(recipe, split, store, resources=RayResources(gpus_per_worker=1), quiet=True)
        with pytest.raises(SpecError, match="at least 1"):
            extract_ray(recipe, split, store, resources=RayResources(workers=0), quiet=True)
        with pytest.raises(SpecError, match="gpus-per-worker"):
            extract_ray(recipe, split, store, resources=RayResources(gpus_per_worker=-1), quiet=True)
        with pytest.raises(ClusterError, match="decode"):
            extract_ray(recipe, split, store, resources=RayResources(workers=2), quiet=True)
        # A worker whose network differs from the driver's (another weight file at the same path, say).
        other = recipe_of(trained_weights, "tiny-inception")
        with pytest.raises(ModelError, match="differs from the driver"):
            extract_ray(other, split, store, ExtractionSettings(chunk_rows=64), backbone=recipe.build(), quiet=True)


def test_extraction_refused_through_ray_client(
    tmp_path: Path, ray_cluster: None, digits_parts: Digits, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.util.client import ray as client

    monkeypatch.setattr(client, "is_connected", lambda: True)  # as in a session opened with a ray:// address
    with (
        FeatureStore.create(tmp_path / "s.zarr") as store,
        pytest.raises(ClusterError, match="ray job submit"),
    ):
        extract_ray(BackboneRecipe("tiny-resnet"), digits_parts[1], store, quiet=True)


def test_not_connected_and_unreachable_cluster(tmp_path: Path, digits_store: Path, digits_parts: Digits) -> None:
    import ray

    ray.shutdown()
    store = FeatureStore.open(digits_store)
    with pytest.raises(ClusterError, match="Not connected"):
        RayPairs(store.pairs("train", "tiny-inception", "tiny-resnet"))
    with (
        FeatureStore.create(tmp_path / "s.zarr") as writable,
        pytest.raises(ClusterError, match="Not connected"),
    ):
        extract_ray(BackboneRecipe("tiny-resnet"), digits_parts[1], writable, quiet=True)
    with pytest.raises(ClusterError, match="Cannot reach a Ray cluster"):
        connect("auto")
    assert not ray.is_initialized()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_client_address() -> Iterator[str]:
    """A Ray cluster of its own (`ray start --head`, one CPU) with a Ray Client server; its whole process group is
    stopped afterwards (no `ray stop`, which would stop every Ray instance of the machine)."""
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    gcs, client = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="/tmp/rc")  # short: Ray's socket paths must stay under 108 characters
    ray = Path(sys.executable).parent / "ray"
    args = [str(ray), "start", "--head", "--port", str(gcs), "--ray-client-server-port", str(client), "--num-cpus",
            "1", "--include-dashboard", "false", "--temp-dir", temp, "--disable-usage-stats"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    process = subprocess.Popen(args, start_new_session=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output.decode()[-2000:]
        yield f"ray://127.0.0.1:{client}"
    finally:
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):  # Ray's agents may outwait a SIGTERM
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(process.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        shutil.rmtree(temp, ignore_errors=True)


def test_fit_and_similarity_through_ray_client(
    tmp_path: Path, ray_client_address: str, digits_store: Path, runner: CliRunner
) -> None:
    """`--address ray://HOST:PORT` (Ray Client) serves fit and similarity, as its help says, with the local engine's
    numbers; extraction is refused through it, before anything is created. Run as real processes: a Ray Client
    session is the process's one connection to Ray."""
    import subprocess
    import sys

    from featswap.mapping.affine_map import AffineMap

    def featswap(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        done = subprocess.run([sys.executable, "-m", "featswap.cli", *args], capture_output=True, text=True, env=env)
        if "Starting Ray client server failed" in done.stderr:
            # Ray's proxy starts a server process per client session and, on a busy machine, sometimes fails to
            # (seen once in a full run, never alone); featswap says so in one line. A second session is started.
            done = subprocess.run([sys.executable, "-m", "featswap.cli", *args], capture_output=True, text=True,
                                  env=env)  # fmt: skip
        return done

    client = ("--engine", "ray", "--address", ray_client_address)
    pair = ("--store", str(digits_store), "--source", "tiny-inception", "--target", "tiny-resnet", "--solver", "lstsq")
    done = featswap("fit", *pair, "--out", str(tmp_path / "client.safetensors"), *client)
    assert done.returncode == 0, done.stderr
    local = runner.invoke(app, ["fit", *pair, "--out", str(tmp_path / "local.safetensors")])
    assert local.exit_code == 0, local.output
    a, b = AffineMap.load(tmp_path / "client.safetensors"), AffineMap.load(tmp_path / "local.safetensors")
    assert np.array_equal(a.weight_, b.weight_) and np.array_equal(a.bias_, b.bias_)

    done = featswap("similarity", "--store", str(digits_store), "--out", str(tmp_path / "sim-client"), *client)
    assert done.returncode == 0, done.stderr
    local = runner.invoke(app, ["similarity", "--store", str(digits_store), "--out", str(tmp_path / "sim-local")])
    assert local.exit_code == 0, local.output
    ours, theirs = (json.loads((tmp_path / d / "similarity.json").read_text()) for d in ("sim-client", "sim-local"))
    assert ours == theirs

    args = ["extract", "--model", "tiny-resnet", "--data", "digits", "--store", str(tmp_path / "new" / "s.zarr")]
    done = featswap(*args, *client)
    assert done.returncode == 2 and done.stderr.startswith("error: Extraction runs on Ray Data"), done.stderr
    assert not (tmp_path / "new").exists()
