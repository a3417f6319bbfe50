"""A batch run over many footage files of one camera on this machine: each file analysed (in parallel worker
processes when asked) and stored as soon as it is done. What a run is, which files are done and how outcomes are
stored is `runs`'s, shared with Ray (`cluster`) and live units (`live`).
"""

from __future__ import annotations

import dataclasses
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
from sanitary.analytics.windows import WindowAggregate
from sanitary.capture.sources import TruncatedSourceError
from sanitary.runtime.analyser import StageTimes
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
from sanitary.runtime.workers import report, start_worker
from sanitary.storage.store import Store

PROGRESS_EVERY = 25


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
    source = job.source()
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


def run_batch(
    plan: BatchPlan,
    db: Path,
    options: RunOptions,
    on_frames: Callable[[int], None] = lambda n: None,
    log: Callable[[str], None] = print,
) -> BatchReport:
    """Analyse the planned files (in `options.workers` processes) and store each in `db` as soon as it is done."""
    return stored_batch(plan, db, lambda store: analyse_batch(plan, store, options, on_frames), log)


def analyse_batch(
    plan: BatchPlan, store: Store, options: RunOptions, on_frames: Callable[[int], None]
) -> list[FileOutcome]:
    """The planned files analysed and stored in `store`, one outcome each.

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
            error = failure(planned.job.spec, exc, store.path)
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
