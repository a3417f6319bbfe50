"""Commands that analyse no footage load no model, decoder or tracker: an official's query on a bus unit's file must
not pay for (or depend on) the analysis stack. benchmarks/startup_benchmark.py times them; this keeps them light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sanitary.storage.store import Store

HEAVY = ("onnxruntime", "cv2", "deep_sort_realtime", "scipy", "torch", "ray")
STAGES = ("sanitary.perception.people", "sanitary.perception.faces", "sanitary.perception.masks",
          "sanitary.tracking.tracker", "sanitary.runtime.analyser")  # fmt: skip

# The command runs in this process as `sanitary` runs it; the modules it loaded are printed when it exits.
RUN = """
import json, sys
from sanitary.cli.app import app
try:
    app(sys.argv[1:], prog_name="sanitary")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(*args: str) -> tuple[int, set[str]]:
    result = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=120)
    seen = json.loads(result.stdout.splitlines()[-1])
    return seen["code"], set(seen["modules"])


@pytest.mark.parametrize(
    "command",
    [
        ("--help",),
        ("query", "SELECT count(*) FROM window_aggregates", "--db", "{db}"),
        ("signage", "list", "--db", "{db}"),
        ("alerts", "list", "--db", "{db}", "--json"),
        ("audit", "--db", "{db}"),
        ("export", "--db", "{db}", "--out", "{out}"),
    ],
)
def test_commands_without_footage_load_no_model_decoder_or_tracker(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = tmp_path / "unit.duckdb"
    Store(db).close()
    code, modules = loaded(*(a.format(db=db, out=tmp_path / "out") for a in command))
    assert code in (0, None)
    assert [m for m in HEAVY if m in modules] == []
    assert [m for m in STAGES if m in modules] == []


def test_an_analysis_command_does_load_them(tmp_path: Path) -> None:
    # The check above could pass by looking for the wrong names: `count` on one image must show them loaded.
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "frame.jpg"), np.full((120, 160, 3), 128, np.uint8))
    code, modules = loaded("count", str(tmp_path), "--json")
    assert code in (0, None)
    assert {"onnxruntime", "cv2", "deep_sort_realtime", *STAGES} <= modules


def test_query_loads_only_what_answering_needs(tmp_path: Path) -> None:
    # An official's question should cost the interpreter, the command line, DuckDB and the table: not numpy (the
    # camera config), the store and its migrations (only for an older file), the report or the audit.
    db = tmp_path / "unit.duckdb"
    Store(db).close()
    code, modules = loaded("query", "SELECT 1", "--db", str(db))
    assert code in (0, None)
    unneeded = ("numpy", "sanitary.config", "sanitary.storage.store", "sanitary.reporting.report",
                "sanitary.governance.audit", "sanitary.storage.shipping", "sanitary.storage.merge")  # fmt: skip
    assert [m for m in unneeded if m in modules] == []


# Ctrl-C lands while the command's modules are imported: an import hook raises it there, as the signal would.
CTRL_C_WHILE_LOADING = """
import sys
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "sanitary.cli.app":
            raise KeyboardInterrupt
sys.meta_path.insert(0, CtrlC())
sys.argv = ["sanitary", "query", "select 1"]
from sanitary.__main__ import main
main()
"""


def test_ctrl_c_while_the_command_loads_is_one_line() -> None:
    result = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_LOADING], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (
        130,
        "error: stopped (Ctrl-C) before the command started; nothing was done\n",
    )
