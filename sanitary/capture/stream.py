"""A live source: a camera device, an RTSP/HTTP stream, or a file played as one, read by its own thread.

The reader holds the newest frames due for analysis, at most BACKLOG_S of them: a slow frame (the machine busy with
other work, a window's commit) is ridden out without a drop, and analysis that stays behind skips frames (counted as
dropped, the oldest first) rather than queueing more: memory stays flat however long the unit runs. A source that
fails or stalls is reopened with exponential backoff; the time it was up is recorded, so that a window of a camera
that was down reads as missing, never as zero people.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sanitary.errors import SanitaryError

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# A stream that delivers nothing this long is stalled: it is closed and opened again.
STALL_MS = 10_000
# Seconds of due frames held while the analysis is busy: one frame held (as before) dropped frames whenever one
# analysis took longer than two frame periods, which a loaded machine does now and then even when the analysis
# keeps up on average (3 of 795 frames at 1280x720 and 10 fps, at 22% CPU). Half a second rides that out, bounds
# what the backlog holds (5 frames at 10 fps: 14 MB at 1280x720) and how late a frame is analysed.
BACKLOG_S = 0.5


@dataclass(frozen=True)
class LiveFrame:
    seq: int  # frames kept for analysis so far; increases by one per kept frame
    t: float  # seconds since the session started (footage time for a file, monotonic time for a stream)
    image: np.ndarray


@dataclass(frozen=True)
class SourceStats:
    frames_read: int
    frames_kept: int  # frames due for analysis at the analysis rate
    frames_dropped: int  # kept frames overwritten before analysis took them: analysis was behind
    reconnects: int
    up: bool


def is_file_spec(spec: str) -> bool:
    return "://" not in spec and not spec.isdigit()


class LiveSource:
    """Reads `spec` in a thread at its own pace (`realtime` paces a file at its frame rate); `latest` hands the
    newest due frame to the analysis loop."""

    def __init__(
        self,
        spec: str,
        analysis_fps: float,
        *,
        realtime: bool = False,
        fps: float | None = None,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if is_file_spec(spec) and not Path(spec).is_file():
            raise SanitaryError(f"{spec}: no such file; pass a camera index (0), a stream URL or a video file")
        self.spec = spec
        self.analysis_fps = analysis_fps
        self.realtime = realtime
        self.fps = fps
        self.loop = loop
        self.clock = clock
        self.started = clock()
        self.depth = max(1, math.ceil(BACKLOG_S * analysis_fps))  # due frames held at most
        self._lock = threading.Condition()
        self._due: deque[LiveFrame] = deque()  # oldest first
        self._read = self._kept = self._dropped = self._reconnects = 0
        self._up = False
        self._up_since: float | None = None
        self._up_spans: list[tuple[float, float]] = []  # closed spans of session seconds the source was up
        self._stop = threading.Event()
        self.finished = threading.Event()  # a file reached its end (streams never finish on their own)
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"source {spec}", daemon=True)

    def start(self) -> LiveSource:
        # Session seconds count from here, not from construction: a paced file's frame times count from the
        # reader's start, and the models loaded in between must not put the two clocks apart.
        self.started = self.clock()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ the analysis side

    def next_due(self, timeout: float) -> LiveFrame | None:
        """The oldest due frame not yet taken, waiting up to `timeout` seconds for one."""
        with self._lock:
            if not self._due:
                self._lock.wait(timeout)
            if not self._due:
                return None
            frame = self._due.popleft()
            self._lock.notify_all()
            return frame

    @property
    def late_s(self) -> float:
        """How long after it was read a due frame may still reach the analysis: the frames held before it, and one
        period being analysed."""
        return (self.depth + 1) / self.analysis_fps

    def stats(self) -> SourceStats:
        with self._lock:
            return SourceStats(self._read, self._kept, self._dropped, self._reconnects, self._up)

    def up_seconds(self, start_t: float, end_t: float) -> float:
        """Seconds of [start_t, end_t) (session seconds) during which the source delivered frames."""
        with self._lock:
            spans = list(self._up_spans)
            if self._up_since is not None:
                spans.append((self._up_since, math.inf))
            self._up_spans = [s for s in self._up_spans if s[1] > start_t]  # older spans are no longer asked for
        return sum(max(0.0, min(b, end_t) - max(a, start_t)) for a, b in spans)

    # ------------------------------------------------------------------ the reader thread

    def _now(self) -> float:
        return self.clock() - self.started

    def _set_up(self, up: bool, at: float) -> None:
        with self._lock:
            if up and self._up_since is None:
                self._up_since = at
            elif not up and self._up_since is not None:
                self._up_spans.append((self._up_since, at))
                self._up_since = None
            self._up = up

    def _open(self) -> tuple[cv2.VideoCapture, float]:
        if self.spec.isdigit():
            cap = cv2.VideoCapture(int(self.spec))
        else:
            # FFmpeg's own timeouts: a stalled stream fails its read instead of blocking forever, and is reopened.
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STALL_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STALL_MS]
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, timeouts)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"cannot open {self.spec}")
        rate = self.fps or cap.get(cv2.CAP_PROP_FPS)
        return cap, rate if rate and math.isfinite(rate) and rate > 0 else 25.0

    def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        offset_t = 0.0  # footage seconds already played, for a file played again with `loop`
        while not self._stop.is_set():
            try:
                cap, rate = self._open()
            except OSError as exc:
                self.error = str(exc)
                if is_file_spec(self.spec):
                    self.finished.set()
                    return
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                self._reconnects += 1
                continue
            backoff = BACKOFF_FIRST_S
            played = self._read_until_broken(cap, rate, offset_t)
            cap.release()
            self._set_up(False, self._now())
            if is_file_spec(self.spec):
                if not self.loop or played == 0:
                    self.finished.set()
                    return
                offset_t += played / rate
            else:
                self._reconnects += 1
                self._stop.wait(backoff)

    def _read_until_broken(self, cap: cv2.VideoCapture, rate: float, offset_t: float) -> int:
        """Read until the stream breaks, stalls or a file ends; the frames read."""
        is_file = is_file_spec(self.spec)
        period = 1.0 / self.analysis_fps
        next_due = offset_t if is_file else self._now()
        n = 0
        paced_from = self._now()  # each pass over a file is paced from its own start
        while not self._stop.is_set():
            t = offset_t + n / rate if is_file else self._now()
            if is_file and self.realtime:
                wait = paced_from + n / rate - self._now()
                if wait > 0:
                    self._stop.wait(wait)
            if not cap.grab():
                return n
            n += 1
            self._set_up(True, self._now())
            with self._lock:
                self._read += 1
            if t + 1e-9 < next_due:
                continue  # not due at the analysis rate: skipped without decoding
            ok, image = cap.retrieve()
            if not ok:
                return n
            next_due += period * max(1, math.floor((t - next_due) / period) + 1)
            with self._lock:
                if is_file and not self.realtime:
                    # A file not played in real time is footage, not a stream: nothing is lost waiting for analysis.
                    while len(self._due) >= self.depth and not self._stop.is_set():
                        self._lock.wait(0.1)
                self._kept += 1
                if len(self._due) >= self.depth:
                    self._due.popleft()
                    self._dropped += 1
                self._due.append(LiveFrame(self._kept, t, image))
                self._lock.notify_all()
        return n
