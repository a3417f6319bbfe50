"""The stages wired for one source, in their one order:
frames -> people (and heads in crowds) -> tracks -> faces -> masks -> ground positions -> observation.

Images, boxes, landmarks and track ids live only inside `FrameAnalyser`; what leaves it is an `Observation` of
counts, and what it knows of people (`people_so_far`) without identity. The stages that look at images are given
to it (`from_camera` builds the real ones), so that what it does with their outputs is tested without a model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sanitary.analytics.observations import FrameRecord, Observation, observe_frame
from sanitary.analytics.windows import PersonEvents
from sanitary.capture.privacy_masks import PrivacyMasker
from sanitary.capture.sources import Frame, Source
from sanitary.config import CameraConfig
from sanitary.geometry.distancing import FrameDistancing, measure
from sanitary.geometry.homography import on_ground, to_ground
from sanitary.perception.boxes import Detections, as_polygon, on_walkable
from sanitary.perception.crowd_schedule import CrowdSchedule, FindsHeads, HeadCount
from sanitary.perception.faces import FaceDetector, Faces, owner_of
from sanitary.perception.heads import HeadFinder
from sanitary.perception.mask_classes import MaskClass
from sanitary.perception.mask_schedule import MaskSchedule, ReadsMasks
from sanitary.perception.masks import MaskClassifier, MaskReadings
from sanitary.perception.people import PersonDetector
from sanitary.runtime.frame_fit import fit_to_frame
from sanitary.tracking.face_search import FaceSearchSchedule
from sanitary.tracking.headshake import yaw_from_landmarks
from sanitary.tracking.ledger import PersonLedger, PersonSummary
from sanitary.tracking.optout import OptOutWatch
from sanitary.tracking.tracker import PeopleTracker, Tracks


class FindsPeople(Protocol):
    def __call__(self, image: np.ndarray) -> Detections: ...


class FindsFaces(Protocol):
    def __call__(self, image: np.ndarray, people: Detections) -> Faces: ...


class FollowsPeople(Protocol):
    def __call__(self, image: np.ndarray, people: Detections) -> Tracks: ...

    def finish(self) -> tuple[int, ...]:
        """Every track still alive, ended: the footage ended under them."""
        ...


@dataclass
class StageTimes:
    """Milliseconds spent per stage, summed over frames; for the progress summary and the benchmark."""

    decode: float = 0.0
    people: float = 0.0
    heads: float = 0.0
    faces: float = 0.0
    masks: float = 0.0
    ground: float = 0.0
    tracking: float = 0.0
    frames: int = 0

    def per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        stages = ("decode", "people", "heads", "faces", "masks", "ground", "tracking")
        return {stage: getattr(self, stage) / n for stage in stages}


@dataclass(frozen=True)
class PeopleSoFar:
    """What the tracked people did, without identity: the people whose track ended, and those still in view
    summarised so far; None without tracking."""

    people: list[PersonSummary] | None
    events: PersonEvents
    opt_out_times: tuple[float, ...]


class FrameAnalyser:
    """People, then who each person is (tracks), then faces where people are (a tracked person long without a face
    found less often), then each face's mask (a tracked person's once every `masks.every_s`), then where people
    stand, one frame at a time; tracked people's doings go to the ledger, and a head shake takes its person out of
    the open window."""

    def __init__(
        self,
        camera: CameraConfig,
        *,
        people: FindsPeople,
        faces: FindsFaces,
        masks: ReadsMasks,
        tracker: FollowsPeople | None,
        heads: FindsHeads | None = None,
        heads_in_background: bool = False,
    ) -> None:
        self.camera = camera
        # The config's pixels fitted to each frame size met (runtime/frame_fit.py); a folder can mix sizes.
        self.fitted: dict[tuple[int, int], CameraConfig] = {}
        self.size: tuple[int, int] | None = None
        self.people = people
        # The head model's runs (perception/crowd_schedule.py): None without one.
        self.crowd = CrowdSchedule(heads, camera.heads, heads_in_background) if heads is not None else None
        self.faces = faces
        self.face_schedule = FaceSearchSchedule()
        self.masks = MaskSchedule(masks, camera.masks, camera.tracking.min_mask_frames)
        self.tracker = tracker
        self.face_search = camera.detection.face_search
        self.distancing = camera.distancing
        t = camera.tracking
        self.ledger = PersonLedger([], t.min_mask_frames, t.contact_s, t.min_person_s)
        self._use(camera)
        # The opt-out follows a person's head over their track: without tracking there is nobody to follow.
        self.optouts = OptOutWatch(camera.optout) if camera.optout.enabled and tracker else None
        # The open window's frames as the stages saw them, to count again without a person who opts out; None
        # until a window is opened (`start_window`): a caller that folds no windows keeps no frames.
        self.window_records: list[FrameRecord] | None = None
        self.opt_out_times: list[float] = []
        self.revised: list[Observation] = []  # earlier frames of the open window, counted again after an opt-out
        self.times = StageTimes()

    @classmethod
    def from_camera(cls, camera: CameraConfig, analysed_fps: float, heads_in_background: bool = False) -> FrameAnalyser:
        """The analyser with the real models, as the camera's config sets them."""
        d, t = camera.detection, camera.tracking
        # Live, the head model runs in a thread beside the frames: on one core unless set, so that the frames keep
        # the other (on two it doubled a frame's time while it ran, and 1280x720 frames were dropped; one run every
        # `heads.every_s` at about twice its two-core time still keeps up).
        heads = camera.heads
        if heads_in_background and heads.threads == 0:
            heads = dataclasses.replace(heads, threads=1)
        return cls(
            camera,
            # The analyser keeps to the walkable area itself: its pixels follow the frame size.
            people=PersonDetector(dataclasses.replace(d, walkable=[])),
            faces=FaceDetector(d),
            masks=MaskClassifier(camera.masks, d.threads),
            tracker=PeopleTracker(t, analysed_fps) if t.enabled else None,
            heads=HeadFinder(heads) if heads.enabled else None,
            heads_in_background=heads_in_background,
        )

    @property
    def tracking(self) -> bool:
        return self.tracker is not None

    def _use(self, camera: CameraConfig) -> None:
        """Take the pixel geometry of `camera` (the config, or it fitted to a frame size)."""
        self.blank = PrivacyMasker(camera.privacy_masks)
        self.walkable = as_polygon(camera.detection.walkable)
        self.homography = camera.ground_homography()
        self.zones = camera.zone_geometry()
        self.lines = camera.lines
        self.ledger.lines = [(np.asarray(x.a, np.float64), np.asarray(x.b, np.float64)) for x in camera.lines]

    def _fit(self, image: np.ndarray) -> None:
        """Fit the geometry to this frame's size when it differs from the last frame's (or refuse the frame)."""
        height, width = image.shape[:2]
        if (width, height) == self.size:
            return
        if (width, height) not in self.fitted:
            self.fitted[width, height] = fit_to_frame(self.camera, width, height)
        self._use(self.fitted[width, height])
        self.size = (width, height)

    def __call__(self, frame: Frame) -> Observation:
        self._fit(frame.image)
        t0 = time.perf_counter()
        image = self.blank(frame.image)
        people = on_walkable(self.people(image), self.walkable)
        th = time.perf_counter()
        head_count = self.crowd(frame, image, people, self.walkable) if self.crowd is not None else HeadCount.none()
        t1 = time.perf_counter()
        track, tracks = self._follow(image, people)
        t2 = time.perf_counter()
        faces = self._faces(frame, image, people, track)
        t3 = time.perf_counter()
        owners = faces.person if self.face_search == "people" else owner_of(faces, people)
        readings = self.masks(image, frame.t, faces, self._face_tracks(frame, owners, track))
        t4 = time.perf_counter()
        ground = self._measure(people, head_count.unboxed_feet)
        t5 = time.perf_counter()
        self._track(frame.t, people, track, tracks, faces, owners, readings, ground)
        record = FrameRecord(
            frame.index,
            frame.t,
            people,
            track,
            owners,
            readings.classes,
            ground,
            self.tracking,
            head_count.unboxed_feet,
            head_count.heads,
        )
        observation = self._observe(record)
        t6 = time.perf_counter()
        self.times.people += (th - t0) * 1000
        self.times.heads += (t1 - th) * 1000
        self.times.faces += (t3 - t2) * 1000
        self.times.masks += (t4 - t3) * 1000
        self.times.ground += (t5 - t4) * 1000
        self.times.tracking += (t2 - t1 + t6 - t5) * 1000
        self.times.frames += 1
        return observation

    def start_window(self) -> None:
        """The next frame opens a window: an opt-out from then on reaches back to it, not before."""
        self.window_records = []

    def _observe(self, record: FrameRecord) -> Observation:
        if self.optouts is None:
            return observe_frame(record, set(), self._measure)
        if self.window_records is not None:
            self.window_records.append(record)
        return observe_frame(record, self.optouts.excluded, self._measure)

    def _measure(self, people: Detections, unboxed_feet: np.ndarray) -> FrameDistancing:
        return measure(people, self.homography, self.zones, self.distancing, unboxed_feet)

    def _follow(self, image: np.ndarray, people: Detections) -> tuple[np.ndarray, Tracks | None]:
        """Each person's track id (-1: not tracked), and the tracker's news; None without tracking."""
        track = np.full(len(people), -1, np.int64)
        if self.tracker is None:
            return track, None
        tracks = self.tracker(image, people)
        track[tracks.detection] = tracks.ids
        return track, tracks

    def _faces(self, frame: Frame, image: np.ndarray, people: Detections, track: np.ndarray) -> Faces:
        """The faces in the head regions of the people due a search (`FaceSearchSchedule`), each face's person an
        index into `people`; a search over the whole frame, or a photo (no scene shared with the frame before), is
        every time."""
        if self.face_search == "frame" or frame.photo:
            return self.faces(image, people)
        searched = self.face_schedule.due(frame.t, track)
        chosen = np.flatnonzero(searched)
        faces = self.faces(image, Detections(people.boxes[chosen], people.scores[chosen]))
        faces = dataclasses.replace(faces, person=chosen[faces.person])
        self.face_schedule.found(frame.t, track, searched, np.isin(np.arange(len(people)), faces.person))
        return faces

    @staticmethod
    def _face_tracks(frame: Frame, owners: np.ndarray, track: np.ndarray) -> np.ndarray:
        """The track of each face's person, -1 for none (a face searched over a frame where nobody was detected)."""
        face_track = np.full(len(owners), -1, np.int64)
        # A photo shares no scene with the frame before: no reading is carried to it, whatever the tracker says.
        if not frame.photo:
            owned = owners >= 0
            face_track[owned] = track[owners[owned]]
        return face_track

    def _track(
        self,
        t: float,
        people: Detections,
        track: np.ndarray,
        tracks: Tracks | None,
        faces: Faces,
        owners: np.ndarray,
        readings: MaskReadings,
        ground: FrameDistancing,
    ) -> None:
        """Hand the tracked people's doings to the ledger."""
        if tracks is None:
            return
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
        self.masks.end(tracks.ended)
        self.face_schedule.end(tracks.ended)
        if self.optouts:
            self.optouts.end(tracks.ended)

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
        records = self.window_records or []
        since = records[0].t if records else t
        for person in shook:
            self.ledger.opt_out(person, since)
            self.opt_out_times.append(t)
        excluded = self.optouts.excluded
        self.revised.extend(observe_frame(r, excluded, self._measure) for r in records if np.isin(r.track, shook).any())

    def take_revised(self) -> list[Observation]:
        """Earlier frames of the open window counted again since the last call (after an opt-out, a rare event)."""
        revised, self.revised = self.revised, []
        return revised

    def _line_points(self, feet: np.ndarray, units: str) -> np.ndarray:
        if units == "px" or self.homography is None:
            return feet
        points = np.full_like(feet, np.nan)
        standing = on_ground(self.homography, feet)
        points[standing] = to_ground(self.homography, feet[standing])
        return points

    def people_so_far(self) -> PeopleSoFar:
        """What the ledger holds now, people still in view counted so far (none after `close`); no side effect."""
        alive, pending = self.ledger.snapshot()
        ledger = self.ledger
        return PeopleSoFar(
            ledger.people + alive if self.tracker else None,
            PersonEvents(ledger.crossings + pending, ledger.contacts, tuple(x.name for x in self.lines)),
            tuple(self.opt_out_times),
        )

    def forget_before(self, t: float) -> None:
        """Everything before `t` is stored: drop what only those windows needed, so that memory stays flat."""
        self.ledger.forget_before(t)
        self.opt_out_times = [x for x in self.opt_out_times if x >= t]

    def close(self) -> None:
        """The footage ended: every track still alive ends here, and a head run still going is not waited for."""
        if self.tracker is not None:
            ended = self.tracker.finish()
            self.ledger.end(ended)
            self.masks.end(ended)
            self.face_schedule.end(ended)
        if self.crowd is not None:
            self.crowd.close()


def decoded(source: Source, times: StageTimes, sample_fps: float | None, from_s: float = 0.0) -> Iterator[Frame]:
    """The source's frames to analyse (from `from_s` on), their decode time charged to `times`."""
    frames = source.frames(sample_fps, from_s)
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        times.decode += (time.perf_counter() - t0) * 1000
        if frame is None:
            return
        yield frame


def observe(
    source: Source, analyser: FrameAnalyser, sample_fps: float | None, from_s: float = 0.0
) -> Iterator[tuple[Frame, Observation]]:
    """Each analysed frame with what it showed, frame by frame with no window (counting, benchmarks)."""
    for frame in decoded(source, analyser.times, sample_fps, from_s):
        yield frame, analyser(frame)
