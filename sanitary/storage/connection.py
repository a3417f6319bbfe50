"""Opening a sanitary DuckDB file: one policy for another process's lock, and one wording for every failure.

DuckDB lets one process write a file, or any number read it, never both. A live unit holds its file only while it
commits a window and a batch run holds it until it ends, so a reader or a second writer waits up to a deadline of
its own choosing, then gets `DatabaseLocked`, which callers tell apart by its type.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from sanitary.errors import SanitaryError

# Long enough to outlast a live unit's commit, short enough for someone waiting at a prompt.
WAIT_S = 5.0
POLL_S = 0.1

T = TypeVar("T")


class DatabaseLocked(SanitaryError):
    """Another process held the file for the whole wait."""

    def __init__(self, path: Path, wait_s: float) -> None:
        held = f" for over {wait_s:g} s" if wait_s > 0 else ""
        super().__init__(
            f"{path}: in use by another process{held} (a batch run holds it until it ends); wait for it to finish, "
            f"or work on a copy: cp {path} copy.duckdb"
        )
        self.path = path
        self.wait_s = wait_s


def connect(
    path: Path, *, read_only: bool = False, wait_s: float = 0.0, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection to `path`, waiting up to `wait_s` seconds for another process's lock (DatabaseLocked after).
    Read-only, `path` must exist: a mistyped --db of a command that only reads must not become an empty database
    shown as "nothing stored". `threads`: DuckDB's threads for it (default: one per core)."""
    if read_only:
        must_exist(path)
    if path.is_dir():
        raise SanitaryError(f"{path}: is a folder; pass --db a file path such as sanitary.duckdb")
    if not path.parent.exists():
        raise SanitaryError(f"{path}: folder {path.parent} does not exist; create it or choose another --db")
    config = {} if threads is None else {"threads": threads}
    return wait_for_lock(path, wait_s, lambda: duckdb.connect(str(path), read_only=read_only, config=config))


def must_exist(path: Path) -> None:
    """Refuse a database that is not there, for a command that reads or changes what a file already holds."""
    if not path.exists():
        raise SanitaryError(f"{path}: no such DuckDB file; pass --db the file sanitary run wrote")


def attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str, *, shown: Path, wait_s: float = 0.0) -> None:
    """`path` attached read-only to `con` as `alias`, under the same policy; errors name `shown`, the user's file."""
    wait_for_lock(shown, wait_s, lambda: con.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [str(path)]))


def wait_for_lock(
    path: Path,
    wait_s: float,
    open_: Callable[[], T],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`open_()`, tried again while another process holds `path` until `wait_s` seconds have passed; any other
    failure to open is one line naming `path`."""
    deadline = clock() + wait_s
    while True:
        try:
            return open_()
        except duckdb.IOException as exc:
            text = str(exc).splitlines()[0]
            # DuckDB says a lock is held only in its message: this is the one place that reads it.
            if "Could not set lock on file" not in text:
                raise SanitaryError(f"{path}: cannot open as a DuckDB database ({text})") from None
        except duckdb.ConnectionException:
            raise SanitaryError(
                f"{path}: this process already has the file open for writing; close that connection or work on a "
                f"copy: cp {path} copy.duckdb"
            ) from None
        except duckdb.Error as exc:
            raise SanitaryError(
                f"{path}: not a DuckDB database this version can open ({str(exc).splitlines()[0]}); choose another file"
            ) from None
        left = deadline - clock()
        if left <= 0:
            raise DatabaseLocked(path, wait_s)
        sleep(min(POLL_S, left))


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All of the block's writes or none of them."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
DISK_FULL_TEXTS = ("No space left on device", "File too large", "Disk quota exceeded")


def disk_is_full(exc: BaseException) -> bool:
    """Whether a write failed because its disk (or the process's file-size or quota limit) is full; DuckDB says so
    in its message only."""
    return getattr(exc, "errno", None) in DISK_FULL_ERRNOS or any(t in str(exc) for t in DISK_FULL_TEXTS)
