"""Privacy masks: the configured polygons blanked in every frame before any detector runs, so that nothing behind a
private window is ever seen."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from sanitary.config import PrivacyMask

BLANK = 128


class PrivacyMasker:
    """Blanks the configured polygons; the mask is drawn once per frame size, not once per frame."""

    def __init__(self, masks: Sequence[PrivacyMask]) -> None:
        self.polygons = [np.round(np.asarray(m.polygon, np.float64)).astype(np.int32) for m in masks]
        self._blank: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not self.polygons:
            return image
        shape = image.shape[:2]
        if shape not in self._blank:
            mask = np.zeros(shape, np.uint8)
            cv2.fillPoly(mask, self.polygons, 1)
            self._blank[shape] = mask.astype(bool)
        out = image.copy()
        # Mid grey, the person detector's own letterbox padding: on a uniform frame (black, 114, 128 or white) neither
        # person model scores anyone at 0.01 (measured); SSDLite, the earlier model, saw a 0.27 "person" in black.
        out[self._blank[shape]] = BLANK
        return out
