"""The rows of `peers.py --references DIR`: featswap's measures of issue 24 against their reference
implementations, imported from local copies outside the repository (nothing of them is in featswap):

- `DIR/ref-svcca/`: google/svcca (`cca_core.py`, `pwcca.py`);
- `DIR/ref-platonic/`: platonic-rep (`metrics.py`; imported with `torchaudio` stubbed, which cknna does not use);
- `DIR/ref-kornblith/cka.py`: the functions of Kornblith et al.'s notebook (google-research
  `representation_similarity/Demo.ipynb`: `gram_rbf`, `center_gram`, `cka`);
- rsatoolbox: importable, or installed in a virtual environment under DIR (`DIR/*/lib/python*/site-packages`,
  appended to `sys.path` after featswap's own packages).

Each entry is `(task, featswap, peer name, peer, why skipped or "")`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from featswap import similarity as sim

Entry = tuple[str, Callable[[], object], str, Callable[[], object], str]


def _module(folder: Path, name: str) -> Any:
    if not (folder / f"{name}.py").is_file():
        return None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def _rsatoolbox(root: Path) -> Any:
    try:
        return importlib.import_module("rsatoolbox")
    except ImportError:
        for site in sorted(root.glob("*/lib/python*/site-packages")):
            if (site / "rsatoolbox").is_dir():
                sys.path.append(str(site))
                return importlib.import_module("rsatoolbox")
    return None


def _platonic(folder: Path) -> Any:
    if "torchaudio" not in sys.modules:
        stub = types.ModuleType("torchaudio")
        stub.functional = types.ModuleType("torchaudio.functional")  # type: ignore[attr-defined]
        sys.modules["torchaudio"], sys.modules["torchaudio.functional"] = stub, stub.functional  # type: ignore[attr-defined]
    return _module(folder, "metrics")


def svd_reduce(acts: np.ndarray, variance: float = 0.99) -> np.ndarray:
    """google/svcca's tutorial step on `acts` (neurons, N): centre, SVD, keep the fewest directions whose squared
    singular values reach `variance` of the total."""
    centred = acts - acts.mean(axis=1, keepdims=True)
    _, s, v = np.linalg.svd(centred, full_matrices=False)
    k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), variance - 1e-12)) + 1
    return np.dot(s[:k] * np.eye(k), v[:k])


def reference_rows(args: argparse.Namespace, planted: Callable[..., tuple[np.ndarray, np.ndarray]]) -> list[Entry]:
    root: Path = args.references
    x, y = planted(args.ref_rows, args.ref_dx, args.ref_dy, seed=3)
    kx, ky = planted(args.nxn_rows, args.ref_dx, args.ref_dy, seed=4)
    kx64, ky64 = kx.astype(np.float64), ky.astype(np.float64)
    print(f"reference rows: {args.ref_rows:,} x ({args.ref_dx} + {args.ref_dy}) float32 features for pwcca and "
          f"svcca_raghu, {args.nxn_rows:,} images for the N x N measures; references from {root}")  # fmt: skip
    rows: list[Entry] = []

    google = _module(root / "ref-svcca", "pwcca")
    cca_core = _module(root / "ref-svcca", "cca_core")
    missing = f"no google/svcca copy in {root / 'ref-svcca'}"
    if google is not None and cca_core is not None:
        # Centred: the reference adds the means back before weighting (featswap does not; docs/similarity.md).
        x64t, y64t = (a.T.astype(np.float64) - a.mean(0)[:, None] for a in (x, y))
        rows.append(("pwcca", lambda: sim.pwcca(x, y), "ref: google compute_pwcca",
                     lambda: google.compute_pwcca(x64t, y64t)[0], ""))  # fmt: skip

        def raghu() -> float:
            result = cca_core.get_cca_similarity(svd_reduce(x64t), svd_reduce(y64t), epsilon=0.0, verbose=False)
            return float(np.mean(result["cca_coef1"]))

        rows.append(("svcca_raghu", lambda: sim.svcca_raghu(x, y), "ref: google SVD + CCA", raghu, ""))
    else:
        rows += [("pwcca", _none, "", _none, missing), ("svcca_raghu", _none, "", _none, missing)]

    platonic = _platonic(root / "ref-platonic")
    if platonic is not None:
        import torch

        ta = torch.nn.functional.normalize(torch.as_tensor(kx64), dim=-1)
        tb = torch.nn.functional.normalize(torch.as_tensor(ky64), dim=-1)
        metrics = platonic.AlignmentMetrics
        rows.append(("cknna", lambda: sim.cknna(kx, ky), "ref: platonic cknna", lambda: metrics.cknna(ta, tb, topk=10),
                     ""))  # fmt: skip
        fa, fb = ta.float(), tb.float()  # as platonic-rep runs it: float32 features
        rows.append(("mutual_knn", lambda: sim.mutual_knn(kx, ky), "ref: platonic mutual_knn",
                     lambda: metrics.mutual_knn(fa, fb, topk=10), ""))  # fmt: skip
    else:
        missing = f"no platonic-rep copy in {root / 'ref-platonic'}"
        rows += [("cknna", _none, "", _none, missing), ("mutual_knn", _none, "", _none, missing)]

    kornblith = _module(root / "ref-kornblith", "cka")
    if kornblith is not None:

        def rbf(debiased: bool) -> Callable[[], float]:
            return lambda: kornblith.cka(kornblith.gram_rbf(kx64, 0.8), kornblith.gram_rbf(ky64, 0.8), debiased)

        rows.append(("rbf_cka", lambda: sim.rbf_cka(kx, ky), "ref: Kornblith cka(gram_rbf)", rbf(False), ""))
        rows.append(("debiased_rbf_cka", lambda: sim.debiased_rbf_cka(kx, ky), "ref: Kornblith, debiased", rbf(True),
                     ""))  # fmt: skip
    else:
        missing = f"no copy of Kornblith et al.'s functions at {root / 'ref-kornblith' / 'cka.py'}"
        rows += [("rbf_cka", _none, "", _none, missing), ("debiased_rbf_cka", _none, "", _none, missing)]

    rsatoolbox = _rsatoolbox(root)
    if rsatoolbox is not None:

        def toolbox(method: str) -> Callable[[], float]:
            def run() -> float:
                rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(m), method="euclidean") for m in (kx64, ky64)]
                return float(np.asarray(rsatoolbox.rdm.compare(rdms[0], rdms[1], method=method)).ravel()[0])

            return run

        rows.append(("rsa, spearman", lambda: sim.rsa(kx, ky), "ref: rsatoolbox spearman", toolbox("spearman"), ""))
        rows.append(("rsa, kendall tau-a", lambda: sim.rsa(kx, ky, comparison="kendall"), "ref: rsatoolbox tau-a",
                     toolbox("tau-a"), ""))  # fmt: skip
    else:
        missing = f"rsatoolbox neither importable nor installed in a virtual environment under {root}"
        rows += [("rsa", _none, "", _none, missing)]

    from scipy.spatial.distance import jensenshannon
    from scipy.special import softmax

    rng = np.random.default_rng(5)
    la = rng.normal(size=(args.ref_rows, 1000)) * 3
    lb = la + rng.normal(size=la.shape)

    def scipy_jsd() -> float:
        return float((jensenshannon(softmax(la, 1), softmax(lb, 1), axis=1, base=2) ** 2).mean())

    rows.append(("jsd, 1000 classes", lambda: sim.jsd(la, lb), "ref: scipy jensenshannon^2", scipy_jsd, ""))
    return rows


def _none() -> None:
    return None
