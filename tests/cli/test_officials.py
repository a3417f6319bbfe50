"""What officials and operators see (issue 30, points 5 and 14): stored text reaches the terminal with its control
and bidi characters shown by their codes, never obeyed nor dropped; a command that reads (or changes a record of) a
--db that does not exist refuses it instead of creating an empty database and showing it as "nothing stored"."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sanitary.reporting.visible import visible
from sanitary.storage.signage import Sign
from sanitary.storage.store import Store
from tests.conftest import run_cli

HOSTILE = "hi\x1b]0;PWNED\x07\x1b[2J"  # retitles the terminal window, then clears the screen
REVERSED = "mask\u202erate 100%"  # shows as "mask%001 etar"
SHOWN = "hi\\x1b]0;PWNED\\x07\\x1b[2J"


def test_visible_shows_each_hidden_character_by_its_code() -> None:
    assert visible(HOSTILE) == SHOWN
    assert visible(REVERSED) == "mask<U+202E>rate 100%"
    assert visible("a\nb\rc\td\x7fe\x9bf") == "a\\x0ab\\x0dc\\x09d\\x7fe\\x9bf"
    bidi = "\u200e\u200f\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u061c\ufeff\u2028\U000e0041"
    assert visible(bidi) == "".join(f"<U+{ord(c):04X}>" for c in bidi)
    # Text as people write it stays as it is: accents, other scripts, joiners in Persian and in emoji.
    written = "Vous êtes comptés — 您正在被计数 — می\u200cخواهم — 👩\u200d👩\u200d👧"  # noqa: RUF001
    assert visible(written) == written


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "unit.duckdb"
    posted = datetime(2021, 3, 1, 8, tzinfo=UTC)
    with Store(path) as store:
        store.signage.add(Sign("s1", "site", "cam", HOSTILE, "fr", REVERSED, posted))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("signage", "list"),
        ("audit",),
        ("query", 'SELECT sign_id, text, location AS "col\x1b[2J" FROM signage'),
    ],
)
def test_stored_text_reaches_the_terminal_visible(db: Path, command: tuple[str, ...]) -> None:
    result = run_cli(*command, "--db", str(db))
    shown = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert [c for c in ("\x1b", "\x07", "\u202e") if c in shown] == []
    assert SHOWN in shown.replace("\n", "")  # a table may wrap a long cell: no character is lost


def test_csv_is_data_when_piped_and_text_on_a_terminal(db: Path) -> None:
    # Piped, CSV is data for a program: the value as stored. On a terminal it is shown like every other output.
    sql = "SELECT text FROM signage"
    piped = run_cli("query", sql, "--db", str(db), "--format", "csv")
    assert piped.stdout == f"text\n{HOSTILE}\n"
    main, secondary = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "sanitary", "query", sql, "--db", str(db), "--format", "csv"],
                          stdout=secondary, stderr=subprocess.PIPE) as process:  # fmt: skip
        os.close(secondary)
        seen = b""
        while chunk := _read(main):
            seen += chunk
        process.wait(timeout=60)
    os.close(main)
    assert seen.decode().replace("\r\n", "\n") == f"text\n{SHOWN}\n"
    assert (
        run_cli("query", sql, "--db", str(db), "--format", "json").stdout
        == '[\n {\n  "text": "hi\\u001b]0;PWNED\\u0007\\u001b[2J"\n }\n]\n'
    )


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the other end closed
        return b""


@pytest.mark.parametrize(
    "command",
    [
        ("alerts", "list"),
        ("alerts", "list", "--json"),
        ("signage", "list"),
        ("report", "--from", "2021-03-01", "--to", "2021-03-01", "--out", "{tmp}/r.html"),
        ("export", "--out", "{tmp}/out"),
        ("audit",),
        ("query", "SELECT 1"),
        ("signage", "remove", "abc", "--at", "2021-03-01T08:00:00Z"),  # changes a record, so needs it there
    ],
)
def test_a_command_on_what_is_stored_creates_no_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    mistyped = tmp_path / "unti.duckdb"
    result = run_cli(*(a.format(tmp=tmp_path) for a in command), "--db", str(mistyped))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {mistyped}: no such DuckDB file; pass --db the ")
    assert result.stderr.count("\n") == 1
    assert not mistyped.exists() and not (tmp_path / "r.html").exists()
