"""Run bookkeeping: a file still being written is never stored done, a full disk is one line saying so, the run
summary shows no mask rate the store suppresses."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from sanitary.analytics.mask_rate import mask_shares
from sanitary.analytics.observations import MaskCounts
from sanitary.analytics.privacy import apply_profile
from sanitary.analytics.windows import WindowAggregate, WindowKey
from sanitary.capture import sources
from sanitary.config import PrivacyConfig, load_camera
from sanitary.perception.mask_card import load_card
from sanitary.runtime import batch
from sanitary.runtime.batch import FileResult, run_batch
from sanitary.runtime.runs import FileJob, RunOptions, failure, outcome_of, plan_batch, stored_batch
from sanitary.storage.store import Store
from tests.conftest import NO_SIGN, ROOT, run_cli
from tests.runtime.test_batch import camera, video

T0 = datetime(2021, 3, 1, 7, tzinfo=UTC)
OPTIONS = RunOptions(signage_override="test footage")
GROWING = "still being written (its size or time changed while it was read); run again when the recorder has closed it"


def no_analysis(job: FileJob, on_frames: Any = None) -> FileResult:
    return FileResult(job, [], 0, 20, 2.0)


def runs(db: Path) -> list[tuple[str, str | None]]:
    with Store(db) as store:
        return store.con.execute("SELECT status, error FROM runs ORDER BY started_at").fetchall()


def test_a_file_that_grows_after_planning_is_refused_then_done_once_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    clip = video(tmp_path / "recording.avi", 20)
    plan = plan_batch([clip], cam, OPTIONS)
    video(tmp_path / "recording.avi", 40)  # the recorder goes on writing while the batch runs
    monkeypatch.setattr(batch, "analyse_file", no_analysis)
    db = tmp_path / "runs.duckdb"
    outcomes = run_batch(plan, db, OPTIONS).outcomes
    growing = f"{clip}: {GROWING}"
    assert [(o.status, o.error) for o in outcomes] == [("failed", growing)]
    assert runs(db) == [("failed", growing)]
    # Closed now: the next run analyses it (nothing was stored done under its partial content).
    assert [o.status for o in run_batch(plan_batch([clip], cam, OPTIONS), db, OPTIONS).outcomes] == ["done"]


def test_a_file_that_grows_while_it_is_hashed_is_set_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    clip = video(tmp_path / "recording.avi", 20)
    hashed = sources.Source.content_hash

    def hash_while_recording(self: sources.Source) -> str:
        digest = hashed(self)
        with open(clip, "ab") as fh:  # the recorder appends as the hash reaches the end
            fh.write(b"\0" * 512)
        return digest

    monkeypatch.setattr(sources.Source, "content_hash", hash_while_recording)
    plan = plan_batch([clip], cam, OPTIONS)
    assert plan.files == [] and [(a.status, a.error.split(": ")[1]) for a in plan.set_aside] == [("failed", GROWING)]


def test_a_batch_stores_through_duckdb_on_one_thread(tmp_path: Path) -> None:
    """A run writes a few rows a file: DuckDB's worker thread would add no speed, only its malloc arena beside the
    pipeline's memory and a thread competing with the models."""
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    plan = plan_batch([video(tmp_path / "a.avi", 20)], cam, OPTIONS)
    seen: list[str] = []

    def drive(store: Store) -> list[Any]:
        seen.append(store.con.execute("SELECT current_setting('threads')").fetchone()[0])
        return []

    stored_batch(plan, tmp_path / "runs.duckdb", drive, print)
    assert seen == [1]


DISK_FULL = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) rather than killing us
from sanitary.storage.store import Store
with Store(Path(sys.argv[1])):
    pass  # the database exists: the disk fills up from here on
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
from sanitary.cli.app import app
app(sys.argv[3:], prog_name="sanitary")
"""


@pytest.mark.slow
@pytest.mark.parametrize("left", [0, 4096])
def test_a_full_disk_during_run_is_one_line_saying_so(tmp_path: Path, left: int) -> None:
    """With no byte left, `begin_run` fails; with 4 KB, the file's windows do: either way one line naming the disk."""
    cam = camera(tmp_path, 'start = "2021-03-01T08:00:00"\n')
    clip = str(tmp_path / "a.avi")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))  # big enough to analyse
    for i in range(20):
        writer.write(np.full((64, 96, 3), i, np.uint8))
    writer.release()
    db = tmp_path / "runs.duckdb"
    args = [str(db), str(left), "run", *NO_SIGN, clip, "--camera", str(cam), "--db", str(db)]
    result = subprocess.run([sys.executable, "-c", DISK_FULL, *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)  # fmt: skip
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {db}: the disk is full (writing in {tmp_path} failed: "), last
    assert "fault of sanitary's" not in result.stderr


def window(people: int, masks: MaskCounts) -> WindowAggregate:
    confusion = load_card().confusion
    return WindowAggregate(
        key=WindowKey("s", "c", "h", T0),
        window_end=T0 + timedelta(seconds=60),
        frames_analysed=10,
        covered_s=60.0,
        people_sum=10 * people,
        people_max=people,
        masks=masks,
        mask_shares=mask_shares(masks.classified, confusion),
        distancing=None,
        zones=(),
    )


def test_the_run_summary_shows_no_mask_rate_the_store_suppresses() -> None:
    """k_min 5: a window of 4 people stores no mask rate, so the summary shows none for it either."""
    few, many = window(4, MaskCounts(1, 0, 0, 0)), window(6, MaskCounts(3, 2, 0, 0))
    privacy = PrivacyConfig(k_min=5)
    alone = outcome_of("a.avi", "done", apply_profile([few], privacy), None, ())
    assert alone.mask is None and alone.windows_under_k == 1
    both = outcome_of("a.avi", "done", apply_profile([few, many], privacy), None, ())
    assert both.mask is not None and both.mask.n == 5 and both.windows_under_k == 1
    assert both.faces == 6  # faces are counted, not read: the count stays


@pytest.mark.slow
def test_a_unit_id_too_long_for_a_file_name_is_refused_before_any_frame(tmp_path: Path) -> None:
    """Export names files after the unit id: one of 300 characters was accepted by `run`, then export failed."""
    clip = video(tmp_path / "a.avi", 20)
    long = "u" * 300
    config = camera(tmp_path, 'start = "2021-03-01T08:00:00"\n')
    db = tmp_path / "runs.duckdb"
    in_config = tmp_path / "unit.toml"
    in_config.write_text(f'unit_id = "{long}"\n' + config.read_text())
    rule = "a unit id is printable text of 1 to 64 bytes in UTF-8 (it names export files), e.g. 'bus-12'"
    result = run_cli("run", *NO_SIGN, clip, "--camera", str(in_config), "--db", str(db))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"error: {in_config}: unit_id: {rule}"]
    env = {**os.environ, "SANITARY_UNIT_ID": long}
    args = ["run", *NO_SIGN, clip, "--camera", str(config), "--db", str(db)]
    result = subprocess.run([sys.executable, "-m", "sanitary", *args], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=300)  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == f"error: SANITARY_UNIT_ID: {rule}"
    assert runs(db) == []  # nothing begun


def test_a_recording_is_counted_once_whichever_of_its_cut_and_whole_exports_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cut export then the whole one: the whole replaces the cut. The whole then a cut: the cut stores nothing."""
    cam = load_camera(camera(tmp_path, 'start = "2021-03-01T08:00:00"\n'))
    whole, cut = video(tmp_path / "whole.avi", 40), video(tmp_path / "cut.avi", 17)

    def analyse(job: FileJob, on_frames: Any = None) -> FileResult:
        if job.spec == cut:
            return FileResult(job, [], 0, 17, 1.7, error=f"{cut}: cut short at frame 17; re-export the file")
        return FileResult(job, [], 0, 40, 4.0)

    monkeypatch.setattr(batch, "analyse_file", analyse)

    def run(spec: str, db: Path) -> tuple[str, str | None]:
        (outcome,) = run_batch(plan_batch([spec], cam, OPTIONS), db, OPTIONS).outcomes
        return outcome.status, outcome.error

    first_cut = tmp_path / "cut-first.duckdb"
    assert run(cut, first_cut)[0] == "truncated"
    assert run(whole, first_cut) == ("done", None)
    assert [status for status, _ in runs(first_cut)] == ["replaced", "done"]
    first_whole = tmp_path / "whole-first.duckdb"
    assert run(whole, first_whole) == ("done", None)
    refused = (
        f"{cut}: cut short, and {whole}, the same camera's recording from the same start and longer, is stored "
        "already; nothing of this copy is stored (it would count the footage twice)"
    )
    assert run(cut, first_whole) == ("failed", refused)
    assert runs(first_whole) == [("done", None), ("failed", refused)]


def test_memory_running_out_outside_a_model_names_the_settings_not_a_fault() -> None:
    assert failure("a.avi", MemoryError()) == (
        "a.avi: out of memory while analysing; lower heads.max_pixels, set heads.enabled = false, or free memory"
    )
