"""Heads in a crowd: points where a head is, found where bodies are hidden."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Heads:
    """Head centres found in one frame. Per-person data like boxes: held in memory only, never written."""

    points: np.ndarray  # (N, 2) float32: x, y in frame pixels
    scores: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.points)

    @staticmethod
    def none() -> Heads:
        return Heads(np.zeros((0, 2), np.float32), np.zeros(0, np.float32))
