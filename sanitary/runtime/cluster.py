"""A batch spread over a Ray cluster, so that thousands of hours of footage take hours, not months, and the
stored numbers are those one machine would have stored.

Every file is cut into segments of a whole number of windows, and every segment is one Ray task. Windows are
aligned on the epoch and a segment owns whole windows only, so no window is split between tasks: its sums,
counts and maxima come from exactly the frames a local run would have put in it (same frame indices, same
sampling). What cannot be cut is a track: a segment therefore also analyses one overlap (a whole number of
windows, one by default) before its first window (the lead-in, where tracks are established) and after its last
(the tail, where the people still in view at the cut end their visit), counting nothing of either.

Distinct people per window, and what else rests on tracks (line crossings, close contacts, dwell, people's mask
votes), are exact in a segment's windows when no track is alive in the local run at the start of its lead-in and
at the end of its tail (nobody in view, or lost less than `tracking.max_lost_s` before): the segment's tracker then
goes through the very states of the local one. Otherwise only the people alive at those two instants start (or end)
their track at a different frame, so a window's distinct count is off by at most the people in view at the lead-in
start or the tail end (bounded by those windows' people_max), and only when such a person's track is confirmed
later, split or joined differently (the tracker's joint assignment may carry that to a neighbour in the same
frames). A person is never counted twice in one window: a window belongs to one segment. A person seen on both sides
of a cut is counted in windows of both segments, as a local run counts everyone in every window they were seen in.
Dwell is measured from the start of the lead-in, so a visit longer than the overlap that spans a cut may fall in a
shorter dwell bin. On PETS 2009 (a busy plaza, 10 s windows, 30 s segments) 1 window in 12 was off by one person.

Tasks hand their windows to the driver as Parquet parts in a shared folder, written under a temporary name and
renamed, so that a part is whole or absent and a task retried after its worker died replaces its own part.
The driver stores a file only when all its segments are done, with `Store.finish_run`: one transaction that
replaces the file's earlier rows, exactly as a local run stores it, so the two never count a file twice.
Alert rules are evaluated within each segment (over its own windows, with the lead-in as trailing context).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import duckdb

from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.windows import WindowAggregate, window_start
from sanitary.capture.sources import TruncatedSourceError
from sanitary.config import CameraConfig
from sanitary.errors import SanitaryError
from sanitary.runtime.runs import (
    BatchPlan,
    BatchReport,
    FileJob,
    FileOutcome,
    PlannedFile,
    RunOptions,
    continuity_notes,
    failure,
    in_plan_order,
    start_runs,
    store_file,
    stored_batch,
)
from sanitary.runtime.session import AnalysisSession
from sanitary.storage.store import Store

SEGMENT_S = 600.0
OVERLAP_WINDOWS = 1
# A killed worker (a node lost, a process out of memory) is retried; an exception raised by the analysis is a
# property of the input, so it is never retried and fails its file at once.
MAX_RETRIES = 3
# One core per task: onnxruntime gets one thread from the camera config, and these keep OpenMP/BLAS pools
# from fanning out beside it, so that N workers use N cores.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Segment:
    """A span of whole windows of one file; None is the file's start (for `start`) or end (for `end`)."""

    index: int
    start: datetime | None
    end: datetime | None
    overlap_s: int  # analysed before `start` and after `end`, never counted

    def owns(self, window: datetime) -> bool:
        return (self.start is None or window >= self.start) and (self.end is None or window < self.end)

    @property
    def lead_in(self) -> datetime | None:
        return None if self.start is None else self.start - timedelta(seconds=self.overlap_s)

    @property
    def tail(self) -> datetime | None:
        return None if self.end is None else self.end + timedelta(seconds=self.overlap_s)


@dataclass(frozen=True)
class SegmentDone:
    """What a segment task returns beside its Parquet part."""

    index: int
    frames_analysed: int  # in the windows the segment owns
    reached_end: bool  # the footage ended inside the segment or its tail
    duration_s: float  # footage decoded, when it reached the end
    error: str | None  # the footage was cut short
    alerts: tuple[SentAlert, ...]
    unreadable: tuple[str, ...] = ()  # images left out, cut short or not images (overlaps read them twice)


def segment_file(job: FileJob, duration_s: float, segment_s: float = SEGMENT_S) -> list[Segment]:
    """The file's segments: `segment_s` rounded to whole windows (at least one), cut on window boundaries."""
    window_s = job.camera.time.window_seconds
    length = timedelta(seconds=max(1, round(segment_s / window_s)) * window_s)
    end = job.start + timedelta(seconds=duration_s)
    cuts = []
    cut = window_start(job.start, window_s) + length
    while cut < end:
        cuts.append(cut)
        cut += length
    bounds: list[datetime | None] = [None, *cuts, None]
    overlap = OVERLAP_WINDOWS * window_s
    return [Segment(i, bounds[i], bounds[i + 1], overlap) for i in range(len(bounds) - 1)]


def part_path(parts_dir: Path, job: FileJob, digest: str, segment: int) -> Path:
    # The parameters are in the name too, so parts left by a run with other parameters are never read.
    return parts_dir / f"{job.camera.camera_id}__{job.source_hash}__{digest}__{segment:05d}.parquet"


def analyse_segment(job: FileJob, segment: Segment, part: Path) -> SegmentDone:
    """Analyse one segment with its overlaps, write the windows it owns to `part`, say what it did."""
    cv2.setNumThreads(1)
    lead_in = segment.lead_in
    source = job.source()
    from_s = 0.0 if lead_in is None else (lead_in - job.start).total_seconds()
    session = AnalysisSession.from_camera(
        job.camera,
        source.info.analysed_fps(job.sample_fps),
        job.start,
        job.source_hash,
        alerts_in=segment.owns,
        until=segment.tail,
    )
    error, reached_end = None, True
    try:
        for frame in session.frames(source, job.sample_fps, from_s):
            if session.analyse(frame) is None:
                reached_end = False
                break
    except TruncatedSourceError as exc:
        error = str(exc)
    duration = source.decoded / source.info.fps
    if not reached_end and segment.end is not None:
        duration = (segment.end - job.start).total_seconds()
    session.close()
    owned = [w for w in session.windows(duration) if segment.owns(w.key.window_start)]
    write_part(part, segment.index, owned)
    return SegmentDone(
        segment.index,
        sum(w.frames_analysed for w in owned),
        reached_end,
        duration,
        error,
        tuple(session.sent),
        tuple(str(p) for p in source.unreadable),
    )


def write_part(part: Path, segment: int, windows: list[WindowAggregate]) -> None:
    """The windows as one Parquet file, all or nothing: written aside, then renamed over any earlier attempt."""
    part.parent.mkdir(parents=True, exist_ok=True)
    temporary = part.with_name(f".{part.name}.{uuid.uuid4().hex}.tmp")
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE part (camera_id VARCHAR, source VARCHAR, segment INTEGER, window_start TIMESTAMPTZ,"
            " aggregate VARCHAR)"
        )
        if windows:
            con.executemany(
                "INSERT INTO part VALUES (?, ?, ?, ?, ?)",
                [[w.key.camera_id, w.key.source, segment, w.key.window_start, encode(w)] for w in windows],
            )
        con.execute(f"COPY part TO '{_quoted(temporary)}' (FORMAT parquet)")
    finally:
        con.close()
    os.replace(temporary, part)


def read_parts(parts: list[Path]) -> list[WindowAggregate]:
    con = duckdb.connect()
    try:
        files = ", ".join(f"'{_quoted(p)}'" for p in parts)
        rows = con.execute(f"SELECT aggregate FROM read_parquet([{files}]) ORDER BY window_start").fetchall()
    finally:
        con.close()
    return [decode(WindowAggregate, json.loads(row[0])) for row in rows]


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def encode(window: WindowAggregate) -> str:
    """A window as JSON; floats are written with all their digits, so a decoded window equals the original."""
    return json.dumps(dataclasses.asdict(window), default=lambda v: v.isoformat())


def decode(kind: Any, value: Any) -> Any:
    """A value of type `kind` from what `encode` wrote: dataclasses, tuples, optionals and datetimes rebuilt."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(kind) if a is not type(None)]
        return decode(inner, value)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in value)
        return tuple(decode(a, v) for a, v in zip(args, value, strict=True))
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: decode(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)})
    if kind is datetime:
        return datetime.fromisoformat(value)
    return value


def _single_threaded(camera: CameraConfig) -> CameraConfig:
    return dataclasses.replace(camera, detection=dataclasses.replace(camera.detection, threads=1))


def _ray() -> types.ModuleType:
    # Ray is an optional extra: a machine that never runs on a cluster does not need it.
    try:
        import ray
    except ImportError:
        raise SanitaryError("--ray needs Ray: pip install 'sanitary[cluster]'") from None
    return ray


def _connect(ray: types.ModuleType, address: str | None) -> bool:
    """Join the cluster at `address` ("auto": the one this machine belongs to), or start one on this machine;
    a session already open in this process is used as it is. True when this call opened the session."""
    if ray.is_initialized():
        return False
    runtime_env = {"env_vars": WORKER_ENV}
    if address is None:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, runtime_env=runtime_env)
    else:
        ray.init(address=address, runtime_env=runtime_env)
    return True


def _error_of(exc: BaseException) -> str:
    # A task's own exception comes wrapped; its message is what the operator needs, not Ray's traceback.
    cause = getattr(exc, "cause", None)
    return str(cause if cause is not None else exc)


@dataclass
class _FileRun:
    planned: PlannedFile
    run_id: str
    parts: list[Path]
    done: dict[int, SegmentDone] = dataclasses.field(default_factory=dict)
    failures: int = 0
    error: str | None = None

    @property
    def settled(self) -> bool:
        return len(self.done) + self.failures == len(self.parts)

    def remove_parts(self) -> None:
        for part in self.parts:
            part.unlink(missing_ok=True)


def run_on_ray(
    plan: BatchPlan,
    db: Path,
    options: RunOptions,
    address: str | None,
    on_frames: Callable[[int], None],
    parts_dir: Path,
    segment_s: float = SEGMENT_S,
    log: Callable[[str], None] = print,
) -> BatchReport:
    """`run_batch` on a Ray cluster: the same skipping, refusals, stored rows and outcomes.

    `parts_dir` must be reachable under the same path by the driver and every worker (a shared folder on a
    multi-node cluster). Each file's parts are removed once the file is stored or has failed.
    """
    ray = _ray()  # before the store is opened: without Ray, nothing is recorded
    drive = functools.partial(_analyse_on_ray, ray, plan, options=options, address=address, on_frames=on_frames,
                              parts_dir=parts_dir, segment_s=segment_s)  # fmt: skip
    return stored_batch(plan, db, drive, log)


def _analyse_on_ray(
    ray: types.ModuleType,
    plan: BatchPlan,
    store: Store,
    *,
    options: RunOptions,
    address: str | None,
    on_frames: Callable[[int], None],
    parts_dir: Path,
    segment_s: float,
) -> list[FileOutcome]:
    outcomes: list[FileOutcome] = []
    todo = start_runs(plan, store, options, on_frames, outcomes)
    opened = _connect(ray, address)
    try:
        task = ray.remote(analyse_segment).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)
        runs: dict[ray.ObjectRef, tuple[_FileRun, Segment]] = {}
        for planned, run_id, digest in todo:
            # Workers do not share the driver's working directory: they get absolute paths.
            spec = str(Path(planned.job.spec).resolve())
            job = dataclasses.replace(planned.job, spec=spec, camera=_single_threaded(planned.job.camera))
            segments = segment_file(job, planned.duration_s, segment_s)
            parts = [part_path(parts_dir.resolve(), job, digest, s.index) for s in segments]
            file_run = _FileRun(planned, run_id, parts)
            job_ref = ray.put(job)
            for segment in segments:
                runs[task.remote(job_ref, segment, file_run.parts[segment.index])] = (file_run, segment)
        notes = continuity_notes(plan)
        pending = list(runs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                file_run, segment = runs[ref]
                try:
                    done: SegmentDone = ray.get(ref)
                except (ray.exceptions.RayError, SanitaryError) as exc:
                    file_run.failures += 1
                    if file_run.error is None:
                        file_run.error = _error_of(exc)
                        store.fail_run(file_run.run_id, file_run.error)
                        outcomes.append(FileOutcome(file_run.planned.job.spec, "failed", error=file_run.error))
                else:
                    file_run.done[segment.index] = done
                    on_frames(done.frames_analysed)
                if not file_run.settled:
                    continue
                if file_run.error is None:
                    try:
                        outcomes.append(_store(store, file_run, notes.get(str(Path(file_run.planned.job.spec)))))
                    except Exception as exc:  # the run says why, and the batch goes on
                        error = failure(file_run.planned.job.spec, exc, store.path)
                        store.fail_run(file_run.run_id, error)
                        outcomes.append(FileOutcome(file_run.planned.job.spec, "failed", error=error))
                file_run.remove_parts()
    finally:
        if opened:
            ray.shutdown()
    return in_plan_order(plan, outcomes)


def _store(store: Store, file_run: _FileRun, notes: str | None) -> FileOutcome:
    """All the file's segments are done: its windows stored in one transaction, as a local run stores them."""
    job = file_run.planned.job
    ended = [d for d in file_run.done.values() if d.reached_end]
    duration = max(d.duration_s for d in ended)
    error = next((d.error for d in ended if d.error), None)
    alerts = [a for i in sorted(file_run.done) for a in file_run.done[i].alerts]
    footage = (job.start, job.start + timedelta(seconds=duration))
    unreadable = tuple(sorted({p for d in file_run.done.values() for p in d.unreadable}))
    return store_file(
        store, job, file_run.run_id, read_parts(file_run.parts), error, footage, alerts, notes, unreadable
    )
