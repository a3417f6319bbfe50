"""The `sanitary` command line. Input errors become one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from sanitary.capture.sources import Source
from sanitary.cli.missing import missing_package
from sanitary.config import default_camera, load_camera, parse_start
from sanitary.errors import SanitaryError
from sanitary.evaluation.mask_eval import MaskReport, evaluate, evaluate_detected, load_faces
from sanitary.evaluation.voc import read_split
from sanitary.geometry.calibration import PointPairs, calibrate, point_pairs, write_calibration
from sanitary.geometry.calibration_plot import calibration_plot
from sanitary.geometry.homography import HomographyFit, check_horizon, frame_region, tsai_ground_homography
from sanitary.governance.audit import audit_paths
from sanitary.governance.evidence import db_evidence
from sanitary.governance.signage import Sign
from sanitary.perception.faces import FaceDetector
from sanitary.perception.models import WEIGHTS_DIR
from sanitary.perception.people import PersonDetector
from sanitary.reporting.report import build_report
from sanitary.runtime.analyser import FrameAnalyser, observe
from sanitary.runtime.batch import FileOutcome, RunOptions, plan_batch, run_batch
from sanitary.runtime.cluster import run_on_ray
from sanitary.runtime.lifecycle import begin_camera, finish_camera
from sanitary.runtime.live import LiveCamera, LiveOptions, run_live
from sanitary.storage.merge import merge_into
from sanitary.storage.query import run_query
from sanitary.storage.shipping import acknowledge, export_parquet, import_parquet, purge_shipped
from sanitary.storage.store import Store

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Anonymous occupancy and mask-wearing aggregates from video; only aggregates are ever stored.",
)
# Piped or logged output has no terminal width to go by; tables of 80 columns would be cut.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
P = ParamSpec("P")
R = TypeVar("R")

CameraOption = Annotated[Path, typer.Option("--camera", help="Camera config (TOML), see examples/.")]
SampleFps = Annotated[float | None, typer.Option("--sample-fps", help="Frames analysed per second of footage.")]
FpsOption = Annotated[float | None, typer.Option("--fps", help="True frame rate, when the container is wrong.")]


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SanitaryError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except ModuleNotFoundError as exc:  # an optional extra not installed, or a broken install
            message = missing_package(exc)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: files already stored stay stored; run again to finish the rest", err=True)
            raise typer.Exit(130) from None

    return wrapper


class FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:5.1f} fps" if task.speed else "  ... fps")


@app.command()
@friendly
def run(
    footage: Annotated[list[str], typer.Argument(help="Video files, image folders or quoted globs.")],
    camera: CameraOption,
    db: Annotated[Path, typer.Option("--db", help="DuckDB file the aggregates go to (created if absent).")],
    sample_fps: Annotated[float, typer.Option("--sample-fps", help="Frames analysed per second of footage.")] = 5.0,
    fps: FpsOption = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Footage start, ISO 8601 (camera time zone if naive).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Files analysed in parallel processes.")] = 1,
    without_signage: Annotated[
        str | None,
        typer.Option("--without-signage", help="Why footage no opt-out sign covered may be analysed (recorded)."),
    ] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on a Ray cluster (local unless --ray-address).")] = False,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="'auto' or the cluster's address, e.g. ray://head:10001.")
    ] = None,
    segment_s: Annotated[
        float, typer.Option("--segment-s", min=1.0, help="With --ray: videos are cut into segments this long.")
    ] = 600.0,
    parts_dir: Annotated[
        Path | None, typer.Option("--parts-dir", help="With --ray: a folder every worker reaches at the same path.")
    ] = None,
) -> None:
    """Analyse footage of one camera into per-window aggregates in a DuckDB file."""
    cam = load_camera(camera)
    if without_signage is not None and not without_signage.strip():
        raise SanitaryError("--without-signage needs a reason, e.g. --without-signage 'research footage, consented'")
    options = RunOptions(
        sample_fps=sample_fps,
        fps=fps,
        start=parse_start(start, cam.tz, "--start") if start else None,
        workers=workers,
        signage_override=without_signage,
    )
    plan = plan_batch(footage, cam, options)
    with (
        Store(db) as store,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("frames"),
            FpsColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        begin_camera(store, cam)
        task = progress.add_task(f"{cam.camera_id}", total=sum(f.frames for f in plan.files))
        advance = functools.partial(progress.advance, task)
        if ray or ray_address:
            parts = parts_dir or db.with_name(db.name + ".parts")
            outcomes = run_on_ray(plan, store, options, ray_address, advance, parts, segment_s)
        else:
            outcomes = run_batch(plan, store, options, advance)
        expired = finish_camera(store, cam)
    if expired:
        console.print(f"retention: deleted {expired} windows older than {cam.privacy.retention_days:g} days (logged)")
    _print_summary(outcomes, db)
    for c in plan.continuity:
        kind = "gap" if c.seconds > 0 else "overlap"
        console.print(f"{kind}: {abs(c.seconds):.1f} s between {c.previous.name} and {c.current.name}")
    bad = [o for o in outcomes if o.status in ("failed", "truncated", "refused")]
    if bad:
        typer.echo(f"error: {bad[0].error}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""), err=True)
        raise typer.Exit(1)


def _print_summary(outcomes: list[FileOutcome], db: Path) -> None:
    table = Table(title=f"stored in {db}")
    for column in ("file", "status", "frames", "windows", "mean people", "max people", "faces", "mask rate (95%)"):
        table.add_column(column, justify="left" if column in ("file", "status") else "right")
    for o in outcomes:
        rate = f"{o.mask.mask_rate:.2f} ({o.mask.low[0]:.2f}-{o.mask.high[0]:.2f}) of {o.mask.n}" if o.mask else "-"
        table.add_row(
            Path(o.path).name,
            o.status,
            str(o.frames_analysed),
            str(o.windows),
            f"{o.occupancy_mean:.2f}",
            str(o.occupancy_max),
            str(o.faces),
            rate,
        )
    console.print(table)


@app.command()
@friendly
def count(
    path: Annotated[str, typer.Argument(help="A video file, an image folder or a quoted glob.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per frame on stdout.")] = False,
    camera: Annotated[Path | None, typer.Option("--camera", help="Camera config for thresholds.")] = None,
    sample_fps: SampleFps = None,
    fps: FpsOption = None,
) -> None:
    """Count people and faces per frame (every frame unless --sample-fps): the evaluation hook."""
    cam = load_camera(camera) if camera else default_camera()
    rate = fps or cam.time.fps
    # Without sampling, time plays no part in a count, so a folder of images needs no frame rate.
    source = Source(path, rate if rate or sample_fps else 1.0)
    analyser = FrameAnalyser.from_camera(cam, source.info.analysed_fps(sample_fps))
    for frame, obs in observe(source, analyser, sample_fps):
        if as_json:
            line = {"frame": frame.index, "file": frame.file, "people": obs.people, "faces": obs.faces}
            if obs.tracks is not None:
                line["tracks"] = obs.tracks
            sys.stdout.write(json.dumps(line) + "\n")
        else:
            sys.stdout.write(f"frame {frame.index}: {obs.people} people, {obs.faces} faces\n")
        sys.stdout.flush()


@app.command()
@friendly
def audit(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to check (exports, logs, the DuckDB file).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help="A DuckDB file: checked, and what it holds is shown.")] = None,
) -> None:
    """Check that no image, face box, landmark, embedding or per-person record was written anywhere."""
    if not paths and db is None:
        raise SanitaryError("nothing to audit; pass --db FILE and/or files or folders")
    if db is not None:
        for evidence in db_evidence(db):
            typer.echo(f"{evidence.heading}:")
            for line in evidence.lines:
                typer.echo(f"  {line}")
    checked = [*(paths or []), *([db] if db else [])]
    leaks = audit_paths(checked)
    for leak in leaks:
        typer.echo(f"{leak.path}: {leak.where}: {leak.what}")
    if leaks:
        typer.echo(f"error: {len(leaks)} possible leaks of personal data", err=True)
        raise typer.Exit(1)
    typer.echo(f"clean: no image data, embedding or per-person record in {len(checked)} path(s)")


@app.command("eval-mask")
@friendly
def eval_mask(
    data: Annotated[Path, typer.Argument(help="A VOC folder, or a folder of face crops in class subfolders.")],
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout.")] = False,
    detect: Annotated[bool, typer.Option("--detect", help="Find faces with the face detector first.")] = False,
    only: Annotated[
        Path | None, typer.Option("--only", help="File of image names to keep, e.g. the validation split.")
    ] = None,
    camera: Annotated[Path | None, typer.Option("--camera", help="Camera config for the thresholds.")] = None,
) -> None:
    """Score the mask classifier: per-class precision/recall/F1, confusion, macro-F1, accuracy, coverage."""
    cam = load_camera(camera) if camera else default_camera()
    faces = load_faces(data, read_split(only) if only else None)
    if detect:
        result = evaluate_detected(faces, cam.masks, cam.detection)
    else:
        result = evaluate(faces, cam.masks, crops_are_faces=not (data / "annotations").is_dir())
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    _print_mask_report(result)


def _print_mask_report(result: MaskReport) -> None:
    out = Console()
    scores = Table(title="mask classifier")
    for column in ("class", "precision", "recall (95%)", "F1", "support"):
        scores.add_column(column, justify="left" if column == "class" else "right")
    for name, s in result.per_class.items():
        recall = f"{s.recall:.3f} ({s.recall_low:.2f}-{s.recall_high:.2f})"
        scores.add_row(name, f"{s.precision:.3f}", recall, f"{s.f1:.3f}", str(s.support))
    out.print(scores)
    confusion = Table(title="confusion (rows: true)")
    confusion.add_column("true \\ predicted")
    for name in (*result.classes, "unknown"):
        confusion.add_column(name, justify="right")
    for name, row in zip(result.classes, result.confusion, strict=True):
        confusion.add_row(name, *map(str, row))
    out.print(confusion)
    out.print(f"macro-F1 {result.macro_f1:.3f}   accuracy {result.accuracy:.3f}   coverage {result.coverage:.3f}")
    for name, d in (result.detect or {}).items():
        out.print(f"{name}: {d['found']} of {d['annotated']} faces found, {d['right']} classified right")


@app.command("train-mask")
@friendly
def train_mask(
    data: Annotated[Path, typer.Argument(help="VOC folder: images/ and annotations/.")],
    out: Annotated[Path, typer.Option("--out", help="Where the ONNX model and its card go.")] = WEIGHTS_DIR,
    validation: Annotated[Path, typer.Option("--validation", help="Image names of the validation split.")] = (
        WEIGHTS_DIR / "mask_classifier.validation.txt"
    ),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="The shipped model: 20.")] = 20,
    folds: Annotated[
        int, typer.Option("--folds", min=2, help="Cross-validation folds that choose the class bias.")
    ] = 4,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N images (a quick check).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 2,
) -> None:
    """Train the three-class mask classifier from an ImageNet MobileNetV2 and export it to ONNX."""
    # Imported here: torch is only in the training extra, and the module says how to install it when absent.
    from sanitary.train.mask_classifier import train

    out.mkdir(parents=True, exist_ok=True)
    card = train(data, out, validation, epochs, limit, seed, threads, folds)
    console.print(json.dumps(card.get("validation", {}), indent=2))


@app.command("calibrate")
@friendly
def calibrate_command(
    camera: Annotated[Path, typer.Argument(help="Camera config (TOML); its [calibration] is read and written.")],
    points: Annotated[
        Path | None, typer.Option("--points", help="CSV of image_x, image_y, ground_x, ground_y pairs.")
    ] = None,
    tsai: Annotated[Path | None, typer.Option("--tsai", help="Import a Tsai camera calibration (XML).")] = None,
    frame: Annotated[Path | None, typer.Option("--frame", help="A frame of this camera (image file).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a grid and bird's-eye check (PNG).")] = None,
) -> None:
    """Fit the camera's image-to-ground homography, print its errors, and write it into the config."""
    cam = load_camera(camera)
    image = _read_frame(frame) if frame else None
    if image is not None:
        height, width = image.shape[:2]
    elif len(cam.calibration.image_size) == 2:
        width, height = cam.calibration.image_size
    else:
        raise SanitaryError(f"{camera}: frame size unknown; pass --frame with a frame of this camera")
    pairs = point_pairs(cam, points)
    region = np.asarray(cam.detection.walkable, np.float64) if cam.detection.walkable else frame_region(width, height)
    if tsai:
        H = tsai_ground_homography(tsai, width, height)
        check_horizon(H, region)
        console.print(f"imported {tsai} for {width}x{height} frames")
    else:
        fit = calibrate(cam, pairs, width, height)
        _print_fit(fit, pairs)
        H = fit.H
    cam = write_calibration(camera, H, width, height)
    console.print(f"wrote the homography into {camera}")
    if plot:
        if image is None:
            raise SanitaryError(f"{plot}: a plot needs --frame, a frame of this camera to draw on")
        # Blur generously: a person the detector misses at its usual threshold would stay recognisable.
        sweep = dataclasses.replace(cam.detection, person_score=0.05, walkable=[], full_frame=True)
        people = PersonDetector(sweep)(image)
        faces = FaceDetector(dataclasses.replace(sweep, face_search="frame", face_score=0.3))(image, people)
        picture = calibration_plot(image, H, region, people, faces, pairs.image, pairs.ground)
        if not cv2.imwrite(str(plot), picture):
            raise SanitaryError(f"{plot}: cannot write the picture here; choose a .png path in a writable folder")
        console.print(f"wrote {plot} (people pixelated)")


def _read_frame(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SanitaryError(f"{path}: cannot read this frame; pass an image file (PNG, JPEG) from the camera")
    return image


def _print_fit(fit: HomographyFit, pairs: PointPairs) -> None:
    table = Table(title="calibration points")
    for column in ("#", "image px", "ground m", "error px", "error m", "leave-one-out m", "inlier"):
        table.add_column(column, justify="right")
    loo = fit.loo_m if fit.loo_m is not None else np.full(len(fit.error_m), np.nan)
    for i, (p, g) in enumerate(zip(pairs.image, pairs.ground, strict=True)):
        table.add_row(
            str(i + 1), f"{p[0]:.1f}, {p[1]:.1f}", f"{g[0]:.2f}, {g[1]:.2f}", f"{fit.error_px[i]:.2f}",
            f"{fit.error_m[i]:.3f}", f"{loo[i]:.3f}", "yes" if fit.inliers[i] else "no",
        )  # fmt: skip
    console.print(table)
    console.print(f"RMS {fit.rms_px:.2f} px, {fit.rms_m:.3f} m over {int(fit.inliers.sum())} inliers")


signage_app = typer.Typer(no_args_is_help=True, help="The register of opt-out signs: what they say, where, when.")
app.add_typer(signage_app, name="signage")
DbOption = Annotated[Path, typer.Option("--db", help="The DuckDB file.")]


@signage_app.command("add")
@friendly
def signage_add(
    db: DbOption,
    camera: CameraOption,
    text: Annotated[str, typer.Option("--text", help="What the sign says, word for word.")],
    language: Annotated[str, typer.Option("--language", help="Language of the text, e.g. fr.")],
    where: Annotated[str, typer.Option("--where", help="Where the sign stands.")],
    posted: Annotated[str, typer.Option("--posted", help="When it was put up, ISO 8601 (camera time zone if naive).")],
    removed: Annotated[str | None, typer.Option("--removed", help="When it was taken down, if it was.")] = None,
) -> None:
    """Record an opt-out sign for a camera."""
    cam = load_camera(camera)
    posted_at = parse_start(posted, cam.tz, "--posted")
    removed_at = parse_start(removed, cam.tz, "--removed") if removed else None
    if removed_at is not None and removed_at <= posted_at:
        raise SanitaryError(f"--removed {removed} is not after --posted {posted}; check the two times")
    for value, option in ((text, "--text"), (language, "--language"), (where, "--where")):
        if not value.strip():
            raise SanitaryError(f"{option} is empty; say what the sign says, in which language and where it stands")
    sign = Sign(uuid.uuid4().hex[:8], cam.site_id, cam.camera_id, text, language, where, posted_at, removed_at)
    with Store(db) as store:
        store.signage.add(sign)
    typer.echo(f"sign {sign.sign_id} recorded for {cam.site_id}/{cam.camera_id}")


@signage_app.command("list")
@friendly
def signage_list(
    db: DbOption,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
    camera_id: Annotated[str | None, typer.Option("--camera-id", help="Only this camera.")] = None,
) -> None:
    """List the signs recorded, with when each stood."""
    with Store(db) as store:
        signs = store.signage.signs(site, camera_id)
    table = Table(title=f"opt-out signs in {db}")
    for column in ("id", "site", "camera", "posted", "removed", "language", "where", "text"):
        table.add_column(column)
    for s in signs:
        removed = s.removed_at.isoformat(timespec="minutes") if s.removed_at else "still up"
        table.add_row(s.sign_id, s.site_id, s.camera_id, s.posted_at.isoformat(timespec="minutes"), removed,
                      s.language, s.location, s.text)  # fmt: skip
    Console(width=200).print(table)


@signage_app.command("remove")
@friendly
def signage_remove(
    sign_id: Annotated[str, typer.Argument(help="The sign's id, from `sanitary signage list`.")],
    db: DbOption,
    at: Annotated[str, typer.Option("--at", help="When it was taken down, ISO 8601 with its offset.")],
) -> None:
    """Record that a sign was taken down (the record is kept: footage from while it stood stays covered)."""
    removed_at = parse_start(at, ZoneInfo("UTC"), "--at")
    with Store(db) as store:
        sign = store.signage.remove(sign_id, removed_at)
    typer.echo(f"sign {sign.sign_id} of {sign.site_id}/{sign.camera_id} removed at {removed_at.isoformat()}")


alerts_app = typer.Typer(no_args_is_help=True, help="Threshold alerts raised and cleared, as stored.")
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
@friendly
def alerts_list(
    db: DbOption,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
    camera_id: Annotated[str | None, typer.Option("--camera-id", help="Only this camera.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per alert on stdout.")] = False,
) -> None:
    """List the alerts stored, oldest first, with whether each reached its sinks."""
    with Store(db) as store:
        alerts = store.alerts.stored(site, camera_id)
    if as_json:
        for alert in alerts:
            sys.stdout.write(json.dumps(dataclasses.asdict(alert), default=str) + "\n")
        return
    table = Table(title=f"alerts in {db}")
    columns = ("event_at", "site_id", "camera_id", "rule", "state", "measure", "zone", "value", "threshold", "delivery")
    for column in columns:
        table.add_column(column)
    for alert in alerts:
        values = [getattr(alert, c) for c in columns]
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v or "") for v in values))
    Console(width=200).print(table)


@app.command()
@friendly
def query(
    sql: Annotated[str, typer.Argument(help='One SQL query, e.g. "SELECT * FROM mask_rate_daily".')],
    db: DbOption,
    output: Annotated[str, typer.Option("--format", help="table, csv or json (a JSON array of objects).")] = "table",
) -> None:
    """Answer a SQL question on a read-only connection: a query that would write is refused."""
    if output not in ("table", "csv", "json"):
        raise SanitaryError(f"--format {output!r} is unknown; use table, csv or json")
    result = run_query(db, sql)
    if output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    elif output == "json":
        records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        sys.stdout.write(json.dumps(records, default=str, indent=1) + "\n")
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        Console(width=max(120, 16 * len(result.columns))).print(table)


@app.command()
@friendly
def report(
    db: DbOption,
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (the site's local day).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD, included.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    site: Annotated[str | None, typer.Option("--site", help="Only this site (default: every site).")] = None,
) -> None:
    """Write a self-contained HTML report (charts inline, nothing fetched when viewed) for a period."""
    page = build_report(db, _day(start, "--from"), _day(end, "--to"), site)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise SanitaryError(f"{out}: cannot write the report here ({exc.strerror}); choose another --out") from None
    typer.echo(f"wrote {out}")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SanitaryError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2021-03-01") from None


@app.command()
@friendly
def merge(
    sources: Annotated[list[Path], typer.Argument(help="DuckDB files of sites or units that ran separately.")],
    into: Annotated[Path, typer.Option("--into", help="The DuckDB file that gathers them (created if absent).")],
) -> None:
    """Gather aggregates into one file; merging the same files again changes nothing."""
    summary = merge_into(sources, into)
    for part in summary.inputs:
        typer.echo(
            f"{part.path}: {part.sources_added} sources added, {part.sources_replaced} replaced by a newer analysis, "
            f"{part.sources_unchanged} unchanged; {part.windows} windows, {part.runs} runs, {part.signs} signs"
        )


@app.command()
@friendly
def live(
    sources: Annotated[list[str], typer.Argument(help="Camera index (0), stream URL (rtsp://...) or video file.")],
    camera: Annotated[
        list[Path], typer.Option("--camera", help="Camera config (TOML), one per source, in the same order.")
    ],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file; held only while a window commits.")],
    analysis_fps: Annotated[float, typer.Option("--analysis-fps", min=0.1, help="Frames analysed a second.")] = 5.0,
    realtime: Annotated[bool, typer.Option("--realtime", help="Play a file at its frame rate, like a camera.")] = False,
    loop: Annotated[bool, typer.Option("--loop", help="Play a file again and again.")] = False,
    fps: FpsOption = None,
    tags: Annotated[Path | None, typer.Option("--tags", help="JSON file of labels (route, stop) per window.")] = None,
    seconds: Annotated[float | None, typer.Option("--seconds", help="Stop after this many seconds.")] = None,
    without_signage: Annotated[
        str | None, typer.Option("--without-signage", help="Why no opt-out sign is needed (recorded).")
    ] = None,
) -> None:
    """Analyse live sources until stopped (SIGTERM/SIGINT flush the open window, marked partial)."""
    if len(camera) != len(sources):
        raise SanitaryError(f"{len(sources)} source(s) but {len(camera)} --camera; give one camera config per source")
    cameras = [LiveCamera(spec, load_camera(path)) for spec, path in zip(sources, camera, strict=True)]
    options = LiveOptions(analysis_fps, realtime, fps, loop, tags, seconds, without_signage)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    totals = run_live(cameras, db, options, stop, log=lambda line: typer.echo(line, err=True))
    typer.echo(
        f"{totals.windows_committed} windows committed, {totals.windows_lost} lost, {totals.windows_refused} refused"
        f" (no sign); {totals.frames_analysed} frames analysed, {totals.frames_dropped} dropped",
        err=True,
    )
    if totals.windows_lost:
        raise typer.Exit(1)


@app.command("export")
@friendly
def export_command(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="Folder the Parquet files and their manifest go to.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Windows ending after this time (default: not yet acknowledged).")
    ] = None,
    ack: Annotated[
        list[Path] | None, typer.Option("--ack", help="Acknowledgement files from the central site, applied first.")
    ] = None,
    purge_days: Annotated[
        float | None, typer.Option("--purge-days", help="Then delete acknowledged windows older than this.")
    ] = None,
) -> None:
    """Ship a unit's aggregates home: Parquet files partitioned by date and unit, with a checksummed manifest."""
    for path in ack or []:
        typer.echo(f"{path}: {acknowledge(db, path)} windows acknowledged by the central site")
    summary = export_parquet(db, out, parse_start(since, ZoneInfo("UTC"), "--since") if since else None)
    typer.echo(
        f"export {summary.export_id}: {summary.windows} windows in {len(summary.files)} files, {summary.manifest}"
    )
    if purge_days is not None:
        purged = purge_shipped(db, purge_days, datetime.now(UTC))
        typer.echo(f"purged {purged} acknowledged windows older than {purge_days:g} days")


@app.command("import")
@friendly
def import_command(
    folders: Annotated[list[Path], typer.Argument(help="Folders holding exports (manifest-*.json).")],
    db: DbOption,
    ack_dir: Annotated[
        Path | None, typer.Option("--ack-dir", help="Where acknowledgements go (default: beside each manifest).")
    ] = None,
) -> None:
    """Merge exported aggregates into the central file; importing the same files again changes nothing."""
    summary = import_parquet(folders, db, ack_dir)
    for part in summary.exports:
        typer.echo(
            f"{part.manifest}: {part.windows_written} windows written, {part.windows_unchanged} already held;"
            f" acknowledgement {part.ack}"
        )
