"""Paired features with a realistic structure for benchmarks, at the paper's widths (1536 -> 2048).

A shared latent `z` (rank `latent`) drives both networks' features through different random linear maps,
each followed by a ReLU and independent noise: the two feature sets are related by a low-rank affine map
plus non-linear noise, as penultimate features of two trained networks are. Class labels are a linear
function of `z`, so linear heads classify both feature sets well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Planted:
    dx: int = 1536
    dy: int = 2048
    latent: int = 256
    classes: int = 100
    noise: float = 0.5
    seed: int = 0

    def _maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        a = rng.standard_normal((self.latent, self.dx)) / np.sqrt(self.latent)
        b = rng.standard_normal((self.latent, self.dy)) / np.sqrt(self.latent)
        c = rng.standard_normal(self.dy) * 0.3
        p = rng.standard_normal((self.latent, self.classes))
        return a.astype(np.float32), b.astype(np.float32), c.astype(np.float32), p.astype(np.float32)

    def block(self, start: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows `[start, start + rows)`: source `(rows, dx)`, target `(rows, dy)` float32, class scores
        `(rows, classes)` (labels are their argmax).
        The same rows always come out the same, whatever the block sizes."""
        a, b, c, p = self._maps()
        rng = np.random.default_rng([self.seed, start, rows])
        z = rng.standard_normal((rows, self.latent), dtype=np.float32)
        x = np.maximum(z @ a + self.noise * rng.standard_normal((rows, self.dx), dtype=np.float32), 0)
        y = np.maximum(z @ b + c + self.noise * rng.standard_normal((rows, self.dy), dtype=np.float32), 0)
        return x, y, z @ p


def linear_head(features: np.ndarray, scores: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed linear head `(W (classes, D), b (classes,))`: ridge regression of the class scores on the
    features, as a trained classifier's logits approximate them."""
    mean, score_mean = features.mean(0), scores.mean(0)
    centred = (features - mean).astype(np.float64)
    gram = centred.T @ centred + alpha * np.eye(features.shape[1])
    weight = np.linalg.solve(gram, centred.T @ (scores - score_mean)).T
    return weight.astype(np.float32), (score_mean - weight @ mean).astype(np.float32)
