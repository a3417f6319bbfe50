"""The signage register and the refusal of footage no sign covered: exact spans, then the real command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from sanitary.storage.signage import Sign, uncovered
from sanitary.storage.store import Store
from tests.conftest import NO_HEADS, NO_SIGN, PETS_CAMERA, pets_camera, run_cli

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sign(posted: float, removed: float | None) -> Sign:
    return Sign("id", "s", "c", "Vous êtes comptés", "fr", "door", at(posted), None if removed is None else at(removed))


def test_uncovered_spans_are_exact() -> None:
    signs = [sign(10, 20), sign(15, 30), sign(40, None)]
    assert uncovered(signs, at(0), at(60)) == [(at(0), at(10)), (at(30), at(40))]
    assert uncovered(signs, at(12), at(28)) == []
    assert uncovered(signs, at(45), at(500)) == []
    assert uncovered([sign(10, 20)], at(20), at(25)) == [(at(20), at(25))]  # removed at 20: not covered from 20
    assert uncovered([], at(0), at(1)) == [(at(0), at(1))]


def test_sign_covers_from_posting_until_removal() -> None:
    s = sign(10, 20)
    assert [s.covers(at(m)) for m in (9.9, 10, 19.9, 20)] == [False, True, True, False]


def register(db: Path, *extra: str) -> str:
    result = run_cli(
        "signage", "add", "--db", str(db), "--camera", str(PETS_CAMERA), "--language", "en",
        "--text", "Camera counting people and masks; no image kept. Shake your head to opt out.",
        "--where", "plaza entrance, lamp post", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


def run_frames(pets: Path, db: Path, *extra: str) -> tuple[int, str]:
    result = run_cli(
        "run", str(pets / "frames" / "frame_000*.jpg"), "--camera", str(pets_camera(db.parent, NO_HEADS)),
        "--db", str(db), "--start", "2009-03-01T12:00:00", *extra,
    )  # fmt: skip
    return result.returncode, result.stderr


@pytest.mark.slow
def test_footage_no_sign_covered_is_refused_then_overridden_on_record(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    register(db, "--posted", "2009-03-01T09:00", "--removed", "2009-03-01T12:00:01")
    code, err = run_frames(pets, db)
    assert code == 1
    assert "no opt-out sign covered camera pets2009-view001 from 2009-03-01T12:00:01+00:00" in err
    assert "sanitary signage add" in err and "--without-signage" in err
    code, err = run_frames(pets, db, *NO_SIGN)
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT status, signage_override FROM runs ORDER BY started_at").fetchall()
        stored = con.execute("SELECT count(*) FROM window_aggregates").fetchone()
    assert runs[0] == ("refused", None)
    assert runs[1][0] == "done" and runs[1][1].startswith(NO_SIGN[1])
    assert "no sign from 2009-03-01T12:00:01+00:00" in runs[1][1]
    assert stored == (1,)


@pytest.mark.slow
def test_covered_footage_runs_without_override(pets: Path, tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    sign_id = register(db, "--posted", "2009-03-01T09:00")
    code, err = run_frames(pets, db)
    assert code == 0, err
    listed = run_cli("signage", "list", "--db", str(db))
    assert sign_id in listed.stdout and "still up" in listed.stdout
    removed = run_cli("signage", "remove", sign_id, "--db", str(db), "--at", "2009-03-02T18:00:00+00:00")
    assert removed.returncode == 0, removed.stderr
    listed = run_cli("signage", "list", "--db", str(db))
    assert "2009-03-02T18:00" in listed.stdout and "still up" not in listed.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status, signage_override FROM runs").fetchall() == [("done", None)]


@pytest.mark.slow
def test_bad_signage_input_is_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    result = run_cli(
        "signage", "add", "--db", str(db), "--camera", str(PETS_CAMERA), "--language", "en", "--text", "t",
        "--where", "w", "--posted", "2009-03-02T09:00", "--removed", "2009-03-01T09:00",
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "is not after --posted" in result.stderr
    assert not db.exists()
    result = run_cli("signage", "remove", "nosuch", "--db", str(db), "--at", "2009-03-02T09:00")
    assert result.returncode == 2 and "no such DuckDB file" in result.stderr and not db.exists()
    Store(db).close()
    result = run_cli("signage", "remove", "nosuch", "--db", str(db), "--at", "2009-03-02T09:00")
    assert result.returncode == 2 and "no sign 'nosuch'" in result.stderr
    result = run_cli("run", str(tmp_path), "--camera", str(PETS_CAMERA), "--db", str(db), "--without-signage", " ")
    assert result.returncode == 2 and "--without-signage needs a reason" in result.stderr
