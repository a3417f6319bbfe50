"""Commands for the stored aggregates and the registers, which analyse no footage: query, report, merge, export,
import, audit, signage, alerts. None of them loads a model or the tracker, and each imports what it works with when
it runs, so that `query` starts without the report, the audit or numpy.

Stored text (a sign's words, an id, a rule, a column name) goes through `visible` before it reaches the terminal:
anyone who wrote the file, or an export imported into it, chose it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from sanitary.cli.checks import MAX_SECONDS, language_tag, local_time, positive, within
from sanitary.cli.common import CameraOption, DbOption, echo, friendly, plain_console
from sanitary.errors import SanitaryError
from sanitary.reporting.visible import visible

signage_app = typer.Typer(no_args_is_help=True, help="The register of opt-out signs: what they say, where, when.")
alerts_app = typer.Typer(no_args_is_help=True, help="Threshold alerts raised and cleared, as stored.")


@friendly
def query(
    sql: Annotated[str, typer.Argument(help='One SQL query, e.g. "SELECT * FROM mask_rate_daily".')],
    db: DbOption,
    output: Annotated[str, typer.Option("--format", help="table, csv or json (a JSON array of objects).")] = "table",
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Seconds the query may run before it is stopped (default: a minute; Ctrl-C too)."
        ),
    ] = None,
) -> None:
    """Answer a SQL question on a read-only connection: a query that would write is refused."""
    from sanitary.storage.query import as_json, run_query

    if output not in ("table", "csv", "json"):
        raise SanitaryError(f"--format {output!r} is unknown; use table, csv or json")
    positive(timeout, "--timeout", MAX_SECONDS)
    result = run_query(db, sql, timeout)
    if output == "csv":
        # CSV is data for a program or a spreadsheet, written as stored; on a terminal it is shown as text is.
        shown = visible if sys.stdout.isatty() else str
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([shown(c) for c in result.columns])
        writer.writerows([shown(v) if isinstance(v, str) else v for v in row] for row in result.rows)
    elif output == "json":
        sys.stdout.write(as_json(result) + "\n")  # JSON escapes control and bidi characters (\uXXXX)
    else:
        cells = (("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row)
                 for row in result.rows)  # fmt: skip
        _print_table(None, result.columns, cells, width=max(120, 16 * len(result.columns)))


def _print_table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[str]], width: int) -> None:
    """A table on stdout, every title, heading and cell shown as `visible` has it."""
    from rich.table import Table

    table = Table(*(visible(c) for c in columns), title=visible(title) if title else None)
    for row in rows:
        table.add_row(*(visible(c) for c in row))
    plain_console(width=width).print(table)


@friendly
def report(
    db: DbOption,
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (the site's local day).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD, included.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    site: Annotated[str | None, typer.Option("--site", help="Only this site (default: every site).")] = None,
) -> None:
    """Write a self-contained HTML report (charts inline, nothing fetched when viewed) for a period."""
    from sanitary.reporting.report import build_report

    page = build_report(db, _day(start, "--from"), _day(end, "--to"), site)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise SanitaryError(f"{out}: cannot write the report here ({exc.strerror}); choose another --out") from None
    echo(f"wrote {out}")


def _day(text: str, option: str) -> date:
    from sanitary.config import check_year

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise SanitaryError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2021-03-01") from None
    check_year(day, option)
    return day


@friendly
def merge(
    sources: Annotated[list[Path], typer.Argument(help="DuckDB files of sites or units that ran separately.")],
    into: Annotated[Path, typer.Option("--into", help="The DuckDB file that gathers them (created if absent).")],
) -> None:
    """Gather aggregates into one file; merging the same files again changes nothing."""
    from sanitary.storage.merge import merge_into

    summary = merge_into(sources, into)
    for part in summary.inputs:
        echo(
            f"{part.path}: {part.sources_added} sources added, {part.sources_replaced} replaced by a newer analysis, "
            f"{part.sources_unchanged} unchanged; {part.windows} windows, {part.runs} runs, {part.signs} signs"
        )


@friendly
def export_command(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="Folder the Parquet files and their manifest go to.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Windows ending after this time (default: not yet acknowledged).")
    ] = None,
    ack: Annotated[
        list[Path] | None, typer.Option("--ack", help="Acknowledgement files from the central site, applied first.")
    ] = None,
    purge_days: Annotated[
        float | None, typer.Option("--purge-days", help="Then delete acknowledged windows older than this.")
    ] = None,
) -> None:
    """Ship a unit's aggregates home: Parquet files partitioned by date and unit, with a checksummed manifest."""
    from sanitary.storage.shipping import acknowledge, export_parquet, purge_shipped

    within(purge_days, "--purge-days", 0.0, 36_500.0)
    for path in ack or []:
        echo(f"{path}: {acknowledge(db, path)} windows acknowledged by the central site")
    summary = export_parquet(db, out, local_time(since, ZoneInfo("UTC"), "--since") if since is not None else None)
    echo(f"export {summary.export_id}: {summary.windows} windows in {len(summary.files)} files, {summary.manifest}")
    if purge_days is not None:
        purged = purge_shipped(db, purge_days, datetime.now(UTC))
        echo(f"purged {purged} acknowledged windows older than {purge_days:g} days")


@friendly
def import_command(
    folders: Annotated[list[Path], typer.Argument(help="Folders holding exports (manifest-*.json).")],
    db: DbOption,
    ack_dir: Annotated[
        Path | None, typer.Option("--ack-dir", help="Where acknowledgements go (default: beside each manifest).")
    ] = None,
) -> None:
    """Merge exported aggregates into the central file; importing the same files again changes nothing."""
    from sanitary.storage.shipping import import_parquet

    summary = import_parquet(folders, db, ack_dir)
    for part in summary.exports:
        echo(
            f"{part.manifest}: {part.windows_written} windows written, {part.windows_unchanged} already held;"
            f" acknowledgement {part.ack}"
        )


@friendly
def audit(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to check (exports, logs, the DuckDB file).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help="A DuckDB file: checked, and what it holds is shown.")] = None,
) -> None:
    """Check that no image, face box, landmark, embedding or per-person record was written anywhere."""
    from sanitary.governance.audit import audit_paths
    from sanitary.governance.evidence import db_evidence

    if not paths and db is None:
        raise SanitaryError("nothing to audit; pass --db FILE and/or files or folders")
    if db is not None:
        for evidence in db_evidence(db):
            echo(f"{evidence.heading}:")
            for line in evidence.lines:
                echo(f"  {line}")
    checked = [*(paths or []), *([db] if db else [])]
    leaks = audit_paths(checked)
    for leak in leaks:
        echo(f"{leak.path}: {leak.where}: {leak.what}")
    if leaks:
        typer.echo(f"error: {len(leaks)} possible leaks of personal data", err=True)
        raise typer.Exit(1)
    echo(f"clean: no image data, embedding or per-person record in {len(checked)} path(s)")


@signage_app.command("add")
@friendly
def signage_add(
    db: DbOption,
    camera: CameraOption,
    text: Annotated[str, typer.Option("--text", help="What the sign says, word for word.")],
    language: Annotated[str, typer.Option("--language", help="Language tag of the text: fr, fr-FR, de-CH...")],
    where: Annotated[str, typer.Option("--where", help="Where the sign stands.")],
    posted: Annotated[str, typer.Option("--posted", help="When it was put up, ISO 8601 (camera time zone if naive).")],
    removed: Annotated[str | None, typer.Option("--removed", help="When it was taken down, if it was.")] = None,
) -> None:
    """Record an opt-out sign for a camera."""
    from sanitary.config import load_camera
    from sanitary.storage.signage import Sign
    from sanitary.storage.store import Store

    language_tag(language, "--language")
    cam = load_camera(camera)
    posted_at = local_time(posted, cam.tz, "--posted")
    removed_at = local_time(removed, cam.tz, "--removed") if removed else None
    if removed_at is not None and removed_at <= posted_at:
        raise SanitaryError(f"--removed {removed} is not after --posted {posted}; check the two times")
    for value, option in ((text, "--text"), (language, "--language"), (where, "--where")):
        if not value.strip():
            raise SanitaryError(f"{option} is empty; say what the sign says, in which language and where it stands")
    sign = Sign(uuid.uuid4().hex[:8], cam.site_id, cam.camera_id, text, language, where, posted_at, removed_at)
    with Store(db) as store:
        store.signage.add(sign)
    echo(f"sign {sign.sign_id} recorded for {cam.site_id}/{cam.camera_id}")


@signage_app.command("list")
@friendly
def signage_list(
    db: DbOption,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
    camera_id: Annotated[str | None, typer.Option("--camera-id", help="Only this camera.")] = None,
) -> None:
    """List the signs recorded, with when each stood."""
    from sanitary.storage.query import read_only
    from sanitary.storage.registers import SignRegister

    with read_only(db) as con:
        signs = SignRegister(con, db).signs(site, camera_id)
    rows = (
        (s.sign_id, s.site_id, s.camera_id, s.posted_at.isoformat(timespec="minutes"),
         s.removed_at.isoformat(timespec="minutes") if s.removed_at else "still up", s.language, s.location, s.text)
        for s in signs
    )  # fmt: skip
    columns = ("id", "site", "camera", "posted", "removed", "language", "where", "text")
    _print_table(f"opt-out signs in {db}", columns, rows, width=200)


@signage_app.command("remove")
@friendly
def signage_remove(
    sign_id: Annotated[str, typer.Argument(help="The sign's id, from `sanitary signage list`.")],
    db: DbOption,
    at: Annotated[str, typer.Option("--at", help="When it was taken down, ISO 8601 with its offset.")],
) -> None:
    """Record that a sign was taken down (the record is kept: footage from while it stood stays covered)."""
    from sanitary.storage.connection import must_exist
    from sanitary.storage.store import Store

    removed_at = local_time(at, ZoneInfo("UTC"), "--at")
    must_exist(db)  # a sign to take down is in a file that exists: a mistyped --db must not become an empty one
    with Store(db) as store:
        sign = store.signage.remove(sign_id, removed_at)
    echo(f"sign {sign.sign_id} of {sign.site_id}/{sign.camera_id} removed at {removed_at.isoformat()}")


@alerts_app.command("list")
@friendly
def alerts_list(
    db: DbOption,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
    camera_id: Annotated[str | None, typer.Option("--camera-id", help="Only this camera.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per alert on stdout.")] = False,
) -> None:
    """List the alerts stored, oldest first, with whether each reached its sinks."""
    from sanitary.storage.query import json_value, read_only
    from sanitary.storage.registers import AlertRegister

    with read_only(db) as con:
        alerts = AlertRegister(con).stored(site, camera_id)
    if as_json:
        for alert in alerts:
            sys.stdout.write(json.dumps(json_value(dataclasses.asdict(alert)), allow_nan=False) + "\n")
        return
    columns = ("event_at", "site_id", "camera_id", "rule", "state", "measure", "zone", "value", "threshold", "delivery")
    rows = (
        (f"{v:.3g}" if isinstance(v, float) else str(v or "") for v in (getattr(alert, c) for c in columns))
        for alert in alerts
    )
    _print_table(f"alerts in {db}", columns, rows, width=200)
