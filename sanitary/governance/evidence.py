"""What a DuckDB file of sanitary's shows an official about how it was made: its schema, the privacy profile and
cell size behind its rows, what was suppressed, opted out, deleted by retention, and under which signs.

Read-only and factual: the anonymity audit (sanitary.governance.audit) says whether anything personal is in the file;
this says what is in it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from sanitary.storage.connection import connect


@dataclass(frozen=True)
class Evidence:
    heading: str
    lines: tuple[str, ...]


def db_evidence(path: Path) -> list[Evidence]:
    with connect(path, read_only=True) as con:
        tables = con.execute(
            "SELECT table_name, string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)"
            " FROM information_schema.columns WHERE table_schema = 'main'"
            " AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')"
            " GROUP BY table_name ORDER BY table_name"
        ).fetchall()
        names = {t for t, _ in tables}
        out = [Evidence("tables and their columns", tuple(f"{t}: {cols}" for t, cols in tables))]
        if "window_aggregates" not in names:
            return out
        out.append(
            _rows(
                con,
                "what the aggregates were made under",
                """
            SELECT coalesce(privacy_profile, '(before profiles)') || ', k_min ' || coalesce(k_min::VARCHAR, '-')
                   || ': ' || count(*) || ' windows, ' || count(*) FILTER (WHERE mask_suppressed)
                   || ' under k people (only their people counts kept), '
                   || coalesce(sum(opt_outs), 0) || ' head-shake opt-outs'
            FROM window_aggregates GROUP BY privacy_profile, k_min ORDER BY privacy_profile""",
            )
        )
        if "signage" in names:
            out.append(
                _rows(
                    con,
                    "opt-out signs",
                    """
                SELECT site_id || '/' || camera_id || ': "' || text || '" (' || language || ', ' || location
                       || ') from ' || posted_at || ' to ' || coalesce(removed_at::VARCHAR, 'now')
                FROM signage ORDER BY posted_at""",
                )
            )
            out.append(
                _rows(
                    con,
                    "runs",
                    """
                SELECT status || ': ' || count(*) || ' runs'
                       || coalesce(', ' || count(signage_override) || ' analysed without a sign on override', '')
                FROM runs GROUP BY status ORDER BY status""",
                )
            )
            out.append(
                _rows(
                    con,
                    "retention",
                    """
                SELECT site_id || '/' || camera_id || ': ' || windows_deleted || ' windows before ' || cutoff
                       || ' deleted at ' || deleted_at FROM retention_log ORDER BY deleted_at""",
                )
            )
        return out


def _rows(con: duckdb.DuckDBPyConnection, heading: str, sql: str) -> Evidence:
    lines = tuple(str(row[0]) for row in con.execute(sql).fetchall())
    return Evidence(heading, lines or ("none",))
