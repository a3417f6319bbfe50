"""Live mode for an embedded unit (a bus): cameras analysed as they stream, each window committed when it closes.

The unit may lose power at any moment, so nothing waits: a window's aggregates, alerts and health go to DuckDB in
one transaction as soon as the window closes, and the file is held only for that transaction, so that export,
query, audit and signage can use it in between. After a kill or a power cut the last committed window is intact
and the open one is simply missing; each session writes under its own source key, so a restart in the middle of a
window adds to it in the views (sums combine) and never duplicates it. Windows follow the monotonic clock from a
start that is never before the last committed window, so a wall clock that jumps (no RTC after a power cut)
cannot make window keys go backwards; the jump is recorded in the health table. A file held by another process (a
long query, an export) or a full disk delays commits and loses nothing: closed windows (their aggregates, never
anything about a person) wait in memory, in order, and are committed once the file takes them again; only past
MAX_DELAYED windows a camera is the oldest lost, and counted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sanitary.alerts.delivery import STOP_GRACE_S
from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.windows import WindowAggregate
from sanitary.capture.sources import Frame
from sanitary.capture.stream import LiveFrame, LiveSource, SourceStats, is_file_spec
from sanitary.config import CameraConfig, tag_problem
from sanitary.errors import SanitaryError
from sanitary.runtime.lifecycle import RetentionSchedule, begin_camera, unsigned
from sanitary.runtime.runs import begin_live_run, disk_full, failure
from sanitary.runtime.session import AnalysisSession
from sanitary.storage.store import Store, WindowHealth

# How long a commit waits for another process (a query, an export) to release the file before its window is kept
# for later: short, as the analysis waits meanwhile and nothing is lost. At a stop, what is still kept is given
# LOCK_WAIT_S, then counted as lost.
COMMIT_WAIT_S = 1.0
LOCK_WAIT_S = 10.0
# Closed windows a camera keeps while the file cannot take them: an hour of 10-second windows, a few kilobytes each.
MAX_DELAYED = 360
POLL_S = 0.02


@dataclass(frozen=True)
class LiveCamera:
    spec: str  # camera index, stream URL or file
    camera: CameraConfig


@dataclass(frozen=True)
class LiveOptions:
    analysis_fps: float = 5.0
    realtime: bool = False  # play a file at its frame rate, as a camera would deliver it
    fps: float | None = None  # the true frame rate when the container is wrong
    loop: bool = False  # play a file again and again (demos, soak tests)
    tags: Path | None = None  # JSON object of labels (route, stop) the unit's other software keeps up to date
    max_seconds: float | None = None  # stop after this many seconds of footage or stream
    signage_override: str | None = None


@dataclass
class LiveTotals:
    windows_committed: int = 0
    windows_lost: int = 0
    windows_refused: int = 0
    frames_analysed: int = 0
    frames_dropped: int = 0


def session_start(now: datetime, last_committed: datetime | None) -> tuple[datetime, float]:
    """Where a session's clock starts, and the wall clock's error it reveals: never before the end of the last
    committed window, so that a clock set back (no RTC after a power cut) cannot reuse or reorder window keys."""
    if last_committed is not None and now < last_committed:
        return last_committed, (now - last_committed).total_seconds()
    return now, 0.0


@dataclass
class CameraRun:
    """A live camera's run in the store: its id, the windows lost in a row, when retention is next due."""

    camera: CameraConfig
    run_id: str
    retention: RetentionSchedule
    lost: int = 0
    # Alerts stored as pending whose outcome came since, for the next commit to record.
    settled: list[SentAlert] = field(default_factory=list)
    # Closed windows not committed yet, oldest first (at most MAX_DELAYED); `held`: the file refused the last try.
    delayed: deque[ClosedWindow] = field(default_factory=deque)
    held: bool = False


class CameraSession:
    """One camera of the unit: its source, its analysis session, its run."""

    def __init__(self, live: LiveCamera, options: LiveOptions, wall0: datetime, key: str, run_id: str) -> None:
        cam = live.camera
        self.camera = cam
        self.options = options
        self.is_file = is_file_spec(live.spec)
        self.source = LiveSource(
            live.spec, options.analysis_fps, realtime=options.realtime, fps=options.fps or cam.time.fps,
            loop=options.loop,
        )  # fmt: skip
        self.session = AnalysisSession.from_camera(cam, options.analysis_fps, wall0, key, heads_in_background=True)
        self.run = CameraRun(cam, run_id, RetentionSchedule(cam))
        self.last_t = 0.0
        self.counted = SourceStats(0, 0, 0, 0, False)
        self.cpu = _cpu_seconds()
        self.cpu_at = time.monotonic()

    def analyse(self, frame: LiveFrame) -> None:
        self.session.analyse(Frame(frame.seq, frame.t, frame.image, None))
        self.last_t = frame.t

    def now_t(self) -> float:
        """Session seconds now: a stream's and a paced file's follow the clock, a file read at full speed its
        footage."""
        return self.last_t if self.is_file and not self.options.realtime else self.source.clock() - self.source.started

    def settled_t(self) -> float:
        """Session seconds up to which no frame can still arrive: a frame read just before it may reach the analysis
        loop up to `late_s` later (the backlog before it), and must find its window still open."""
        if self.is_file and not self.options.realtime:
            return self.last_t
        return self.now_t() - self.source.late_s

    def close(self, end_t: float, partial: bool, clock_jump_s: float, tags: str | None) -> ClosedWindow:
        """The open window's aggregate and health (its footage up to `end_t`, never past the window's end), and the
        session moved on to the next window."""
        end_t = min(end_t, self.session.open_end_t)
        start_t = self.session.open_start_t
        window, sent = self.session.close_window(end_t)
        self.run.settled += self.session.watch.settled()
        if not (self.is_file and not self.options.realtime):
            # A stream's coverage is the time it was up, so that a camera that was down reads as missing.
            window = dataclasses.replace(window, covered_s=round(self.source.up_seconds(start_t, end_t), 6))
        return ClosedWindow(self.run, window, self._health(window, clock_jump_s), sent, partial, tags)

    def _health(self, window: WindowAggregate, clock_jump_s: float) -> WindowHealth:
        stats = self.source.stats()
        before, self.counted = self.counted, stats
        cpu, now = _cpu_seconds(), time.monotonic()
        busy = (cpu - self.cpu) / max(now - self.cpu_at, 1e-6) * 100 / (os.cpu_count() or 1)
        self.cpu, self.cpu_at = cpu, now
        covered = max(window.covered_s, 1e-9)
        return WindowHealth(
            unit_id=self.camera.resolved_unit_id(),
            source_up_s=window.covered_s,
            frames_read=stats.frames_read - before.frames_read,
            frames_analysed=window.frames_analysed,
            frames_dropped=stats.frames_dropped - before.frames_dropped,
            analysed_fps=round(window.frames_analysed / covered, 3) if window.covered_s else 0.0,
            reconnects=stats.reconnects - before.reconnects,
            cpu_percent=round(busy, 1),
            rss_mb=_rss_mb(),
            clock_jump_s=clock_jump_s,
            windows_lost=self.run.lost,
        )


@dataclass(frozen=True)
class ClosedWindow:
    run: CameraRun
    window: WindowAggregate
    health: WindowHealth
    alerts: list[SentAlert]
    partial: bool
    tags: str | None


def run_live(
    cameras: list[LiveCamera],
    db: Path,
    options: LiveOptions,
    stop: threading.Event,
    log: Callable[[str], None] = print,
) -> LiveTotals:
    """Analyse the cameras until `stop` is set, every file has ended or `options.max_seconds` have passed."""
    for c in cameras:
        c.camera.resolved_unit_id()  # checked before the store is touched: export names files after it
    unit_session = uuid.uuid4().hex[:12]
    now = datetime.now(UTC)
    sessions: list[CameraSession] = []
    with Store.for_unit(db, wait_s=LOCK_WAIT_S) as store:
        last = max((e for c in cameras if (e := store.last_window_end(c.camera.site_id, c.camera.camera_id))),
                   default=None)  # fmt: skip
        wall0, jump = session_start(now, last)
        if jump:
            log(f"clock: the wall clock reads {now.isoformat()}, before the last committed window; windows go on "
                f"from {wall0.isoformat()} (recorded as clock_jump_s {jump:.0f})")  # fmt: skip
        for c in cameras:
            cam = c.camera
            begin_camera(store, cam, now=wall0, override=options.signage_override)
            key = f"live:{cam.resolved_unit_id()}:{unit_session}"
            run_id = begin_live_run(store, cam, c.spec, key, options.analysis_fps, options.signage_override)
            sessions.append(CameraSession(c, options, wall0, key, run_id))
    totals = LiveTotals()
    tags = TagReader(options.tags, log)
    tags.read()  # what is wrong with them is said before the first frame
    for s in sessions:
        s.source.start()
    wall_mono = (wall0, time.monotonic())
    error = None
    try:
        while not stop.is_set():
            active = False
            for s in sessions:
                frame = s.source.next_due(POLL_S)
                # A file read faster than real time can pass the end before the clock does: its frames say so.
                past_end = frame is not None and options.max_seconds is not None and frame.t > options.max_seconds
                if frame is not None and not past_end:
                    _commit_due(s, frame.t, db, options, totals, wall_mono, log, tags)
                    s.analyse(frame)
                    totals.frames_analysed += 1
                else:
                    _commit_due(s, s.settled_t(), db, options, totals, wall_mono, log, tags)
                finished = s.source.finished.is_set() and frame is None
                over = past_end or (options.max_seconds is not None and s.now_t() >= options.max_seconds)
                active |= not (finished or over)
            if not active:
                break
    except Exception as exc:  # the runs say why they ended, then the error goes on up
        error = failure(" ".join(c.spec for c in cameras), exc, db)
        raise
    finally:
        # Alerts on their way get one grace for all cameras; what it does not settle is recorded undelivered.
        deadline = time.monotonic() + STOP_GRACE_S
        # Where each camera's footage ends: when its source stopped, not after the alerts' grace.
        ends = []
        for s in sessions:
            s.source.stop()
            ends.append(s.now_t() if options.max_seconds is None else min(s.now_t(), options.max_seconds))
        for s, end_t in zip(sessions, ends, strict=True):
            s.session.stop_alerts(deadline)
            # After a fault the open window is not stored: what the analysis held then cannot be trusted. The
            # footage starts at 0, inside the first window: before it nothing was seen, nothing to close.
            if error is None:
                # Windows that ended before the stop are whole (it came before their commit was due); all that is
                # left is committed at once.
                s.run.delayed.extend(_close_due(s, end_t, wall_mono, tags))
                if end_t > max(0.0, s.session.open_start_t) or s.session.pending:
                    s.run.delayed.append(s.close(end_t, True, _clock_jump(wall_mono), tags.read()))
            _flush_or_lose(s.run, db, options, totals, log)
            totals.frames_dropped += s.source.stats().frames_dropped
        _end_runs(db, sessions, "failed" if error else "stopped" if stop.is_set() else "done", error)
    return totals


def _commit_due(
    s: CameraSession,
    t: float,
    db: Path,
    options: LiveOptions,
    totals: LiveTotals,
    wall_mono: tuple[datetime, float],
    log: Callable[[str], None],
    tags: TagReader,
) -> None:
    for closed in _close_due(s, t, wall_mono, tags):
        commit(closed, db, options, totals, log, datetime.now(UTC))


def _close_due(
    s: CameraSession, t: float, wall_mono: tuple[datetime, float], tags: TagReader
) -> Iterator[ClosedWindow]:
    """The camera's windows that ended by session time `t`, closed whole, oldest first."""
    while (end_t := s.session.open_end_t) <= t:
        yield s.close(end_t, False, _clock_jump(wall_mono), tags.read())


def commit(
    closed: ClosedWindow,
    db: Path,
    options: LiveOptions,
    totals: LiveTotals,
    log: Callable[[str], None],
    now: datetime,
    wait_s: float = COMMIT_WAIT_S,
) -> None:
    """Store a closed window, after those of its camera still waiting, each in one transaction (unless no sign
    covered it), then apply retention if due `now`. A file that cannot take them keeps them waiting, in order."""
    run = closed.run
    run.delayed.append(closed)
    _flush(run, db, options, totals, log, now, wait_s)
    if len(run.delayed) > MAX_DELAYED:
        _lose(run.delayed.popleft(), totals, log, f"more than {MAX_DELAYED} windows waiting")


def _flush(
    run: CameraRun,
    db: Path,
    options: LiveOptions,
    totals: LiveTotals,
    log: Callable[[str], None],
    now: datetime,
    wait_s: float,
) -> None:
    """The camera's waiting windows committed in order, as far as the file takes them. Once the file is open (no
    other process holds it), a window whose commit fails for another reason than a full disk is lost alone: it
    would fail again, and hold up every window behind it."""
    cam = run.camera
    waiting = len(run.delayed)
    try:
        with Store.for_unit(db, wait_s=wait_s) as store:
            while run.delayed:
                w = run.delayed[0].window
                if unsigned(store, cam, w.key.window_start, w.window_end) and not options.signage_override:
                    run.delayed.popleft()
                    totals.windows_refused += 1
                    log(f"{cam.camera_id}: window {w.key.window_start.isoformat()} not stored: no opt-out sign "
                        "covered it; record one with `sanitary signage add`")  # fmt: skip
                    continue
                try:
                    _store(store, run.delayed[0])
                except duckdb.Error as exc:
                    if disk_full(db, exc):
                        raise
                    _lose(run.delayed.popleft(), totals, log, str(exc).splitlines()[0])
                    continue
                run.delayed.popleft()
                totals.windows_committed += 1
            expired = _retention(run, store, now, log)
    except (SanitaryError, duckdb.Error, OSError) as exc:
        # A file held by another process or a full disk: the windows wait, and the next close tries again.
        if not run.held:  # said once, when commits start to wait
            log(f"{cam.camera_id}: commits delayed, windows kept until {db} takes them ({str(exc).splitlines()[0]})")
        run.held = True
        return
    if run.held:
        log(f"{cam.camera_id}: {waiting} delayed window(s) committed")
        run.held = False
    if expired:
        log(f"{cam.camera_id}: retention deleted {expired} windows older than {cam.privacy.retention_days:g} days"
            " (logged)")  # fmt: skip


def _store(store: Store, closed: ClosedWindow) -> None:
    run = closed.run
    cam = run.camera
    store.commit_window(
        run.run_id, closed.window, closed.health, privacy=cam.privacy, dwell_bins_s=tuple(cam.tracking.dwell_bins_s),
        alerts=closed.alerts, settled=run.settled, partial=closed.partial, tags=closed.tags,
    )  # fmt: skip
    run.lost = 0
    run.settled = []


def _flush_or_lose(
    run: CameraRun, db: Path, options: LiveOptions, totals: LiveTotals, log: Callable[[str], None]
) -> None:
    """At a stop: the windows waiting get LOCK_WAIT_S to be committed; what is left then is lost."""
    if run.delayed:
        _flush(run, db, options, totals, log, datetime.now(UTC), LOCK_WAIT_S)
    while run.delayed:
        _lose(run.delayed.popleft(), totals, log, "the unit stopped before the file took it")


def _lose(closed: ClosedWindow, totals: LiveTotals, log: Callable[[str], None], why: str) -> None:
    closed.run.lost += 1
    totals.windows_lost += 1
    log(f"{closed.run.camera.camera_id}: window {closed.window.key.window_start.isoformat()} lost ({why})")


def _retention(run: CameraRun, store: Store, now: datetime, log: Callable[[str], None]) -> int:
    """Windows deleted by retention; a failure is logged and loses no window (the next commit tries again)."""
    try:
        return run.retention.apply_if_due(store, now)
    except (SanitaryError, duckdb.Error, OSError) as exc:
        log(f"{run.camera.camera_id}: retention not applied ({str(exc).splitlines()[0]}); tried again next window")
        return 0


def _end_runs(db: Path, sessions: list[CameraSession], status: str, error: str | None) -> None:
    try:
        with Store.for_unit(db, wait_s=LOCK_WAIT_S) as store:
            for s in sessions:
                store.alerts.record_delivery(s.session.source, [*s.run.settled, *s.session.watch.settled()])
                store.end_run(s.run.run_id, status, error)
    except (SanitaryError, duckdb.Error, OSError):
        return  # the runs stay 'running': a visible trace, as after a power cut


def _clock_jump(wall_mono: tuple[datetime, float]) -> float:
    """The wall clock's drift from the monotonic clock since the session began (0 within a second)."""
    wall0, mono0 = wall_mono
    jump = (datetime.now(UTC) - wall0).total_seconds() - (time.monotonic() - mono0)
    return round(jump, 1) if abs(jump) >= 1.0 else 0.0


class TagReader:
    """The labels the unit's other software writes (a JSON object), read when a window closes. Only declared keys
    with short values are kept (config.tag_problem); a tag that is not is dropped and said once on stderr, the
    window stored with the others."""

    def __init__(self, path: Path | None, log: Callable[[str], None]) -> None:
        self.path = path
        self.log = log
        self.said: set[str] = set()

    def read(self) -> str | None:
        if self.path is None:
            return None
        try:
            tags = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self._say(f"{self.path}: tags not read ({exc}); the window is stored without them")
            return None
        if not isinstance(tags, dict):
            self._say(
                f"{self.path}: tags must be a JSON object of strings or numbers; the window is stored without them"
            )
            return None
        kept = {}
        for key, value in tags.items():
            problem = tag_problem(key, value)
            if problem is None:
                kept[key] = value
            else:
                self._say(f"{self.path}: tag {key[:32]!r} dropped: {problem}")
        return json.dumps(kept, sort_keys=True) if kept else None

    def _say(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            self.log(line)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
