"""Every model file a run reads is one of its parameters (issue 28): footage done with one model is analysed again
with another, the person detector, the head model, the face detector and the mask classifier alike, read from the
weights folder in use (SANITARY_WEIGHTS)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sanitary.config import load_camera
from sanitary.perception import models
from sanitary.runtime.runs import model_files
from sanitary.storage.store import Store
from tests.conftest import NO_SIGN, PETS_CAMERA, ROOT, pets_camera

# An unknown field (number 1000, varint 1) at the end of the model's protobuf: the runtime ignores it, so the model
# still loads and runs, and its bytes are those of another model file.
UNKNOWN_FIELD = b"\xc0\x3e\x01"


@pytest.fixture(scope="module")
def footage(pets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three PETS frames and the shipped camera with its head model on (it runs on every image of a folder)."""
    tmp = tmp_path_factory.mktemp("models")
    frames = tmp / "frames"
    frames.mkdir()
    for image in sorted((pets / "frames").iterdir())[:3]:
        shutil.copy(image, frames)
    return frames, pets_camera(tmp, "", 2)


def weights_copy(folder: Path, changed: str | None) -> Path:
    copy = folder / "weights"
    shutil.copytree(models.WEIGHTS_DIR, copy, ignore=shutil.ignore_patterns("baselines", "mask_validation"))
    if changed:
        with (copy / changed).open("ab") as fh:
            fh.write(UNKNOWN_FIELD)
    return copy


def run(footage: tuple[Path, Path], db: Path, weights: Path | None) -> list[tuple[str, int]]:
    """Run the footage into `db` with the models in `weights` (the shipped ones for None): its runs by status."""
    frames, camera = footage
    env = {k: v for k, v in os.environ.items() if k != "SANITARY_WEIGHTS"}
    if weights is not None:
        env["SANITARY_WEIGHTS"] = str(weights)
    args = ["run", str(frames), "--camera", str(camera), "--db", str(db), *NO_SIGN]
    result = subprocess.run([sys.executable, "-m", "sanitary", *args], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with Store(db) as store:
        return store.con.execute("SELECT status, count(*) FROM runs GROUP BY 1 ORDER BY 1").fetchall()


@pytest.fixture(scope="module")
def done_db(footage: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("done") / "done.duckdb"
    assert run(footage, db, None) == [("done", 1)]
    return db


@pytest.mark.slow
def test_the_same_models_in_another_folder_find_the_footage_done(
    footage: tuple[Path, Path], done_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "again.duckdb"
    shutil.copy(done_db, db)
    assert run(footage, db, weights_copy(tmp_path, None)) == [("done", 1)]  # skipped: no run


@pytest.mark.slow
@pytest.mark.parametrize(
    "model", ["bytetrack_nano.dynamic.onnx", "head_points.onnx", "centerface.onnx", "mask_classifier.onnx"]
)
def test_a_changed_model_file_analyses_the_footage_again(
    footage: tuple[Path, Path], done_db: Path, tmp_path: Path, model: str
) -> None:
    db = tmp_path / "again.duckdb"
    shutil.copy(done_db, db)
    assert run(footage, db, weights_copy(tmp_path, model)) == [("done", 1), ("replaced", 1)]
    with Store(db) as store:
        runs = store.con.execute("SELECT count(DISTINCT run_id) FROM window_aggregates").fetchone()
    assert runs == (1,)  # the footage analysed again replaces its windows, never counted twice


def test_models_a_run_reads_are_those_the_config_asks_for() -> None:
    """Only the models the analysis opens are parameters: a model no analysis reads changes nothing."""
    pets = load_camera(PETS_CAMERA)
    assert model_files(pets) == ("bytetrack_nano.dynamic.onnx", "head_points.onnx", "centerface.onnx",
                                 "mask_classifier.onnx")  # fmt: skip
    other = dataclasses.replace(
        pets,
        detection=dataclasses.replace(pets.detection, model="yolox-nano-coco"),
        heads=dataclasses.replace(pets.heads, enabled=False),
    )
    assert model_files(other) == ("yolox_nano.dynamic.onnx", "centerface.onnx", "mask_classifier.onnx")
