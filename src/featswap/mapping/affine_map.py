"""`AffineMap`: an affine map between two networks' features, with scikit-learn's estimator contract."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from featswap.errors import DataError, FitError
from featswap.files import atomic_write, check_output_file
from featswap.mapping.losses import paper_loss_numpy, streamed_paper_loss
from featswap.mapping.paired import InMemoryPairs, PairedFeatures, check_paired, feature_dtype
from featswap.mapping.solvers import DEFAULT_SOLVER, SOLVERS, Heads

__all__ = ["AffineMap", "check_paired"]


class AffineMap:
    """`y = W x + b` from source features `x` (Dx,) to target features `y` (Dy,).

    `solver` is a name from `featswap.mapping.solvers.SOLVERS` (default `refine`); `params` are that solver's
    settings (an unknown setting is an error). After `fit`: `weight_` (Dy, Dx), `bias_` (Dy,), `curve_`
    (per-batch loss of iterative solvers), `n_iter_`, `fit_seconds_`, `info_` (solver-specific facts).
    The map is float32 when fitted on float32 features (every feature store) and float64 when fitted on
    float64 arrays, which are never cast down.

    Examples:
        A planted map `y = x A + 1` is recovered by the closed-form `lstsq` solver:

        >>> import numpy as np
        >>> from featswap import AffineMap
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 8))
        >>> y = x @ rng.normal(size=(8, 5)) + 1.0
        >>> amap = AffineMap("lstsq").fit(x, y)
        >>> amap.weight_.shape, amap.bias_.shape, amap.transform(x).shape
        ((5, 8), (5,), (200, 5))
        >>> amap.loss(x, y) < 1e-9, round(amap.score(x, y), 6)
        (True, 1.0)
    """

    metadata_: dict[str, Any]

    def __init__(self, solver: str = DEFAULT_SOLVER, *, device: str = "cpu", **params: Any) -> None:
        self.solver = solver
        self.device = device
        self.params = params

    @property
    def settings(self) -> Any:
        return SOLVERS.get(self.solver).make_settings(**self.params)

    def fit(
        self, source: np.ndarray | None = None, target: np.ndarray | None = None, heads: Heads | None = None
    ) -> AffineMap:
        """Fit on paired features `source` (N, Dx) and `target` (N, Dy); the `heads` solver needs only `heads`."""
        solver = SOLVERS.get(self.solver)
        if source is None or target is None:
            if solver.needs_data:
                raise FitError(f"The {self.solver} solver needs paired source and target features.")
            return self.fit_pairs(None, heads)
        return self.fit_pairs(InMemoryPairs(source, target), heads)

    def fit_pairs(self, pairs: PairedFeatures | None, heads: Heads | None = None) -> AffineMap:
        """Fit on paired features that may be streamed (e.g. `FeatureStore.pairs(...)`)."""
        solver = SOLVERS.get(self.solver)
        settings = solver.make_settings(**self.params)
        from featswap.mapping.device import check_device, exact_products

        device = check_device(self.device)
        started = time.perf_counter()
        with exact_products():  # no TF32: float32 solvers keep full precision on a GPU
            result = solver.fit(pairs, settings, device, heads)
        self.fit_seconds_ = time.perf_counter() - started
        if not (np.isfinite(result.weight).all() and np.isfinite(result.bias).all()):
            raise FitError(
                f"The {self.solver} solver diverged (non-finite map). Try solver 'lstsq' or a smaller learning rate."
            )
        dtype = pairs.dtype if pairs is not None else feature_dtype(result.weight)
        self.weight_ = np.ascontiguousarray(result.weight, dtype=dtype)
        self.bias_ = np.ascontiguousarray(result.bias, dtype=dtype)
        self.curve_, self.n_iter_, self.info_ = result.curve, result.iterations, result.info
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "weight_"):
            raise FitError("This AffineMap is not fitted yet; call fit(source, target) or AffineMap.load(path).")

    def transform(self, source: np.ndarray) -> np.ndarray:
        """Mapped features `(N, Dy)` for source features `(N, Dx)` (float32, or float64 when either the
        features or the map are float64)."""
        self._check_fitted()
        source = np.asarray(source)
        source = source.astype(feature_dtype(source), copy=False)
        if source.ndim != 2 or source.shape[1] != self.weight_.shape[1]:
            raise DataError(
                f"This map takes {self.weight_.shape[1]} source features per sample; got shape {source.shape}."
            )
        return source @ self.weight_.T + self.bias_

    def loss(self, source: np.ndarray, target: np.ndarray) -> float:
        """The paper's loss (mean squared distance of unit vectors, 0..4, lower is better)."""
        source, target = check_paired(source, target)
        return paper_loss_numpy(self.transform(source), target)

    def loss_pairs(self, pairs: PairedFeatures) -> float:
        """The paper's loss over streamed pairs, chunk by chunk."""
        self._check_fitted()
        return streamed_paper_loss(pairs, self.weight_, self.bias_)

    def score(self, source: np.ndarray, target: np.ndarray) -> float:
        """Mean cosine similarity of mapped and true target features (-1..1, higher is better).

        Equal to `1 - loss / 2`: for unit vectors `||u - v||^2 = 2 - 2 cos(u, v)`.
        """
        return 1.0 - self.loss(source, target) / 2.0

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path, **metadata: Any) -> Path:
        """Write the map as safetensors (`weight`, `bias`, `curve`, in their own dtypes) with JSON metadata in
        its header. An existing file at `path` is replaced only if it is a featswap map."""
        from safetensors.numpy import save_file

        self._check_fitted()
        path = check_output_file(Path(path), is_featswap_map, "featswap map")
        meta = {
            "solver": self.solver,
            "settings": asdict(self.settings),
            "iterations": int(self.n_iter_),
            "fit_seconds": float(self.fit_seconds_),
            "info": getattr(self, "info_", {}),
            **metadata,
        }
        # safetensors writes an array's memory as it lies: every array must be C-contiguous.
        tensors = {
            "weight": np.ascontiguousarray(self.weight_),
            "bias": np.ascontiguousarray(self.bias_),
            "curve": np.ascontiguousarray(self.curve_, dtype=np.float32),
        }
        header = {"featswap": json.dumps(meta, default=float)}

        def write(tmp: Path) -> None:
            from safetensors import SafetensorError

            try:
                save_file(tensors, str(tmp), metadata=header)
            except SafetensorError as err:  # safetensors reports a failed write (a full disk, say) as its own error
                raise OSError(f"writing the map failed ({err})") from None

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> AffineMap:
        """Read a map written by `save`; its metadata is in `.metadata_`."""
        path = Path(path)
        tensors, header = _read_map_file(path)
        if "featswap" not in header:
            raise FitError(f"{path} is a safetensors file but not a featswap map (no featswap metadata).")
        try:
            meta = json.loads(header["featswap"])
            fitted = cls(meta["solver"], **meta.get("settings", {}))
            fitted.weight_, fitted.bias_, fitted.curve_ = tensors["weight"], tensors["bias"], tensors["curve"]
            fitted.n_iter_, fitted.fit_seconds_ = int(meta["iterations"]), float(meta["fit_seconds"])
        except (KeyError, TypeError, ValueError) as err:
            raise FitError(f"{path} is a damaged featswap map ({type(err).__name__}: {err}).") from None
        weight, bias = fitted.weight_, fitted.bias_
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise FitError(f"{path} is a damaged featswap map: weight {weight.shape} and bias {bias.shape} do not fit.")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise FitError(f"{path} is a damaged featswap map: it holds NaN or inf.")
        fitted.info_ = meta.get("info", {})
        fitted.metadata_ = meta
        return fitted


def _read_map_file(path: Path, tensors: bool = True) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (unless `tensors` is False) and the header metadata of a safetensors file."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FitError(f"Map file {path} does not exist; write one with `featswap fit ... --out {path}`.")
    try:
        with safe_open(str(path), framework="np") as f:
            arrays = {key: f.get_tensor(key) for key in f.keys()} if tensors else {}  # noqa: SIM118
            return arrays, f.metadata() or {}
    except (OSError, SafetensorError, ValueError) as err:
        raise FitError(f"{path} is not a readable featswap map: {err}") from err


def is_featswap_map(path: Path) -> bool:
    """Whether `path` is a safetensors file that featswap wrote (so replacing it loses nothing of the user's)."""
    try:
        return "featswap" in _read_map_file(path, tensors=False)[1]
    except FitError:
        return False
