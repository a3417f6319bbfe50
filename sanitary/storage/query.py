"""Read-only SQL over a sanitary DuckDB file, for officials: nothing a query says can change or leave the file.

The connection is read-only and has external access switched off and locked, so a query can neither write the
database nor read or write other files (COPY TO, ATTACH, read_csv). A live unit holds the file only while it
commits a window; a query that meets that lock waits a moment and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sanitary.errors import SanitaryError
from sanitary.storage.store import SCHEMA_VERSION, Store

LOCK_RETRIES = 20
LOCK_WAIT_S = 0.25


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]


def read_only(db: Path, sleep: Callable[[float], None] = time.sleep) -> duckdb.DuckDBPyConnection:
    """A read-only connection, the schema migrated first if the file is older than this sanitary."""
    if not db.is_file():
        raise SanitaryError(f"{db}: no such DuckDB file; pass --db the file sanitary run wrote")
    con = _connect(db, sleep)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is None:
        con.close()
        raise SanitaryError(f"{db}: not a sanitary database (no schema version); pass the file sanitary run wrote")
    if int(row[0]) > SCHEMA_VERSION:
        con.close()
        Store(db).close()  # refuses, saying which sanitary to upgrade to
    if int(row[0]) < SCHEMA_VERSION:
        con.close()
        Store(db).close()  # migrates, then the file is read as any other
        con = _connect(db, sleep)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _connect(db: Path, sleep: Callable[[float], None]) -> duckdb.DuckDBPyConnection:
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return duckdb.connect(str(db), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise SanitaryError(f"{db}: cannot open as a DuckDB database ({str(exc).splitlines()[0]})") from None
            if attempt < LOCK_RETRIES:
                sleep(LOCK_WAIT_S)
        except duckdb.Error as exc:
            raise SanitaryError(f"{db}: not a DuckDB database ({str(exc).splitlines()[0]})") from None
    raise SanitaryError(
        f"{db}: being written by another process for over {LOCK_RETRIES * LOCK_WAIT_S:.0f} s (a batch run holds it "
        f"until it ends); query a copy: cp {db} copy.duckdb && sanitary query ... --db copy.duckdb"
    )


def run_query(db: Path, sql: str) -> QueryResult:
    with read_only(db) as con:
        try:
            cursor = con.execute(sql)
        except duckdb.InvalidInputException as exc:
            if "read-only mode" in str(exc):
                raise SanitaryError(f"{db}: the query would change the database; sanitary query only reads") from None
            raise SanitaryError(f"query failed: {str(exc).splitlines()[0]}") from None
        except duckdb.PermissionException:
            raise SanitaryError(
                "the query reaches outside the database (a file or another database); sanitary query does not"
            ) from None
        except duckdb.Error as exc:
            raise SanitaryError(f"query failed: {str(exc).splitlines()[0]}") from None
        columns = tuple(d[0] for d in cursor.description or ())
        return QueryResult(columns, cursor.fetchall() if columns else [])
