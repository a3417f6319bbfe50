"""The mask rate of a set of faces, corrected for the classifier's own errors, with a 95% interval.

The classifier's confusion matrix on its validation split (rows: true class, columns: predicted) says how often
each true class is read as each class. Observed shares of predictions q relate to the true shares p by
q = M^T p, with M the row-normalised confusion. The estimate inverts that relation; its interval comes from a
parametric bootstrap that redraws both the observed counts (sampling error) and each row of the confusion
matrix (the classifier's error, known only from a finite validation set). Pure functions, seeded: the same
counts always give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sanitary.perception.mask_classes import READ, MaskClass

DRAWS = 4000
LEVEL = 0.95
# Jeffreys prior: half a count in every cell, so an empty class does not pin a share at exactly 0 or 1.
PRIOR = 0.5


@dataclass(frozen=True)
class MaskShares:
    """Estimated true shares of (with_mask, without_mask, mask_weared_incorrect) among classified faces."""

    n: int  # classified faces the estimate rests on (unknown faces excluded)
    share: tuple[float, float, float]
    low: tuple[float, float, float]
    high: tuple[float, float, float]

    @property
    def mask_rate(self) -> float:
        """Share of faces wearing a mask correctly."""
        return self.share[MaskClass.WITH_MASK]


def _to_simplex(p: np.ndarray) -> np.ndarray:
    """Negative shares (noise pushed through an inverted matrix) are clipped, then shares renormalised."""
    p = np.clip(p, 0.0, None)
    total = p.sum(axis=-1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[-1])


def corrected_shares(predicted: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """True class shares behind predicted shares (..., 3), for row-normalised confusion matrices (..., 3, 3)."""
    solved = np.linalg.solve(np.swapaxes(confusion, -1, -2), predicted[..., None])[..., 0]
    return _to_simplex(solved)


def mask_shares(counts: tuple[int, int, int], confusion_counts: np.ndarray, seed: int = 0) -> MaskShares | None:
    """Shares of the three classes among `counts` classified faces, corrected and with 95% intervals.

    None when no face was classified: a rate over nobody is missing, not zero.
    """
    y = np.asarray(counts, np.float64)
    n = int(y.sum())
    if n == 0:
        return None
    c = np.asarray(confusion_counts, np.float64)
    point = corrected_shares(y / n, c / c.sum(axis=1, keepdims=True))
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.dirichlet(c[t] + PRIOR, DRAWS) for t in READ], axis=1)  # (DRAWS, true, pred)
    observed = rng.dirichlet(y + PRIOR, DRAWS)
    draws = corrected_shares(observed, rows)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    # The draws centre on prior-smoothed counts; near 0 or 1 their interval can miss the estimate by a hair.
    return MaskShares(n, _three(point), _three(np.minimum(low, point)), _three(np.maximum(high, point)))


def _three(v: np.ndarray) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])
