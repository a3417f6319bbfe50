"""A folder with unreadable images is analysed without them: they are counted in its run and named on stderr."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.capture.test_sources import encoded
from tests.conftest import NO_SIGN, run_cli, still_camera


@pytest.mark.slow
def test_a_run_leaves_out_unreadable_images_and_says_so(tmp_path: Path) -> None:
    camera = still_camera(tmp_path / "cam.toml")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(10):
        (folder / f"{i}.jpg").write_bytes(encoded(".jpg", 20 * i))
    (folder / "2.jpg").write_bytes(b"not an image")
    (folder / "4.jpg").write_bytes(encoded(".jpg")[:-2])  # the end marker lost
    (folder / "6.jpg").write_bytes(b"")
    (folder / "8.png").write_bytes(encoded(".png")[:500])  # beside 8.jpg: 11 images, 7 readable
    db = tmp_path / "a.duckdb"
    result = run_cli("run", str(folder), "--camera", str(camera), "--db", str(db), "--sample-fps", "1", *NO_SIGN)
    assert result.returncode == 0, result.stderr
    assert (
        f"warning: {folder}: 4 image(s) left out, cut short or not images: 2.jpg, 4.jpg, 6.jpg and 1 more; "
        "the others were analysed\n"
    ) in result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT status, frames_analysed, frames_unreadable FROM runs").fetchall()
    assert runs == [("done", 7, 4)]
