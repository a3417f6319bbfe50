"""The mask classifier's card (weights/mask_classifier.json) as the run time reads it: once, into a typed value.

Training writes the whole card (`sanitary.train.mask_classifier`); the run time needs only which model it is and
how often it errs on the validation split, which corrects the mask rates and sizes their intervals.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sanitary.errors import SanitaryError
from sanitary.perception.mask_classes import LABELS
from sanitary.perception.models import WEIGHTS_DIR

CARD_FILE = "mask_classifier.json"
FIX = "restore the card from the repository, or retrain with `sanitary train-mask`"


# eq=False: an array field makes field-wise equality ambiguous.
@dataclass(frozen=True, eq=False)
class MaskModelCard:
    sha256: str  # of the ONNX file: a retrained model changes the run parameters, so files are analysed again
    confusion: np.ndarray  # (3, 3) int64, read-only: validation faces, rows true class, columns predicted (LABELS)


def read_card(path: Path) -> MaskModelCard:
    """The card at `path`; one-line `SanitaryError` naming the file when it is unreadable or lacks a field, or when
    its classes are not the ones the pipeline reads."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SanitaryError(f"{path}: mask model card unreadable ({exc}); {FIX}") from None
    classes = _field(document, path, "classes")
    if classes != list(LABELS):
        raise SanitaryError(f"{path}: classes {classes} are not {list(LABELS)}; {FIX}")
    sha256 = _field(document, path, "sha256")
    if not isinstance(sha256, str):
        raise SanitaryError(f"{path}: sha256 {sha256!r} is not the model file's hash; {FIX}")
    confusion = np.array(_field(document, path, "validation", "confusion"), dtype=object)
    k = len(LABELS)
    if confusion.shape != (k, k) or not all(type(n) is int and n >= 0 for n in confusion.flat):
        raise SanitaryError(f"{path}: validation.confusion is not {k}x{k} face counts; {FIX}")
    counts = confusion.astype(np.int64)
    counts.flags.writeable = False  # the card is shared by every caller of `load_card`
    return MaskModelCard(sha256, counts)


def _field(document: Any, path: Path, *keys: str) -> Any:
    value = document
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise SanitaryError(f"{path}: mask model card has no {'.'.join(keys[: depth + 1])}; {FIX}")
        value = value[key]
    return value


@functools.cache
def load_card() -> MaskModelCard:
    """The shipped model's card, read once per process."""
    return read_card(WEIGHTS_DIR / CARD_FILE)
