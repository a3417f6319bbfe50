"""DuckDB files sanitary did not make: refused in one line before anything is written, by writers and readers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from sanitary.errors import SanitaryError
from sanitary.storage.query import run_query
from sanitary.storage.schema import SCHEMA_VERSION
from sanitary.storage.store import Store
from tests.conftest import NO_SIGN, PETS_CAMERA, run_cli

FOREIGN = {
    "customers": ["CREATE TABLE customers (id INTEGER, name VARCHAR)", "INSERT INTO customers VALUES (1, 'Ada')"],
    "own runs": ["CREATE TABLE runs (id INTEGER, started VARCHAR)", "INSERT INTO runs VALUES (1, 'x')"],
    "version seven": [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        "INSERT INTO meta VALUES ('schema_version', 'seven')",
    ],
    "version -3": [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        "INSERT INTO meta VALUES ('schema_version', '-3')",
    ],
    "version 0 beside a table": [
        "CREATE TABLE meta (key VARCHAR, value VARCHAR)",
        "INSERT INTO meta VALUES ('schema_version', '0')",
        "CREATE TABLE customers (id INTEGER)",
    ],
    "meta of other columns": [
        "CREATE TABLE meta (name VARCHAR, version INTEGER, note VARCHAR)",
        "INSERT INTO meta VALUES ('schema_version', 7, 'x')",
    ],
    "meta of a number": [
        "CREATE TABLE meta (key VARCHAR, value INTEGER)",
        "INSERT INTO meta VALUES ('schema_version', 7)",
    ],
    "empty meta beside a table": [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        "CREATE TABLE customers (id INTEGER)",
    ],
    "a view only": ["CREATE VIEW answer AS SELECT 42 AS n"],
    "a table in another schema": ["CREATE SCHEMA crm", "CREATE TABLE crm.customers (id INTEGER)"],
}


def foreign_db(path: Path, statements: list[str]) -> Path:
    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return path


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's bytes and the names beside it (a write-ahead log would show up here)."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("case", FOREIGN)
def test_a_foreign_file_is_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    db = foreign_db(tmp_path / "theirs.duckdb", FOREIGN[case])
    before = fingerprint(db)
    with pytest.raises(SanitaryError) as refused:
        Store(db)
    message = str(refused.value)
    assert message.startswith(f"{db}: not a sanitary database") and "pass --db another file" in message
    assert "\n" not in message
    with pytest.raises(SanitaryError, match=r"theirs\.duckdb: not a sanitary database"):
        run_query(db, "SELECT 1")
    assert fingerprint(db) == before


def test_an_empty_file_and_sanitarys_own_are_taken(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with Store(empty) as store:
        assert store.con.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
    half = foreign_db(tmp_path / "half.duckdb", FOREIGN["empty meta beside a table"][:1])  # a first migration failed
    Store(half).close()
    # Sanitary's file with a table someone added beside its own stays sanitary's.
    with duckdb.connect(str(empty)) as con:
        con.execute("CREATE TABLE notes (text VARCHAR)")
    Store(empty).close()
    assert run_query(empty, "SELECT count(*) FROM runs").rows == [(0,)]


@pytest.mark.slow
def test_the_commands_refuse_a_foreign_file_in_one_line(tmp_path: Path) -> None:
    db = foreign_db(tmp_path / "crm.duckdb", FOREIGN["customers"])
    before = fingerprint(db)
    video = tmp_path / "nowhere.mp4"
    for args in [
        ("run", *NO_SIGN, str(video), "--camera", str(PETS_CAMERA), "--db", str(db)),
        ("query", "SELECT 1", "--db", str(db)),
        ("report", "--db", str(db), "--from", "2021-03-01", "--to", "2021-03-02", "--out", str(tmp_path / "r.html")),
        ("export", "--db", str(db), "--out", str(tmp_path / "shipped")),
        ("signage", "list", "--db", str(db)),
    ]:
        result = run_cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith(f"error: {db}: not a sanitary database"), (args, result.stderr)
    assert fingerprint(db) == before


@pytest.mark.slow
def test_a_bad_config_creates_no_database(tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    bad = tmp_path / "bad.toml"
    bad.write_text(PETS_CAMERA.read_text().replace("face_score", "face_scorr"))
    result = run_cli("run", *NO_SIGN, str(tmp_path / "a.mp4"), "--camera", str(bad), "--db", str(db))
    assert result.returncode == 2 and "face_scorr" in result.stderr
    assert not db.exists()
