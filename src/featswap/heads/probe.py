"""A linear probe: multinomial logistic regression on a headless encoder's features, for a head to swap.

Fitted on the labelled fitting images' features only; its L2 regularisation is chosen by k-fold cross-validation
on (at most `CV_ROWS` of) them, and the probe is then fitted on all of them with that regularisation. Everything
is float64 (the features are standardised inside, the result is folded back into `W`, `b` on raw features), and
the data are streamed: each L-BFGS evaluation reads the features chunk by chunk, so 1.28 M x 2048 float32
features need only their chunk in memory beside the `(C, D)` parameters.

```python
probe = fit_probe(lambda: zip(feature_chunks(), label_chunks()), num_classes=10)
logits = features @ probe.weight.T + probe.bias
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featswap.errors import DataError

#: A fresh pass over the training data: `(features (n, D) float32, labels (n,) int)` chunks, in a fixed order.
Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]

#: L2 strengths (on standardised features, per image) tried by cross-validation, strongest first.
LAMBDAS = (1e-1, 1e-2, 1e-3, 1e-4)
#: Cross-validation folds, and the most fitting images cross-validation uses (a seeded subset beyond that).
CV_FOLDS = 3
CV_ROWS = 20_000
#: Below this many multiply-adds per pass (rows x D x C), one thread: torch's threads only wait on each other for
#: problems this small (measured: 5,000 x 64 x 10 took 7x longer on 2 threads than on 1 on a busy 2-core machine).
ONE_THREAD_WORK = 10**9
#: L-BFGS iterations: during cross-validation, and for the final fit.
CV_ITERATIONS = 100
FIT_ITERATIONS = 500


@dataclass(frozen=True)
class Probe:
    """A fitted probe: `weight` `(C, D)`, `bias` `(C,)` float32 on raw features, and how it was chosen."""

    weight: np.ndarray
    bias: np.ndarray
    l2: float
    heldout_accuracy: float
    cv_images: int
    cv_folds: int
    fit_images: int
    iterations: int
    cv_accuracy: dict[float, float]

    def record(self) -> dict[str, Any]:
        """What metrics.json and the store keep of the probe (`models.NAME.head` beside `kind: probe`)."""
        return {
            "kind": "probe",
            "fit_images": self.fit_images,
            "heldout_accuracy": self.heldout_accuracy,
            "cv_folds": self.cv_folds,
            "cv_images": self.cv_images,
            "l2": self.l2,
            "cv_accuracy": {f"{lam:g}": acc for lam, acc in self.cv_accuracy.items()},
            "iterations": self.iterations,
        }


@dataclass
class _Scale:
    mean: np.ndarray  # (D,) float64
    std: np.ndarray  # (D,) float64, 1 where a feature is constant
    n: int
    counts: np.ndarray  # (C,) images per class


def _scale(chunks: Chunks, num_classes: int) -> _Scale:
    """One pass: the features' mean and standard deviation (float64) and the labels' class counts."""
    n, total, squares = 0, None, None
    counts = np.zeros(num_classes, dtype=np.int64)
    for x, y in chunks():
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"Probe labels range over {y.min()}..{y.max()}, outside the {num_classes} classes.")
        n += x.shape[0]
        total = x.sum(0) if total is None else total + x.sum(0)
        squares = (x * x).sum(0) if squares is None else squares + (x * x).sum(0)
        counts += np.bincount(y, minlength=num_classes)
    if n == 0 or total is None or squares is None:
        raise DataError("A probe head needs labelled fitting images; there are none.")
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    return _Scale(mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0), n, counts)


def _minimise(
    chunks: Callable[[], Iterable[tuple[Any, Any]]], n: int, dim: int, num_classes: int, l2: float, iterations: int,
    start: tuple[Any, Any] | None = None,
) -> tuple[Any, Any, int]:  # fmt: skip
    """`(W (C, D), b (C,), iterations)` float64 torch tensors minimising the mean cross-entropy over the `n` rows of
    `chunks` (standardised float64 tensors) plus `l2 / 2 * ||W||^2`, by L-BFGS with a strong-Wolfe line search."""
    import torch

    weight = torch.zeros(num_classes, dim, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    if start is not None:
        with torch.no_grad():
            weight.copy_(start[0])
            bias.copy_(start[1])
    optimiser = torch.optim.LBFGS(
        [weight, bias], lr=1, max_iter=iterations, history_size=20, tolerance_grad=1e-9, tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        total = 0.0
        for x, y in chunks():
            loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y, reduction="sum") / n
            loss.backward()
            total += float(loss.detach())
        penalty = 0.5 * l2 * (weight * weight).sum()
        penalty.backward()
        return torch.tensor(total + float(penalty.detach()), dtype=torch.float64)

    optimiser.step(closure)
    steps = int(optimiser.state[optimiser._params[0]].get("n_iter", 0))
    return weight.detach(), bias.detach(), steps


def _held(data: list[tuple[Any, Any]]) -> Callable[[], list[tuple[Any, Any]]]:
    """A pass over data held in memory."""
    return lambda: data


def fit_probe(
    chunks: Chunks,
    num_classes: int,
    lambdas: Sequence[float] = LAMBDAS,
    folds: int = CV_FOLDS,
    cv_rows: int = CV_ROWS,
    seed: int = 0,
) -> Probe:
    """A multinomial logistic-regression head on the features `chunks` yields, its L2 strength chosen by `folds`-fold
    cross-validation (held-out accuracy; ties go to the stronger regularisation) on a seeded, class-stratified subset
    of at most `cv_rows` images, then fitted on every image. Classes without images get no evidence for them (their
    rows stay near zero, their bias low)."""
    import torch

    threads = torch.get_num_threads()
    try:
        return _fit_probe(chunks, num_classes, lambdas, folds, cv_rows, seed)
    finally:
        torch.set_num_threads(threads)


def _fit_probe(
    chunks: Chunks, num_classes: int, lambdas: Sequence[float], folds: int, cv_rows: int, seed: int
) -> Probe:
    import torch

    if num_classes < 2:
        raise DataError(f"A probe head needs at least 2 classes; the labels have {num_classes}.")
    scale = _scale(chunks, num_classes)
    if scale.n < folds * 2:
        raise DataError(f"A probe head needs at least {folds * 2} labelled fitting images; there are {scale.n}.")
    mean, std = torch.from_numpy(scale.mean), torch.from_numpy(scale.std)
    dim = int(mean.shape[0])
    if scale.n * dim * num_classes < ONE_THREAD_WORK:
        torch.set_num_threads(1)

    def standardised(x: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(np.asarray(x, dtype=np.float64)) - mean) / std

    # The cross-validation subset, held in memory (at most cv_rows x D float64).
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(scale.n)[: min(cv_rows, scale.n)])
    xs, ys, offset = [], [], 0
    for x, y in chunks():
        rows = chosen[(chosen >= offset) & (chosen < offset + len(y))] - offset
        xs.append(standardised(np.asarray(x)[rows]))
        ys.append(torch.from_numpy(np.asarray(y, dtype=np.int64)[rows]))
        offset += len(y)
    x_cv, y_cv = torch.cat(xs), torch.cat(ys)
    fold = torch.from_numpy(rng.permutation(len(y_cv)) % folds)
    correct = {lam: 0 for lam in lambdas}
    for k in range(folds):
        train, test = fold != k, fold == k
        start = None
        part = [(x_cv[train], y_cv[train])]
        for lam in sorted(lambdas, reverse=True):  # strongest first: each warm-starts the next
            w, b, _ = _minimise(_held(part), int(train.sum()), dim, num_classes, lam, CV_ITERATIONS, start)
            start = (w, b)
            predicted = (x_cv[test] @ w.T + b).argmax(1)
            correct[lam] += int((predicted == y_cv[test]).sum())
    best = max(sorted(lambdas, reverse=True), key=lambda lam: correct[lam])  # max keeps the first of equals

    if scale.n == len(y_cv):  # every image is in memory already
        w, b, steps = _minimise(lambda: [(x_cv, y_cv)], scale.n, dim, num_classes, best, FIT_ITERATIONS)
    else:

        def streamed() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            for x, y in chunks():
                yield standardised(x), torch.from_numpy(np.asarray(y, dtype=np.int64))

        w, b, steps = _minimise(streamed, scale.n, dim, num_classes, best, FIT_ITERATIONS)
    raw = w / std  # logits = ((x - mean) / std) W^T + b = x (W / std)^T + (b - (W / std) mean)
    return Probe(
        weight=raw.numpy().astype(np.float32),
        bias=(b - raw @ mean).numpy().astype(np.float32),
        l2=float(best),
        heldout_accuracy=correct[best] / len(y_cv),
        cv_images=len(y_cv),
        cv_folds=folds,
        fit_images=scale.n,
        iterations=steps,
        cv_accuracy={float(lam): correct[lam] / len(y_cv) for lam in lambdas},
    )
