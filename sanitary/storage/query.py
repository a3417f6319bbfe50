"""Read-only SQL over a sanitary DuckDB file, for officials: nothing a query says can change or leave the file.

The connection is read-only and has external access switched off and locked, so a query can neither write the
database nor read or write other files (COPY TO, ATTACH, read_csv). A live unit holds the file only while it
commits a window; a query that meets that lock waits a moment and tries again. A query runs for at most a time
limit, and Ctrl-C stops it.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from sanitary.errors import SanitaryError
from sanitary.storage.connection import WAIT_S, connect
from sanitary.storage.schema import SCHEMA_VERSION, stored_version

# Seconds a query may run by default: views answer in well under a second; a minute means a runaway query.
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]


def read_only(db: Path, wait_s: float = WAIT_S) -> duckdb.DuckDBPyConnection:
    """A read-only connection, the schema migrated first if the file is older than this sanitary; another
    process's lock is waited out for `wait_s` seconds."""
    con = connect(db, read_only=True, wait_s=wait_s)
    version = stored_version(con, db)
    if version is None:
        con.close()
        raise SanitaryError(f"{db}: not a sanitary database (no schema version); pass the file sanitary run wrote")
    if version != SCHEMA_VERSION:
        con.close()
        # Here only: the store brings the camera config and numpy, which answering a query does not need.
        from sanitary.storage.store import Store

        Store(db, wait_s=wait_s).close()  # migrates an older file, or refuses a newer one saying what to upgrade
        con = connect(db, read_only=True, wait_s=wait_s)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(db: Path, sql: str, timeout_s: float | None = None) -> QueryResult:
    """The answer to `sql`; a query still running after `timeout_s` seconds (None: TIMEOUT_S), or on Ctrl-C, is
    stopped."""
    limit = TIMEOUT_S if timeout_s is None else timeout_s
    with read_only(db) as con:
        outcome: list[QueryResult | Exception | None] = []
        done = threading.Event()
        threading.Thread(target=_answer, args=(con, sql, outcome, done), name="query", daemon=True).start()
        try:
            answered = done.wait(limit)
        except KeyboardInterrupt:
            _stop(con, done)
            raise SanitaryError("query stopped (Ctrl-C) before it answered; the file is unchanged") from None
        if not answered:
            _stop(con, done)
            raise SanitaryError(
                f"query stopped after {limit:g} s without an answer; narrow it (e.g. WHERE day = ...) or allow"
                " longer with --timeout SECONDS"
            )
    found = outcome[0]
    if isinstance(found, duckdb.Error):
        raise _failure(db, found)
    if isinstance(found, Exception):
        raise found
    if found is None:  # only blanks, semicolons or comments
        raise SanitaryError('no SQL statement given; ask one, e.g. sanitary query "SELECT * FROM mask_rate_daily"')
    return found


def _answer(
    con: duckdb.DuckDBPyConnection, sql: str, outcome: list[QueryResult | Exception | None], done: threading.Event
) -> None:
    # Off the main thread: DuckDB holds the thread that runs a query in C++ until it ends, where Python never sees
    # a Ctrl-C; the main thread waits on an event instead (Thread.join interrupted by Ctrl-C can take a running
    # thread for ended, before Python 3.12), and can stop the query.
    try:
        cursor = con.execute(sql)
        columns = tuple(d[0] for d in cursor.description or ()) if cursor is not None else ()
        outcome.append(QueryResult(columns, cursor.fetchall() if columns else []) if cursor is not None else None)
    except Exception as exc:  # handed to the main thread, which says what failed
        outcome.append(exc)
    finally:
        done.set()


def _stop(con: duckdb.DuckDBPyConnection, done: threading.Event) -> None:
    # An interrupt that comes before the query has begun is lost: asked again until the query has ended.
    while not done.wait(0.1):
        con.interrupt()


def _failure(db: Path, exc: duckdb.Error) -> SanitaryError:
    if isinstance(exc, duckdb.InvalidInputException) and "read-only mode" in str(exc):
        return SanitaryError(f"{db}: the query would change the database; sanitary query only reads")
    if isinstance(exc, duckdb.PermissionException):
        return SanitaryError(
            "the query reaches outside the database (a file or another database); sanitary query does not"
        )
    return SanitaryError(f"query failed: {str(exc).splitlines()[0]}")


def as_json(result: QueryResult) -> str:
    """The answer as a JSON array of objects, one per row: always valid JSON, so NaN and infinities (which JSON
    cannot write) become null."""
    records = [{c: json_value(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows]
    return json.dumps(records, indent=1, allow_nan=False)


def json_value(value: object) -> object:
    """A DuckDB value as plain JSON: numbers, text, booleans and null as they are (a float that is not finite as
    null, a decimal as the number JSON readers take it for), lists and structs as arrays and objects (map keys as
    text), anything else (times, intervals, blobs, UUIDs) as its text."""
    if isinstance(value, float | Decimal):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)
