"""User text (a camera id, a site id, a file name, a sign's words, a query's values and column names) is printed as
written by every command: Rich reads none of it as markup or emoji codes, so nothing vanishes and nothing crashes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import run_cli, still_camera

HOSTILE = ("x[/]y", "cam[door]", "[bold]b[/bold]", "[link=http://x]y[/link]", ":thumbs_up:")


@pytest.mark.slow
def test_every_command_prints_user_text_literally(tmp_path: Path) -> None:
    camera = still_camera(tmp_path / "cam.toml", "door[/]1", "[bold]site[/bold]")
    folder = tmp_path / "x[a]y"
    folder.mkdir()
    for i, name in enumerate(("cam[door]", "[bold]b", ":thumbs_up:")):
        cv2.imwrite(str(folder / f"{name}{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    db = tmp_path / "a.duckdb"

    ran = run_cli("run", str(folder), "--camera", str(camera), "--db", str(db), "--without-signage", HOSTILE[3])
    assert ran.returncode == 0, ran.stderr
    assert "door[/]1 " in ran.stderr and "│ x[a]y │ done" in ran.stderr  # the progress bar and the summary

    added = run_cli(
        "signage", "add", "--db", str(db), "--camera", str(camera), "--text", " ".join(HOSTILE),
        "--language", "en", "--where", HOSTILE[3], "--posted", "2021-03-01T09:00",  # a language is a tag
    )  # fmt: skip
    assert added.returncode == 0 and "for [bold]site[/bold]/door[/]1" in added.stdout, added.stderr
    listed = run_cli("signage", "list", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    for text in (" ".join(HOSTILE), "[bold]site[/bold]", "door[/]1", "cam[door]"):
        assert text in listed.stdout

    columns = ", ".join(f"'{text}' AS \"{text}\"" for text in HOSTILE)
    answered = run_cli("query", f"SELECT {columns}, site_id, camera_id FROM runs", "--db", str(db))
    assert answered.returncode == 0, answered.stderr
    for text in (*HOSTILE, "[bold]site[/bold]", "door[/]1"):
        assert answered.stdout.count(text) == 1 + (text in HOSTILE), text  # the header and the value

    alerts = run_cli("alerts", "list", "--db", str(db))
    audited = run_cli("audit", "--db", str(db))
    assert alerts.returncode == 0 and f"alerts in {db}" in alerts.stdout, alerts.stderr
    assert audited.returncode == 0 and "clean" in audited.stdout, audited.stderr
