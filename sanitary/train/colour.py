"""Colour jitter for training crops: cameras differ in white balance, contrast and exposure, and some are grey."""

from __future__ import annotations

import numpy as np


def jitter_colour(image: np.ndarray, rng: np.random.Generator, brightness: float) -> np.ndarray:
    """The uint8 image greyed (one time in ten) or with each channel's gain within 10%, then its contrast within
    30% and its brightness within `brightness` levels."""
    pixels = image.astype(np.float32)
    if rng.random() < 0.1:
        pixels = np.repeat(pixels.mean(axis=2, keepdims=True), 3, axis=2)
    else:
        pixels *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-brightness, brightness)
    return np.clip(pixels, 0, 255).astype(np.uint8)
