"""One lock-wait policy: another process's lock is waited out up to a deadline, then DatabaseLocked, told by type."""

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from sanitary.errors import SanitaryError
from sanitary.storage import connection
from sanitary.storage.connection import DatabaseLocked, connect, wait_for_lock
from sanitary.storage.schema import SCHEMA_VERSION
from sanitary.storage.shipping import export_parquet
from sanitary.storage.store import Store
from tests.conftest import hold_lock
from tests.storage.test_merge import analyse

LOCKED = duckdb.IOException('IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in python')


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "a.duckdb"
    Store(path).close()
    return path


def message(db: Path, wait_s: str) -> str:
    return (
        f"{db}: in use by another process for over {wait_s} s (a batch run holds it until it ends); wait for it to "
        f"finish, or work on a copy: cp {db} copy.duckdb"
    )


@pytest.mark.parametrize("read_only", [False, True])
def test_a_lock_held_past_the_deadline_is_database_locked(db: Path, read_only: bool) -> None:
    holder = hold_lock(db, 30.0)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLocked) as caught:
            connect(db, read_only=read_only, wait_s=0.6)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 0.6 <= waited < 3.0
    assert isinstance(caught.value, SanitaryError) and (caught.value.path, caught.value.wait_s) == (db, 0.6)
    assert str(caught.value) == message(db, "0.6")


def test_a_lock_released_in_time_is_waited_out(db: Path) -> None:
    holder = hold_lock(db, 1.0)
    started = time.monotonic()
    with connect(db, read_only=True, wait_s=10.0) as con:
        assert con.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
    assert 0.5 <= time.monotonic() - started < 10.0
    holder.wait(10)


def test_a_store_waits_only_when_asked(db: Path) -> None:
    holder = hold_lock(db, 1.0)
    with pytest.raises(DatabaseLocked) as caught:
        Store(db)
    assert str(caught.value) == (
        f"{db}: in use by another process (a batch run holds it until it ends); wait for it to finish, or work on a "
        f"copy: cp {db} copy.duckdb"
    )
    with Store(db, wait_s=10.0) as store:  # what a live unit opens its file with
        assert store.signs() == []
    holder.wait(10)


def test_an_export_waits_out_a_live_units_commit(tmp_path: Path) -> None:
    unit = tmp_path / "unit.duckdb"
    analyse(unit, "s1", "h1", 2)
    holder = hold_lock(unit, 1.0)
    assert export_parquet(unit, tmp_path / "out", None).windows == 3
    holder.wait(10)


def failing(exc: Exception) -> Callable[[], None]:
    def open_() -> None:
        raise exc

    return open_


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_tries_are_polled_up_to_the_deadline_exactly() -> None:
    clock = FakeClock()
    tries: list[float] = []

    def locked() -> None:
        tries.append(clock.now)
        raise LOCKED

    with pytest.raises(DatabaseLocked):
        wait_for_lock(Path("x.duckdb"), 0.25, locked, clock, clock.sleep)
    assert connection.POLL_S == 0.1
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.05])
    assert tries == pytest.approx([100.0, 100.1, 100.2, 100.25])


def test_no_wait_is_one_try_and_other_failures_are_not_waited_on() -> None:
    clock = FakeClock()
    with pytest.raises(DatabaseLocked):
        wait_for_lock(Path("x.duckdb"), 0.0, failing(LOCKED), clock, clock.sleep)
    broken = duckdb.IOException('IO Error: The file "x.duckdb" exists, but it is not a valid DuckDB database file!')
    with pytest.raises(SanitaryError) as caught:
        wait_for_lock(Path("x.duckdb"), 5.0, failing(broken), clock, clock.sleep)
    assert clock.sleeps == [] and not isinstance(caught.value, DatabaseLocked)
    assert str(caught.value) == (
        'x.duckdb: cannot open as a DuckDB database (IO Error: The file "x.duckdb" exists, but it is not a valid '
        "DuckDB database file!)"
    )


def test_a_read_only_open_never_creates_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "mistyped.duckdb"
    with pytest.raises(SanitaryError) as caught:
        connect(missing, read_only=True)
    assert str(caught.value) == f"{missing}: no such DuckDB file; pass --db the file sanitary run wrote"
    assert list(tmp_path.iterdir()) == []
