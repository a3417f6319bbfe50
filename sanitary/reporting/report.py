"""The HTML report health officials read: one page for a period of local days, per site.

Officials open it offline, mail it on and print it, so the page carries its own CSS and draws its charts as inline
SVG, with no script and nothing fetched. It reads the officials' views (the numbers `sanitary query` gives) and
nothing finer. Every number a chart shows is also in a table next to it, for screen readers and for checking by
text. A period without footage is drawn as missing, never as zero, and a suppressed rate is said to be suppressed
rather than drawn. A long stretch without footage is one row and one slot ("no footage from ... to ..."), so that
the page grows with the data, not with the period asked for. Stored text is shown as `visible` has it.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import duckdb

from sanitary.config import FR_TRANSPORT
from sanitary.errors import SanitaryError
from sanitary.reporting.visible import visible
from sanitary.storage.query import read_only
from sanitary.storage.registers import SignRegister
from sanitary.storage.signage import Sign

PROFILES = {
    "market": "every measure stored (counts, mask rates, distancing, zones)",
    FR_TRANSPORT: "French decree 2021-269 on public transport: only people counts and mask rates are stored",
}
BASIS = {"people": "people", "faces": "face-frames"}

# Chart geometry, in SVG user units (pixels at 100%).
WIDTH = 960
LEFT = 56
RIGHT = 16
PLOT_W = WIDTH - LEFT - RIGHT
LINE = 14  # height of a line of 11 px text
BLUE = "#1f5fa8"
GREY_FILL = "#ececec"
AMBER_FILL = "#f6e7c8"
# Stretches without footage at least this long are one row and one slot: shorter ones keep a row per day (a day
# closed) or per hour (a night).
GAP_DAYS = 2
GAP_HOURS = 24

K = TypeVar("K", date, datetime)
T = TypeVar("T")


@dataclass(frozen=True)
class Site:
    site_id: str
    kind: str | None  # None: no run since the sites table exists recorded it
    timezone: str  # as the views use it: UTC where the site was never recorded
    profile: str | None
    k_min: int | None


@dataclass(frozen=True)
class StoredUnder:
    """A privacy profile and cell size the period's rows were written under, and how many windows were."""

    profile: str | None
    k_min: int | None
    windows: int


@dataclass(frozen=True)
class DayRate:
    """A row of mask_rate_daily."""

    day: date
    windows: int
    covered_s: float
    basis: str | None
    n: int | None
    suppressed: bool
    rate: float | None
    low: float | None
    high: float | None
    windows_suppressed: int
    opt_outs: int | None


@dataclass(frozen=True)
class WindowRate:
    """A row of mask_rate_windows."""

    camera_id: str
    local_start: datetime
    basis: str
    n: int | None
    rate: float | None
    rate_sd: float | None
    suppressed: bool

    def interval(self) -> tuple[float, float] | None:
        # The same normal interval mask_rate_daily gives a day, from the sd the view derives.
        if self.rate is None or self.rate_sd is None:
            return None
        return max(0.0, self.rate - 1.96 * self.rate_sd), min(1.0, self.rate + 1.96 * self.rate_sd)


@dataclass(frozen=True)
class HourOccupancy:
    """A row of occupancy_hourly."""

    camera_id: str
    hour_start: datetime
    local_hour: datetime
    frames_analysed: int
    covered_s: float
    mean: float | None
    max: int | None


@dataclass(frozen=True)
class DayDistancing:
    """A row of distancing_daily."""

    day: date
    frames_measured: int
    close_pair_frames: int | None
    share_frames_close: float | None
    close_pairs_sum: int | None
    close_contacts: int | None
    nearest_min_m: float | None


@dataclass(frozen=True)
class AlertDay:
    """A row of alerts_daily."""

    camera_id: str
    day: date
    rule: str
    measure: str
    raised: int
    cleared: int
    undelivered: int


@dataclass(frozen=True)
class AlertEvent:
    camera_id: str
    local_time: datetime
    rule: str
    state: str
    measure: str
    zone: str | None
    direction: str
    threshold: float
    value: float
    delivery: str


@dataclass(frozen=True)
class Override:
    """A run that analysed footage no sign covered, and the reason given."""

    camera_id: str
    source_path: str
    footage_start: datetime
    footage_end: datetime
    status: str
    reason: str


@dataclass(frozen=True)
class Gap:
    """Days (dates) or hours (local hour starts) without footage, first and last included: one row, one slot."""

    first: date
    last: date

    def days(self) -> int:
        return (self.last - self.first).days + 1

    def label(self) -> str:
        if isinstance(self.first, datetime):  # hours: to the start of the next one
            return f"{self.first:%Y-%m-%d %H:%M} to {self.last + timedelta(hours=1):%Y-%m-%d %H:%M}"
        return f"{self.first} to {self.last}"

    def text(self) -> str:
        return f"no footage from {self.label()}"


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The period's first and last instant (exclusive) in UTC: local midnights of the site."""
        zone = ZoneInfo(timezone)
        first = datetime.combine(self.start, time(), zone)
        last = datetime.combine(self.end + timedelta(days=1), time(), zone)
        return first.astimezone(UTC), last.astimezone(UTC)


@dataclass(frozen=True)
class SiteReport:
    site: Site
    stored_under: tuple[StoredUnder, ...]
    days: tuple[DayRate | Gap, ...]  # every day of the period, long stretches without footage as one Gap
    windows: tuple[WindowRate, ...]  # only for a period of one day
    hours: dict[str, tuple[HourOccupancy | Gap, ...]]  # camera -> every hour of the period, the same way
    distancing: tuple[DayDistancing | Gap, ...]  # beside `days`; empty when none was measured
    alert_days: tuple[AlertDay, ...]
    alert_events: tuple[AlertEvent, ...]
    signs: tuple[Sign, ...]
    overrides: tuple[Override, ...]


def build_report(db: Path, start: date, end: date, site: str | None) -> str:
    """One self-contained HTML page on the sites of `db` (or `site` alone) for the local days [start, end]."""
    if start > end:
        raise SanitaryError(f"{db}: --from {start} is after --to {end}; give the period's first day to --from")
    period = Period(start, end)
    with read_only(db) as con:
        sites = _read_sites(con)
        if site is not None and site not in sites:
            known = ", ".join(sorted(sites)) or "none (nothing analysed yet)"
            raise SanitaryError(f"{db}: no site {site!r}; known sites: {known}; pass one of them to --site")
        chosen = [sites[site]] if site is not None else [sites[s] for s in sorted(sites)]
        with_data = [s for s in chosen if _has_footage(con, s.site_id, period)]
        if not with_data:
            raise SanitaryError(f"{db}: no footage from {start} to {end}; {_data_days(con, chosen)}")
        signage = SignRegister(con, db)
        reports = [_read_site(con, signage, s, period) for s in with_data]
        without = [f"{s.site_id} ({_data_days(con, [s])})" for s in chosen if s not in with_data]
    return _page(db, period, reports, without)


# --- reading ---------------------------------------------------------------------------------------------------


def _read_sites(con: duckdb.DuckDBPyConnection) -> dict[str, Site]:
    # Rows written before the sites table existed name a site it does not hold; the views read those in UTC.
    rows = con.execute("""
        SELECT site_id, s.site_kind, coalesce(s.timezone, 'UTC'), s.privacy_profile, s.k_min
        FROM (SELECT site_id FROM sites UNION SELECT DISTINCT site_id FROM window_aggregates)
        LEFT JOIN sites s USING (site_id)""").fetchall()
    return {r[0]: Site(*r) for r in rows}


def _has_footage(con: duckdb.DuckDBPyConnection, site_id: str, period: Period) -> bool:
    row = con.execute(
        "SELECT count(*) FROM mask_rate_daily WHERE site_id = ? AND windows > 0 AND day BETWEEN ? AND ?",
        [site_id, period.start, period.end],
    ).fetchone()
    return bool(row and row[0])


def _data_days(con: duckdb.DuckDBPyConnection, sites: Sequence[Site]) -> str:
    """Which days the sites do have footage on, for a message that points to a period with data."""
    parts = []
    for s in sites:
        first, last, days = con.execute(
            "SELECT min(day), max(day), count(*) FROM mask_rate_daily WHERE site_id = ? AND windows > 0", [s.site_id]
        ).fetchone() or (None, None, 0)
        parts.append(
            f"site {s.site_id} has footage on {days} day(s) from {first} to {last}" if days
            else f"site {s.site_id} has no footage at all"
        )  # fmt: skip
    return "; ".join(parts) or "the file holds no site yet; run `sanitary run` first"


def _read_site(con: duckdb.DuckDBPyConnection, signage: SignRegister, site: Site, period: Period) -> SiteReport:
    one_day = period.start == period.end
    days = _read_days(con, site, period)
    return SiteReport(
        site=site,
        stored_under=_read_stored_under(con, site, period),
        days=days,
        windows=_read_windows(con, site, period.start) if one_day else (),
        hours=_read_hours(con, site, period),
        distancing=_read_distancing(con, site, period, days),
        alert_days=_read_alert_days(con, site, period),
        alert_events=_read_alert_events(con, site, period),
        signs=_read_signs(signage, site, period),
        overrides=_read_overrides(con, site, period),
    )


def _read_alert_days(con: duckdb.DuckDBPyConnection, site: Site, period: Period) -> tuple[AlertDay, ...]:
    rows = con.execute(
        "SELECT camera_id, day, rule, measure, raised, cleared, undelivered FROM alerts_daily"
        " WHERE site_id = ? AND day BETWEEN ? AND ? ORDER BY day, camera_id, rule",
        [site.site_id, period.start, period.end],
    ).fetchall()
    return tuple(AlertDay(*r) for r in rows)


def _read_alert_events(con: duckdb.DuckDBPyConnection, site: Site, period: Period) -> tuple[AlertEvent, ...]:
    rows = con.execute(
        "SELECT camera_id, timezone($tz, event_at), rule, state, measure, zone, direction, threshold, value, delivery"
        " FROM alerts WHERE site_id = $site AND timezone($tz, event_at)::DATE BETWEEN $start AND $end"
        " ORDER BY event_at, camera_id, rule",
        {"tz": site.timezone, "site": site.site_id, "start": period.start, "end": period.end},
    ).fetchall()
    return tuple(AlertEvent(*r) for r in rows)


def _read_stored_under(con: duckdb.DuckDBPyConnection, site: Site, period: Period) -> tuple[StoredUnder, ...]:
    rows = con.execute(
        "SELECT privacy_profile, k_min, count(*) FROM window_aggregates WHERE site_id = $site"
        " AND timezone($tz, window_start)::DATE BETWEEN $start AND $end GROUP BY ALL ORDER BY 3 DESC, 1, 2",
        {"tz": site.timezone, "site": site.site_id, "start": period.start, "end": period.end},
    ).fetchall()
    return tuple(StoredUnder(*r) for r in rows)


def _with_gaps(
    first: K, last: K, step: timedelta, found: Mapping[K, T], has_footage: Callable[[T], bool],
    empty: Callable[[K], T], shown: Callable[[K], date], at_least: int,
) -> tuple[T | Gap, ...]:  # fmt: skip
    """Every step from `first` to `last`: the rows found, the empty ones made, and each stretch of at least
    `at_least` steps without footage as one Gap (of the `shown` form of its first and last step). Only the rows
    with footage are walked, so a century costs what its data does."""
    out: list[T | Gap] = []
    at = first
    for key in [*sorted(k for k, row in found.items() if has_footage(row)), last + step]:
        missing = round((key - at) / step)
        if missing >= at_least:
            out.append(Gap(shown(at), shown(key - step)))
        else:
            out.extend(found.get(k) or empty(k) for k in (at + i * step for i in range(missing)))
        if key <= last:
            out.append(found[key])
        at = key + step
    return tuple(out)


def _read_days(con: duckdb.DuckDBPyConnection, site: Site, period: Period) -> tuple[DayRate | Gap, ...]:
    rows = con.execute(
        "SELECT day, windows, covered_s, basis, people_or_faces, suppressed, mask_rate, mask_rate_low,"
        " mask_rate_high, windows_suppressed, opt_outs FROM mask_rate_daily WHERE site_id = ? AND day BETWEEN ? AND ?",
        [site.site_id, period.start, period.end],
    ).fetchall()
    found = {r[0]: DayRate(*r) for r in rows}
    # The view's days run from the site's first to its last day of footage; days of the period beyond are as
    # missing as the view's own empty days, and shown the same way.
    empty = lambda d: DayRate(d, 0, 0.0, None, None, False, None, None, None, 0, None)  # noqa: E731
    day = timedelta(days=1)
    return _with_gaps(period.start, period.end, day, found, lambda r: r.windows > 0, empty, lambda d: d, GAP_DAYS)


def _read_windows(con: duckdb.DuckDBPyConnection, site: Site, day: date) -> tuple[WindowRate, ...]:
    rows = con.execute(
        "SELECT camera_id, local_start, basis, n, rate, rate_sd, mask_suppressed FROM mask_rate_windows"
        " WHERE site_id = ? AND local_start::DATE = ? ORDER BY local_start, camera_id, source",
        [site.site_id, day],
    ).fetchall()
    return tuple(WindowRate(*r) for r in rows)


def _read_hours(
    con: duckdb.DuckDBPyConnection, site: Site, period: Period
) -> dict[str, tuple[HourOccupancy | Gap, ...]]:
    rows = [HourOccupancy(*r) for r in con.execute(
        "SELECT camera_id, hour_start, local_hour, frames_analysed, covered_s, occupancy_mean, occupancy_max"
        " FROM occupancy_hourly WHERE site_id = ? AND local_hour::DATE BETWEEN ? AND ? ORDER BY camera_id, hour_start",
        [site.site_id, period.start, period.end],
    ).fetchall()]  # fmt: skip
    first, end = period.bounds(site.timezone)
    zone = ZoneInfo(site.timezone)
    hour = timedelta(hours=1)
    local = lambda h: h.astimezone(zone).replace(tzinfo=None)  # noqa: E731
    filled = {}
    for camera in sorted({r.camera_id for r in rows}):
        found = {r.hour_start: r for r in rows if r.camera_id == camera}
        empty = lambda h, c=camera: HourOccupancy(c, h, local(h), 0, 0.0, None, None)  # noqa: E731
        filled[camera] = _with_gaps(first, end - hour, hour, found, lambda r: r.frames_analysed > 0, empty, local,
                                    GAP_HOURS)  # fmt: skip
    return filled


def _read_distancing(
    con: duckdb.DuckDBPyConnection, site: Site, period: Period, days: Sequence[DayRate | Gap]
) -> tuple[DayDistancing | Gap, ...]:
    rows = con.execute(
        "SELECT day, frames_measured, close_pair_frames, share_frames_close, close_pairs_sum, close_contacts,"
        " nearest_min_m FROM distancing_daily WHERE site_id = ? AND day BETWEEN ? AND ? AND frames_measured > 0",
        [site.site_id, period.start, period.end],
    ).fetchall()
    if not rows:
        return ()
    found = {r[0]: DayDistancing(*r) for r in rows}
    return tuple(d if isinstance(d, Gap) else found.get(d.day) or DayDistancing(d.day, 0, None, None, None, None, None)
                 for d in days)  # fmt: skip


def _read_signs(signage: SignRegister, site: Site, period: Period) -> tuple[Sign, ...]:
    first, last = period.bounds(site.timezone)
    return tuple(signage.standing(site.site_id, first, last))


def _read_overrides(con: duckdb.DuckDBPyConnection, site: Site, period: Period) -> tuple[Override, ...]:
    first, last = period.bounds(site.timezone)
    rows = con.execute(
        "SELECT camera_id, source_path, timezone($tz, footage_start), timezone($tz, footage_end), status,"
        " signage_override FROM runs WHERE site_id = $site AND signage_override IS NOT NULL"
        " AND footage_start < $last AND footage_end > $first ORDER BY footage_start, camera_id",
        {"tz": site.timezone, "site": site.site_id, "first": first, "last": last},
    ).fetchall()
    return tuple(Override(*r) for r in rows)


# --- formatting ------------------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(visible(str(text)), quote=True)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _cell(value: object, text: str | None = None, none: str = "missing") -> str:
    """A table cell: readable text, and the exact value in data-value so the page can be checked by text."""
    if value is None:
        return f'<td class="missing">{_e(none)}</td>'
    if isinstance(value, bool):
        exact = str(value).lower()
    elif isinstance(value, date):  # datetimes too
        exact = value.isoformat()
    else:
        exact = repr(value)
    return f'<td data-value="{_e(exact)}">{_e(text if text is not None else exact)}</td>'


def _text_cell(text: object) -> str:
    return f"<td>{_e(text)}</td>" if text is not None else '<td class="missing">none</td>'


def _gap_row(gap: Gap, columns: int) -> str:
    """A stretch without footage in a table: its first day or hour, then what it is across the other columns."""
    first = gap.first.strftime("%Y-%m-%d %H:%M") if isinstance(gap.first, datetime) else gap.first.isoformat()
    return (f'<td data-value="{_e(gap.first.isoformat())}">{_e(first)}</td>'
            f'<td colspan="{columns - 1}" class="missing">{_e(gap.text())}</td>')  # fmt: skip


def _table(table_id: str, caption: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join(f"<tr>{r}</tr>" for r in rows) or f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return (f'<table id="{_e(table_id)}"><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")  # fmt: skip


def _details(table: str) -> str:
    return f"<details><summary>The numbers behind this chart</summary>{table}</details>"


def _local(at: datetime | None, timezone: str) -> str | None:
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z") if at else None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _basis(basis: str | None) -> str | None:
    """What a denominator counts; a day of both kinds of window says both ("faces+people")."""
    return " and ".join(BASIS.get(b, b) for b in basis.split("+")) if basis else None


def _denominator(n: int | None, basis: str | None) -> str:
    return f"n = {n} {_basis(basis) or ''}".rstrip()


def _day_denominator(d: DayRate, k_min: int | None) -> str:
    if d.n is not None:
        return _denominator(d.n, d.basis)
    if d.windows == 0:
        return "no footage"
    return f"n < {k_min if k_min is not None else 'k'}" if d.suppressed else "none classified"


def _fewer_than_k(k_min: int | None) -> str:
    return f"suppressed: fewer than {k_min if k_min is not None else 'k'} people"


def _day_state(d: DayRate, k_min: int | None) -> str | None:
    """Why a day has no rate to plot; None when it has one."""
    if d.windows == 0:
        return "no footage"
    if d.suppressed:
        return _fewer_than_k(k_min)
    return None if d.rate is not None else "none classified"


# --- SVG -------------------------------------------------------------------------------------------------------


def _svg(height: float, label: str, body: Sequence[str]) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img"'
            f' aria-label="{_e(label)}"><title>{_e(label)}</title>{"".join(body)}</svg>')  # fmt: skip


def _text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "axis", rotate: bool = False) -> str:
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}"{turn}>{_e(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{cls}"/>'


def _rect(x: float, y: float, w: float, h: float, cls: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" class="{cls}"/>'


def _text_width(text: str) -> float:
    return 6.2 * len(text)  # 11 px sans-serif, a little generous


@dataclass(frozen=True)
class Plot:
    """Where a chart's plotting area sits in its SVG, and the value at its top."""

    top: float
    height: float
    y_max: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def y(self, value: float) -> float:
        return self.top + self.height * (1 - value / self.y_max)

    def axis(self, ticks: Sequence[float], label: Callable[[float], str]) -> list[str]:
        parts = []
        for t in ticks:
            parts.append(_line(LEFT, self.y(t), LEFT + PLOT_W, self.y(t), "grid"))
            parts.append(_text(LEFT - 6, self.y(t) + 4, label(t), anchor="end"))
        return [*parts, _line(LEFT, self.bottom, LEFT + PLOT_W, self.bottom, "baseline")]

    def marker(self, x: float, width: float, text: str, cls: str) -> list[str]:
        """A span with nothing to plot, shaded and saying why (missing, suppressed): never drawn as a zero."""
        # A thin span shows its colour, not a dashed outline.
        parts = [_rect(x - width / 2 + 1, self.top, width - 2, self.height, cls + (" narrow" if width < 12 else ""))]
        words = text.split(": ")
        middle = self.top + self.height / 2
        if width >= _text_width(text) + 8:
            parts.append(_text(x, middle + 4, text, cls="note"))
        elif width >= LINE * len(words) + 4 and _text_width(max(words, key=len)) < self.height - 8:
            for i, part in enumerate(words):
                parts.append(_text(x + (i - (len(words) - 1) / 2) * LINE + 4, middle, part, cls="note", rotate=True))
        elif width >= LINE:
            parts.append(_text(x + 4, middle, words[0], cls="note", rotate=True))
        return parts


def _slots(count: int) -> tuple[list[float], float]:
    slot = PLOT_W / max(count, 1)
    return [LEFT + slot * (i + 0.5) for i in range(count)], slot


def _slot_labels(
    centers: Sequence[float], slot: float, y: float, lines: Sequence[Sequence[str]]
) -> tuple[list[str], float]:
    """Labels under slots, one or more lines each, turned upright when the slots are narrow; and their height."""
    if all(slot >= _text_width(t) + 8 for ls in lines for t in ls):
        parts = [_text(cx, y + LINE * (i + 1), t) for cx, ls in zip(centers, lines, strict=True)
                 for i, t in enumerate(ls)]  # fmt: skip
        return parts, LINE * max((len(ls) for ls in lines), default=0) + 8
    joined = ["  ".join(ls) for ls in lines]
    step = max(1, math.ceil(LINE / slot))  # thinned only where even upright labels would overlap
    parts = [_text(cx + 4, y + 6, t, anchor="end", rotate=True)
             for i, (cx, t) in enumerate(zip(centers, joined, strict=True)) if i % step == 0]  # fmt: skip
    return parts, max((_text_width(t) for t in joined), default=0) + 14


def _percent(t: float) -> str:
    return f"{100 * t:.0f}%"


PERCENT_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _count_ticks(highest: float) -> tuple[float, list[float]]:
    """A round axis top at or above `highest` people, and its ticks."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if highest / s <= 5)
    y_max = max(step, math.ceil(highest / step) * step)
    return y_max, [float(step * i) for i in range(int(y_max / step) + 1)]


def _interval_point(plot: Plot, x: float, rate: float, low: float, high: float, label: bool) -> list[str]:
    parts = [
        _line(x, plot.y(low), x, plot.y(high), "whisker"),
        _line(x - 4, plot.y(low), x + 4, plot.y(low), "whisker"),
        _line(x - 4, plot.y(high), x + 4, plot.y(high), "whisker"),
        f'<circle cx="{x:.1f}" cy="{plot.y(rate):.1f}" r="4" class="point"/>',
    ]
    if label:
        parts.append(_text(x + 8, plot.y(rate) + 4, _pct(rate), anchor="start", cls="value"))
    return parts


def _spans(states: Sequence[str | None]) -> list[tuple[int, int, str]]:
    """[first, last) index stretches of equal states, None (something to plot) left out."""
    spans: list[tuple[int, int, str]] = []
    for i, state in enumerate(states):
        if state is None:
            continue
        if spans and spans[-1][1] == i and spans[-1][2] == state:
            spans[-1] = (spans[-1][0], i + 1, state)
        else:
            spans.append((i, i + 1, state))
    return spans


def _shade(plot: Plot, slot: float, states: Sequence[str | None]) -> list[str]:
    """Slots with nothing to plot, consecutive ones with the same reason shaded as one span."""
    parts = []
    for first, last, state in _spans(states):
        cls = "suppressed" if state.startswith("suppressed") else "missing"
        parts += plot.marker(LEFT + slot * (first + last) / 2, slot * (last - first), state, cls)
    return parts


def _gap_lines(gap: Gap) -> list[str]:
    """A stretch without footage under its slot: from, to."""
    since, until = gap.label().split(" to ")
    return [since, f"to {until}"]


def _mask_daily_chart(days: Sequence[DayRate | Gap], k_min: int | None) -> str:
    plot = Plot(top=12, height=220, y_max=1.0)
    centers, slot = _slots(len(days))
    states = ["no footage" if isinstance(d, Gap) else _day_state(d, k_min) for d in days]
    parts = plot.axis(PERCENT_TICKS, _percent) + _shade(plot, slot, states)
    rated = [d if isinstance(d, DayRate) and None not in (d.rate, d.low, d.high) else None for d in days]
    # The band and the line join consecutive days with a rate only: a day without one breaks them.
    for first, last, _ in _spans(["rate" if d else None for d in rated]):
        run = [(x, d) for x, d in zip(centers[first:last], rated[first:last], strict=True) if d]
        upper = [f"{x:.1f},{plot.y(d.high or 0):.1f}" for x, d in run]
        lower = [f"{x:.1f},{plot.y(d.low or 0):.1f}" for x, d in reversed(run)]
        parts.append(f'<polygon points="{" ".join(upper + lower)}" class="band"/>')
        parts.append(f'<polyline points="{" ".join(f"{x:.1f},{plot.y(d.rate or 0):.1f}" for x, d in run)}"'
                     ' class="rate"/>')  # fmt: skip
    for x, d in zip(centers, rated, strict=True):
        if d and d.rate is not None and d.low is not None and d.high is not None:
            parts += _interval_point(plot, x, d.rate, d.low, d.high, label=slot >= 60)
    lines = [_gap_lines(d) if isinstance(d, Gap) else [d.day.isoformat(), _day_denominator(d, k_min)] if d.windows
             else [d.day.isoformat()] for d in days]  # fmt: skip
    labels, label_height = _slot_labels(centers, slot, plot.bottom, lines)
    return _svg(plot.bottom + label_height, "Daily mask rate with its 95% interval", parts + labels)


def _time_ticks(first: datetime, last: datetime) -> list[datetime]:
    """Round times from first to last, at least 60 px apart."""
    span_min = (last - first) / timedelta(minutes=1)
    step = next(s for s in (5, 10, 15, 30, 60, 120, 180, 360, 720) if PLOT_W * s / span_min >= 60)
    count = int(span_min // step)
    return [first + timedelta(minutes=step * i) for i in range(count + 1)]


def _mask_windows_chart(windows: Sequence[WindowRate], k_min: int | None) -> str:
    """Per-window rates over one day, on a time axis from the hour of the first window to the hour after the last."""
    plot = Plot(top=12, height=200, y_max=1.0)
    starts = sorted({w.local_start for w in windows})
    first = starts[0].replace(minute=0, second=0, microsecond=0)
    last = starts[-1].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    span = last - first
    x = lambda t: LEFT + PLOT_W * ((t - first) / span)  # noqa: E731
    # The view gives no window length: the closest two windows tell it (a minute when there is only one).
    length = min([b - a for a, b in itertools.pairwise(starts)] or [timedelta(minutes=1)])
    width = max(4.0, PLOT_W * (length / span))
    parts = plot.axis(PERCENT_TICKS, _percent)
    for w in windows:
        if w.suppressed:
            parts += plot.marker(x(w.local_start + length / 2), width, _fewer_than_k(k_min), "suppressed")
        elif w.rate is None:
            parts += plot.marker(x(w.local_start + length / 2), width, "none classified", "missing")
    for w in windows:
        if w.rate is not None and (interval := w.interval()):
            middle = x(w.local_start + length / 2)
            parts += _interval_point(plot, middle, w.rate, *interval, label=width >= 60)
            if width >= 60:
                parts.append(_text(middle, plot.bottom + 2 * LINE, _denominator(w.n, w.basis)))
    for t in _time_ticks(first, last):
        parts.append(_line(x(t), plot.bottom, x(t), plot.bottom + 4, "baseline"))
        parts.append(_text(x(t), plot.bottom + LINE, t.strftime("%H:%M")))
    return _svg(plot.bottom + 2 * LINE + 8, "Mask rate per window, with its 95% interval", parts)


def _hour_labels(hours: Sequence[HourOccupancy | Gap], slot: float, y: float) -> list[str]:
    """Hours (and each day under its midnight) when a day is wide enough for them, else only every few days; a
    stretch without footage says from when to when, when its slot is wide enough."""
    parts = []
    day_step = next(s for s in (1, 2, 7, 14, 28, 10**6) if s * 24 * slot >= 80)
    hour_step = next((s for s in (1, 2, 3, 6, 12) if s * slot >= 40), None)
    start = hours[0].first if isinstance(hours[0], Gap) else hours[0].local_hour
    for i, h in enumerate(hours):
        x = LEFT + slot * i
        if isinstance(h, Gap):
            if slot >= _text_width(max(_gap_lines(h), key=len)) + 8:
                parts += [_text(x + slot / 2, y + LINE * (n + 1), t) for n, t in enumerate(_gap_lines(h))]
            continue
        local = h.local_hour
        if hour_step and local.minute == 0 and local.hour % hour_step == 0:
            parts.append(_line(x, y, x, y + 4, "baseline"))
            parts.append(_text(x, y + LINE, local.strftime("%H:%M"), anchor="start"))
        midnight = local.hour == 0 and local.minute == 0
        if midnight and (local.date() - start.date()).days % day_step == 0:
            parts.append(_line(x, y, x, y + 2 * LINE, "baseline"))
            parts.append(_text(x + 3, y + 2 * LINE, local.date().isoformat(), anchor="start"))
    return parts


def _occupancy_chart(hours: Sequence[HourOccupancy | Gap]) -> str:
    """Mean (bars) and most (ticks) people per hour; hours without footage shaded, never drawn as zero."""
    y_max, ticks = _count_ticks(max((h.max or 0 for h in hours if isinstance(h, HourOccupancy)), default=0) or 1)
    plot = Plot(top=12, height=180, y_max=y_max)
    centers, slot = _slots(len(hours))
    parts = plot.axis(ticks, lambda t: f"{t:.0f}")
    parts += _shade(plot, slot, ["no footage" if isinstance(h, Gap) or h.mean is None else None for h in hours])
    for x, h in zip(centers, hours, strict=True):
        if isinstance(h, HourOccupancy) and h.mean is not None:
            parts.append(_rect(x - slot * 0.35, plot.y(h.mean), slot * 0.7, plot.bottom - plot.y(h.mean), "bar"))
            parts.append(_line(x - slot * 0.4, plot.y(h.max or 0), x + slot * 0.4, plot.y(h.max or 0), "peak"))
    parts += _hour_labels(hours, slot, plot.bottom)
    return _svg(plot.bottom + 2 * LINE + 8, "Occupancy per hour: mean and most people seen", parts)


def _distancing_chart(distancing: Sequence[DayDistancing | Gap], days: Sequence[DayRate | Gap]) -> str:
    plot = Plot(top=12, height=180, y_max=1.0)
    centers, slot = _slots(len(distancing))
    states = ["no footage" if isinstance(g, Gap) or isinstance(d, Gap) else None if g.share_frames_close is not None
              else "not measured" if d.windows else "no footage"
              for g, d in zip(distancing, days, strict=True)]  # fmt: skip
    parts = plot.axis(PERCENT_TICKS, _percent) + _shade(plot, slot, states)
    for x, g in zip(centers, distancing, strict=True):
        if isinstance(g, DayDistancing) and g.share_frames_close is not None:
            top = plot.y(g.share_frames_close)
            parts.append(_rect(x - slot * 0.3, top, slot * 0.6, plot.bottom - top, "bar"))
            if slot >= 48:
                parts.append(_text(x, top - 4, _pct(g.share_frames_close), cls="value"))
    lines = [_gap_lines(g) if isinstance(g, Gap) else [g.day.isoformat()] if g.close_contacts is None
             else [g.day.isoformat(), f"{g.close_contacts} contacts"] for g in distancing]  # fmt: skip
    labels, label_height = _slot_labels(centers, slot, plot.bottom, lines)
    return _svg(plot.bottom + label_height, "Share of analysed frames with a close pair, per day", parts + labels)


# --- the page --------------------------------------------------------------------------------------------------


def _header(r: SiteReport) -> str:
    s = r.site
    profile = PROFILES.get(s.profile or "", "")
    stored = "".join(
        f"<li>{_e(u.profile or 'none (rows written before privacy profiles)')}, k_min = {_e(u.k_min)}:"
        f" {u.windows} window(s)</li>"
        for u in r.stored_under
    )
    return (
        "<dl>"
        f"<dt>Site kind</dt><dd>{_e(s.kind or 'not recorded')}</dd>"
        f"<dt>Time zone</dt><dd>{_e(s.timezone)}{'' if s.kind else ' (not recorded; UTC assumed)'}"
        " — days and hours below are this zone's</dd>"
        f"<dt>Privacy profile</dt><dd>{_e(s.profile or 'not recorded')}{f' ({_e(profile)})' if profile else ''}</dd>"
        f"<dt>Minimum cell size k_min</dt><dd>{_e(s.k_min if s.k_min is not None else 'not recorded')}"
        " — a window with fewer people keeps only its people counts, a day with fewer has no mask rate</dd>"
        f"<dt>Rows of this period were stored under</dt><dd><ul>{stored}</ul></dd>"
        "</dl>"
    )


def _summary(r: SiteReport, sid: str) -> str:
    days = [d for d in r.days if isinstance(d, DayRate)]
    with_footage = [d for d in days if d.windows]
    opt_outs = sum(d.opt_outs or 0 for d in days)
    raised = sum(a.raised for a in r.alert_days)
    in_period = sum(d.days() if isinstance(d, Gap) else 1 for d in r.days)
    return (
        f'<p class="summary">Footage on <strong>{len(with_footage)}</strong> of {in_period} day(s),'
        f" {sum(d.windows for d in days)} window(s), {_minutes(sum(d.covered_s for d in days))} minutes covered."
        f' Opt-outs (people who shook their head "no" and were not counted): <strong id="{sid}-opt-outs">{opt_outs}'
        f"</strong>. Alerts raised: {raised}.</p>"
    )


def _signage_section(r: SiteReport, sid: str) -> str:
    tz = r.site.timezone
    parts = ["<h3>Opt-out signs</h3>"]
    if r.signs:
        signs = [
            "".join((_text_cell(s.camera_id), _text_cell(s.text), _text_cell(s.language), _text_cell(s.location),
                     _text_cell(_local(s.posted_at, tz)), _text_cell(_local(s.removed_at, tz) or "still up")))
            for s in r.signs
        ]  # fmt: skip
        parts.append(_table(f"{sid}-signs", "Signs up during the period",
                            ("camera", "text", "language", "where", "posted", "removed"), signs))  # fmt: skip
    else:
        parts.append("<p><strong>No opt-out sign is recorded for any part of this period.</strong></p>")
    if r.overrides:
        overrides = [
            "".join((_text_cell(o.camera_id), _text_cell(o.footage_start.strftime("%Y-%m-%d %H:%M")),
                     _text_cell(o.footage_end.strftime("%Y-%m-%d %H:%M")), _text_cell(o.source_path),
                     _text_cell(o.status), _text_cell(o.reason)))
            for o in r.overrides
        ]  # fmt: skip
        parts.append(
            _table(
                f"{sid}-overrides",
                "Footage analysed without a sign, and the reason recorded",
                ("camera", "footage from (local)", "to (local)", "file", "status", "reason"),
                overrides,
            )
        )
    else:
        parts.append("<p>No footage of this period was analysed without a sign.</p>")
    return "".join(parts)


def _mask_section(r: SiteReport, sid: str) -> str:
    k = r.site.k_min
    rows = []
    for d in r.days:
        if isinstance(d, Gap):
            rows.append(_gap_row(d, 12))
            continue
        hidden = "suppressed" if d.suppressed else "missing"
        rows.append("".join((
            _cell(d.day), _text_cell(_day_state(d, k) or "plotted"), _cell(d.windows), _cell(d.covered_s,
            _minutes(d.covered_s)), _text_cell(_basis(d.basis)), _cell(d.n),
            _cell(d.rate, _pct(d.rate) if d.rate is not None else None, hidden),
            _cell(d.low, _pct(d.low) if d.low is not None else None, hidden),
            _cell(d.high, _pct(d.high) if d.high is not None else None, hidden),
            _cell(d.suppressed, "yes" if d.suppressed else "no"), _cell(d.windows_suppressed), _cell(d.opt_outs),
        )))  # fmt: skip
    table = _table(
        f"{sid}-mask-daily", "Mask rate per day (mask_rate_daily)",
        ("day", "shown as", "windows", "minutes covered", "basis", "denominator n", "mask rate", "95% low",
         "95% high", "suppressed", "windows suppressed", "opt-outs"), rows,
    )  # fmt: skip
    parts = [
        "<h3>Mask wearing, per day</h3>",
        '<p class="legend"><span class="key rate-key"></span> corrected mask rate, '
        '<span class="key band-key"></span> its 95% interval; under each day its denominator. '
        '<span class="key missing-key"></span> no footage or none classified (missing, not zero); '
        f'<span class="key suppressed-key"></span> {_e(_fewer_than_k(k))}: not shown.</p>',
        _mask_daily_chart(r.days, k),
        _details(table),
    ]
    if r.windows:
        parts += ["<h3>Mask wearing, per window</h3>", _windows_legend(r.windows, k), _mask_windows_chart(r.windows, k),
                  _details(_windows_table(r.windows, sid))]  # fmt: skip
    return "".join(parts)


def _windows_legend(windows: Sequence[WindowRate], k_min: int | None) -> str:
    # Windows are narrow on a day's time axis: the counts say what the thin shaded columns are.
    rated = sum(w.rate is not None for w in windows)
    suppressed = sum(w.suppressed for w in windows)
    return (
        f'<p class="legend">{len(windows)} window(s): {rated} with a rate (point and 95% interval), '
        f'<span class="key suppressed-key"></span>{suppressed} {_e(_fewer_than_k(k_min))}, '
        f'<span class="key missing-key"></span>{len(windows) - rated - suppressed} with none classified on their'
        " basis (no count, so no rate).</p>"
    )


def _windows_table(windows: Sequence[WindowRate], sid: str) -> str:
    rows = []
    for w in windows:
        low, high = w.interval() or (None, None)
        hidden = "suppressed" if w.suppressed else "missing"
        rows.append("".join((
            _cell(w.local_start, w.local_start.strftime("%H:%M")), _text_cell(w.camera_id),
            _text_cell(_basis(w.basis)), _cell(w.n),
            _cell(w.rate, _pct(w.rate) if w.rate is not None else None, hidden),
            _cell(low, _pct(low) if low is not None else None, hidden),
            _cell(high, _pct(high) if high is not None else None, hidden),
            _cell(w.suppressed, "yes" if w.suppressed else "no"),
        )))  # fmt: skip
    return _table(f"{sid}-mask-windows", "Mask rate per window (mask_rate_windows; interval: rate ± 1.96 rate_sd)",
                  ("window start (local)", "camera", "basis", "n", "mask rate", "95% low", "95% high", "suppressed"),
                  rows)  # fmt: skip


def _occupancy_section(r: SiteReport, sid: str) -> str:
    parts = ["<h3>Occupancy per hour</h3>",
             '<p class="legend"><span class="key bar-key"></span> mean people per analysed frame, '
             '<span class="key peak-key"></span> most people seen at once; '
             '<span class="key missing-key"></span> no footage (missing, not zero).</p>']  # fmt: skip
    for i, (camera, hours) in enumerate(r.hours.items()):
        rows = [_gap_row(h, 6) if isinstance(h, Gap) else "".join((
            _cell(h.local_hour, h.local_hour.strftime("%Y-%m-%d %H:%M")), _cell(h.hour_start), _cell(h.frames_analysed),
            _cell(h.covered_s, _minutes(h.covered_s)), _cell(h.mean, f"{h.mean:.2f}" if h.mean is not None else None),
            _cell(h.max),
        )) for h in hours]  # fmt: skip
        table = _table(f"{sid}-occupancy-{i}", f"Occupancy per hour, camera {camera} (occupancy_hourly)",
                       ("local hour", "hour start (UTC)", "frames analysed", "minutes covered", "mean people",
                        "most people"), rows)  # fmt: skip
        parts += [f"<h4>Camera {_e(camera)}</h4>", _occupancy_chart(hours), _details(table)]
    return "".join(parts)


def _distancing_section(r: SiteReport, sid: str) -> str:
    if not r.distancing:
        profiles = {u.profile for u in r.stored_under} | {r.site.profile}
        why = (
            f"the {FR_TRANSPORT} privacy profile stores no distancing" if FR_TRANSPORT in profiles
            else "no camera of the site was calibrated (see `sanitary calibrate`)"
        )  # fmt: skip
        return f'<h3>Distancing</h3><p id="{sid}-no-distancing">Distancing was not measured in this period: {why}.</p>'
    rows = [_gap_row(g, 7) if isinstance(g, Gap) else "".join((
        _cell(g.day), _cell(g.frames_measured), _cell(g.close_pair_frames),
        _cell(g.share_frames_close, _pct(g.share_frames_close) if g.share_frames_close is not None else None),
        _cell(g.close_pairs_sum), _cell(g.close_contacts),
        _cell(g.nearest_min_m, f"{g.nearest_min_m:.2f} m" if g.nearest_min_m is not None else None),
    )) for g in r.distancing]  # fmt: skip
    table = _table(f"{sid}-distancing", "Distancing per day (distancing_daily)",
                   ("day", "frames measured", "frames with a close pair", "share of frames", "close pairs (sum)",
                    "close contacts", "nearest distance"), rows)  # fmt: skip
    return (
        "<h3>Distancing, per day</h3>"
        '<p class="legend"><span class="key bar-key"></span> share of analysed frames with two people closer than the'
        " threshold; under each day, close contacts (pairs that stayed close).</p>"
        + _distancing_chart(r.distancing, r.days)
        + _details(table)
    )


def _alerts_section(r: SiteReport, sid: str) -> str:
    daily = ["".join((_cell(a.day), _text_cell(a.camera_id), _text_cell(a.rule), _text_cell(a.measure),
                      _cell(a.raised), _cell(a.cleared), _cell(a.undelivered))) for a in r.alert_days]  # fmt: skip
    events = ["".join((
        _text_cell(a.local_time.strftime("%Y-%m-%d %H:%M:%S")), _text_cell(a.camera_id), _text_cell(a.rule),
        _text_cell(a.state), _text_cell(a.measure), _text_cell(a.zone), _text_cell(f"{a.direction} {a.threshold:g}"),
        _cell(a.value, f"{a.value:.3g}"), _text_cell(a.delivery),
    )) for a in r.alert_events]  # fmt: skip
    if not events:
        return "<h3>Alerts</h3><p>No alert was raised or cleared in this period.</p>"
    return (
        "<h3>Alerts</h3>"
        + _table(f"{sid}-alerts-daily", "Alerts per day (alerts_daily)",
                 ("day", "camera", "rule", "measure", "raised", "cleared", "not delivered"), daily)
        + _table(f"{sid}-alerts", "Each alert (local time) and whether it reached its sinks",
                 ("time", "camera", "rule", "state", "measure", "zone", "threshold", "value", "delivery"), events)
    )  # fmt: skip


HOW_TO_READ = """
<section id="how-to-read"><h2>How to read this report</h2><ul>
<li>Only counts per camera and time window are stored: no image, face or person ever leaves the camera's machine.
Days and hours are the site's local ones.</li>
<li>A mask rate is the share of people (or of face-frames, where people were not tracked) wearing a mask correctly,
among those whose mask could be read. It is corrected for the known errors of the classifier, so it is not a raw
count.</li>
<li>The shaded band and the bars around a point give its 95% interval: the true rate is very likely inside. Few
people make a wide interval. A day's interval treats its windows as independent and is somewhat too narrow.</li>
<li>Grey means missing: no footage, or nothing that could be measured. Missing is never zero. Amber means
suppressed: fewer than k_min people were behind the rate, so showing it could tell who wore a mask.</li>
<li>Opt-outs are people who shook their head "no"; they were taken out of every count.</li>
</ul></section>"""

CSS = f"""
body {{ font: 14px/1.45 system-ui, "DejaVu Sans", Arial, sans-serif; color: #1b1b1b; margin: 24px auto;
  max-width: {WIDTH + 20}px; padding: 0 12px; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }} h2 {{ border-bottom: 2px solid #ccc; margin-top: 36px; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }} dt {{ font-weight: 600; }}
dd {{ margin: 0; }} dd ul {{ margin: 0; padding-left: 18px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
caption {{ text-align: left; font-weight: 600; padding: 4px 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
td[data-value] {{ font-variant-numeric: tabular-nums; }} td.missing {{ color: #777; font-style: italic; }}
details {{ margin: 4px 0 20px; }} summary {{ cursor: pointer; color: #1f4f8a; }}
svg {{ display: block; max-width: 100%; height: auto; margin: 6px 0; }}
svg text {{ font: 11px system-ui, "DejaVu Sans", Arial, sans-serif; }}
.axis {{ fill: #333; }} .note {{ fill: #555; }}
.value {{ fill: {BLUE}; font-weight: 600; paint-order: stroke; stroke: #fff; stroke-width: 3px; }}
.grid {{ stroke: #e2e2e2; }} .baseline {{ stroke: #555; }}
.band {{ fill: {BLUE}; fill-opacity: 0.18; stroke: none; }} .rate {{ fill: none; stroke: {BLUE}; stroke-width: 2; }}
.whisker {{ stroke: {BLUE}; stroke-width: 1.5; }} .point {{ fill: {BLUE}; }}
.bar {{ fill: #7fa7d6; }} .peak {{ stroke: #17324f; stroke-width: 2; }}
rect.missing {{ fill: {GREY_FILL}; stroke: #bbb; stroke-dasharray: 3 3; }}
rect.suppressed {{ fill: {AMBER_FILL}; stroke: #d9b36c; stroke-dasharray: 3 3; }}
rect.narrow {{ stroke: none; }} rect.narrow.missing {{ fill: #c9c9c9; }} rect.narrow.suppressed {{ fill: #e3b865; }}
.legend {{ font-size: 13px; color: #333; }}
.key {{ display: inline-block; width: 14px; height: 10px; margin: 0 3px 0 8px; vertical-align: baseline; }}
.rate-key {{ background: {BLUE}; height: 3px; }} .band-key {{ background: {BLUE}; opacity: 0.25; }}
.missing-key {{ background: {GREY_FILL}; border: 1px dashed #bbb; }}
.suppressed-key {{ background: {AMBER_FILL}; border: 1px dashed #d9b36c; }}
.bar-key {{ background: #7fa7d6; }} .peak-key {{ background: #17324f; height: 2px; }}
.summary {{ background: #f4f6f9; padding: 8px 12px; }} .warning {{ color: #8a4b00; }}
"""


def _site_section(r: SiteReport, index: int) -> str:
    sid = f"s{index}"
    return (
        f'<section id="{sid}"><h2>Site {_e(r.site.site_id)}</h2>'
        + _header(r)
        + _summary(r, sid)
        + _signage_section(r, sid)
        + _mask_section(r, sid)
        + _occupancy_section(r, sid)
        + _distancing_section(r, sid)
        + _alerts_section(r, sid)
        + "</section>"
    )


def _page(db: Path, period: Period, reports: Sequence[SiteReport], without: Sequence[str]) -> str:
    title = f"Sanitary compliance report, {period.start} to {period.end}"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    empty = f'<p class="warning">No footage in this period for: {_e("; ".join(without))}.</p>' if without else ""
    contents = "".join(f'<li><a href="#s{i}">{_e(r.site.site_id)}</a></li>' for i, r in enumerate(reports))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
        f"<header><h1>{_e(title)}</h1><p>Local days {period.start} to {period.end} inclusive, from {_e(db.name)};"
        f' generated {generated}. <a href="#how-to-read">How to read this report</a>.</p>'
        f"<nav><ul>{contents}</ul></nav>{empty}</header>"
        + "".join(_site_section(r, i) for i, r in enumerate(reports))
        + HOW_TO_READ
        + "</body></html>"
    )
