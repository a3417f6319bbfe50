"""Opening an ONNX session: no telemetry identifier, and no BLAS thread pool spinning beside inference."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_a_batch_run_in_parts_gives_what_one_run_gives() -> None:
    from sanitary.perception.models import MAX_BATCH, open_session

    session = open_session("centerface.onnx", 1)
    crops = np.random.default_rng(0).uniform(0, 255, (MAX_BATCH * 2 + 3, 3, 96, 96)).astype(np.float32)
    whole = session.session.run(None, {"input.1": crops})
    parts = session.run_batches("input.1", crops)
    assert [p.shape for p in parts] == [w.shape for w in whole]
    for p, w in zip(parts, whole, strict=True):
        np.testing.assert_allclose(p, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("raised", "model", "expected"),
    [
        (
            RuntimeError("Non-zero status code ... Failed to allocate memory for requested buffer of size 88473600"),
            "head_points.onnx",
            "out of memory running the model head_points.onnx; lower heads.max_pixels, or set heads.enabled = false",
        ),
        (
            MemoryError(),
            "mask_classifier.onnx",
            "out of memory running the model mask_classifier.onnx; free memory on the unit, or lower heads.max_pixels"
            " (or heads.enabled = false): the head model uses most",
        ),
    ],
)
def test_running_out_of_memory_is_one_line_naming_the_setting(raised: Exception, model: str, expected: str) -> None:
    from sanitary.errors import OutOfMemoryError
    from sanitary.perception.models import out_of_memory_as_error

    with pytest.raises(OutOfMemoryError) as caught, out_of_memory_as_error(model, "running"):
        raise raised
    assert str(caught.value) == expected
    assert caught.value.__suppress_context__


def test_other_errors_of_a_run_pass_through() -> None:
    from sanitary.perception.models import out_of_memory_as_error

    with pytest.raises(ValueError, match="wrong input"), out_of_memory_as_error("centerface.onnx", "running"):
        raise ValueError("wrong input")
