"""Shared fixtures: the real data lives in ../shared/datasets and is never copied into the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sanitary.storage.store import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
PETS = DATASETS / "pets2009-s2l1"
PETS_CAMERA = ROOT / "examples" / "pets2009-view001.toml"


@pytest.fixture(scope="session")
def pets() -> Path:
    if not (PETS / "frames").is_dir():
        pytest.skip(f"PETS 2009 S2L1 not found at {PETS} (see ../shared/datasets/README.md)")
    return PETS


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


def schema_v5_db(path: Path) -> duckdb.DuckDBPyConnection:
    """An open connection to a new database at schema v5 (before sites, views for officials and live units), as
    a site that has not upgraded yet holds."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    for migrate in MIGRATIONS[:5]:
        migrate(con)
    con.execute("INSERT INTO meta VALUES ('schema_version', '5')")
    return con
