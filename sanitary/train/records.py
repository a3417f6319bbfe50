"""What a model card records about its run: file hashes, paths shown without one machine's layout, versions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shown(path: Path) -> str:
    """Path relative to the project when inside it, so that cards do not carry one machine's layout."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": importlib.metadata.version("onnx"),
        "onnxruntime": importlib.metadata.version("onnxruntime"),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
