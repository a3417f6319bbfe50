"""A live source rides out a slow frame without dropping any, and holds no more than its backlog when analysis stays
behind: read from a real video file paced as a camera delivers it."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from sanitary.capture.stream import BACKLOG_S, LiveSource

FPS = 10.0


def clip(path: Path, frames: int) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    return str(path)


def test_one_slow_analysis_drops_no_frame(tmp_path: Path) -> None:
    """A frame analysed in 0.25 s (two and a half frame periods: the machine busy with other work) while the camera
    goes on delivering: the frames it brought wait their turn, in order."""
    source = LiveSource(clip(tmp_path / "cam.avi", 30), FPS, realtime=True, fps=FPS).start()
    taken = []
    try:
        while (frame := source.next_due(0.05)) is not None or not source.finished.is_set():
            if frame is not None:
                taken.append(frame.seq)
                if frame.seq == 10:
                    time.sleep(0.25)
    finally:
        source.stop()
    assert source.stats().frames_dropped == 0
    assert taken == list(range(1, 31))


def test_analysis_that_stays_behind_drops_the_oldest_and_holds_only_the_backlog(tmp_path: Path) -> None:
    source = LiveSource(clip(tmp_path / "cam.avi", 30), FPS, realtime=True, fps=FPS).start()
    source.finished.wait(10)  # nothing taken while the whole clip plays
    held = []
    while (frame := source.next_due(0.0)) is not None:
        held.append(frame.seq)
    source.stop()
    depth = round(BACKLOG_S * FPS)
    assert held == list(range(31 - depth, 31))  # the newest, oldest first
    assert source.stats().frames_dropped == 30 - depth
