"""The analysis session's logic without a model: scripted people, faces, mask readings and tracks go through the
real frame analyser, ledger, opt-out watch, alert rules and window folding, and every count is checked exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from sanitary.analytics.observations import MaskCounts
from sanitary.analytics.windows import WindowAggregate
from sanitary.capture.sources import Frame
from sanitary.config import AlertRule, CameraConfig, TimeConfig, ZoneConfig, default_camera
from sanitary.perception.boxes import Detections
from sanitary.perception.faces import Faces
from sanitary.perception.heads import Heads
from sanitary.perception.masks import MaskReadings
from sanitary.runtime import session as session_module
from sanitary.runtime.analyser import FrameAnalyser
from sanitary.runtime.session import AnalysisSession
from sanitary.tracking.headshake import NOSE_DEPTH
from sanitary.tracking.tracker import Tracks

START = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
CAMERA = dataclasses.replace(default_camera("door", "bus-12"), time=TimeConfig(window_seconds=10))


@pytest.fixture(autouse=True)
def as_analysed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's counts before k-min, which would empty these windows of a few people (its own tests:
    tests/analytics/test_privacy.py)."""
    monkeypatch.setattr(session_module, "apply_profile", lambda windows, privacy: list(windows))


IMAGE = np.zeros((40, 80, 3), np.uint8)
CONFUSION = np.diag([50, 50, 50])
WITH, WITHOUT = 0, 1
SHAKE = 40.0  # degrees of yaw, well past the opt-out's 15


@dataclasses.dataclass(frozen=True)
class Seen:
    """One person in a scripted frame: their track id, the yaw of their face, how their mask was read."""

    track: int
    yaw: float = 0.0
    mask: int = WITHOUT


Script = list[list[Seen]]


def detections(seen: list[Seen]) -> Detections:
    boxes = np.array([[10 * i, 0, 10 * i + 8, 30] for i in range(len(seen))], np.float32).reshape(-1, 4)
    return Detections(boxes, np.ones(len(seen), np.float32))


def landmarks(x: float, yaw: float) -> np.ndarray:
    """Eyes 10 px apart, mouth below, and the nose moved sideways as far as a head turned by `yaw` moves it."""
    nose = x + 5 + 10 * NOSE_DEPTH * np.tan(np.radians(yaw))
    return np.array([[x, 0], [x + 10, 0], [nose, 5], [x + 2, 10], [x + 8, 10]], np.float32)


class Stage:
    """A fake stage: one scripted frame per call, as the analyser calls every stage once a frame."""

    def __init__(self, script: Script) -> None:
        self.frames: Iterator[list[Seen]] = iter(script)


class FakePeople(Stage):
    def __call__(self, image: np.ndarray) -> Detections:
        return detections(next(self.frames))


class FakeFaces(Stage):
    def __call__(self, image: np.ndarray, people: Detections) -> Faces:
        seen = next(self.frames)
        return Faces(
            people.boxes.copy(),
            np.ones(len(seen), np.float32),
            np.array([landmarks(10 * i, s.yaw) for i, s in enumerate(seen)], np.float32).reshape(-1, 5, 2),
            np.arange(len(seen), dtype=np.int64),
        )


class FakeMasks(Stage):
    """The scripted readings of the faces it is given (each face's person is its place in the frame's script)."""

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.read: list[int] = []  # faces read, each frame

    def __call__(self, image: np.ndarray, faces: Faces) -> MaskReadings:
        seen = next(self.frames)
        self.read.append(len(faces))
        masks = [seen[p].mask for p in faces.person.tolist()]
        return MaskReadings(np.array(masks, np.int64), np.ones(len(masks), np.float32))


class FakeTracker(Stage):
    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.live: set[int] = set()
        self.frames_seen = 0
        self.finished = False

    def __call__(self, image: np.ndarray, people: Detections) -> Tracks:
        seen = next(self.frames)
        self.frames_seen += 1
        now = {s.track for s in seen}
        ended, self.live = tuple(sorted(self.live - now)), now
        return Tracks(np.array([s.track for s in seen], np.int64), np.arange(len(seen), dtype=np.int64), ended)

    def finish(self) -> tuple[int, ...]:
        ended, self.live = tuple(sorted(self.live)), set()
        self.finished = True
        return ended


def fake_analyser(
    script: Script,
    camera: CameraConfig = CAMERA,
    *,
    tracker: FakeTracker | None = None,
    heads: Stage | None = None,
    heads_in_background: bool = False,
) -> FrameAnalyser:
    """The analyser on the scripted stages."""
    return FrameAnalyser(
        camera,
        people=FakePeople(script),
        faces=FakeFaces(script),
        masks=FakeMasks(script),
        tracker=tracker,
        heads=heads,  # type: ignore[arg-type]
        heads_in_background=heads_in_background,
    )


def session(
    script: Script, camera: CameraConfig = CAMERA, start: datetime = START, **options: object
) -> tuple[AnalysisSession, FakeTracker]:
    tracker = FakeTracker(script)
    analyser = fake_analyser(script, camera, tracker=tracker)
    return AnalysisSession(camera, analyser, start, source="test", confusion=CONFUSION, **options), tracker  # type: ignore[arg-type]


def analyse(s: AnalysisSession, script: Script) -> None:
    for i in range(len(script)):
        s.analyse(Frame(i, float(i), IMAGE, None))


def counts(w: WindowAggregate) -> tuple[int, int, int, MaskCounts, int, tuple[int, ...], int]:
    assert w.persons is not None
    return (
        w.frames_analysed,
        w.people_sum,
        w.people_max,
        w.masks,
        w.persons.people_distinct,
        w.persons.dwell_counts,
        w.opt_outs,
    )


def shaking(shake_at: float, frames: int) -> Script:
    """Person 1 (no mask) shakes their head over the three frames from `shake_at`; person 2 (masked) looks on."""
    yaws = {shake_at: SHAKE, shake_at + 1: -SHAKE, shake_at + 2: SHAKE}
    return [[Seen(1, yaws.get(float(t), 0.0)), Seen(2, mask=WITH)] for t in range(frames)]


@pytest.mark.parametrize("shake_at", [12.0, 8.0])
def test_a_head_shake_takes_the_person_out_of_the_whole_open_window_and_no_earlier(shake_at: float) -> None:
    """A shake from 08:00:12 to 08:00:14, in the second window; and one completed on its first frame, 08:00:10."""
    script = shaking(shake_at, 20)
    s, _ = session(script)
    analyse(s, script)
    s.close()
    first, second = s.windows(20.0)
    # 10 frames of both people; person 1 counted until the window they opted out in, their visit ending at 9 s.
    assert counts(first) == (10, 20, 2, MaskCounts(10, 10, 0, 0), 2, (1, 0, 0, 0, 0), 0)
    # Person 1 is out of every frame of the second window, those before the shake (counted again) too.
    assert counts(second) == (10, 10, 1, MaskCounts(10, 0, 0, 0), 1, (0, 1, 0, 0, 0), 1)


def test_tracked_peoples_masks_are_read_once_every_masks_every_s_and_their_frames_count_them_all() -> None:
    """11 frames, 10 a second, masks.every_s 0.5 s: each tracked face is read on the first two frames (the
    two readings a vote needs), then once in each half-second period of its track's, whose phases differ so that
    the two are not read again on the same frame (track 1 at 0.2 and 0.7 s, track 2 at 0.4 and 0.9 s); every
    frame still counts both faces with their masks, and the ledger votes as before. Person 3 is never tracked:
    read every frame."""
    script = [[Seen(1, mask=WITH), Seen(2), Seen(-1)] for _ in range(11)]
    camera = dataclasses.replace(CAMERA, masks=dataclasses.replace(CAMERA.masks, every_s=0.5))
    tracker = FakeTracker([[s for s in frame if s.track >= 0] for frame in script])
    masks = FakeMasks(script)
    analyser = FrameAnalyser(camera, people=FakePeople(script), faces=FakeFaces(script), masks=masks, tracker=tracker)
    observations = [analyser(Frame(i, i / 10, IMAGE, None)) for i in range(11)]
    assert [o.masks for o in observations] == [MaskCounts(1, 2, 0, 0)] * 11
    assert masks.read == [3, 3, 2, 1, 2, 1, 1, 2, 1, 2, 1]
    analyser.close()
    assert [(p.mask, p.mask_frames) for p in analyser.people_so_far().people or []] == [(WITH, 11), (WITHOUT, 11)]
    assert not analyser.masks.last


def test_no_mask_reading_is_carried_to_a_photo() -> None:
    """A folder's photos are each their own scene: every face is read on each, even where a track goes on."""
    script = [[Seen(1, mask=WITH), Seen(2)] for _ in range(4)]
    camera = dataclasses.replace(CAMERA, masks=dataclasses.replace(CAMERA.masks, every_s=60.0))
    masks = FakeMasks(script)
    analyser = FrameAnalyser(
        camera, people=FakePeople(script), faces=FakeFaces(script), masks=masks, tracker=FakeTracker(script)
    )
    observations = [analyser(Frame(i, i / 10, IMAGE, f"{i}.jpg", photo=True)) for i in range(4)]
    assert [o.masks for o in observations] == [MaskCounts(1, 1, 0, 0)] * 4
    assert masks.read == [2, 2, 2, 2]


def test_a_tracked_person_long_without_a_face_is_searched_less_often_and_faces_keep_their_people() -> None:
    """10 frames a second for 2 s: track 1 never shows a face, track 2 always does. Track 1's head region is searched
    on every frame of its first second, then once in each 0.3 s (tracking/face_search.py); track 2's on every frame,
    its face read as its own person's (the second box) on the frames where the first is not searched."""
    script = [[Seen(1), Seen(2, mask=WITH)] for _ in range(21)]
    given: list[list[float]] = []  # the left edge of each box the face search was given, each frame

    class BackTurned(Stage):
        def __call__(self, image: np.ndarray, people: Detections) -> Faces:
            next(self.frames)
            given.append(people.boxes[:, 0].tolist())
            shown = np.flatnonzero(people.boxes[:, 0] == 10)  # person 2's box (detections(): 10 px a person)
            marks = np.array([landmarks(10, 0.0)] * len(shown), np.float32).reshape(-1, 5, 2)
            return Faces(people.boxes[shown], np.ones(len(shown), np.float32), marks, shown)

    analyser = FrameAnalyser(
        CAMERA,
        people=FakePeople(script),
        faces=BackTurned(script),
        masks=FakeMasks(script),
        tracker=FakeTracker(script),
    )
    observations = [analyser(Frame(i, i / 10, IMAGE, None)) for i in range(21)]
    assert [i / 10 for i, boxes in enumerate(given) if 0.0 in boxes] == [i / 10 for i in (*range(11), 11, 14, 17, 20)]
    assert all(10.0 in boxes for boxes in given)
    assert [o.masks for o in observations] == [MaskCounts(1, 0, 0, 0)] * 21


def test_faces_searched_over_a_frame_where_nobody_was_detected_are_read() -> None:
    """detection.face_search "frame": two faces, nobody detected, so no track to carry a reading to."""
    script: Script = [[], []]
    camera = dataclasses.replace(CAMERA, detection=dataclasses.replace(CAMERA.detection, face_search="frame"))
    two = [Seen(-1, mask=WITH), Seen(-1)]
    masks = FakeMasks([two, two])

    class TwoFaces(Stage):
        def __call__(self, image: np.ndarray, people: Detections) -> Faces:
            next(self.frames)
            boxes = np.array([[0, 0, 8, 8], [20, 0, 28, 8]], np.float32)
            marks = np.array([landmarks(0, 0), landmarks(20, 0)], np.float32)
            return Faces(boxes, np.ones(2, np.float32), marks, np.array([0, 1], np.int64))

    analyser = FrameAnalyser(
        camera, people=FakePeople(script), faces=TwoFaces(script), masks=masks, tracker=FakeTracker(script)
    )
    observations = [analyser(Frame(i, i / 10, IMAGE, None)) for i in range(2)]
    assert [o.masks for o in observations] == [MaskCounts(1, 1, 0, 0)] * 2
    assert masks.read == [2, 2]


def test_windows_are_read_without_ending_a_track_and_close_ends_them() -> None:
    script = [[Seen(1)] for _ in range(5)]
    s, tracker = session(script)
    analyse(s, script)
    so_far = s.windows(5.0)
    assert s.windows(5.0) == so_far and not tracker.finished
    # Person 1 is still in view: counted, but their visit has not ended, so no dwell yet.
    (window,) = so_far
    assert counts(window) == (5, 5, 1, MaskCounts(0, 5, 0, 0), 1, (0, 0, 0, 0, 0), 0)
    s.close()
    assert tracker.finished
    (window,) = s.windows(5.0)
    assert counts(window) == (5, 5, 1, MaskCounts(0, 5, 0, 0), 1, (1, 0, 0, 0, 0), 0)
    assert s.windows(5.0) == [window]


def test_live_windows_close_at_their_end_with_their_alerts_and_are_then_forgotten() -> None:
    rule = AlertRule("crowded", "occupancy", above=1.5, span_s=2.0, hysteresis=0.1, cooldown_s=600.0)
    camera = dataclasses.replace(CAMERA, alerts=[rule])
    # Person 1 (masked) stays; person 2 leaves after 11 s. The session starts 3 s into a window.
    script = [[Seen(1, mask=WITH), *([Seen(2)] if t <= 11 else [])] for t in range(25)]
    s, _ = session(script, camera, START + timedelta(seconds=3))
    closed = []
    for i in range(len(script)):
        while s.open_end_t <= i:  # as a live unit does before analysing each frame
            closed.append(s.close_window(s.open_end_t))
            if len(closed) == 2:
                # Only what is still needed is kept: the alert rule's 2 s, person 1 in view, not person 2.
                assert [o.t for o in s.observations] == [16.0] and not s.pending
                people = s.analyser.people_so_far().people
                assert people is not None and [p.first_t for p in people] == [0.0]
        s.analyse(Frame(i, float(i), IMAGE, None))
    assert s.pending
    closed.append(s.close_window(25.0))  # stopped: the open window flushed
    windows = [w for w, _ in closed]
    assert [w.key.window_start - START for w in windows] == [timedelta(0), timedelta(seconds=10), timedelta(seconds=20)]
    assert [w.covered_s for w in windows] == [7.0, 10.0, 8.0]
    assert counts(windows[0]) == (7, 14, 2, MaskCounts(7, 7, 0, 0), 2, (0, 0, 0, 0, 0), 0)
    assert counts(windows[1]) == (10, 15, 2, MaskCounts(10, 5, 0, 0), 2, (0, 1, 0, 0, 0), 0)
    assert counts(windows[2]) == (8, 8, 1, MaskCounts(8, 0, 0, 0), 1, (0, 0, 0, 0, 0), 0)
    # Raised on the first frame (2 people), cleared when the 2 s mean is back to 1 (08:00:16); each in its window.
    alerts = [[(a.alert.state, a.alert.at - START) for a in sent] for _, sent in closed]
    assert alerts == [[("raised", timedelta(seconds=3))], [("cleared", timedelta(seconds=16))], []]


def test_a_segment_analyses_the_frame_past_its_end_keeps_nothing_of_it_and_alerts_only_where_told() -> None:
    rule = AlertRule("anyone", "occupancy", above=0.5, span_s=1.0)
    camera = dataclasses.replace(CAMERA, alerts=[rule])
    script = [[Seen(1)] for _ in range(12)]
    s, tracker = session(script, camera, until=START + timedelta(seconds=10), alerts_in=lambda w: w > START)
    kept = [s.analyse(Frame(i, float(i), IMAGE, None)) is not None for i in range(11)]
    assert kept == [True] * 10 + [False] and tracker.frames_seen == 11
    assert s.sent == []  # the one window analysed is not one the alerts are checked in
    (window,) = s.windows(10.0)
    assert window.frames_analysed == 10


def test_without_tracking_there_are_no_people_nor_opt_outs() -> None:
    script = shaking(0.0, 4)
    analyser = fake_analyser(script)
    s = AnalysisSession(CAMERA, analyser, START, source="test", confusion=CONFUSION)
    analyse(s, script)
    s.close()
    (window,) = s.windows(4.0)
    assert (window.people_sum, window.masks, window.persons, window.opt_outs) == (8, MaskCounts(4, 4, 0, 0), None, 0)


class FakeHeads(Stage):
    """Each scripted person's head at their box's head place, and `extra` heads of people nobody detected."""

    def __init__(self, script: Script, extra: list[tuple[float, float]]) -> None:
        super().__init__(script)
        self.extra = extra

    def __call__(self, image: np.ndarray, people: Detections) -> Heads:
        next(self.frames)
        points = [((x1 + x2) / 2, y1 + 3) for x1, y1, x2, _ in people.boxes.tolist()] + self.extra
        return Heads(
            np.array(points, np.float32).reshape(-1, 2),
            np.ones(len(points), np.float32),
            np.full(len(points), 10, np.float32),
        )


def test_windows_count_the_heads_nobody_detected_as_people_in_zones_too() -> None:
    # Two detected people (30 px tall) and two heads no box accounts for, one of them left of x = 5 (below person
    # 0's head: above it, in line, it would be a second peak of that person's own head).
    script = [[Seen(1), Seen(2)]] * 4
    zone = ZoneConfig("left", [(0.0, 0.0), (5.0, 0.0), (5.0, 40.0), (0.0, 40.0)], units="px")
    camera = dataclasses.replace(CAMERA, zones=[zone])
    analyser = fake_analyser(
        script, camera, tracker=FakeTracker(script), heads=FakeHeads(script, [(2.0, 12.0), (60.0, 5.0)])
    )
    s = AnalysisSession(camera, analyser, START, source="test", confusion=CONFUSION)
    analyse(s, script)
    s.close()
    (window,) = s.windows(4.0)
    assert (window.people_sum, window.people_max, window.persons.people_distinct) == (16, 4, 2)  # type: ignore[union-attr]
    # Person 1's feet (x 4) and the head at x 2 (feet 27 px below it, at y 39) stand in the zone.
    assert [(z.people_sum, z.people_max) for z in window.zones] == [(8, 2)]


def test_the_head_model_runs_every_heads_every_s_of_a_video_and_on_every_photo() -> None:
    script = [[Seen(1)]] * 6
    calls: list[float] = []

    class CountingHeads(FakeHeads):
        def __call__(self, image: np.ndarray, people: Detections) -> Heads:
            calls.append(len(calls))
            return super().__call__(image, people)

    video = fake_analyser(script, heads=CountingHeads(script, [(60.0, 5.0)]))
    seen = [video(Frame(i, i * 0.5, IMAGE, None)) for i in range(6)]  # t 0 .. 2.5 s, heads.every_s 2
    # Run at 0 s and 2 s; in between, the head nobody detected is carried over and still counted.
    assert (len(calls), [o.people for o in seen], [o.heads for o in seen]) == (2, [2] * 6, [2] * 6)
    calls.clear()
    photos = fake_analyser(script, heads=CountingHeads(script, [(60.0, 5.0)]))
    [photos(Frame(i, float(i), IMAGE, f"p{i}.jpg", photo=True)) for i in range(3)]
    assert len(calls) == 3
    calls.clear()
    # A folder played as one camera's sequence (--sequence): named images, timed as a video's frames.
    sequence = fake_analyser(script, heads=CountingHeads(script, [(60.0, 5.0)]))
    [sequence(Frame(i, i * 0.5, IMAGE, f"f{i}.jpg")) for i in range(6)]
    assert len(calls) == 2


def test_live_the_head_model_runs_beside_the_frames_and_its_count_joins_when_ready() -> None:
    script = [[Seen(1)]] * 4
    analyser = fake_analyser(script, heads=FakeHeads(script, [(60.0, 5.0)]), heads_in_background=True)
    first = analyser(Frame(0, 0.0, IMAGE, None))
    assert analyser.crowd is not None and analyser.crowd.pending is not None
    analyser.crowd.pending.result(timeout=10)
    later = [analyser(Frame(i, i * 0.5, IMAGE, None)) for i in range(1, 4)]
    # The first frame is counted before its head run ends; from the next one on, the head nobody detected counts.
    assert (first.people, first.heads, [o.people for o in later], [o.heads for o in later]) == (
        1,
        None,
        [2] * 3,
        [2] * 3,
    )
    analyser.close()
    assert analyser.crowd.pool is not None
    with pytest.raises(RuntimeError):  # shut down: no run starts after the footage ended
        analyser.crowd.pool.submit(print)


def test_live_runs_the_head_model_on_one_core_unless_set() -> None:
    camera = default_camera()
    assert FrameAnalyser.from_camera(camera, 7, heads_in_background=True).crowd.finder.config.threads == 1
    assert FrameAnalyser.from_camera(camera, 7).crowd.finder.config.threads == 0
    two = dataclasses.replace(camera, heads=dataclasses.replace(camera.heads, threads=2))
    assert FrameAnalyser.from_camera(two, 7, heads_in_background=True).crowd.finder.config.threads == 2
