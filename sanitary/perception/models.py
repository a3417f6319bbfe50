"""Where shipped model files live and how an ONNX session is opened for CPU inference."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from sanitary.errors import SanitaryError

WEIGHTS_DIR = Path(os.environ.get("SANITARY_WEIGHTS", Path(__file__).resolve().parents[2] / "weights"))


def open_session(file_name: str, threads: int = 0) -> ort.InferenceSession:
    """A CPU session for a model in weights/; `threads` 0 lets onnxruntime use one per core."""
    path = WEIGHTS_DIR / file_name
    if not path.is_file():
        raise SanitaryError(
            f"{path}: model file missing; reinstall from a full checkout or set SANITARY_WEIGHTS to the weights folder"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Explicit provider: some onnxruntime builds would otherwise pick a remote or GPU provider first.
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
