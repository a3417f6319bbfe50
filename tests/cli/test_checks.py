"""The commands' numbers and times checked before anything is read (issue 16, point 9), and footage whose frames
do not fit the camera config failing its file with the reason (points 2 and 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from sanitary.cli.app import app
from sanitary.cli.checks import language_tag, local_time
from sanitary.errors import SanitaryError
from tests.conftest import NO_SIGN, PETS_CAMERA, run_cli, still_camera

CAMERA = 'camera_id = "c1"\nsite_id = "s1"\nsite_kind = "market"\n[time]\nfps = 5\n'


def clip(path: Path, width: int, height: int, frames: int = 3) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7, (width, height))
    for i in range(frames):
        writer.write(np.full((height, width, 3), 40 * i, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fps", "0", "--fps is 0; it must be a number at least 0.01 and at most 1000"),
        ("--fps", "-5", "--fps is -5; it must be a number at least 0.01"),
        ("--sample-fps", "0", "--sample-fps is 0; it must be a number above 0"),
        ("--sample-fps", "-1", "--sample-fps is -1; it must be a number above 0"),
        ("--sample-fps", "nan", "--sample-fps is nan"),
        ("--workers", "0", "--workers is 0; it must be a number at least 1"),
        ("--start", "", "--start: start time '' is not ISO 8601"),
        ("--start", "9999-01-01T00:00:00", "--start: 9999-01-01T00:00:00 is not between 1970 and 2100"),
    ],
)
def test_run_refuses_bad_numbers_before_reading_anything(tmp_path: Path, option: str, value: str, message: str) -> None:
    camera = tmp_path / "cam.toml"
    camera.write_text(CAMERA)
    db = tmp_path / "a.duckdb"
    args = ["run", str(tmp_path / "missing.avi"), "--camera", str(camera), "--db", str(db), option, value]
    result = CliRunner().invoke(app, [*args, "--start", "2021-03-01T08:00:00"] if option != "--start" else args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--from", "9999-01-01", "--to", "9999-01-02"], "--from: 9999-01-01 is not between 1970 and 2100"),
        (["export", "--since", "0001-01-01T00:00:00"], "--since: 0001-01-01T00:00:00 is not between 1970 and 2100"),
        (["export", "--since", ""], "--since: start time '' is not ISO 8601"),
        (["export", "--purge-days", "inf"], "--purge-days is inf; it must be a number at least 0"),
    ],
)
def test_officials_commands_refuse_times_and_numbers_out_of_range(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "a.duckdb"
    result = CliRunner().invoke(app, [*args, "--db", str(db), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not db.exists()


def test_frames_that_do_not_fit_the_config_fail_their_file_with_the_reason(tmp_path: Path) -> None:
    # The PETS config (480x360): the same shape at 240x180 is analysed, rescaled; a 1x1 video and a 320x180 one
    # fail, each with its run row `failed` and the reason.
    files = [
        clip(tmp_path / "tiny.avi", 1, 1),
        clip(tmp_path / "half.avi", 240, 180),
        clip(tmp_path / "wide.avi", 320, 180),
    ]
    db = tmp_path / "a.duckdb"
    result = CliRunner().invoke(
        app,
        ["run", *map(str, files), "--camera", str(PETS_CAMERA), "--db", str(db), "--without-signage", "test",
         "--start", "2009-03-01T12:00:00"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "error: the frames are 1x1 pixels, too small" in result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(
            con.execute(
                "SELECT regexp_extract(source_path, '[a-z]+\\.avi'), status || ': ' || coalesce(error, '') FROM runs"
            ).fetchall()
        )
    assert rows["half.avi"] == "done: "
    assert rows["tiny.avi"].startswith("failed: the frames are 1x1 pixels, too small to find anyone in")
    assert rows["wide.avi"].startswith(
        f"failed: {PETS_CAMERA}: calibration.image_size is 480x360 but the frames are 320x180"
    )


def test_a_file_name_time_outside_the_span_fails_that_file_at_planning(tmp_path: Path) -> None:
    from sanitary.config import load_camera
    from sanitary.runtime.runs import RunOptions, plan_batch

    camera = tmp_path / "cam.toml"
    camera.write_text(CAMERA + 'filename_pattern = "%Y%m%d_%H%M%S"\n')
    far = clip(tmp_path / "door_99990301_080000.avi", 64, 48)
    plan = plan_batch([str(far)], load_camera(camera), RunOptions())
    assert plan.files == []
    (failed,) = plan.set_aside
    assert failed.status == "failed"
    assert (
        failed.error
        == f"{far}: the time in the file name: 9999-03-01T08:00:00+00:00 is not between 1970 and 2100; check the year"
    )


PARIS = ZoneInfo("Europe/Paris")


def test_a_local_time_the_clocks_skipped_is_refused_naming_both_readings() -> None:
    with pytest.raises(SanitaryError) as caught:
        local_time("2021-03-28T02:30", PARIS, "--start")
    assert str(caught.value) == (
        "--start 2021-03-28T02:30 did not happen in Europe/Paris (the clocks skipped it): write it with its offset,"
        " 2021-03-28T02:30+01:00 (that is 2021-03-28T03:30+02:00) or 2021-03-28T02:30+02:00 (that is"
        " 2021-03-28T01:30+01:00)"
    )


def test_a_local_time_shown_twice_is_taken_the_first_time_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    taken = local_time("2021-10-31T02:30:00", PARIS, "--posted")
    assert taken.utcoffset() == timedelta(hours=2) and taken.astimezone(UTC) == datetime(
        2021, 10, 31, 0, 30, tzinfo=UTC
    )
    assert capsys.readouterr().err == (
        "warning: --posted 2021-10-31T02:30:00 happened twice in Europe/Paris (the clocks went back): taken as"
        " 2021-10-31T02:30+02:00, the first; the second is 2021-10-31T02:30+01:00; write the offset to choose\n"
    )
    # Written with its offset, or on an ordinary day, a time is taken as it is and nothing is said.
    assert local_time("2021-10-31T02:30+01:00", PARIS, "--posted") == datetime(2021, 10, 31, 1, 30, tzinfo=UTC)
    assert local_time("2021-10-30T02:30", PARIS, "--posted") == datetime(2021, 10, 30, 0, 30, tzinfo=UTC)
    assert capsys.readouterr().err == ""


def test_run_refuses_a_skipped_start_from_the_option_or_the_config(tmp_path: Path) -> None:
    camera = tmp_path / "cam.toml"
    camera.write_text(CAMERA.replace("[time]", 'timezone = "Europe/Paris"\n[time]') + 'start = "2021-03-28T02:10"\n')
    video = clip(tmp_path / "a.avi", 64, 48)
    db = tmp_path / "a.duckdb"
    for extra, option in (([], f"{camera}: time.start 2021-03-28T02:10"), (["--start", "2021-03-28T02:59"], "--start")):
        result = CliRunner().invoke(app, ["run", str(video), "--camera", str(camera), "--db", str(db), *extra])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {option}") and "did not happen in Europe/Paris" in result.stderr
        assert result.stderr.count("\n") == 1 and not db.exists()


@pytest.mark.parametrize("tag", ["fr", "fr-FR", "de-CH", "zh-Hant-TW", "es-419", "sr-Latn", "de-CH-1996"])
def test_language_tags_are_accepted(tag: str) -> None:
    language_tag(tag, "--language")


@pytest.mark.parametrize("value", ["French", "français", "f", "fr_FR", "fr-", "fr FR", "en-US; DROP", "x" * 300])
def test_signage_refuses_a_language_that_is_not_a_tag(tmp_path: Path, value: str) -> None:
    db = tmp_path / "a.duckdb"
    result = CliRunner().invoke(
        app,
        ["signage", "add", "--db", str(db), "--camera", str(PETS_CAMERA), "--text", "Vous êtes comptés",
         "--language", value, "--where", "door", "--posted", "2021-03-01T08:00"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --language {value!r} is not a language tag; write the language's code and, if it matters, its"
        " region: fr, fr-FR, de-CH, zh-Hant-TW\n"
    )
    assert not db.exists()


@pytest.mark.slow
def test_a_broken_mp4_is_one_line_without_the_decoders_own(tmp_path: Path) -> None:
    video = tmp_path / "cut.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    whole = video.read_bytes()
    video.write_bytes(whole[: len(whole) // 2])  # the index (moov atom) is written last: cut off
    result = run_cli("count", str(video))
    assert (result.returncode, result.stderr) == (
        2,
        f"error: {video}: cannot decode this video (corrupt, empty or not a video); re-export it or drop it\n",
    )
    camera = still_camera(tmp_path / "cam.toml")
    ran = run_cli("run", str(video), "--camera", str(camera), "--db", str(tmp_path / "a.duckdb"), *NO_SIGN)
    assert ran.returncode == 1 and "moov atom" not in ran.stderr and ran.stderr.count(f"error: {video}") == 1


def test_signage_times_are_checked_against_the_clocks_changes(tmp_path: Path) -> None:
    camera = tmp_path / "cam.toml"
    camera.write_text(CAMERA.replace("[time]", 'timezone = "Europe/Paris"\n[time]'))
    db = tmp_path / "a.duckdb"
    sign = ["signage", "add", "--db", str(db), "--camera", str(camera), "--text", "t", "--language", "fr",
            "--where", "door"]  # fmt: skip
    skipped = CliRunner().invoke(app, [*sign, "--posted", "2021-03-28T02:30"])
    assert skipped.exit_code == 2 and skipped.stderr.startswith("error: --posted 2021-03-28T02:30 did not happen")
    assert not db.exists()
    twice = CliRunner().invoke(app, [*sign, "--posted", "2021-03-01T08:00", "--removed", "2021-10-31T02:15"])
    assert twice.exit_code == 0, twice.output
    assert twice.stderr.startswith("warning: --removed 2021-10-31T02:15 happened twice in Europe/Paris")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT removed_at FROM signage").fetchone() == (datetime(2021, 10, 31, 0, 15, tzinfo=UTC),)
