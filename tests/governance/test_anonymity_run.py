"""Proof of anonymity on a real run: every file the process opens for writing, at the system-call level (so
writes from OpenCV, ONNX Runtime or DuckDB's C++ are seen too), is recorded with strace and then audited, the
DuckDB file included. The same recording of a run patched to leak crops, face boxes, embeddings and track ids
must fail the audit, or the proof proves nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sanitary.governance.audit import audit_paths
from tests.conftest import NO_SIGN, PETS_CAMERA, ROOT, SPARSE_HEADS, run_cli

WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")
OPEN_CALL = re.compile(r'^\d+\s+(?:open|openat|creat)\((?:(AT_FDCWD|\d+), )?"([^"]+)",\s*([A-Z_|]+)')

LEAKY = """
import json
import cv2
import numpy as np
from sanitary.runtime import analyser

analyse = analyser.FrameAnalyser.__call__

def leaking(self, frame):
    obs = analyse(self, frame)
    people = self.people(frame.image)
    if len(people):
        x1, y1, x2, y2 = people.boxes[0].astype(int)
        cv2.imwrite(f"crop_{frame.index}.jpg", frame.image[y1:y2, x1:x2])  # written from C++, not Python
        with open("debug.jsonl", "a") as log:
            log.write(json.dumps({"track_id": frame.index % 7, "face_box": [int(x1), int(y1), int(x2), int(y2)],
                                  "embedding": np.random.rand(128).round(4).tolist()}) + "\\n")
    return obs

analyser.FrameAnalyser.__call__ = leaking
from sanitary.cli.app import app
app()
"""


def written_files(trace: Path, cwd: Path) -> set[Path]:
    """Paths opened with a write or create flag (the call may have failed: a failed attempt is no leak, and the
    audit only reads what exists). A path relative to another open folder cannot be placed: it stays relative,
    so that the test's check that everything was written in the run's folder fails on it."""
    paths = set()
    for line in trace.read_text(errors="replace").splitlines():
        match = OPEN_CALL.match(line)
        if not match or not WRITE_FLAGS.search(match.group(3)) or match.group(2).startswith(("/dev/", "/proc/")):
            continue
        dirfd, path = match.group(1), Path(match.group(2))
        paths.add(path if path.is_absolute() or dirfd not in (None, "AT_FDCWD") else cwd / path)
    return paths


def recorded_run(pets: Path, work: Path, leaky: bool) -> tuple[set[Path], Path]:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (Debian package strace): the run's writes cannot be recorded")
    db = work / "agg.duckdb"
    camera = work / "cam.toml"
    rule = '[[alerts]]\nname = "crowded"\nmeasure = "occupancy"\nabove = 5\nspan_s = 10\n'
    camera.write_text(
        PETS_CAMERA.read_text() + f'\n{rule}\n[alert_sinks]\nstdout = false\nfile = "alerts.jsonl"\n' + SPARSE_HEADS
    )
    program = ["-c", LEAKY] if leaky else ["-m", "sanitary"]
    args = ["run", *NO_SIGN, str(pets / "pets09_s2l1_view001_480x360.avi"), "--camera", str(camera), "--db", str(db)]
    env = {**os.environ, "HOME": str(work), "TMPDIR": str(work), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    trace = work.parent / f"{work.name}.strace"
    result = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=open,openat,creat", "-o", str(trace), sys.executable, *program, *args,
         "--sample-fps", "1"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return written_files(trace, work), db


@pytest.mark.slow
def test_a_real_run_writes_nothing_personal(pets: Path, tmp_path: Path) -> None:
    work = tmp_path / "clean"
    work.mkdir()
    written, db = recorded_run(pets, work, leaky=False)
    # Nothing outside the run's own folder (its HOME and TMPDIR too), and there only the store and the alerts.
    assert all(p.resolve().is_relative_to(work.resolve()) for p in written), sorted(written)
    assert db in written and {p.name for p in written} <= {"agg.duckdb", "agg.duckdb.wal", "alerts.jsonl"}
    assert audit_paths([p for p in written if p.exists()] + [db]) == []
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM window_aggregates").fetchone() == (2,)
    # The same evidence, for an official, from the command line; and its failure on a leaked column.
    shown = run_cli("audit", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "market, k_min 5: 2 windows, 0 under k people (only their people counts kept)" in shown.stdout
    assert "done: 1 runs, 1 analysed without a sign on override" in shown.stdout
    with duckdb.connect(str(db)) as con:
        con.execute("ALTER TABLE window_aggregates ADD COLUMN track_ids BIGINT[]")
    leaked = run_cli("audit", "--db", str(db))
    assert leaked.returncode == 1 and "table window_aggregates, column track_ids" in leaked.stdout


@pytest.mark.slow
def test_the_same_recording_catches_a_leaking_run(pets: Path, tmp_path: Path) -> None:
    work = tmp_path / "leaky"
    work.mkdir()
    written, db = recorded_run(pets, work, leaky=True)
    leaks = audit_paths([p for p in written if p.exists()] + [db])
    found = {(leak.path.name.split("_")[0], leak.where.split(", ")[-1].split(" (")[0]) for leak in leaks}
    assert any(name == "crop" for name, _ in found), found  # crops written by OpenCV
    assert {("debug.jsonl", "key track_id"), ("debug.jsonl", "key face_box"), ("debug.jsonl", "key embedding")} <= found
