"""Read-only SQL over a sanitary DuckDB file, for officials: nothing a query says can change or leave the file.

The connection is read-only and has external access switched off and locked, so a query can neither write the
database nor read or write other files (COPY TO, ATTACH, read_csv). A live unit holds the file only while it
commits a window; a query that meets that lock waits a moment and tries again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from sanitary.errors import SanitaryError
from sanitary.storage.connection import WAIT_S, connect
from sanitary.storage.schema import SCHEMA_VERSION, stored_version
from sanitary.storage.store import Store


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]


def read_only(db: Path, wait_s: float = WAIT_S) -> duckdb.DuckDBPyConnection:
    """A read-only connection, the schema migrated first if the file is older than this sanitary; another
    process's lock is waited out for `wait_s` seconds."""
    if not db.is_file():
        raise SanitaryError(f"{db}: no such DuckDB file; pass --db the file sanitary run wrote")
    con = connect(db, read_only=True, wait_s=wait_s)
    version = stored_version(con, db)
    if version is None:
        con.close()
        raise SanitaryError(f"{db}: not a sanitary database (no schema version); pass the file sanitary run wrote")
    if version != SCHEMA_VERSION:
        con.close()
        Store(db, wait_s=wait_s).close()  # migrates an older file, or refuses a newer one saying what to upgrade
        con = connect(db, read_only=True, wait_s=wait_s)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


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
        if cursor is None:  # only blanks, semicolons or comments
            raise SanitaryError('no SQL statement given; ask one, e.g. sanitary query "SELECT * FROM mask_rate_daily"')
        columns = tuple(d[0] for d in cursor.description or ())
        return QueryResult(columns, cursor.fetchall() if columns else [])


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
