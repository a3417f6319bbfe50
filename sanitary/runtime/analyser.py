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

from sanitary.alerts.rules import AlertEngine, trailing_sample
from sanitary.alerts.sinks import AlertSink, SentAlert, send, sinks_from_config
from sanitary.analytics.observations import FrameRecord, Observation, observe_frame
from sanitary.analytics.privacy import apply_profile
from sanitary.analytics.windows import PersonEvents, WindowAggregate, aggregate, window_start
from sanitary.capture.privacy_masks import PrivacyMasker
from sanitary.capture.sources import Frame, Source, TruncatedSourceError
from sanitary.config import CameraConfig
from sanitary.geometry.distancing import FrameDistancing, measure
from sanitary.geometry.homography import on_ground, to_ground, zone_area_m2
from sanitary.perception.faces import FaceDetector, Faces, owner_of
from sanitary.perception.mask_classes import MaskClass
from sanitary.perception.masks import MaskClassifier, MaskReadings
from sanitary.perception.people import Detections, PersonDetector
from sanitary.tracking.headshake import yaw_from_landmarks
from sanitary.tracking.ledger import PersonLedger
from sanitary.tracking.optout import OptOutWatch
from sanitary.tracking.tracker import PeopleTracker

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

    def __init__(
        self, camera: CameraConfig, analysed_fps: float, window_of: Callable[[float], object] | None = None
    ) -> None:
        self.blank = PrivacyMasker(camera.privacy_masks)
        self.people = PersonDetector(camera.detection)
        self.faces = FaceDetector(camera.detection)
        self.masks = MaskClassifier(camera.masks, camera.detection.threads)
        self.homography = camera.ground_homography()
        self.zones = camera.zone_geometry()
        self.distancing = camera.distancing
        t = camera.tracking
        self.tracker = PeopleTracker(t, analysed_fps) if t.enabled else None
        self.camera = camera
        self.lines = camera.lines
        self.ledger = PersonLedger(
            [(np.asarray(x.a, np.float64), np.asarray(x.b, np.float64)) for x in camera.lines],
            t.min_mask_frames,
            t.contact_s,
            t.min_person_s,
        )
        # The opt-out follows a person's head over their track: without tracking there is nobody to follow.
        self.optouts = OptOutWatch(camera.optout) if camera.optout.enabled and self.tracker else None
        window_s = camera.time.window_seconds
        self.window_of = window_of or (lambda at: at // window_s)
        self.open_window: list[FrameRecord] = []
        self.opt_out_times: list[float] = []
        self.revised: list[Observation] = []  # earlier frames of the open window, counted again after an opt-out
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
        owners = faces.person if self.faces.config.face_search == "people" else owner_of(faces, people)
        track = self._track(image, frame.t, people, faces, owners, readings, ground)
        record = FrameRecord(frame.index, frame.t, people, track, owners, readings.classes, ground, bool(self.tracker))
        observation = self._observe(record)
        t5 = time.perf_counter()
        self.times.people += (t1 - t0) * 1000
        self.times.faces += (t2 - t1) * 1000
        self.times.masks += (t3 - t2) * 1000
        self.times.ground += (t4 - t3) * 1000
        self.times.tracking += (t5 - t4) * 1000
        self.times.frames += 1
        return observation

    def _observe(self, record: FrameRecord) -> Observation:
        if self.optouts is None:
            return observe_frame(record, set(), self._measure)
        if self.open_window and self.window_of(self.open_window[0].t) != self.window_of(record.t):
            self.open_window = []
        self.open_window.append(record)
        return observe_frame(record, self.optouts.excluded, self._measure)

    def _measure(self, people: Detections) -> FrameDistancing:
        return measure(people, self.homography, self.zones, self.distancing)

    def _track(
        self,
        image: np.ndarray,
        t: float,
        people: Detections,
        faces: Faces,
        owners: np.ndarray,
        readings: MaskReadings,
        ground: FrameDistancing,
    ) -> np.ndarray:
        """Hand the tracked people's doings to the ledger; each person's track id (-1: not tracked)."""
        track = np.full(len(people), -1, np.int64)
        if self.tracker is None:
            return track
        tracks = self.tracker(image, people)
        track[tracks.detection] = tracks.ids
        self._opt_outs(t, track, faces, owners)
        excluded = self.optouts.excluded if self.optouts else set()
        counted = np.flatnonzero((track >= 0) & ~np.isin(track, list(excluded)))
        person_mask = np.full(len(people), MaskClass.UNKNOWN, np.int64)
        for owner, reading in zip(owners, readings.classes, strict=True):
            if owner >= 0:
                person_mask[owner] = reading
        feet = people.feet.astype(np.float64)
        close = {
            (min(track[i], track[j]), max(track[i], track[j]))
            for i, j in ground.close_index
            if track[i] >= 0 and track[j] >= 0 and track[i] not in excluded and track[j] not in excluded
        }
        self.ledger.update(
            t,
            track[counted],
            person_mask[counted],
            [self._line_points(feet, line.units)[counted] for line in self.lines],
            close,
        )
        self.ledger.end(tracks.ended)
        if self.optouts:
            self.optouts.end(tracks.ended)
        return track

    def _opt_outs(self, t: float, track: np.ndarray, faces: Faces, owners: np.ndarray) -> None:
        """Watch each tracked person's head; one who shook it is taken out of the open window and what follows."""
        if self.optouts is None:
            return
        yaw = np.full(len(track), np.nan)
        owned = owners >= 0
        yaw[owners[owned]] = yaw_from_landmarks(faces.landmarks[owned])
        tracked = np.flatnonzero(track >= 0)
        shook = self.optouts.update(t, track[tracked], yaw[tracked])
        if not shook:
            return
        since = self.open_window[0].t if self.open_window else t
        for person in shook:
            self.ledger.opt_out(person, since)
            self.opt_out_times.append(t)
        excluded = self.optouts.excluded
        self.revised.extend(
            observe_frame(r, excluded, self._measure) for r in self.open_window if np.isin(r.track, shook).any()
        )

    def take_revised(self) -> list[Observation]:
        revised, self.revised = self.revised, []
        return revised

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

    def windows(
        self, observations: list[Observation], *, source: str, start: datetime, duration_s: float, live: bool = False
    ) -> list[WindowAggregate]:
        """The observations folded into windows with what the ledger knows of people, as the privacy profile lets
        them be stored. The footage has ended, and with it every track; or, `live`, people still in view are
        counted so far (a live unit closing a window)."""
        ledger = self.ledger if live else self.finish()
        alive, pending = ledger.snapshot() if live else ([], [])
        windows = aggregate(
            observations,
            site_id=self.camera.site_id,
            camera_id=self.camera.camera_id,
            source=source,
            start=start,
            duration_s=duration_s,
            window_s=self.camera.time.window_seconds,
            confusion=self.masks.card.confusion,
            zones=self.zone_areas(),
            people=ledger.people + alive if self.tracker else None,
            events=PersonEvents(ledger.crossings + pending, ledger.contacts, tuple(x.name for x in self.lines)),
            dwell_bins_s=tuple(self.camera.tracking.dwell_bins_s),
            opt_out_times=self.opt_out_times,
        )
        return apply_profile(windows, self.camera.privacy)


def observe(
    source: Source, analyser: FrameAnalyser, sample_fps: float | None, from_s: float = 0.0
) -> Iterator[tuple[Frame, Observation]]:
    """Each analysed frame (from `from_s` on) with what it showed; decode time is charged to the analyser."""
    frames = source.frames(sample_fps, from_s)
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


def revise(observations: list[Observation], revised: list[Observation]) -> None:
    """Put frames counted again (after an opt-out, a rare event) in place of their first count."""
    if revised:
        at = {o.frame: i for i, o in enumerate(observations)}
        for obs in revised:
            observations[at[obs.frame]] = obs


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
    window_s = job.camera.time.window_seconds
    fps = info.analysed_fps(job.sample_fps)
    analyser = FrameAnalyser(job.camera, fps, lambda t: window_start(job.start + timedelta(seconds=t), window_s))
    watch = AlertWatch(job.camera, job.start, sinks_from_config(job.camera.alert_sinks))
    observations: list[Observation] = []
    error, truncated = None, False
    try:
        for _, obs in observe(source, analyser, job.sample_fps):
            observations.append(obs)
            revise(observations, analyser.take_revised())
            watch(observations, analyser.ledger if analyser.tracker else None)
            if on_frames and len(observations) % PROGRESS_EVERY == 0:
                on_frames(PROGRESS_EVERY)
    except TruncatedSourceError as exc:
        error, truncated = str(exc), True
    if on_frames:
        on_frames(len(observations) % PROGRESS_EVERY)
    decoded = source.decoded
    duration = decoded / info.fps
    windows = analyser.windows(observations, source=job.source_hash, start=job.start, duration_s=duration)
    return FileResult(job, windows, len(observations), decoded, duration, error, truncated, analyser.times, watch.sent)
