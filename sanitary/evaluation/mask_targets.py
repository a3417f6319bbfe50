"""What the project asks of the mask classifier on each source's validation split (issue 18), judged one way for
the card, the benchmark and the README.

A source of all three classes is judged as real photos are: recall per class and macro-F1. A source lacking a
class (a crop set of masks drawn on faces has no bare face) is judged by accuracy, `unknown` counted as a miss.
"""

from __future__ import annotations

from sanitary.evaluation.mask_eval import MaskReport
from sanitary.perception.mask_classes import LABELS

TARGET_RECALL = {"with_mask": 0.96, "without_mask": 0.95, "mask_weared_incorrect": 0.80}
TARGET_MACRO_F1 = 0.90
TARGET_CROP_ACCURACY = 0.95
TARGET_MS_PER_FACE = 3.0


def targets_met(result: MaskReport) -> dict:
    if all(result.per_class[c].support for c in LABELS):
        met = all(result.per_class[c].recall >= TARGET_RECALL[c] for c in LABELS)
        met = met and result.macro_f1 >= TARGET_MACRO_F1
        return {"judged_by": "recall", "recall": TARGET_RECALL, "macro_f1": TARGET_MACRO_F1, "met": met}
    met = result.accuracy >= TARGET_CROP_ACCURACY
    return {"judged_by": "accuracy", "accuracy": TARGET_CROP_ACCURACY, "met": met}
