"""Shared fixtures: the real data lives in ../shared/datasets and is never copied into the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sanitary.storage.schema import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
PETS = DATASETS / "pets2009-s2l1"
PETS_CAMERA = ROOT / "examples" / "pets2009-view001.toml"
# The head model is three quarters of a PETS run's time: it runs every 2 s of a video, and on every image of a
# folder (a folder may hold unrelated photos). Tests whose subject is not the count (alerts, privacy, storage,
# clusters, live units) run it every 10 s of a video (SPARSE_HEADS), so that it stays on the path, or turn it off
# for folders of frames (NO_HEADS). The count with it is checked at the shipped cadence in
# tests/runtime/test_run_pets.py (test_whole_clip_at_one_frame_a_second).
SPARSE_HEADS = "\n[heads]\nevery_s = 10\n"
NO_HEADS = "\n[heads]\nenabled = false\n"


def pets_camera(folder: Path, heads: str, window_s: int = 60) -> Path:
    """The shipped PETS config with windows of `window_s` and `heads` (SPARSE_HEADS or NO_HEADS) appended, written
    in `folder`."""
    path = folder / "pets-heads.toml"
    path.write_text(PETS_CAMERA.read_text().replace("window_seconds = 60", f"window_seconds = {window_s}") + heads)
    return path


@pytest.fixture(scope="session")
def pets() -> Path:
    if not (PETS / "frames").is_dir():
        pytest.skip(f"PETS 2009 S2L1 not found at {PETS} (see ../shared/datasets/README.md)")
    return PETS


def still_camera(path: Path, camera_id: str = "c", site_id: str = "s") -> Path:
    """A camera config for a folder of still images, one a second from a fixed start."""
    path.write_text(
        f'camera_id = "{camera_id}"\nsite_id = "{site_id}"\nsite_kind = "market"\ntimezone = "UTC"\n'
        '[time]\nfps = 1\nstart = "2021-03-01T12:00:00"\n'
    )
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sanitary", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def pets_counts(pets: Path) -> dict[int, int]:
    """Ground-truth people per 0-based frame."""
    counts: dict[int, int] = {}
    for line in (pets / "gt_mot_480x360.txt").read_text().splitlines():
        frame = int(line.split(",")[0]) - 1
        counts[frame] = counts.get(frame, 0) + 1
    return counts


# The shared footage was recorded for research, with its people's consent, long before any sanitary sign.
NO_SIGN = ("--without-signage", "public research data set, recorded with consent")


def old_schema_db(path: Path, version: int) -> duckdb.DuckDBPyConnection:
    """An open connection to a new database at schema `version`, as the release that wrote that version made it."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    for migrate in MIGRATIONS[:version]:
        migrate(con)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(version)])
    return con


def hold_lock(db: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process holding `db` for writing for `seconds`, as a batch run or a committing live unit does."""
    code = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep({seconds})"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    return holder
