"""Privacy masks, compliance profiles and the minimum cell size: exact numbers, then a real run per profile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from sanitary.analytics.mask_rate import mask_shares
from sanitary.analytics.observations import MaskCounts
from sanitary.analytics.privacy import apply_profile, suppress_stored, transport_stored
from sanitary.analytics.windows import (
    DistancingWindow,
    LineWindow,
    PersonWindow,
    WindowAggregate,
    WindowKey,
    ZoneWindow,
)
from sanitary.capture.privacy_masks import PrivacyMasker
from sanitary.config import FR_TRANSPORT, PrivacyConfig, PrivacyMask, load_camera
from sanitary.errors import SanitaryError
from sanitary.storage.store import RunStart, Store
from tests.conftest import NO_SIGN, PETS_CAMERA, SPARSE_HEADS, run_cli

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
CONFUSION = np.diag([50, 50, 50])


def window(distinct: int | None, people_max: int = 4) -> WindowAggregate:
    masks = MaskCounts(6, 2, 1, 3)
    persons = None
    if distinct is not None:
        votes = MaskCounts(2, 1, 0, 1)
        persons = PersonWindow(distinct, votes, mask_shares(votes.classified, CONFUSION), (1, 2, 0), 3)
    return WindowAggregate(
        key=WindowKey("s", "c", "h", T0),
        window_end=T0,
        frames_analysed=10,
        covered_s=60.0,
        people_sum=30,
        people_max=people_max,
        masks=masks,
        mask_shares=mask_shares(masks.classified, CONFUSION),
        distancing=DistancingWindow(2, 3, 4, 0.5, 1.5),
        zones=(ZoneWindow("door", 4.0, 12, 3),),
        persons=persons,
        lines=(LineWindow("gate", 1, 0),),
        opt_outs=1,
    )


def test_privacy_mask_blanks_exactly_the_polygon() -> None:
    image = np.full((10, 12, 3), 200, np.uint8)
    blank = PrivacyMasker([PrivacyMask([(2.0, 1.0), (5.0, 1.0), (5.0, 3.0), (2.0, 3.0)])])
    out = blank(image)
    assert out[1:4, 2:6].min() == out[1:4, 2:6].max() == 128  # the rectangle, edges included
    assert out.sum() == image.sum() - 12 * 3 * (200 - 128)  # and nothing else
    assert image.min() == 200  # the caller's frame is left as it was


def test_no_privacy_mask_passes_the_frame_through() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    assert PrivacyMasker([])(image) is image


def test_market_profile_keeps_every_measure_above_k() -> None:
    (w,) = apply_profile([window(distinct=7)], PrivacyConfig(k_min=5))
    assert w == window(distinct=7)


def test_small_windows_keep_only_their_people_counts() -> None:
    (w,) = apply_profile([window(distinct=4, people_max=9)], PrivacyConfig(k_min=5))
    assert w.mask_suppressed and w.mask_shares is None
    assert w.persons is not None and w.persons.mask_shares is None and w.persons.people_distinct == 4
    assert (w.frames_analysed, w.covered_s, w.people_sum, w.people_max) == (10, 60.0, 30, 9)
    # Each of these told what one of four people did: their dwell time, crossing, opt-out, contact, distance, zone.
    assert w.persons.dwell_counts == (None, None, None) and w.persons.close_contacts is None
    assert w.lines == (LineWindow("gate", None, None),) and w.opt_outs is None
    assert w.distancing is None and w.zones == (ZoneWindow("door", 4.0, None, None),)


def test_without_tracking_k_is_judged_on_the_most_people_seen_at_once() -> None:
    assert apply_profile([window(None, people_max=4)], PrivacyConfig(k_min=5))[0].mask_suppressed
    assert not apply_profile([window(None, people_max=5)], PrivacyConfig(k_min=5))[0].mask_suppressed


def test_transport_profile_stores_only_counts_and_mask_rates() -> None:
    (w,) = apply_profile([window(distinct=8)], PrivacyConfig(profile=FR_TRANSPORT))
    assert w.distancing is None and w.zones == ()
    assert w.persons is not None and w.persons.dwell_counts == () and w.persons.close_contacts is None
    assert w.persons.people_distinct == 8 and w.mask_shares is not None and not w.mask_suppressed


def test_store_writes_nothing_but_people_counts_of_a_suppressed_window(tmp_path: Path) -> None:
    windows = apply_profile([window(distinct=3)], PrivacyConfig(k_min=5))
    with Store(tmp_path / "a.duckdb") as store:
        run = store.begin_run(RunStart("h", "/f.mp4", "c", "s", "u", "p", {}))
        store.finish_run(run, windows, status="done", error=None, frames_analysed=10, footage=None,
                         dwell_bins_s=(10.0, 30.0), privacy=PrivacyConfig(k_min=5))  # fmt: skip
        con = store.con
        row = con.execute(
            "SELECT people_max, people_distinct, faces_sum, faces_with_mask, faces_mask_unknown, mask_rate,"
            " persons_with_mask, person_mask_rate, mask_suppressed, privacy_profile, k_min, close_pairs_sum,"
            " nearest_min_m, close_contacts, opt_outs FROM window_aggregates"
        ).fetchone()
        assert row == (4, 3, 12, None, None, None, None, None, True, "market", 5, None, None, None, None)
        # The rows stay, their counts NULL (never 0): suppressed, not unconfigured nor empty.
        assert con.execute("SELECT bin_low_s, people FROM dwell_windows ORDER BY 1").fetchall() == [
            (0.0, None), (10.0, None), (30.0, None)
        ]  # fmt: skip
        assert con.execute("SELECT line, people_in, people_out FROM line_windows").fetchall() == [("gate", None, None)]
        assert con.execute("SELECT zone, frames_analysed, people_sum, people_max FROM zone_windows").fetchall() == [
            ("door", 10, None, None)
        ]
        assert con.execute("SELECT occupancy_mean, occupancy_max FROM zone_occupancy").fetchall() == [(None, None)]
        assert con.execute("SELECT opt_outs, mask_rate, mask_rate_n FROM camera_windows").fetchall() == [
            (None, None, None)
        ]


def test_store_keeps_every_measure_of_a_window_of_k_people(tmp_path: Path) -> None:
    with Store(tmp_path / "a.duckdb") as store:
        run = store.begin_run(RunStart("h", "/f.mp4", "c", "s", "u", "p", {}))
        store.finish_run(run, apply_profile([window(distinct=5)], PrivacyConfig(k_min=5)), status="done",
                         error=None, frames_analysed=10, footage=None, dwell_bins_s=(10.0, 30.0),
                         privacy=PrivacyConfig(k_min=5))  # fmt: skip
        con = store.con
        assert con.execute("SELECT close_pairs_sum, close_contacts, opt_outs FROM window_aggregates").fetchall() == [
            (3, 3, 1)
        ]
        assert con.execute("SELECT people FROM dwell_windows ORDER BY bin_low_s").fetchall() == [(1,), (2,), (0,)]
        assert con.execute("SELECT people_in, people_out FROM line_windows").fetchall() == [(1, 0)]
        assert con.execute("SELECT people_sum, people_max FROM zone_windows").fetchall() == [(12, 3)]


def stored(path: Path, windows: list[WindowAggregate], privacy: PrivacyConfig) -> dict[str, list[tuple]]:
    """The windows as the store writes them (the profile and k recorded beside them), table by table."""
    with Store(path) as store:
        run = store.begin_run(RunStart("h", "/f.mp4", "c", "s", "u", "p", {}))
        store.finish_run(run, windows, status="done", error=None, frames_analysed=10, footage=None,
                         dwell_bins_s=(10.0, 30.0), privacy=privacy)  # fmt: skip
    return tables(path)


def tables(path: Path) -> dict[str, list[tuple]]:
    names = ("window_aggregates", "zone_windows", "dwell_windows", "line_windows")
    with duckdb.connect(str(path), read_only=True) as con:
        found = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in names}
    # A run's id is new each time; the aggregates row holds it (7th column).
    found["window_aggregates"] = [row[:6] + row[7:] for row in found["window_aggregates"]]
    return found


@pytest.mark.parametrize(
    ("distinct", "privacy", "rule"),
    [
        (3, PrivacyConfig(k_min=5), suppress_stored),
        (None, PrivacyConfig(k_min=5), suppress_stored),
        (8, PrivacyConfig(profile=FR_TRANSPORT, k_min=5), transport_stored),
    ],
)
def test_the_stored_form_of_the_rules_does_exactly_what_the_python_one_does(
    tmp_path: Path, distinct: int | None, privacy: PrivacyConfig, rule: Callable[[str], list[str]]
) -> None:
    """A central store applies k (judged on distinct people or the most seen at once) and the transport profile to
    stored rows: the rows it leaves are those a unit applying the rule before storing writes, column for column."""
    window_ = window(distinct=distinct)
    expected = stored(tmp_path / "at-source.duckdb", apply_profile([window_], privacy), privacy)
    unapplied = stored(tmp_path / "central.duckdb", [window_], PrivacyConfig(k_min=5))
    assert unapplied != expected
    with duckdb.connect(str(tmp_path / "central.duckdb")) as con:
        for statement in rule("SELECT site_id, camera_id, source, window_start FROM window_aggregates"):
            con.execute(statement)
    assert tables(tmp_path / "central.duckdb") == expected


def transport_camera(tmp_path: Path, k_min: int) -> Path:
    text = PETS_CAMERA.read_text()
    text = text.replace('site_kind = "market"', 'site_kind = "bus"').replace(
        "window_seconds = 60", "window_seconds = 1200"
    )
    # No zones under the decree; the counting line stays.
    text = text[: text.index("# A 10 m x 10 m square")] + text[text.index("# A counting line") :]
    path = tmp_path / "bus.toml"
    path.write_text(text + f'\n[privacy]\nprofile = "{FR_TRANSPORT}"\nk_min = {k_min}\n' + SPARSE_HEADS)
    return path


def test_transport_profile_refuses_settings_that_store_more(tmp_path: Path) -> None:
    path = transport_camera(tmp_path, 5)
    load_camera(path)
    for old, new, message in [
        ("window_seconds = 1200", "window_seconds = 60", "set time.window_seconds = 1200"),
        ('site_kind = "bus"', 'site_kind = "market"', "site_kind must be 'bus'"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(path.read_text().replace(old, new))
        with pytest.raises(SanitaryError, match=message):
            load_camera(bad)
    zoned = tmp_path / "zoned.toml"
    zoned.write_text(path.read_text() + '\n[[zones]]\nname = "door"\npolygon = [[0, 0], [1, 0], [1, 1]]\n')
    with pytest.raises(SanitaryError, match=r"remove the \[\[zones\]\]"):
        load_camera(zoned)


@pytest.mark.slow
@pytest.mark.parametrize("k_min, suppressed", [(5, False), (1000, True)])
def test_transport_profile_on_real_footage(pets: Path, tmp_path: Path, k_min: int, suppressed: bool) -> None:
    db = tmp_path / "bus.duckdb"
    avi = pets / "pets09_s2l1_view001_480x360.avi"
    camera = transport_camera(tmp_path, k_min)
    result = run_cli("run", *NO_SIGN, str(avi), "--camera", str(camera), "--db", str(db), "--sample-fps", "1")
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT people_distinct, close_pairs_sum, close_contacts,"
            " faces_with_mask + faces_without_mask + faces_mask_incorrect, mask_rate, mask_suppressed, privacy_profile"
            " FROM window_aggregates"
        ).fetchall()
        extra = con.execute("SELECT (SELECT count(*) FROM zone_windows) + (SELECT count(*) FROM dwell_windows)")
        assert extra.fetchone() == (0,)
        lines = con.execute("SELECT count(*), sum(people_in + people_out) FROM line_windows").fetchone()
    (distinct, close, contacts, n, rate, is_suppressed, profile) = rows[0]
    assert len(rows) == 1 and profile == FR_TRANSPORT  # 114 s of footage, one 20-minute window
    assert distinct >= 5 and close is None and contacts is None
    # In and out counts stay under the decree, unless the window had fewer than k people: then its row holds NULL.
    assert lines is not None and lines[0] == 1 and (lines[1] is None if suppressed else lines[1] > 0)
    assert is_suppressed is suppressed
    # PETS faces are few and small: the counts may be 0, but they are stored, unlike a suppressed window's.
    assert (n is None and rate is None) if suppressed else n is not None, rows


@pytest.mark.slow
def test_privacy_mask_over_the_whole_frame_sees_nobody(pets: Path, tmp_path: Path) -> None:
    camera = tmp_path / "masked.toml"
    camera.write_text(
        PETS_CAMERA.read_text() + "\n[[privacy_masks]]\npolygon = [[0, 0], [480, 0], [480, 360], [0, 360]]\n"
    )
    result = run_cli("count", str(pets / "frames" / "frame_000*.jpg"), "--camera", str(camera), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"people": 0,') == 10


def test_privacy_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    for section, message in [
        ("[privacy]\nk_min = 0\n", "privacy.k_min must be at least 1"),
        ("[privacy]\nprofile = 'gdpr'\n", "'privacy.profile' is 'gdpr'; it must be one of"),
        ("[[privacy_masks]]\npolygon = [[0, 0], [1, 1]]\n", "privacy_masks polygon needs at least 3 points"),
        ("[privacy]\nretention_days = -1\n", "privacy.retention_days must be >= 0"),
    ]:
        path.write_text(f'camera_id = "c"\nsite_id = "s"\nsite_kind = "market"\n{section}')
        with pytest.raises(SanitaryError, match=message):
            load_camera(path)
