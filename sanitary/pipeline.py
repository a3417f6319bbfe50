"""The stages wired for one source, in their one order:
frames -> people -> faces -> masks -> ground positions -> observation -> windows.

Images, boxes and landmarks live only inside `FrameAnalyser.__call__`; what leaves it is an `Observation`
of counts, and what leaves `analyse_file` is a list of window aggregates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from sanitary.analytics import MaskCounts, Observation, WindowAggregate, aggregate
from sanitary.config import CameraConfig
from sanitary.distancing import measure
from sanitary.geometry import zone_area_m2
from sanitary.mask_rate import MaskShares, mask_shares
from sanitary.perception.faces import FaceDetector
from sanitary.perception.masks import MaskClassifier
from sanitary.perception.people import PersonDetector
from sanitary.sources import Frame, Source, TruncatedSourceError

PROGRESS_EVERY = 25


@dataclass
class StageTimes:
    """Milliseconds spent per stage, summed over frames; for the progress summary and the benchmark."""

    decode: float = 0.0
    people: float = 0.0
    faces: float = 0.0
    masks: float = 0.0
    ground: float = 0.0
    frames: int = 0

    def per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        stages = ("decode", "people", "faces", "masks", "ground")
        return {stage: getattr(self, stage) / n for stage in stages}


class FrameAnalyser:
    """People, then faces where people are, then each face's mask, then where people stand, one frame at a time."""

    def __init__(self, camera: CameraConfig) -> None:
        self.people = PersonDetector(camera.detection)
        self.faces = FaceDetector(camera.detection)
        self.masks = MaskClassifier(camera.masks, camera.detection.threads)
        self.homography = camera.ground_homography()
        self.zones = camera.zone_geometry()
        self.distancing = camera.distancing
        self.times = StageTimes()

    def zone_areas(self) -> tuple[tuple[str, float | None], ...]:
        h = self.homography
        return tuple((z.name, zone_area_m2(z, h) if z.units == "m" or h is not None else None) for z in self.zones)

    def __call__(self, frame: Frame) -> Observation:
        t0 = time.perf_counter()
        people = self.people(frame.image)
        t1 = time.perf_counter()
        faces = self.faces(frame.image, people)
        t2 = time.perf_counter()
        readings = self.masks(frame.image, faces)
        t3 = time.perf_counter()
        ground = measure(people, self.homography, self.zones, self.distancing)
        t4 = time.perf_counter()
        self.times.people += (t1 - t0) * 1000
        self.times.faces += (t2 - t1) * 1000
        self.times.masks += (t3 - t2) * 1000
        self.times.ground += (t4 - t3) * 1000
        self.times.frames += 1
        return Observation(frame.index, frame.t, len(people), MaskCounts(*readings.counts()), ground)


def observe(source: Source, analyser: FrameAnalyser, sample_fps: float | None) -> Iterator[tuple[Frame, Observation]]:
    """Each analysed frame with what it showed; decode time is charged to the analyser's stage times."""
    frames = source.frames(sample_fps)
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        analyser.times.decode += (time.perf_counter() - t0) * 1000
        if frame is None:
            return
        yield frame, analyser(frame)


@dataclass(frozen=True)
class FileJob:
    spec: str
    camera: CameraConfig
    source_hash: str
    start: datetime
    fps: float | None
    sample_fps: float | None


@dataclass
class FileResult:
    job: FileJob
    windows: list[WindowAggregate]
    frames_analysed: int
    frames_decoded: int
    duration_s: float
    mask_shares: MaskShares | None = None  # over the whole file
    error: str | None = None
    truncated: bool = False
    times: StageTimes = field(default_factory=StageTimes)

    @property
    def footage(self) -> tuple[datetime, datetime]:
        return self.job.start, self.job.start + timedelta(seconds=self.duration_s)


def analyse_file(job: FileJob, on_frames: Callable[[int], None] | None = None) -> FileResult:
    """Analyse one footage file into window aggregates.

    A file cut short keeps the windows of the frames before the cut and reports the cut as its error;
    any other bad input raises before anything is aggregated.
    """
    source = Source(job.spec, job.fps)
    info = source.info
    analyser = FrameAnalyser(job.camera)
    observations: list[Observation] = []
    error, truncated = None, False
    try:
        for _, obs in observe(source, analyser, job.sample_fps):
            observations.append(obs)
            if on_frames and len(observations) % PROGRESS_EVERY == 0:
                on_frames(PROGRESS_EVERY)
    except TruncatedSourceError as exc:
        error, truncated = str(exc), True
    if on_frames:
        on_frames(len(observations) % PROGRESS_EVERY)
    decoded = source.decoded
    duration = decoded / info.fps
    confusion = np.asarray(analyser.masks.card["validation"]["confusion"])
    windows = aggregate(
        observations,
        site_id=job.camera.site_id,
        camera_id=job.camera.camera_id,
        source=job.source_hash,
        start=job.start,
        duration_s=duration,
        window_s=job.camera.time.window_seconds,
        confusion=confusion,
        zones=analyser.zone_areas(),
    )
    masks = sum((w.masks for w in windows), MaskCounts())
    shares = mask_shares(masks.classified, confusion)
    return FileResult(job, windows, len(observations), decoded, duration, shares, error, truncated, analyser.times)
