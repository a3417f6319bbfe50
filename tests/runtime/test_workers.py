"""`sanitary run --workers 2` killed with -9: its workers end with it, and a rerun counts nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import duckdb
import numpy as np
import pytest

from tests.conftest import NO_SIGN, ROOT, run_cli

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")


def noise_video(path: Path, seed: int, seconds: int = 40, fps: float = 10.0) -> str:
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    for _ in range(int(seconds * fps)):
        writer.write(rng.integers(0, 255, (120, 160, 3), np.uint8))
    writer.release()
    return str(path)


def children() -> dict[int, list[int]]:
    """Every process's children, from /proc (zombies left out: they have ended, and wait for their reaper)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rfind(")") + 2 :].split()[:2]
        if state not in ("Z", "X"):
            tree.setdefault(int(ppid), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree = children()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    tree = children()
    living = {p for kids in tree.values() for p in kids}
    return pids & living


@pytest.mark.slow
def test_workers_end_with_a_killed_batch_and_the_rerun_counts_once(tmp_path: Path) -> None:
    camera = tmp_path / "cam.toml"
    camera.write_text(
        'camera_id = "c"\nsite_id = "s"\nsite_kind = "bus"\ntimezone = "UTC"\n[time]\nstart = "2021-03-01T08:00:00"\n'
    )
    files = [noise_video(tmp_path / f"clip{i}.avi", i) for i in range(2)]
    db = tmp_path / "runs.duckdb"
    args = ["run", *NO_SIGN, *files, "--camera", str(camera), "--db", str(db), "--workers", "2", "--sample-fps", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    batch = subprocess.Popen(
        [sys.executable, "-m", "sanitary", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and batch.poll() is None:
            time.sleep(0.2)
            workers = {p for p in descendants(batch.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(workers) >= 2, "the batch never started its two workers"
        time.sleep(3.0)  # the models loaded, analysis under way
        started = descendants(batch.pid)
        assert batch.poll() is None, "the batch ended before it could be killed: make the footage longer"
    finally:
        batch.send_signal(signal.SIGKILL)
        batch.wait()
    deadline = time.monotonic() + 5.0
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = alive(started)
    for pid in orphans:  # not left behind by a failing test either
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"orphans left: {orphans}"

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = sorted(s for (s,) in con.execute("SELECT status FROM runs").fetchall())
        stored = con.execute("SELECT sum(frames_analysed) FROM window_aggregates").fetchone()
        done = con.execute("SELECT sum(frames_analysed) FROM runs WHERE status = 'done'").fetchone()
    assert statuses == ["done", "done", "interrupted", "interrupted"]
    assert stored == done and done is not None and done[0] > 0
