"""A batch on a Ray cluster stores what one machine stores: PETS 2009 run both ways, a worker killed mid-run,
a poisoned file among good ones, a file run locally then on Ray."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import duckdb
import pytest

from sanitary.config import CameraConfig, load_camera
from sanitary.runtime.batch import analyse_file, run_batch
from sanitary.runtime.runs import BatchPlan, FileOutcome, RunOptions, plan_batch
from tests.conftest import NO_SIGN, SPARSE_HEADS, pets_camera

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sanitary[cluster]')")

from sanitary.runtime.cluster import WORKER_ENV, Segment, decode, encode, run_on_ray, segment_file  # noqa: E402

# Real footage through the real pipeline, end to end: the quick lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

OPTIONS = RunOptions(sample_fps=2.0, signage_override=NO_SIGN[1])
SEGMENT_S = 30.0
WINDOW = timedelta(seconds=10)
# Per frame, without tracks: these come from the same frames and must match exactly.
EXACT = (
    "window_end, frames_analysed, covered_s, people_sum, people_max, faces_sum, faces_with_mask,"
    " faces_without_mask, faces_mask_incorrect, faces_mask_unknown, close_pair_frames, close_pairs_sum,"
    " people_close_sum, nearest_min_m, nearest_median_m, opt_outs"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": WORKER_ENV})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def camera(pets: Path, tmp_path_factory: pytest.TempPathFactory) -> CameraConfig:
    cam = load_camera(pets_camera(tmp_path_factory.mktemp("cam"), SPARSE_HEADS, WINDOW.seconds))
    # One inference thread in both arms: onnxruntime's sums in another thread count may differ in the last bits.
    return dataclasses.replace(cam, detection=dataclasses.replace(cam.detection, threads=1))


@pytest.fixture(scope="module")
def video(pets: Path) -> str:
    return str(pets / "pets09_s2l1_view001_480x360.avi")


@pytest.fixture(scope="module")
def local_db(camera: CameraConfig, video: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("local") / "local.duckdb"
    outcomes = run_batch(plan_batch([video], camera, OPTIONS), db, OPTIONS).outcomes
    assert [o.status for o in outcomes] == ["done"]
    return db


def _analysis_workers() -> list[int]:
    """Processes running a segment now: Ray names a busy worker after its task."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::analyse_segment"):
                pids.append(int(entry.name))
    return pids


@dataclasses.dataclass
class RayRun:
    db: Path
    outcomes: list[FileOutcome]
    killed: list[int]
    frames: int
    segments: list[Segment]


@pytest.fixture(scope="module")
def ray_run(
    cluster: None, camera: CameraConfig, video: str, local_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> RayRun:
    """PETS on Ray, with the worker of one running segment killed when the first segment is done."""
    tmp = tmp_path_factory.mktemp("ray")
    killed: list[int] = []
    frames: list[int] = []

    def on_frames(n: int) -> None:
        frames.append(n)
        if not killed:
            for pid in _analysis_workers()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    plan = plan_batch([video], camera, OPTIONS)
    outcomes = run_on_ray(plan, tmp / "ray.duckdb", OPTIONS, None, on_frames, tmp / "parts", SEGMENT_S).outcomes
    segments = segment_file(plan.files[0].job, plan.files[0].duration_s, SEGMENT_S)
    assert not list((tmp / "parts").glob("*")), "parts are removed once their file is stored"
    return RayRun(tmp / "ray.duckdb", outcomes, killed, sum(frames), segments)


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _rows(db: Path, columns: str) -> list[tuple[Any, ...]]:
    return _query(db, f"SELECT window_start, {columns} FROM window_aggregates ORDER BY window_start")


def test_ray_stores_the_same_sums_counts_and_maxima(ray_run: RayRun, local_db: Path) -> None:
    assert [o.status for o in ray_run.outcomes] == ["done"]
    assert len(ray_run.segments) == 4  # 113 s of footage, cut every 30 s
    local, remote = _rows(local_db, EXACT), _rows(ray_run.db, EXACT)
    assert len(local) == 12
    assert remote == local
    assert ray_run.frames == sum(r[2] for r in local)
    zones = "SELECT window_start, zone, frames_analysed, people_sum, people_max FROM zone_windows ORDER BY 1, 2"
    assert _query(ray_run.db, zones) == _query(local_db, zones)


def test_distinct_people_within_the_bound(ray_run: RayRun, local_db: Path) -> None:
    """The documented bound: off by at most the people in view where the segment's lead-in starts or its tail
    ends (the people_max of those windows); on this footage, by one person in one window at most."""
    rows = _rows(local_db, "people_distinct, people_max")
    local = {w: distinct for w, distinct, _ in rows}
    most = {w: people_max for w, _, people_max in rows}
    remote = dict(_rows(ray_run.db, "people_distinct"))
    assert local.keys() == remote.keys()
    gaps = {w: abs(local[w] - remote[w]) for w in local}
    for w, gap in gaps.items():
        segment = next(s for s in ray_run.segments if s.owns(w))
        lead_in = most.get(segment.lead_in, 0) if segment.lead_in else 0
        tail = most.get(segment.tail - WINDOW, 0) if segment.tail else 0
        assert gap <= lead_in + tail, (w, gap)
    assert sum(gaps.values()) <= 1, gaps


def test_a_killed_worker_is_retried_and_its_windows_counted_once(ray_run: RayRun, local_db: Path) -> None:
    assert ray_run.killed, "no segment was running when the first one finished"
    keys = [r[0] for r in _rows(ray_run.db, "frames_analysed")]
    assert len(keys) == len(set(keys)) == len(_rows(local_db, "frames_analysed"))
    assert _query(ray_run.db, "SELECT status, frames_analysed FROM runs") == [
        ("done", sum(r[1] for r in _rows(local_db, "frames_analysed")))
    ]


def test_a_file_run_locally_is_skipped_on_ray(
    cluster: None, camera: CameraConfig, video: str, local_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "again.duckdb"
    shutil.copy(local_db, db)
    frames: list[int] = []
    plan = plan_batch([video], camera, OPTIONS)
    outcomes = run_on_ray(plan, db, OPTIONS, None, frames.append, tmp_path / "parts").outcomes
    assert [o.status for o in outcomes] == ["skipped"]
    assert frames == [plan.files[0].frames]
    assert _rows(db, "frames_analysed") == _rows(local_db, "frames_analysed")
    assert _query(db, "SELECT count(*), min(status) FROM runs") == [(1, "done")]


def _images(folder: Path, pets: Path, first: int, count: int) -> str:
    folder.mkdir()
    frames = sorted((pets / "frames").iterdir())[first : first + count]
    for i, frame in enumerate(frames):
        image = cv2.imread(str(frame))
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), image)
    return str(folder)


def test_a_poisoned_file_fails_alone(cluster: None, camera: CameraConfig, pets: Path, tmp_path: Path) -> None:
    good = _images(tmp_path / "good", pets, 0, 8)
    (Path(good) / "0004.jpg").write_bytes(b"not a jpeg at all")  # left out, the other seven analysed
    poisoned = _images(tmp_path / "poisoned", pets, 8, 8)
    later = _images(tmp_path / "later", pets, 16, 8)
    plan: BatchPlan = plan_batch([good, poisoned, later], camera, OPTIONS)
    assert len(plan.files) == 3
    shutil.rmtree(poisoned)  # gone between planning and analysis
    outcomes = run_on_ray(plan, tmp_path / "p.duckdb", OPTIONS, None, lambda n: None, tmp_path / "parts").outcomes
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert "poisoned: no such file or folder" in (outcomes[1].error or "")
    assert [Path(p).name for p in outcomes[0].unreadable] == ["0004.jpg"]
    runs = _query(tmp_path / "p.duckdb", "SELECT source_path, status, error, frames_unreadable FROM runs ORDER BY 1")
    stored = _query(tmp_path / "p.duckdb", "SELECT count(DISTINCT source) FROM window_aggregates")
    assert [(Path(p).name, s, n) for p, s, _, n in runs] == [("good", "done", 1), ("later", "done", 0),
                                                             ("poisoned", "failed", None)]  # fmt: skip
    assert "no such file or folder" in runs[2][2]
    assert stored == [(2,)]
    assert not list((tmp_path / "parts").glob("*")), "a failed file leaves no part behind"


def test_windows_survive_their_parquet_round_trip(camera: CameraConfig, video: str) -> None:
    job = plan_batch([video], camera, RunOptions(sample_fps=0.5)).files[0].job
    windows = analyse_file(job).windows
    assert [decode(type(w), json.loads(encode(w))) for w in windows] == windows
