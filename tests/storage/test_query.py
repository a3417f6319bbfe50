"""`sanitary query`: answers in three formats on a read-only connection that nothing can write through, waits out
a writer's lock, and migrates an older file first."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sanitary.errors import SanitaryError
from sanitary.storage import query
from sanitary.storage.connection import DatabaseLocked
from sanitary.storage.schema import SCHEMA_VERSION
from sanitary.storage.store import Store
from tests.conftest import hold_lock, old_schema_db, run_cli
from tests.storage.test_store import run_start, windows


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "a.duckdb"
    with Store(path) as store:
        run = store.begin_run(run_start("h1"))
        store.finish_run(run, windows("h1", 2), status="done", error=None, frames_analysed=150, footage=None)
    return path


SQL = "SELECT minute(window_start) AS minute, people_sum FROM window_aggregates ORDER BY 1"


def test_three_formats_give_the_same_answer(db: Path) -> None:
    as_csv = run_cli("query", SQL, "--db", str(db), "--format", "csv")
    as_json = run_cli("query", SQL, "--db", str(db), "--format", "json")
    as_table = run_cli("query", SQL, "--db", str(db))
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["minute", "people_sum"], ["0", "120"], ["1", "120"],
                                                             ["2", "60"]]  # fmt: skip
    assert json.loads(as_json.stdout) == [{"minute": m, "people_sum": n} for m, n in ((0, 120), (1, 120), (2, 60))]
    assert "people_sum" in as_table.stdout and "120" in as_table.stdout


@pytest.mark.parametrize(
    "sql, message",
    [
        ("DELETE FROM window_aggregates", "would change the database; sanitary query only reads"),
        ("DROP VIEW mask_rate_daily", "would change the database"),
        ("COPY window_aggregates TO 'out.csv'", "reaches outside the database"),
        ("ATTACH 'other.duckdb' AS o", "reaches outside the database"),
        ("SELECT * FROM read_csv('/etc/passwd')", "reaches outside the database"),
        ("SET enable_external_access = true", "query failed: Invalid Input Error: Cannot change configuration"),
        ("SELECT * FROM nothing_here", "query failed: Catalog Error"),
    ],
)
def test_nothing_writes_or_leaves_through_a_query(db: Path, sql: str, message: str) -> None:
    before = db.read_bytes()
    with pytest.raises(SanitaryError, match=message):
        query.run_query(db, sql)
    assert db.read_bytes() == before and not (db.parent / "out.csv").exists()


def test_a_query_waits_out_a_short_write(db: Path) -> None:
    holder = hold_lock(db, 1.0)
    started = time.monotonic()
    result = query.run_query(db, "SELECT count(*) FROM window_aggregates")
    assert result.rows == [(3,)] and time.monotonic() - started >= 0.5
    holder.wait(10)


def test_a_long_write_gets_a_clear_message(db: Path) -> None:
    holder = hold_lock(db, 30.0)
    try:
        with pytest.raises(DatabaseLocked) as caught:
            query.read_only(db, wait_s=0.5)
    finally:
        holder.kill()
    assert str(caught.value) == (
        f"{db}: in use by another process for over 0.5 s (a batch run holds it until it ends); wait for it to "
        f"finish, or work on a copy: cp {db} copy.duckdb"
    )


@pytest.mark.parametrize("version", [5, 7])
def test_an_older_file_is_migrated_before_it_is_read(tmp_path: Path, version: int) -> None:
    db = tmp_path / "old.duckdb"
    old_schema_db(db, version).close()
    result = query.run_query(db, "SELECT value, (SELECT count(*) FROM mask_rate_daily) FROM meta")
    assert result.rows == [(str(SCHEMA_VERSION), 0)]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.duckdb").write_text("not a database")
    for args, message in [
        (("SELECT 1", "--db", str(tmp_path / "none.duckdb")), "no such DuckDB file"),
        (("SELECT 1", "--db", str(tmp_path / "x.duckdb")), "cannot open as a DuckDB database"),
        (("SELECT 1", "--db", str(tmp_path / "x.duckdb"), "--format", "xml"), "--format 'xml' is unknown"),
    ]:
        result = run_cli("query", *args)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("sql", ["", " ", ";", "/* c */"])
def test_no_statement_is_one_line(db: Path, sql: str) -> None:
    with pytest.raises(SanitaryError, match="no SQL statement given; ask one"):
        query.run_query(db, sql)


def test_no_statement_on_the_command_line(db: Path) -> None:
    result = run_cli("query", ";", "--db", str(db))
    assert result.returncode == 2 and result.stderr.startswith("error: no SQL statement given"), result.stderr
    assert result.stderr.count("\n") == 1


def refuse(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


ODD = ("SELECT 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, -'inf'::DOUBLE AS ninf, 'nan'::FLOAT AS f,"
       " [1.5, 'nan'::DOUBLE] AS l, {'x': 'inf'::DOUBLE} AS s, MAP([DATE '2021-03-01'], ['inf'::DOUBLE]) AS m,"
       " TIMESTAMPTZ '2021-03-01 12:00:00+00' AS t, 1.50::DECIMAL(5, 2) AS d, '\\x00\\xff'::BLOB AS b,"
       " INTERVAL 1 DAY AS i, NULL AS n, 2.5 AS ok")  # fmt: skip


def test_json_is_always_valid_with_nan_and_infinity_as_null(db: Path) -> None:
    result = run_cli("query", ODD, "--db", str(db), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout, parse_constant=refuse) == [{
        "nan": None, "inf": None, "ninf": None, "f": None, "l": [1.5, None], "s": {"x": None},
        "m": {"2021-03-01": None}, "t": "2021-03-01 12:00:00+00:00", "d": 1.5, "b": "b'\\x00\\xff'",
        "i": "1 day, 0:00:00", "n": None, "ok": 2.5,
    }]  # fmt: skip


def test_csv_and_table_print_odd_values(db: Path) -> None:
    as_csv = run_cli("query", ODD, "--db", str(db), "--format", "csv")
    as_table = run_cli("query", ODD, "--db", str(db))
    assert as_csv.returncode == 0 and as_table.returncode == 0, as_csv.stderr + as_table.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout)))[1][:5] == ["nan", "inf", "-inf", "nan", "[1.5, nan]"]
    assert "│ nan │ inf │ -inf │" in as_table.stdout and "1.50" in as_table.stdout


ENDLESS = "SELECT count(*) FROM range(1000000000000)"  # hours of work


def test_a_query_is_stopped_at_its_time_limit(db: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SanitaryError, match=r"^query stopped after 0.5 s without an answer; narrow it"):
        query.run_query(db, ENDLESS, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert query.run_query(db, "SELECT 42").rows == [(42,)]  # the file is free again at once


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "1e12"])
def test_a_bad_timeout_is_refused(db: Path, timeout: str) -> None:
    result = run_cli("query", "SELECT 1", "--db", str(db), "--timeout", timeout)
    assert result.returncode == 2 and result.stderr.startswith(f"error: --timeout is {float(timeout):g}; it must be")


@pytest.mark.slow
def test_ctrl_c_stops_a_query_in_one_line(db: Path) -> None:
    # SIGINT at its default, as a terminal gives it: a suite started in the background by a non-interactive shell
    # (`pytest &` in a script) ignores SIGINT, and the query would inherit that and never see the Ctrl-C.
    process = subprocess.Popen(
        [sys.executable, "-m", "sanitary", "query", ENDLESS, "--db", str(db), "--timeout", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    # Started when the CPU shows the query at work, not before: Ctrl-C while Python is still importing is Python's.
    while time.monotonic() < deadline and _cpu_s(process.pid) < 2.0:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    try:
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert time.monotonic() - stopped < 5
    assert (process.returncode, out, err) == (
        2,
        "",
        "error: query stopped (Ctrl-C) before it answered; the file is unchanged\n",
    )


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
