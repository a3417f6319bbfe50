"""Run bookkeeping, the same for batch, Ray and live: which files a batch takes and when each starts, what makes a
run (its parameters and their hash), which files are done already, and how a run's outcome is stored.

Files are identified by their content hash, so a batch that stopped halfway resumes where it was: a file already
done for the same camera with the same parameters is skipped, and one done with other parameters is replaced.
A file that cannot be read fails alone; the others go on.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from sanitary.alerts.sinks import SentAlert
from sanitary.analytics.mask_rate import MaskShares, mask_shares
from sanitary.analytics.observations import MaskCounts
from sanitary.analytics.windows import WindowAggregate
from sanitary.capture.sources import Continuity, Source, continuity, start_from_filename
from sanitary.config import CameraConfig, check_year, parse_start
from sanitary.errors import SanitaryError
from sanitary.perception import models
from sanitary.perception.heads import MODEL_FILE as HEADS
from sanitary.perception.mask_card import load_card
from sanitary.perception.people import MODELS as PEOPLE
from sanitary.runtime.lifecycle import begin_camera, finish_camera, unsigned
from sanitary.storage.connection import disk_is_full
from sanitary.storage.store import RunStart, Store

# The person model is a parameter through the config (detection.model).
MODELS = ("centerface.onnx", "mask_classifier.onnx")
# Every model file a run reads is a parameter by its content (issue 28): a new or retrained model of any stage
# analyses the files again. Files were done before their models were hashed, with the models shipped then; a model
# file whose content is still the one shipped then adds nothing to the parameters, so that those files are still
# found done (as LEGACY_PLACES does for settings), and any other content is in the parameters.
MODELS_BEFORE_HASHING = {
    "bytetrack_nano.dynamic.onnx": "48b80c2b7b7cc0c54b534efc38985971ca215f5fc1f064040b8a965c80cd8a21",
    "yolox_nano.dynamic.onnx": "704950cd8993a1b244a2db12a2777573adc7e7cc63d68535021059641f69c897",
    "head_points.onnx": "bce7296caa87f2a8b068a6e708a0d8ab1e2387223dca180f2f13b818edb12532",
    "centerface.onnx": "a55914d0f3472fa07baa66f09b4056301e5f771ffa6717faf2322707965fefc1",
    "mask_classifier.onnx": "d34e0ee72348516cca329e53cf2670b3d55f3974f2e40555305bfc33d121c6b2",
}
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
    # The footage's files as planned (names, sizes, modification times): a file that differs at the end of the
    # analysis was still being written.
    stamp: str = ""

    def source(self) -> Source:
        """The footage to analyse, a folder played as a sequence when the camera says so."""
        return Source(self.spec, self.fps, self.camera.time.sequence)


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
    mask: MaskShares | None = None  # over the windows of k people or more only, as the store keeps them
    error: str | None = None
    unreadable: tuple[str, ...] = ()
    windows_under_k: int = 0  # windows whose mask rate the store suppressed (fewer than privacy.k_min people)


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


@dataclass(frozen=True)
class BatchReport:
    outcomes: list[FileOutcome]
    expired: int  # windows deleted by the camera's retention


def plan_batch(specs: list[str], camera: CameraConfig, options: RunOptions) -> BatchPlan:
    """Probe every file, give it a start time and a content hash; a file that cannot be read is set aside, and so
    is a copy of a file before it (the same content under another name is analysed once, and takes no time), and so
    is a file still being written."""
    camera.resolved_unit_id()  # checked before any file is read: export names files after it
    fps = options.fps or camera.time.fps
    probed: list[tuple[str, Source, str, str]] = []  # with the content's hash, read once: it is the whole file
    set_aside: list[SetAside] = []
    first_of: dict[str, str] = {}
    for spec in specs:
        try:
            stamp = footage_stamp(spec)
            source = Source(spec, fps)
            digest = source.content_hash()
            check_unchanged(spec, stamp)
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
        probed.append((spec, source, digest, stamp))
    files: list[PlannedFile] = []
    # With one start time for several files (--start, or the config's without a file-name pattern), the files
    # are taken as consecutive recordings.
    running_start = options.start
    if running_start is None and camera.time.start and not camera.time.filename_pattern:
        running_start = parse_start(camera.time.start, camera.tz, str(camera.path))
    for spec, source, digest, stamp in probed:
        try:
            start = _start_time(spec, camera, running_start)
        except SanitaryError as exc:
            set_aside.append(SetAside(spec, "failed", str(exc), digest))
            continue
        if running_start is not None:
            running_start = start + timedelta(seconds=source.info.duration_s)
        job = FileJob(spec, camera, digest, start, fps, options.sample_fps, stamp)
        frames = source.info.frame_count
        if options.sample_fps and options.sample_fps < source.info.fps:
            frames = int(frames * options.sample_fps / source.info.fps) + 1
        files.append(PlannedFile(job, frames, source.info.duration_s))
    spans = [(Path(f.job.spec), f.job.start, f.duration_s) for f in files]
    tolerance = 1.0 / (fps or 25.0) * 1.5
    return BatchPlan(files, set_aside, continuity(spans, tolerance), camera)


def footage_stamp(spec: str) -> str:
    """The footage's files by name, size and modification time (what a recorder still writing them changes)."""
    path = Path(spec)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(spec))
    digest = hashlib.blake2b(digest_size=16)
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue  # gone since it was listed: the source says so when it reads it
        digest.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def check_unchanged(spec: str, stamp: str) -> None:
    """Raise when the footage is not as it was when `stamp` was taken: a file still being written is never done."""
    if footage_stamp(spec) != stamp:
        raise SanitaryError(
            f"{spec}: still being written (its size or time changed while it was read); run again when the "
            "recorder has closed it"
        )


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
    params = {
        **config_params(camera),
        "sample_fps": sample_fps,
        "fps": fps,
        "models": list(MODELS),
        # A retrained mask model changes the rates: files done with the old one are analysed again.
        "mask_model_sha256": load_card().sha256,
    }
    changed = {
        name: digest
        for name in model_files(camera)
        if (digest := model_sha256(models.WEIGHTS_DIR, name)) != MODELS_BEFORE_HASHING.get(name)
    }
    if changed:
        params["model_sha256"] = changed
    return params


def model_files(camera: CameraConfig) -> tuple[str, ...]:
    """The model files an analysis with this camera's config reads."""
    heads = (HEADS,) if camera.heads.enabled else ()
    return (PEOPLE[camera.detection.model].file, *heads, *MODELS)


@functools.cache
def model_sha256(weights: Path, name: str) -> str:
    """The model file's sha256, read once a process (the files are tens of megabytes, a run's parameters are
    computed for every file of a batch)."""
    path = weights / name
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    except OSError as exc:
        raise SanitaryError(
            f"{path}: model file unreadable ({exc.strerror}); reinstall sanitary or set SANITARY_WEIGHTS to a folder "
            f"holding {name}"
        ) from None
    return digest.hexdigest()


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


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _span(gap: tuple[datetime, datetime], camera: CameraConfig) -> str:
    start, end = (t.astimezone(camera.tz).isoformat(timespec="seconds") for t in gap)
    return f"from {start} to {end}"


def stored_batch(
    plan: BatchPlan, db: Path, drive: Callable[[Store], list[FileOutcome]], log: Callable[[str], None]
) -> BatchReport:
    """A batch's session with the store at `db`: the camera begun, the files driven (`drive` analyses and stores
    them), the camera's retention applied; a full disk is one line naming the file."""
    try:
        with Store.for_unit(db) as store:
            if store.interrupted:
                log(f"{db}: {store.interrupted} run(s) left running by a process that ended marked interrupted")
            begin_camera(store, plan.camera)
            outcomes = drive(store)
            expired = finish_camera(store, plan.camera)
    except (duckdb.Error, OSError) as exc:
        full = disk_full(db, exc)
        if full is None:
            raise
        raise SanitaryError(full) from None
    return BatchReport(outcomes, expired)


def disk_full(db: Path, exc: BaseException) -> str | None:
    """One line saying the disk holding `db` is full, when `exc` says so (DuckDB says it in its message only)."""
    if not disk_is_full(exc):
        return None
    return (
        f"{db}: the disk is full (writing in {db.resolve().parent} failed: {str(exc).strip().splitlines()[0]}); "
        "free space there or pass --db a file on another disk, then run again (nothing stored is lost)"
    )


def failure(spec: str, exc: BaseException, db: Path | None = None) -> str:
    """One line saying why a file failed: bad input says it itself, a full disk says so; anything else is a fault of
    sanitary's."""
    if isinstance(exc, SanitaryError):
        return str(exc)
    if db is not None and (full := disk_full(db, exc)):
        return full
    if isinstance(exc, MemoryError):  # outside a model's run (perception/models.py says which model there)
        return (
            f"{spec}: out of memory while analysing; lower heads.max_pixels, set heads.enabled = false, or free memory"
        )
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


def begin_live_run(
    store: Store, camera: CameraConfig, spec: str, key: str, analysis_fps: float, override: str | None
) -> str:
    """A live camera's run, under the session's own source key; its windows are committed as they close."""
    params = {"live": spec, "analysis_fps": analysis_fps, "camera": str(camera.path)}
    return store.begin_run(
        RunStart(
            key,
            spec,
            camera.camera_id,
            camera.site_id,
            camera.resolved_unit_id(),
            params_hash(params),
            params,
            override,
        )
    )


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
    """A file's windows stored in one transaction (a cut-short file keeps what came before the cut, and replaces an
    earlier cut of the recording, see `Store.finish_run`); a file that changed since it was planned was still being
    written, and a cut-short copy of a longer recording already stored would count it twice: both are refused."""
    if job.stamp:
        check_unchanged(job.spec, job.stamp)
    cam = job.camera
    if error and (longer := store.longer_recording(cam.camera_id, cam.site_id, job.source_hash, *footage)):
        raise SanitaryError(
            f"{job.spec}: cut short, and {longer}, the same camera's recording from the same start and longer, is "
            "stored already; nothing of this copy is stored (it would count the footage twice)"
        )
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
    return outcome_of(job.spec, status, windows, error, unreadable)


def outcome_of(
    spec: str, status: str, windows: list[WindowAggregate], error: str | None, unreadable: tuple[str, ...]
) -> FileOutcome:
    """What the summary shows of a stored file: its mask rate over the windows the store keeps it in only, those of
    at least `privacy.k_min` people (over fewer, it could tell who wore a mask)."""
    frames = sum(w.frames_analysed for w in windows)
    kept = [w for w in windows if not w.mask_suppressed]
    masks = sum((w.masks for w in kept), MaskCounts())
    return FileOutcome(
        spec,
        status,
        frames,
        len(windows),
        sum(w.people_sum for w in windows) / max(frames, 1),
        max((w.people_max for w in windows), default=0),
        sum(w.faces_sum for w in windows),
        mask_shares(masks.classified, load_card().confusion) if kept else None,
        error,
        unreadable,
        len(windows) - len(kept),
    )
