"""The head-shake opt-out, honoured: a person who shakes their head "no" is left out of every aggregate of the
open window and, for the rest of their track, of everything after.

To take someone out of frames already analysed, the open window's frames are kept as the stages saw them (boxes,
track ids, mask readings), in memory only, and dropped when the window closes; an opted-out person's frames are
then counted again without them. Nothing says who opted out: a track id lives in this process only, and once the
track ends nobody is recognised again (a person who walks out of view and back in is a new track).
"""

from __future__ import annotations

import numpy as np

from sanitary.config import OptOutConfig
from sanitary.tracking.headshake import ShakeDetector


class OptOutWatch:
    """A shake detector per live track; the tracks that opted out, until they end."""

    def __init__(self, config: OptOutConfig) -> None:
        self.config = config
        self.detectors: dict[int, ShakeDetector] = {}
        self.excluded: set[int] = set()

    def update(self, t: float, tracks: np.ndarray, yaw_deg: np.ndarray) -> list[int]:
        """Feed each tracked person's yaw this frame (NaN: no face read); the tracks that just shook their head."""
        shook = []
        for track, yaw in zip(tracks.tolist(), yaw_deg.tolist(), strict=True):
            if track in self.excluded:
                continue
            detector = self.detectors.setdefault(track, ShakeDetector(self.config))
            if detector.update(t, yaw):
                self.excluded.add(track)
                shook.append(track)
        return shook

    def end(self, tracks: tuple[int, ...]) -> None:
        for track in tracks:
            self.detectors.pop(track, None)
            self.excluded.discard(track)
