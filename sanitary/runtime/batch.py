"""A batch run over many footage files of one camera: start times, resume, parallel workers, storing results.

Files are identified by their content hash, so a batch that stopped halfway resumes where it was: a file already
done for the same camera with the same parameters is skipped, and one done with other parameters is replaced.
A file that cannot be read fails alone; the others go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.mask_rate import MaskShares, mask_shares
from sanitary.analytics.observations import MaskCounts
from sanitary.analytics.windows import WindowAggregate
from sanitary.capture.sources import Continuity, Source, TruncatedSourceError, continuity, start_from_filename
from sanitary.config import CameraConfig, check_year, parse_start
from sanitary.errors import SanitaryError
from sanitary.perception.mask_card import load_card
from sanitary.runtime.analyser import StageTimes
from sanitary.runtime.lifecycle import unsigned
from sanitary.runtime.session import AnalysisSession
from sanitary.runtime.workers import report, start_worker
from sanitary.storage.store import RunStart, Store

# The person model is a parameter through the config (detection.model).
MODELS = ("centerface.onnx", "mask_classifier.onnx")
PROGRESS_EVERY = 25
# Camera settings that change no stored number, left out of a run's parameters so that editing them analyses no
# file again. Everything else in the camera config is in, a section or field added later too: a setting that
# changes results cannot be forgotten here.
NOT_RESULTS = frozenset(
    {
        # What the rows are keyed by and where the config lives, not what was seen.
        "camera_id", "site_id", "site_kind", "timezone", "unit_id", "path",
        # They reach the numbers through the job's own fps and start, which are parameters.
        "time.fps", "time.start", "time.filename_pattern",
        # How fast, not what.
        "detection.threads",
        # The homography fitted from them is a parameter.
        "calibration.image_points", "calibration.ground_points", "calibration.points_csv", "calibration.image_size",
        # How long windows are kept, not what they hold.
        "privacy.retention_days",
        # Alerts are sent while footage is analysed; no window depends on them.
        "alerts", "alert_sinks",
    }
)  # fmt: skip
# Where two parameters were hashed before the parameters were derived from the config: kept there, so that files
# done then are still found done. A field added beside them stays in its section, and so in the hash.
LEGACY_PLACES = {"time.window_seconds": "window_seconds", "calibration.homography": "homography"}


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
    unreadable: tuple[str, ...] = ()  # images left out, cut short or not images

    @property
    def footage(self) -> tuple[datetime, datetime]:
        return self.job.start, self.job.start + timedelta(seconds=self.duration_s)


def analyse_file(job: FileJob, on_frames: Callable[[int], None] | None = None) -> FileResult:
    """Analyse one footage file into window aggregates.

    A file cut short keeps the windows of the frames before the cut and reports the cut as its error;
    any other bad input raises before anything is aggregated.
    """
    source = Source(job.spec, job.fps, job.camera.time.sequence)
    info = source.info
    session = AnalysisSession.from_camera(job.camera, info.analysed_fps(job.sample_fps), job.start, job.source_hash)
    analysed, error, truncated = 0, None, False
    try:
        for frame in session.frames(source, job.sample_fps):
            session.analyse(frame)
            analysed += 1
            if on_frames and analysed % PROGRESS_EVERY == 0:
                on_frames(PROGRESS_EVERY)
    except TruncatedSourceError as exc:
        error, truncated = str(exc), True
    if on_frames:
        on_frames(analysed % PROGRESS_EVERY)
    decoded = source.decoded
    duration = decoded / info.fps
    session.close()
    windows = session.windows(duration)
    unreadable = tuple(str(p) for p in source.unreadable)
    return FileResult(
        job, windows, analysed, decoded, duration, error, truncated, session.times, session.sent, unreadable
    )


@dataclass(frozen=True)
class RunOptions:
    sample_fps: float | None = 5.0
    fps: float | None = None
    start: datetime | None = None
    workers: int = 1
    # The operator's reason to analyse footage that no opt-out sign covered; recorded with each run.
    signage_override: str | None = None


@dataclass(frozen=True)
class PlannedFile:
    job: FileJob
    frames: int  # frames that will be analysed, for the progress bar
    duration_s: float

    @property
    def footage(self) -> tuple[datetime, datetime]:
        return self.job.start, self.job.start + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: str  # done, skipped, truncated, failed, refused, duplicate, interrupted
    frames_analysed: int = 0
    windows: int = 0
    occupancy_mean: float = 0.0
    occupancy_max: int = 0
    faces: int = 0
    mask: MaskShares | None = None
    error: str | None = None
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetAside:
    """A file not analysed: it failed at planning (`failed`), or its content is another file's (`duplicate`)."""

    path: str
    status: str
    error: str
    source_hash: str | None = None  # its content's, where it could be read


@dataclass(frozen=True)
class BatchPlan:
    files: list[PlannedFile]
    set_aside: list[SetAside]
    continuity: list[Continuity]
    camera: CameraConfig


def plan_batch(specs: list[str], camera: CameraConfig, options: RunOptions) -> BatchPlan:
    """Probe every file, give it a start time and a content hash; a file that cannot be read is set aside, and so
    is a copy of a file before it (the same content under another name is analysed once, and takes no time)."""
    fps = options.fps or camera.time.fps
    probed: list[tuple[str, Source, str]] = []  # with the content's hash, read once: it is the whole file
    set_aside: list[SetAside] = []
    first_of: dict[str, str] = {}
    for spec in specs:
        try:
            source = Source(spec, fps)
            digest = source.content_hash()
        except SanitaryError as exc:
            set_aside.append(SetAside(spec, "failed", str(exc)))
            continue
        if digest in first_of:
            first = first_of[digest]
            same = Path(first).resolve() == Path(spec).resolve()
            error = f"{spec}: " + ("given twice, analysed once" if same else f"same content as {first}, analysed once")
            set_aside.append(SetAside(spec, "duplicate", error, digest))
            continue
        first_of[digest] = spec
        probed.append((spec, source, digest))
    files: list[PlannedFile] = []
    # With one start time for several files (--start, or the config's without a file-name pattern), the files
    # are taken as consecutive recordings.
    running_start = options.start
    if running_start is None and camera.time.start and not camera.time.filename_pattern:
        running_start = parse_start(camera.time.start, camera.tz, str(camera.path))
    for spec, source, digest in probed:
        try:
            start = _start_time(spec, camera, running_start)
        except SanitaryError as exc:
            set_aside.append(SetAside(spec, "failed", str(exc), digest))
            continue
        if running_start is not None:
            running_start = start + timedelta(seconds=source.info.duration_s)
        job = FileJob(spec, camera, digest, start, fps, options.sample_fps)
        frames = source.info.frame_count
        if options.sample_fps and options.sample_fps < source.info.fps:
            frames = int(frames * options.sample_fps / source.info.fps) + 1
        files.append(PlannedFile(job, frames, source.info.duration_s))
    spans = [(Path(f.job.spec), f.job.start, f.duration_s) for f in files]
    tolerance = 1.0 / (fps or 25.0) * 1.5
    return BatchPlan(files, set_aside, continuity(spans, tolerance), camera)


def _start_time(spec: str, camera: CameraConfig, given: datetime | None) -> datetime:
    if given is not None:
        return given
    pattern = camera.time.filename_pattern
    if pattern:
        found = start_from_filename(Path(spec), pattern, camera.tz)
        if found is None:
            raise SanitaryError(
                f"{spec}: file name does not match time.filename_pattern {pattern!r}; rename it or pass --start"
            )
        check_year(found, f"{spec}: the time in the file name")
        return found
    raise SanitaryError(
        f"{spec}: no start time for this footage; pass --start, or set time.start or time.filename_pattern "
        f"in {camera.path or 'the camera config'}"
    )


def run_params(job: FileJob) -> dict[str, Any]:
    """Everything that changes the stored numbers: a file done with other parameters is analysed again."""
    return {**batch_params(job.camera, job.sample_fps, job.fps), "start": job.start.isoformat()}


def batch_params(camera: CameraConfig, sample_fps: float | None, fps: float | None) -> dict[str, Any]:
    """The parameters a file's own start time is added to (all that a file set aside at planning has)."""
    return {
        **config_params(camera),
        "sample_fps": sample_fps,
        "fps": fps,
        "models": list(MODELS),
        # A retrained mask model changes the rates: files done with the old one are analysed again.
        "mask_model_sha256": load_card().sha256,
    }


def config_params(camera: CameraConfig) -> dict[str, Any]:
    """The camera config but its settings in NOT_RESULTS, as plain values."""
    params: dict[str, Any] = {}
    for key, value in dataclasses.asdict(camera).items():
        if key in NOT_RESULTS:
            continue
        params[key] = (
            {k: v for k, v in value.items() if f"{key}.{k}" not in NOT_RESULTS} if isinstance(value, dict) else value
        )
    for path, name in LEGACY_PLACES.items():
        section, key = path.split(".")
        params[name] = params[section].pop(key)
        if not params[section]:
            del params[section]
    # Hashed as bare polygons before; a mask given more than its polygon is hashed whole.
    params["privacy_masks"] = [m["polygon"] if m.keys() == {"polygon"} else m for m in params["privacy_masks"]]
    return params


def _span(gap: tuple[datetime, datetime], camera: CameraConfig) -> str:
    start, end = (t.astimezone(camera.tz).isoformat(timespec="seconds") for t in gap)
    return f"from {start} to {end}"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def run_batch(
    plan: BatchPlan,
    store: Store,
    options: RunOptions,
    on_frames: Callable[[int], None] = lambda n: None,
) -> list[FileOutcome]:
    """Analyse the planned files (in `options.workers` processes) and store each as soon as it is done.

    Every run opened here ends in a known state: `done` or `truncated` with its windows, `failed` with the reason
    whatever went wrong with its file, or `interrupted` when the batch itself is stopped (Ctrl-C)."""
    notes = continuity_notes(plan)
    outcomes: list[FileOutcome] = []
    todo = [(planned, run_id) for planned, run_id, _ in start_runs(plan, store, options, on_frames, outcomes)]
    open_runs = {run_id for _, run_id in todo}

    def settle(planned: PlannedFile, run_id: str, compute: Callable[[], FileResult]) -> None:
        """Store what `compute` gives for a file, or record why it gave nothing."""
        try:
            result = compute()
            outcome = store_file(
                store,
                planned.job,
                run_id,
                result.windows,
                result.error,
                result.footage,
                result.alerts,
                notes.get(str(Path(planned.job.spec))),
                result.unreadable,
            )
        except Exception as exc:  # whatever it was, the run says so and the batch goes on
            error = failure(planned.job.spec, exc)
            store.fail_run(run_id, error)
            outcome = FileOutcome(planned.job.spec, "failed", error=error)
        open_runs.discard(run_id)
        outcomes.append(outcome)

    try:
        if options.workers <= 1 or len(todo) <= 1:
            for planned, run_id in todo:
                settle(planned, run_id, lambda job=planned.job: analyse_file(job, on_frames))
        else:
            _run_parallel(todo, options.workers, settle, on_frames)
    except BaseException as exc:
        for run_id in open_runs:
            store.fail_run(run_id, f"interrupted: the batch was stopped ({type(exc).__name__})", status="interrupted")
        raise
    return in_plan_order(plan, outcomes)


def failure(spec: str, exc: BaseException) -> str:
    """One line saying why a file failed: bad input says it itself; anything else is a fault of sanitary's."""
    if isinstance(exc, SanitaryError):
        return str(exc)
    text = str(exc).strip().splitlines()
    detail = f" ({text[0]})" if text else ""
    return f"{spec}: analysis failed with {type(exc).__name__}{detail}; a fault of sanitary's, please report it"


def continuity_notes(plan: BatchPlan) -> dict[str, str]:
    """For each file that does not follow on from the one before: the gap or overlap, for its run's notes."""
    return {
        str(c.current): f"{'gap' if c.seconds > 0 else 'overlap'} of {abs(c.seconds):.1f} s after {c.previous.name}"
        for c in plan.continuity
    }


def in_plan_order(plan: BatchPlan, outcomes: list[FileOutcome]) -> list[FileOutcome]:
    order = {spec: i for i, spec in enumerate(f.job.spec for f in plan.files)}
    return sorted(outcomes, key=lambda o: order.get(o.path, -1))


def start_runs(
    plan: BatchPlan,
    store: Store,
    options: RunOptions,
    on_frames: Callable[[int], None],
    outcomes: list[FileOutcome],
) -> list[tuple[PlannedFile, str, str]]:
    """Record the files set aside at planning, skip those done with these parameters, refuse those no sign
    covered, open a run for the others: (file, run id, parameters hash) of each file to analyse."""
    for aside in plan.set_aside:
        record_set_aside(store, aside, plan.camera, options)
        outcomes.append(FileOutcome(aside.path, aside.status, error=aside.error))
    todo = []
    for planned in plan.files:
        job = planned.job
        params = run_params(job)
        digest = params_hash(params)
        if store.is_done(job.source_hash, job.camera.camera_id, digest):
            outcomes.append(FileOutcome(job.spec, "skipped"))
            on_frames(planned.frames)
            continue
        gaps = unsigned(store, job.camera, *planned.footage)
        override = None
        if gaps and options.signage_override:
            override = f"{options.signage_override} (no sign {_span(gaps[0], job.camera)}, {len(gaps)} gap(s))"
        run_id = store.begin_run(
            RunStart(
                job.source_hash,
                str(Path(job.spec).resolve()),
                job.camera.camera_id,
                job.camera.site_id,
                job.camera.resolved_unit_id(),
                digest,
                params,
                override,
            )
        )
        if gaps and override is None:
            error = (
                f"{job.spec}: no opt-out sign covered camera {job.camera.camera_id} {_span(gaps[0], job.camera)}; "
                "record it with `sanitary signage add`, or pass --without-signage REASON (recorded in runs)"
            )
            store.fail_run(run_id, error, status="refused")
            outcomes.append(FileOutcome(job.spec, "refused", error=error))
            on_frames(planned.frames)
            continue
        todo.append((planned, run_id, digest))
    return todo


def record_set_aside(store: Store, aside: SetAside, camera: CameraConfig, options: RunOptions) -> None:
    """A run row for a file set aside at planning, closed at once with its status and reason."""
    params = batch_params(camera, options.sample_fps, options.fps or camera.time.fps)
    path = str(Path(aside.path).resolve())
    run_id = store.begin_run(
        RunStart(
            aside.source_hash or path,  # a file that could not be read is known by its path only
            path,
            camera.camera_id,
            camera.site_id,
            camera.resolved_unit_id(),
            params_hash(params),
            params,
        )
    )
    store.fail_run(run_id, aside.error, status=aside.status)


def store_file(
    store: Store,
    job: FileJob,
    run_id: str,
    windows: list[WindowAggregate],
    error: str | None,
    footage: tuple[datetime, datetime],
    alerts: list[SentAlert],
    notes: str | None,
    unreadable: tuple[str, ...] = (),
) -> FileOutcome:
    """A file's windows stored in one transaction (a cut-short file keeps what came before the cut)."""
    status = "truncated" if error else "done"
    frames = sum(w.frames_analysed for w in windows)
    store.finish_run(
        run_id,
        windows,
        status=status,
        error=error,
        frames_analysed=frames,
        footage=footage,
        notes=notes,
        dwell_bins_s=tuple(job.camera.tracking.dwell_bins_s),
        privacy=job.camera.privacy,
        alerts=alerts,
        frames_unreadable=len(unreadable),
    )
    masks = sum((w.masks for w in windows), MaskCounts())
    return FileOutcome(
        job.spec,
        status,
        frames,
        len(windows),
        sum(w.people_sum for w in windows) / max(frames, 1),
        max((w.people_max for w in windows), default=0),
        sum(w.faces_sum for w in windows),
        mask_shares(masks.classified, load_card().confusion),
        error,
        unreadable,
    )


def _run_parallel(
    todo: list[tuple[PlannedFile, str]],
    workers: int,
    settle: Callable[[PlannedFile, str, Callable[[], FileResult]], None],
    on_frames: Callable[[int], None],
) -> None:
    # Workers share the cores: each runs its models on its share, so N workers do not fight over N x cores.
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    # Handed to each worker as it starts (a queue cannot travel with a task), so no manager process is needed.
    progress: Any = context.Queue()
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=start_worker, initargs=(os.getpid(), progress)
    ) as pool:
        futures: dict[Future[FileResult], tuple[PlannedFile, str]] = {}
        for planned, run_id in todo:
            camera = dataclasses.replace(
                planned.job.camera, detection=dataclasses.replace(planned.job.camera.detection, threads=threads)
            )
            job = dataclasses.replace(planned.job, camera=camera)
            futures[pool.submit(_analyse_reporting, job)] = (planned, run_id)
        pending = set(futures)
        while pending:
            _drain(progress, on_frames)
            done = {f for f in pending if f.done()}
            for future in done:
                planned, run_id = futures[future]
                settle(planned, run_id, future.result)
            pending -= done
            if pending and not done:
                _drain(progress, on_frames, wait=0.2)
        _drain(progress, on_frames)


def _analyse_reporting(job: FileJob) -> FileResult:
    return analyse_file(job, report)


def _drain(progress: Any, on_frames: Callable[[int], None], wait: float = 0.0) -> None:
    try:
        on_frames(progress.get(timeout=wait) if wait else progress.get_nowait())
        while True:
            on_frames(progress.get_nowait())
    except queue.Empty:
        return
