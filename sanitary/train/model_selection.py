"""Choices made on the training split alone, so that the validation split is looked at once, at the end.

Cross-validation folds are drawn by image (faces of one photo are near copies of one scene), spreading the rare
classes evenly; the classifier's per-class logit bias is then chosen on the out-of-fold logits, read by the same
rule as inference and `eval-mask` (unsure faces are misses, never guesses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sanitary.config import MaskConfig
from sanitary.evaluation.mask_eval import report
from sanitary.perception.mask_classes import LABELS
from sanitary.perception.masks import read_masks

# Bias of without_mask and mask_weared_incorrect over with_mask, in logits: from trusting the rare class less
# than training left it (-1) to ~20x more (3). with_mask stays at 0, since only differences matter to a softmax.
BIAS_GRID = np.round(np.arange(-1.0, 3.0001, 0.25), 2)


def image_folds(image_labels: list[np.ndarray], folds: int, seed: int) -> np.ndarray:
    """Fold index per image. Images are ordered by the rarest class they hold (rarest first), shuffled within,
    then dealt round-robin: each fold gets its share of every class's images."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {folds}")
    if len(image_labels) < folds:
        raise ValueError(f"{len(image_labels)} images cannot fill {folds} folds")
    totals = np.bincount(np.concatenate(image_labels), minlength=len(LABELS))
    rarity = np.argsort(np.argsort(totals))  # 0 for the rarest class
    rarest = np.array([rarity[labels].min() for labels in image_labels])
    shuffled = np.random.default_rng(seed).permutation(len(image_labels))
    order = shuffled[np.argsort(rarest[shuffled], kind="stable")]
    fold_of = np.empty(len(image_labels), np.int64)
    fold_of[order] = np.arange(len(image_labels)) % folds
    return fold_of


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class BiasChoice:
    bias: tuple[float, float, float]  # added to the logits, classes order
    macro_f1: float  # out of fold, with the bias
    unbiased_macro_f1: float
    recall: dict[str, float]  # out of fold, with the bias
    unbiased_recall: dict[str, float]
    confusion: list[list[int]]  # out of fold, with the bias; rows true, columns predicted then unknown


def choose_bias(
    logits: np.ndarray, labels: np.ndarray, boxes: np.ndarray, thresholds: MaskConfig, grid: np.ndarray = BIAS_GRID
) -> BiasChoice:
    """The per-class logit bias of best macro-F1 on out-of-fold logits; among equals, the smallest bias (the
    plainest reading of what training learnt)."""

    def scored(bias: np.ndarray):
        readings = read_masks(softmax(logits + bias), boxes, thresholds)
        return report(labels.tolist(), readings.classes.tolist())

    best: tuple[float, float, np.ndarray] | None = None
    for b1 in grid:
        for b2 in grid:
            bias = np.array([0.0, b1, b2])
            f1 = round(scored(bias).macro_f1, 6)  # rounded, so that float noise does not break ties
            size = float(np.abs(bias).sum())
            if best is None or f1 > best[0] or (f1 == best[0] and size < best[1]):
                best = (f1, size, bias)
    assert best is not None
    chosen, plain = scored(best[2]), scored(np.zeros(3))
    return BiasChoice(
        bias=tuple(float(b) for b in best[2]),
        macro_f1=round(chosen.macro_f1, 4),
        unbiased_macro_f1=round(plain.macro_f1, 4),
        recall={c: round(s.recall, 4) for c, s in chosen.per_class.items()},
        unbiased_recall={c: round(s.recall, 4) for c, s in plain.per_class.items()},
        confusion=chosen.confusion,
    )
