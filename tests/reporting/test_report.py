"""The officials' HTML report on a real run of the PETS clip plus rows written by hand: its tables give the views'
numbers exactly, missing days read as missing and small cells as suppressed, text from the file cannot inject
markup, bad input is one line naming the fix, and the page renders offline in a real browser."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import cv2
import duckdb
import pytest

from sanitary.config import PrivacyConfig
from sanitary.errors import SanitaryError
from sanitary.reporting.report import build_report
from sanitary.storage.schema import SCHEMA_VERSION
from sanitary.storage.signage import Sign
from sanitary.storage.store import Store
from tests.conftest import NO_SIGN, SPARSE_HEADS, old_schema_db, pets_camera, run_cli
from tests.storage.test_views import NOON, two_bases

# Real footage through the real pipeline, end to end: the quick lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

SITE = "pets2009-reading"
CAMERA = "pets2009-view001"
DAY = date(2009, 3, 1)  # the PETS windows' day (Europe/London, UTC+0 in March)
SIGN_TEXT = "<script>alert('x')</script> Counted anonymously & shake your head to refuse"
CHROMIUM = Path("/usr/bin/chromium")


def window(con: duckdb.DuckDBPyConnection, start: datetime, people: int, masked: int, bare: int,
           site: str = SITE, **more: object) -> None:  # fmt: skip
    """One hand-written window of tracked people, beside the real run's."""
    suppressed = people < 5
    rate = masked / (masked + bare)
    row = {
        "site_id": site, "camera_id": CAMERA, "source": "hand", "window_start": start,
        "window_end": start + timedelta(minutes=1), "unit_id": "u", "run_id": "r", "frames_analysed": 60,
        "covered_s": 60.0, "people_sum": 60 * people, "people_max": people + 1, "faces_sum": masked + bare,
        "people_distinct": people, "persons_mask_unknown": people - masked - bare, "opt_outs": 1,
        "privacy_profile": "market", "k_min": 5, "mask_suppressed": suppressed,
        **({} if suppressed else {
            "persons_with_mask": masked, "persons_without_mask": bare, "persons_mask_incorrect": 0,
            "person_mask_rate": rate, "person_mask_rate_low": rate - 0.1, "person_mask_rate_high": rate + 0.05,
        }),
        **more,
    }  # fmt: skip
    con.execute(
        f"INSERT INTO window_aggregates ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2009, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(pets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real run's two windows on 1 March, plus: a window with a rate and a suppressed one that day, nothing on
    the 2nd, two windows with rates and distancing on the 3rd, a suppressed day on the 4th, a sign, alerts, and a
    bus site under the transport profile."""
    path = tmp_path_factory.mktemp("report") / "pets.duckdb"
    done = run_cli("run", *NO_SIGN, str(pets / "pets09_s2l1_view001_480x360.avi"), "--camera",
                   str(pets_camera(path.parent, SPARSE_HEADS)), "--db", str(path), "--sample-fps", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Store(path) as store:
        con = store.con
        window(con, at(1, 14), 10, 7, 3)
        window(con, at(1, 14, 1), 3, 2, 1)
        distancing = {"close_pair_frames": 6, "close_pairs_sum": 9, "people_close_sum": 14, "close_contacts": 2,
                      "nearest_min_m": 0.4}  # fmt: skip
        window(con, at(3, 9), 8, 6, 2, **distancing)
        window(con, at(3, 10), 12, 9, 3, **distancing)
        window(con, at(4, 11), 3, 1, 1)
        store.signage.add(Sign("sign-1", SITE, CAMERA, SIGN_TEXT, "en", "plaza <north> entrance", at(2, 9)))
        con.execute(
            "INSERT INTO alerts VALUES (?, ?, 'hand', ?, 'crowded', 'raised', 'occupancy', NULL, 'above', 8, 9.5,"
            " 'delivered', 'r'), (?, ?, 'hand', ?, 'crowded', 'cleared', 'occupancy', NULL, 'above', 8, 6.1,"
            " 'webhook: HTTP 503 <Service Unavailable>', 'r')",
            [SITE, CAMERA, at(3, 10), SITE, CAMERA, at(3, 10, 30)],
        )
        store.record_site("bus-12", "bus", "Europe/Paris", PrivacyConfig(profile="fr-transport-2021-269", k_min=5))
        window(con, at(3, 8), 9, 6, 3, site="bus-12", privacy_profile="fr-transport-2021-269")
    return path


class Tables(HTMLParser):
    """The page's tables by id: per row, per cell, (data-value or None, text)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str | None, str]]]] = {}
        self._table: list[list[tuple[str | None, str]]] | None = None
        self._cell: tuple[str | None, list[str]] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(str(a["id"]), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag == "td" and self._table is not None:
            self._cell = (a.get("data-value"), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._table is not None and self._cell is not None:
            self._table[-1].append((self._cell[0], "".join(self._cell[1])))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)

    def values(self, table_id: str, columns: list[int]) -> list[tuple[str | None, ...]]:
        """The rows of values: not the header, nor a stretch without footage (its first day or hour, its text)."""
        return [tuple(row[c][0] for c in columns) for row in self.tables[table_id] if len(row) > 2]

    def gaps(self, table_id: str) -> list[str]:
        return [row[1][1] for row in self.tables[table_id] if len(row) == 2]


def exact(value: object) -> str | None:
    """How the report writes a view's value in data-value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return value.isoformat() if isinstance(value, date) else repr(value)


def view(db: Path, sql: str, *params: object) -> list[tuple[str | None, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return [tuple(exact(v) for v in row) for row in con.execute(sql, list(params)).fetchall()]


@pytest.fixture(scope="module")
def page(db: Path) -> str:
    return build_report(db, DAY, date(2009, 3, 4), SITE)


def test_tables_give_the_views_numbers_exactly(db: Path, page: str) -> None:
    tables = Tables(page)
    daily = tables.values("s0-mask-daily", [0, 2, 3, 5, 6, 7, 8, 9, 10, 11])
    assert daily == view(
        db, "SELECT day, windows, covered_s, people_or_faces, mask_rate, mask_rate_low, mask_rate_high, suppressed,"
        " windows_suppressed, opt_outs FROM mask_rate_daily WHERE site_id = ? ORDER BY day", SITE,
    )  # fmt: skip
    assert daily[0][3:5] == ("10", repr(0.7))  # the PETS windows classified nobody: the hand window's rate alone
    distancing = tables.values("s0-distancing", list(range(7)))
    measured = view(db, "SELECT * EXCLUDE (site_id) FROM distancing_daily WHERE site_id = ? ORDER BY day", SITE)
    # The view's days end with the last one measured; the report goes on to the period's end, as missing.
    assert distancing == [*measured, ("2009-03-04", "0", None, None, None, None, None)]
    hourly = [r for r in tables.values("s0-occupancy-0", [1, 2, 3, 4, 5]) if r[1] != "0"]
    assert hourly == view(
        db, "SELECT hour_start, frames_analysed, covered_s, occupancy_mean, occupancy_max FROM occupancy_hourly"
        " WHERE site_id = ? AND frames_analysed > 0 ORDER BY hour_start", SITE,
    )  # fmt: skip
    # Every hour of the period, a header row first; a day or more without footage is one row.
    assert tables.gaps("s0-occupancy-0") == [
        "no footage from 2009-03-01 15:00 to 2009-03-03 09:00",
        "no footage from 2009-03-03 11:00 to 2009-03-04 11:00",
    ]
    assert len(tables.tables["s0-occupancy-0"]) == 1 + 12 + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 12
    assert '<strong id="s0-opt-outs">5</strong>' in page  # one per hand window on this site, none in PETS


def test_missing_days_are_missing_and_small_cells_suppressed(page: str) -> None:
    rows = {r[0][0]: r for r in Tables(page).tables["s0-mask-daily"] if r}
    assert rows["2009-03-02"][1][1] == "no footage" and rows["2009-03-02"][6] == (None, "missing")
    assert rows["2009-03-04"][1][1] == "suppressed: fewer than 5 people"
    assert rows["2009-03-04"][6] == (None, "suppressed")
    chart = page.split('aria-label="Daily mask rate')[1].split("</svg>")[0]
    assert chart.count("<circle") == 2  # the 1st and the 3rd: no point for a missing or suppressed day
    assert chart.count('class="missing"') == 1 and chart.count('class="suppressed"') == 1
    assert ">n = 20 people<" in chart and ">no footage<" in chart and ">n &lt; 5<" in chart
    assert "not measured" in page.split('aria-label="Share of analysed frames')[1].split("</svg>")[0]
    occupancy = page.split('aria-label="Occupancy per hour')[1].split("</svg>")[0]
    hours_with_footage = Tables(page).values("s0-occupancy-0", [2])
    assert occupancy.count('class="bar"') == len(hours_with_footage) - hours_with_footage.count(("0",)) == 5


def test_one_day_adds_the_windows_with_suppressed_ones_marked(db: Path) -> None:
    single = build_report(db, DAY, DAY, SITE)
    windows = Tables(single).values("s0-mask-windows", [0, 3, 4, 7])
    assert windows == view(
        db, "SELECT local_start, n, rate, mask_suppressed FROM mask_rate_windows WHERE site_id = ?"
        " AND local_start::DATE = ? ORDER BY local_start, camera_id, source", SITE, DAY,
    )  # fmt: skip
    assert [w[3] for w in windows] == ["false", "false", "false", "true"]
    chart = single.split('aria-label="Mask rate per window')[1].split("</svg>")[0]
    assert chart.count("<circle") == 1 and chart.count('class="suppressed') == 1
    assert "Mask rate per window" not in build_report(db, DAY, date(2009, 3, 2), SITE)


def test_a_rate_is_drawn_only_beside_its_own_count(tmp_path: Path) -> None:
    """A window whose tracked people have no mask vote is drawn as missing, even where a face-frame was read."""
    page = build_report(two_bases(tmp_path / "two.duckdb"), NOON.date(), NOON.date(), "s")
    rows = [r for r in Tables(page).tables["s0-mask-windows"] if r]
    # Per window: basis, n, whether a rate and its interval are shown; a rate only with an n of at least 1.
    assert [(r[2][1], r[3][0], r[4][0] is not None, r[5][0] is not None, r[6][0] is not None) for r in rows] == [
        ("people", "0", False, False, False),
        ("people", "1", True, True, True),
        ("face-frames", "3", True, True, True),
        ("face-frames", "0", False, False, False),
    ]
    chart = page.split('aria-label="Mask rate per window')[1].split("</svg>")[0]
    assert chart.count("<circle") == 2 and chart.count('class="missing"') == 2
    (day,) = [r for r in Tables(page).tables["s0-mask-daily"] if r]
    assert (day[1][1], day[5][0], day[6][0] is not None) == ("plotted", "4", True)


def test_signage_profile_alerts_and_escaping(page: str) -> None:
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Counted anonymously &amp; shake" in page
    assert "plaza &lt;north&gt; entrance" in page and "2009-03-02 09:00 GMT" in page
    assert "public research data set, recorded with consent (no sign from 2009-03-01T12:00:00" in page
    assert "<dt>Privacy profile</dt><dd>market (" in page and "<dt>Minimum cell size k_min</dt><dd>5 " in page
    assert "<li>market, k_min = 5: 7 window(s)</li>" in page and "Europe/London" in page
    alerts = Tables(page).tables["s0-alerts"]
    assert [(r[3][1], r[8][1]) for r in alerts if r] == [
        ("raised", "delivered"),
        ("cleared", "webhook: HTTP 503 <Service Unavailable>"),
    ]
    assert Tables(page).values("s0-alerts-daily", [0, 4, 5, 6]) == [("2009-03-03", "1", "1", "1")]


def test_all_sites_and_a_transport_site_without_distancing(db: Path) -> None:
    both = build_report(db, DAY, date(2009, 3, 4), None)
    assert 'href="#s0">bus-12<' in both and 'href="#s1">pets2009-reading<' in both
    assert 'id="s0-no-distancing">Distancing was not measured in this period: the fr-transport-2021-269' in both
    assert "(French decree 2021-269" in both and "Europe/Paris" in both
    # Only the PETS site has footage on the 1st; the bus is named with the days it has.
    one = build_report(db, DAY, DAY, None)
    assert "No footage in this period for: bus-12 (site bus-12 has footage on 1 day(s) from 2009-03-03" in one


def test_bad_input_is_one_line_naming_the_fix(db: Path, tmp_path: Path) -> None:
    cases = [
        (tmp_path / "nope.duckdb", DAY, DAY, None, r"nope\.duckdb: no such DuckDB file; pass --db"),
        (db, date(2009, 3, 4), DAY, None, r"--from 2009-03-04 is after --to 2009-03-01"),
        (db, DAY, DAY, "market-9", r"no site 'market-9'; known sites: bus-12, pets2009-reading; pass one"),
        (db, date(2010, 1, 1), date(2010, 1, 31), SITE, r"no footage from 2010-01-01 to 2010-01-31; site "
         r"pets2009-reading has footage on 3 day\(s\) from 2009-03-01 to 2009-03-04"),
    ]  # fmt: skip
    for path, start, end, site, message in cases:
        with pytest.raises(SanitaryError, match=message) as caught:
            build_report(path, start, end, site)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_an_older_file_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    old = tmp_path / "v5.duckdb"
    with old_schema_db(old, 5) as con:
        window(con, at(1, 14), 10, 7, 3)
    page = build_report(old, DAY, DAY, None)
    assert "Site pets2009-reading" in page and "UTC (not recorded; UTC assumed)" in page  # no sites table in v5
    assert Tables(page).values("s0-mask-daily", [0, 6]) == [("2009-03-01", repr(0.7))]
    with duckdb.connect(str(old)) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    with pytest.raises(SanitaryError, match=rf"schema v{SCHEMA_VERSION + 1} is newer than this sanitary"):
        build_report(old, DAY, DAY, None)


def test_the_page_is_self_contained(page: str) -> None:
    lowered = page.lower()
    for attribute in ("src=", "href=", "url("):
        for scheme in ("http:", "https:", "//", "file:", "data:"):
            assert f'{attribute}"{scheme}' not in lowered and f"{attribute}'{scheme}" not in lowered
            assert f"{attribute}{scheme}" not in lowered
    assert "<script" not in lowered and "@import" not in lowered and "<link" not in lowered and "<img" not in lowered


def test_it_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the browser check needs it")
    chromium = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    png = tmp_path / "report.png"
    # No network, no profile of the user's, nothing fetched in the background: what renders came from the file.
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    shot = subprocess.run([*flags, f"--screenshot={png}", "--window-size=1200,3000", html.as_uri()],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    image = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (3000, 1200)
    assert image.std() > 20 and (image < 128).mean() > 0.005  # text and charts drawn, not a blank page
    dom = subprocess.run([*flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and dom.stdout.count("<circle") >= 2 and "<polygon" in dom.stdout


def test_the_command_writes_the_page_and_refuses_a_bad_date(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = run_cli("report", "--db", str(db), "--from", "2009-03-01", "--to", "2009-03-04", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    bad = run_cli("report", "--db", str(db), "--from", "1 March", "--to", "2009-03-04", "--out", str(out))
    assert bad.returncode == 2 and "--from '1 March' is not a date; write it as YYYY-MM-DD" in bad.stderr


def test_a_century_costs_what_its_data_does(db: Path, page: str) -> None:
    # Issue 30 point 15: 1970 to 2100 on a file of five days wrote 325 MB, a row and a slot for every day and hour.
    century = build_report(db, date(1970, 1, 1), date(2100, 12, 31), SITE)
    assert len(century) < len(page) + 10_000
    tables = Tables(century)
    assert tables.gaps("s0-mask-daily") == [
        "no footage from 1970-01-01 to 2009-02-28",
        "no footage from 2009-03-05 to 2100-12-31",
    ]
    # A single day without footage keeps its own row, as in the four days' report.
    assert [r[0] for r in tables.values("s0-mask-daily", [0])] == ["2009-03-01", "2009-03-02", "2009-03-03",
                                                                  "2009-03-04"]  # fmt: skip
    assert tables.gaps("s0-occupancy-0")[0] == "no footage from 1970-01-01 00:00 to 2009-03-01 12:00"
    assert tables.gaps("s0-occupancy-0")[-1] == "no footage from 2009-03-04 12:00 to 2101-01-01 00:00"
    assert tables.gaps("s0-distancing") == tables.gaps("s0-mask-daily")
    assert "Footage on <strong>3</strong> of 47847 day(s)" in century
    chart = century.split('aria-label="Daily mask rate')[1].split("</svg>")[0]
    assert chart.count("<circle") == 2 and ">to 2100-12-31<" in chart


def test_control_and_bidi_characters_are_shown_by_their_codes(tmp_path: Path) -> None:
    db = two_bases(tmp_path / "two.duckdb")
    with Store(db) as store:
        store.signage.add(Sign("x", "s", "c", "hi\x1b]0;PWNED\x07 \u202eoN", "en", "door\u2066", NOON))
    page = build_report(db, NOON.date(), NOON.date(), "s")
    assert [c for c in ("\x1b", "\x07", "\u202e", "\u2066") if c in page] == []
    assert "<td>hi\\x1b]0;PWNED\\x07 &lt;U+202E&gt;oN</td>" in page and "<td>door&lt;U+2066&gt;</td>" in page
