"""Where shipped model files live and how an ONNX session is opened for CPU inference."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sanitary.errors import SanitaryError

if TYPE_CHECKING:
    import onnxruntime as ort

# The package data `sanitary.weights` (the checkout's weights/ folder, see pyproject.toml), unless overridden.
WEIGHTS_DIR = Path(os.environ.get("SANITARY_WEIGHTS") or str(importlib.resources.files("sanitary.weights")))


def open_session(file_name: str, threads: int = 0) -> ort.InferenceSession:
    """A CPU session for a model in weights/; `threads` 0 lets onnxruntime use one per core."""
    path = WEIGHTS_DIR / file_name
    if not path.is_file():
        raise SanitaryError(
            f"{path}: model file missing; reinstall sanitary or set SANITARY_WEIGHTS to a folder holding {file_name}"
        )
    return cpu_session(path, threads)


def cpu_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU session for the ONNX model at `path`, with no BLAS thread pool spinning beside it."""
    # ONNX Runtime writes a device id and a telemetry database under ~/.cache/Microsoft as soon as it is imported
    # (seen with strace in tests/governance/test_anonymity_run.py; setting this any later, even before the first
    # session, is too late): a persistent identifier of the unit, which a privacy-by-design tool must not leave
    # behind. This is the package's only import of onnxruntime (tests/perception/test_models.py checks), and it is
    # made here, not at the top, so that commands which analyse no footage never load it.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    _quiet_blas()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Explicit provider: some onnxruntime builds would otherwise pick a remote or GPU provider first.
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _quiet_blas() -> None:
    # BLAS beside inference only ever sees tiny matrices (the tracker's Kalman filter, 3x3 homographies), while
    # onnxruntime keeps the cores busy; OpenBLAS's own thread pool then spins against it and halves the frame rate
    # (measured: 9.1 -> 16.4 frames/s on 2 cores). OpenBLAS reads OPENBLAS_NUM_THREADS once, when it is loaded:
    # the variable reaches the copies loaded from now on (scipy's, when the tracker comes later), threadpoolctl
    # the ones already loaded (numpy's). An operator's own setting is left alone.
    from threadpoolctl import threadpool_limits

    if "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        threadpool_limits(1, user_api="blas")
