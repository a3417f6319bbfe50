"""Commands that analyse footage: run (batch), count, live, and calibrate (which looks at one frame)."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sanitary.cli.checks import MAX_SECONDS, MAX_WORKERS, footage_start, positive, within
from sanitary.cli.common import CameraOption, FpsOption, SampleFps, console, friendly
from sanitary.errors import SanitaryError

SequenceOption = Annotated[
    bool,
    typer.Option(
        "--sequence", help="Image folders are frames of one camera at --fps (time.sequence), not unrelated photos."
    ),
]

if TYPE_CHECKING:
    import numpy as np
    from rich.progress import Progress

    from sanitary.config import CameraConfig
    from sanitary.geometry.calibration import PointPairs
    from sanitary.geometry.homography import HomographyFit
    from sanitary.runtime.runs import FileOutcome


@friendly
def run(
    footage: Annotated[list[str], typer.Argument(help="Video files, image folders or quoted globs.")],
    camera: CameraOption,
    db: Annotated[Path, typer.Option("--db", help="DuckDB file the aggregates go to (created if absent).")],
    sample_fps: Annotated[float, typer.Option("--sample-fps", help="Frames analysed per second of footage.")] = 5.0,
    fps: FpsOption = None,
    sequence: SequenceOption = False,
    start: Annotated[
        str | None, typer.Option("--start", help="Footage start, ISO 8601 (camera time zone if naive).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Files analysed in parallel processes.")] = 1,
    without_signage: Annotated[
        str | None,
        typer.Option("--without-signage", help="Why footage no opt-out sign covered may be analysed (recorded)."),
    ] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on a Ray cluster (local unless --ray-address).")] = False,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="'auto' or the cluster's address, e.g. ray://head:10001.")
    ] = None,
    segment_s: Annotated[
        float, typer.Option("--segment-s", help="With --ray: videos are cut into segments this long.")
    ] = 600.0,
    parts_dir: Annotated[
        Path | None, typer.Option("--parts-dir", help="With --ray: a folder every worker reaches at the same path.")
    ] = None,
) -> None:
    """Analyse footage of one camera into per-window aggregates in a DuckDB file."""
    from sanitary.config import MAX_FPS, MIN_FPS, load_camera
    from sanitary.runtime.batch import run_batch
    from sanitary.runtime.cluster import run_on_ray
    from sanitary.runtime.runs import RunOptions, plan_batch

    positive(sample_fps, "--sample-fps", MAX_FPS)
    within(fps, "--fps", MIN_FPS, MAX_FPS)
    within(workers, "--workers", 1, MAX_WORKERS)
    within(segment_s, "--segment-s", 1.0, MAX_SECONDS)
    cam = as_sequence(load_camera(camera), sequence)
    if without_signage is not None and not without_signage.strip():
        raise SanitaryError("--without-signage needs a reason, e.g. --without-signage 'research footage, consented'")
    options = RunOptions(
        sample_fps=sample_fps,
        fps=fps,
        start=footage_start(start, cam),
        workers=workers,
        signage_override=without_signage,
    )
    plan = plan_batch(footage, cam, options)
    progress = _progress()
    task = progress.add_task(f"{cam.camera_id}", total=sum(f.frames for f in plan.files))

    def advance(frames: int) -> None:
        # The bar appears with the first frames, once the database was opened and checked: a database refused
        # (foreign, newer, locked) is then one line, with no bar drawn before it.
        if not progress.live.is_started:
            progress.start()
        progress.advance(task, frames)

    try:
        if ray or ray_address:
            parts = parts_dir or db.with_name(db.name + ".parts")
            done = run_on_ray(plan, db, options, ray_address, advance, parts, segment_s, typer.echo)
        else:
            done = run_batch(plan, db, options, advance, typer.echo)
    finally:
        progress.stop()
    if done.expired:
        console.print(
            f"retention: deleted {done.expired} windows older than {cam.privacy.retention_days:g} days (logged)"
        )
    outcomes = done.outcomes
    _print_summary(outcomes, db)
    for o in outcomes:
        if o.unreadable:
            typer.echo(f"warning: {o.path}: {_left_out(o.unreadable)}", err=True)
    for c in plan.continuity:
        kind = "gap" if c.seconds > 0 else "overlap"
        console.print(f"{kind}: {abs(c.seconds):.1f} s between {c.previous.name} and {c.current.name}")
    for o in outcomes:
        if o.status == "duplicate":
            typer.echo(f"duplicate: {o.error}")
    bad = [o for o in outcomes if o.status in ("failed", "truncated", "refused")]
    if bad:
        typer.echo(f"error: {bad[0].error}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""), err=True)
        raise typer.Exit(1)


def _progress() -> Progress:
    """The batch's progress bar: frames done of the run's total, and the analysis rate."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class FpsColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:5.1f} fps" if task.speed else "  ... fps")

    return Progress(
        TextColumn("{task.description}", markup=False),  # the camera id, as written
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        FpsColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _print_summary(outcomes: list[FileOutcome], db: Path) -> None:
    table = Table(title=f"stored in {db}")
    for column in ("file", "status", "frames", "windows", "mean people", "max people", "faces", "mask rate (95%)"):
        table.add_column(column, justify="left" if column in ("file", "status") else "right")
    for o in outcomes:
        rate = f"{o.mask.mask_rate:.2f} ({o.mask.low[0]:.2f}-{o.mask.high[0]:.2f}) of {o.mask.n}" if o.mask else "-"
        if o.windows_under_k:
            # As the store keeps it: windows of fewer than k_min people show no rate (it could tell who wore one).
            rate += f", {o.windows_under_k} window(s) under k"
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


@friendly
def count(
    path: Annotated[str, typer.Argument(help="A video file, an image folder or a quoted glob.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per frame on stdout.")] = False,
    camera: Annotated[Path | None, typer.Option("--camera", help="Camera config for thresholds.")] = None,
    sample_fps: SampleFps = None,
    fps: FpsOption = None,
    sequence: SequenceOption = False,
) -> None:
    """Count people and faces per frame (every frame unless --sample-fps): the evaluation hook."""
    from sanitary.capture.sources import Source
    from sanitary.config import MAX_FPS, MIN_FPS, default_camera, load_camera
    from sanitary.runtime.analyser import FrameAnalyser, observe

    positive(sample_fps, "--sample-fps", MAX_FPS)
    within(fps, "--fps", MIN_FPS, MAX_FPS)
    cam = as_sequence(load_camera(camera) if camera else default_camera(), sequence)
    rate = fps or cam.time.fps
    # Without sampling, time plays no part in a count of photos, so a folder of them needs no frame rate.
    source = Source(path, rate if rate or sample_fps or cam.time.sequence else 1.0, cam.time.sequence)
    analyser = FrameAnalyser.from_camera(cam, source.info.analysed_fps(sample_fps))
    for frame, obs in observe(source, analyser, sample_fps):
        if as_json:
            line = {"frame": frame.index, "file": frame.file, "people": obs.people, "detected": obs.detected}
            if obs.heads is not None:
                line["heads"] = obs.heads
            line["faces"] = obs.faces
            if obs.tracks is not None:
                line["tracks"] = obs.tracks
            sys.stdout.write(json.dumps(line) + "\n")
        else:
            sys.stdout.write(f"frame {frame.index}: {obs.people} people, {obs.faces} faces\n")
        sys.stdout.flush()
    if source.unreadable:
        typer.echo(f"warning: {path}: {_left_out([str(p) for p in source.unreadable])}", err=True)


def as_sequence(camera: CameraConfig, sequence: bool) -> CameraConfig:
    """The camera with `--sequence` taken over into its time.sequence (the option only ever turns it on)."""
    if not sequence:
        return camera
    return dataclasses.replace(camera, time=dataclasses.replace(camera.time, sequence=True))


def _left_out(paths: Sequence[str], named: int = 3) -> str:
    """The images a folder's analysis left out, the first few by name."""
    names = ", ".join(Path(p).name for p in paths[:named])
    more = f" and {len(paths) - named} more" if len(paths) > named else ""
    return f"{len(paths)} image(s) left out, cut short or not images: {names}{more}; the others were analysed"


@friendly
def live(
    sources: Annotated[list[str], typer.Argument(help="Camera index (0), stream URL (rtsp://...) or video file.")],
    camera: Annotated[
        list[Path], typer.Option("--camera", help="Camera config (TOML), one per source, in the same order.")
    ],
    db: Annotated[Path, typer.Option("--db", help="DuckDB file; held only while a window commits.")],
    analysis_fps: Annotated[float, typer.Option("--analysis-fps", help="Frames analysed a second.")] = 5.0,
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
    from sanitary.config import MAX_FPS, MIN_FPS, load_camera
    from sanitary.runtime.live import LiveCamera, LiveOptions, run_live

    within(analysis_fps, "--analysis-fps", 0.1, MAX_FPS)
    within(fps, "--fps", MIN_FPS, MAX_FPS)
    positive(seconds, "--seconds", MAX_SECONDS)
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
    import dataclasses

    import cv2
    import numpy as np

    from sanitary.config import load_camera
    from sanitary.geometry.calibration import calibrate, point_pairs, write_calibration
    from sanitary.geometry.calibration_plot import calibration_plot
    from sanitary.geometry.homography import check_horizon, frame_region, tsai_ground_homography
    from sanitary.perception.faces import FaceDetector
    from sanitary.perception.people import PersonDetector

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
        sweep = dataclasses.replace(cam.detection, person_score=0.05, walkable=[])
        people = PersonDetector(sweep)(image)
        faces = FaceDetector(dataclasses.replace(sweep, face_search="frame", face_score=0.3))(image, people)
        picture = calibration_plot(image, H, region, people, faces, pairs.image, pairs.ground)
        if not cv2.imwrite(str(plot), picture):
            raise SanitaryError(f"{plot}: cannot write the picture here; choose a .png path in a writable folder")
        console.print(f"wrote {plot} (people pixelated)")


def _read_frame(path: Path) -> np.ndarray:
    """The frame at `path`, or one line saying it is not an image."""
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        raise SanitaryError(f"{path}: cannot read this frame; pass an image file (PNG, JPEG) from the camera")
    return image


def _print_fit(fit: HomographyFit, pairs: PointPairs) -> None:
    table = Table(title="calibration points")
    for column in ("#", "image px", "ground m", "error px", "error m", "leave-one-out m", "inlier"):
        table.add_column(column, justify="right")
    import numpy as np

    loo = fit.loo_m if fit.loo_m is not None else np.full(len(fit.error_m), np.nan)
    for i, (p, g) in enumerate(zip(pairs.image, pairs.ground, strict=True)):
        table.add_row(
            str(i + 1), f"{p[0]:.1f}, {p[1]:.1f}", f"{g[0]:.2f}, {g[1]:.2f}", f"{fit.error_px[i]:.2f}",
            f"{fit.error_m[i]:.3f}", f"{loo[i]:.3f}", "yes" if fit.inliers[i] else "no",
        )  # fmt: skip
    console.print(table)
    console.print(f"RMS {fit.rms_px:.2f} px, {fit.rms_m:.3f} m over {int(fit.inliers.sum())} inliers")
