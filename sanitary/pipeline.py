"""The stages wired for one source, in their one order:
frames -> people -> faces -> masks -> ground positions -> observation -> windows.

Images, boxes and landmarks live only inside `FrameAnalyser.__call__`; what leaves it is an `Observation`
of counts, and what leaves `analyse_file` is a list of window aggregates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from sanitary.alert_sinks import AlertSink, SentAlert, send, sinks_from_config
from sanitary.alerts import AlertEngine, trailing_sample
from sanitary.analytics import MaskCounts, Observation, PersonEvents, WindowAggregate, aggregate
from sanitary.config import CameraConfig
from sanitary.distancing import FrameDistancing, measure
from sanitary.geometry import on_ground, to_ground, zone_area_m2
from sanitary.mask_rate import MaskShares, mask_shares
from sanitary.perception.faces import FaceDetector, Faces, owner_of
from sanitary.perception.masks import UNKNOWN, MaskClassifier, MaskReadings
from sanitary.perception.people import Detections, PersonDetector
from sanitary.person_ledger import PersonLedger
from sanitary.privacy import PrivacyMasker, apply_profile
from sanitary.sources import Frame, Source, TruncatedSourceError
from sanitary.tracking import PeopleTracker

PROGRESS_EVERY = 25


@dataclass
class StageTimes:
    """Milliseconds spent per stage, summed over frames; for the progress summary and the benchmark."""

    decode: float = 0.0
    people: float = 0.0
    faces: float = 0.0
    masks: float = 0.0
    ground: float = 0.0
    tracking: float = 0.0
    frames: int = 0

    def per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        stages = ("decode", "people", "faces", "masks", "ground", "tracking")
        return {stage: getattr(self, stage) / n for stage in stages}


class FrameAnalyser:
    """People, then faces where people are, then each face's mask, then where people stand, one frame at a time."""

    def __init__(self, camera: CameraConfig, analysed_fps: float) -> None:
        self.blank = PrivacyMasker(camera.privacy_masks)
        self.people = PersonDetector(camera.detection)
        self.faces = FaceDetector(camera.detection)
        self.masks = MaskClassifier(camera.masks, camera.detection.threads)
        self.homography = camera.ground_homography()
        self.zones = camera.zone_geometry()
        self.distancing = camera.distancing
        t = camera.tracking
        self.tracker = PeopleTracker(t, analysed_fps) if t.enabled else None
        self.lines = camera.lines
        self.ledger = PersonLedger(
            [(np.asarray(x.a, np.float64), np.asarray(x.b, np.float64)) for x in camera.lines],
            t.min_mask_frames,
            t.contact_s,
            t.min_person_s,
        )
        self.times = StageTimes()

    def zone_areas(self) -> tuple[tuple[str, float | None], ...]:
        h = self.homography
        return tuple((z.name, zone_area_m2(z, h) if z.units == "m" or h is not None else None) for z in self.zones)

    def __call__(self, frame: Frame) -> Observation:
        t0 = time.perf_counter()
        image = self.blank(frame.image)
        people = self.people(image)
        t1 = time.perf_counter()
        faces = self.faces(image, people)
        t2 = time.perf_counter()
        readings = self.masks(image, faces)
        t3 = time.perf_counter()
        ground = measure(people, self.homography, self.zones, self.distancing)
        t4 = time.perf_counter()
        tracked = self._track(image, frame.t, people, faces, readings, ground)
        t5 = time.perf_counter()
        self.times.people += (t1 - t0) * 1000
        self.times.faces += (t2 - t1) * 1000
        self.times.masks += (t3 - t2) * 1000
        self.times.ground += (t4 - t3) * 1000
        self.times.tracking += (t5 - t4) * 1000
        self.times.frames += 1
        return Observation(frame.index, frame.t, len(people), MaskCounts(*readings.counts()), ground, tracked)

    def _track(
        self,
        image: np.ndarray,
        t: float,
        people: Detections,
        faces: Faces,
        readings: MaskReadings,
        ground: FrameDistancing,
    ) -> int | None:
        """Hand the tracked people's doings to the ledger; the number of people tracked in this frame."""
        if self.tracker is None:
            return None
        tracks = self.tracker(image, people)
        person_mask = np.full(len(people), UNKNOWN, np.int64)
        owners = faces.person if self.faces.config.face_search == "people" else owner_of(faces, people)
        for owner, reading in zip(owners, readings.classes, strict=True):
            if owner >= 0:
                person_mask[owner] = reading
        feet = people.feet.astype(np.float64)
        line_points = [self._line_points(feet, line.units) for line in self.lines]
        by_detection = dict(zip(tracks.detection.tolist(), tracks.ids.tolist(), strict=True))
        close = {
            (min(by_detection[i], by_detection[j]), max(by_detection[i], by_detection[j]))
            for i, j in ground.close_index
            if i in by_detection and j in by_detection
        }
        self.ledger.update(
            t,
            tracks.ids,
            person_mask[tracks.detection],
            [points[tracks.detection] for points in line_points],
            close,
        )
        self.ledger.end(tracks.ended)
        return len(tracks)

    def _line_points(self, feet: np.ndarray, units: str) -> np.ndarray:
        if units == "px" or self.homography is None:
            return feet
        points = np.full_like(feet, np.nan)
        standing = on_ground(self.homography, feet)
        points[standing] = to_ground(self.homography, feet[standing])
        return points

    def finish(self) -> PersonLedger:
        """The footage ended: every track still alive ends here."""
        if self.tracker is not None:
            self.ledger.end(self.tracker.finish())
        return self.ledger


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


class AlertWatch:
    """The camera's alert rules, checked after every analysed frame; what fires goes to the sinks at once (staff
    act now, not when the file is done) and is kept for the store."""

    def __init__(self, camera: CameraConfig, start: datetime, sinks: Sequence[AlertSink]) -> None:
        self.engine = AlertEngine(camera.alerts, camera.site_id, camera.camera_id)
        self.start = start
        self.sinks = sinks
        self.zone_names = tuple(z.name for z in camera.zones)
        self.sent: list[SentAlert] = []

    def __call__(self, observations: Sequence[Observation], ledger: PersonLedger | None) -> None:
        if not self.engine.rules or not observations:
            return
        now_t = observations[-1].t
        contacts, starts = (ledger.contacts, ledger.pair_starts) if ledger else (None, None)
        samples = [
            trailing_sample(observations, contacts, starts, now_t, s, self.zone_names) for s in self.engine.spans
        ]
        for alert in self.engine.update(self.start + timedelta(seconds=now_t), samples):
            self.sent.append(send(alert, self.sinks))


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
    alerts: list[SentAlert] = field(default_factory=list)

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
    analyser = FrameAnalyser(job.camera, info.analysed_fps(job.sample_fps))
    watch = AlertWatch(job.camera, job.start, sinks_from_config(job.camera.alert_sinks))
    observations: list[Observation] = []
    error, truncated = None, False
    try:
        for _, obs in observe(source, analyser, job.sample_fps):
            observations.append(obs)
            watch(observations, analyser.ledger if analyser.tracker else None)
            if on_frames and len(observations) % PROGRESS_EVERY == 0:
                on_frames(PROGRESS_EVERY)
    except TruncatedSourceError as exc:
        error, truncated = str(exc), True
    if on_frames:
        on_frames(len(observations) % PROGRESS_EVERY)
    decoded = source.decoded
    duration = decoded / info.fps
    confusion = np.asarray(analyser.masks.card["validation"]["confusion"])
    ledger = analyser.finish()
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
        people=ledger.people if analyser.tracker else None,
        events=PersonEvents(ledger.crossings, ledger.contacts, tuple(x.name for x in job.camera.lines)),
        dwell_bins_s=tuple(job.camera.tracking.dwell_bins_s),
    )
    windows = apply_profile(windows, job.camera.privacy)
    masks = sum((w.masks for w in windows), MaskCounts())
    shares = mask_shares(masks.classified, confusion)
    return FileResult(
        job, windows, len(observations), decoded, duration, shares, error, truncated, analyser.times, watch.sent
    )
