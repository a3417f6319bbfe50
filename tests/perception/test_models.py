"""Opening an ONNX session: no telemetry identifier, and no BLAS thread pool spinning beside inference."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# numpy and scipy load their OpenBLAS before any session, as the command line does; then a session is opened.
OPENED = """
import json, os
import numpy, scipy.linalg
from threadpoolctl import threadpool_info
before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
from sanitary.perception.models import open_session
open_session("centerface.onnx", 1)
after = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(json.dumps({"before": before, "after": after, "telemetry": os.environ.get("ORT_DISABLE_TELEMETRY")}))
"""


def python(code: str, **env: str) -> str:
    """`code` run in a fresh process whose environment sets neither variable, unless `env` does."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "ORT_DISABLE_TELEMETRY")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**clean, **env}, check=True
    )
    return result.stdout


def opened(**env: str) -> dict:
    return json.loads(python(OPENED, **env))


def test_importing_sanitary_sets_no_environment_variable() -> None:
    code = "import os, sanitary; print(os.environ.get('OPENBLAS_NUM_THREADS'), os.getenv('ORT_DISABLE_TELEMETRY'))"
    assert python(code) == "None None\n"


def test_a_session_leaves_no_identifier_in_home(tmp_path: Path) -> None:
    python(
        "from sanitary.perception.models import open_session; open_session('centerface.onnx', 1)", HOME=str(tmp_path)
    )
    assert list(tmp_path.rglob("*")) == []


def test_models_is_the_only_importer_of_onnxruntime() -> None:
    # onnxruntime writes its identifier when imported: the module that turns that off must be the first to import it.
    importers = set()
    for path in (ROOT / "sanitary").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name.split(".")[0] == "onnxruntime" for name in names):
                importers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"sanitary/perception/models.py"}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts one thread on one core: nothing to limit")
def test_a_session_keeps_every_loaded_blas_to_one_thread_and_telemetry_off() -> None:
    seen = opened()
    assert len(seen["before"]) == 2  # numpy's and scipy's own OpenBLAS
    assert min(seen["before"]) > 1
    assert seen["after"] == [1, 1]
    assert seen["telemetry"] == "1"


def test_an_operators_own_blas_setting_is_left_alone() -> None:
    seen = opened(OPENBLAS_NUM_THREADS="2", ORT_DISABLE_TELEMETRY="0")
    assert seen["after"] == [2, 2]
    assert seen["telemetry"] == "0"
