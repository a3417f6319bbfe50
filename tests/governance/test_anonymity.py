"""The anonymity checker must find every way a face or a person can reach the disk, and stay quiet on the
project's own outputs (aggregates, count lines, camera configs), or nobody will keep running it."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import cv2
import duckdb
import numpy as np
import pytest

from sanitary.config import load_camera
from sanitary.governance import audit
from sanitary.governance.audit import AuditError, Leak, audit_paths
from sanitary.runtime.runs import config_params
from sanitary.storage.store import RunStart, Store
from tests.conftest import PETS_CAMERA
from tests.storage.test_merge import T0, analyse
from tests.storage.test_views import two_bases

DATASET = Path(__file__).resolve().parents[3] / "shared/datasets/facemask-andrewmvd"


def synthetic_face(size: int = 48) -> np.ndarray:
    """A face-sized BGR image any machine can make: noise under a drawn 'face', so codecs work for real."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    cv2.circle(image, (size // 2, size // 2), size // 3, (180, 160, 140), -1)
    cv2.circle(image, (size // 3, size // 2 - 4), 3, (30, 30, 30), -1)
    cv2.circle(image, (2 * size // 3, size // 2 - 4), 3, (30, 30, 30), -1)
    return image


def real_face_crop() -> np.ndarray:
    """The first annotated face of the face-mask data set, cut out as a pipeline's debug dump would."""
    images, annotations = DATASET / "images", DATASET / "annotations"
    if not images.is_dir() or not annotations.is_dir():
        pytest.skip(f"real face photos not available at {DATASET} (the shared data set is not mounted)")
    for xml_path in sorted(annotations.glob("*.xml")):
        photos = [images / f"{xml_path.stem}{ext}" for ext in (".png", ".jpg", ".jpeg")]
        image = next((cv2.imread(str(p)) for p in photos if p.is_file()), None)
        box = ET.parse(xml_path).find("object/bndbox")
        if image is None or box is None:
            continue
        x1, y1, x2, y2 = (int(float(box.findtext(k) or 0)) for k in ("xmin", "ymin", "xmax", "ymax"))
        crop = image[y1:y2, x1:x2]
        if crop.shape[0] >= 8 and crop.shape[1] >= 8:
            return np.ascontiguousarray(crop)
    pytest.skip(f"no readable annotated face in {DATASET}")


@pytest.fixture(params=["synthetic", "real"])
def face(request: pytest.FixtureRequest) -> np.ndarray:
    return synthetic_face() if request.param == "synthetic" else real_face_crop()


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok, ext
    return buffer.tobytes()


def leaks_at(leaks: list[Leak], path: Path) -> list[Leak]:
    return [leak for leak in leaks if leak.path == path]


def make_project_db(path: Path) -> None:
    """The pipeline's own schema with plausible rows: what a real run leaves behind."""
    con = duckdb.connect(str(path))
    con.execute(
        """
        CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        CREATE TABLE runs (
            run_id VARCHAR, source VARCHAR, source_path VARCHAR, camera_id VARCHAR, site_id VARCHAR,
            unit_id VARCHAR, params_hash VARCHAR, params VARCHAR, started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ, status VARCHAR, error VARCHAR, frames_analysed BIGINT,
            footage_start TIMESTAMPTZ, footage_end TIMESTAMPTZ, notes VARCHAR);
        CREATE TABLE window_aggregates (
            site_id VARCHAR, camera_id VARCHAR, source VARCHAR, window_start TIMESTAMPTZ,
            window_end TIMESTAMPTZ, unit_id VARCHAR, run_id VARCHAR, frames_analysed INTEGER,
            covered_s DOUBLE, people_sum BIGINT, people_max INTEGER, faces_sum BIGINT, complete BOOLEAN);
        CREATE VIEW occupancy AS
            SELECT site_id, camera_id, window_start, people_sum / frames_analysed AS occupancy_mean,
                   people_max
            FROM window_aggregates WHERE frames_analysed > 0;
        """
    )
    con.execute("INSERT INTO meta VALUES ('schema_version', '1'), ('created_by', 'sanitary 0.1.0')")
    params = {
        "sample_fps": 2,
        "thresholds": {"person_score": 0.35, "face_score": 0.5, "box_threshold": 0.4},
        "privacy_masks": [{"polygon": [[0, 0], [100, 0], [100, 40]]}, {"box": [500, 0, 640, 60]}],
        "zones": [{"name": "door", "polygon": [[10, 10], [200, 10], [200, 300]]}],
    }
    con.execute(
        "INSERT INTO runs VALUES ('r1', 'file', '/videos/market/cam1_20240301.mp4', 'cam1', 'market', "
        "'box-07', 'abc123', ?, now(), now(), 'done', NULL, 7200, now(), now(), 'first run')",
        [json.dumps(params)],
    )
    con.execute(
        "INSERT INTO window_aggregates SELECT 'market', 'cam1', 'file', "
        "TIMESTAMPTZ '2024-03-01 08:00:00+00' + to_minutes(i), "
        "TIMESTAMPTZ '2024-03-01 08:01:00+00' + to_minutes(i), 'box-07', 'r1', 120, 60.0, "
        "i * 7, i % 9, i * 2, true FROM range(50) t(i)"
    )
    con.close()


COUNT_LINES = [
    {"frame": 3, "file": "frame_0003.jpg", "people": 5, "faces": 1},
    {"frame": 4, "file": "frame_0004.jpg", "people": 4, "faces": 0},
]

CAMERA_TOML = """\
camera_id = "cam1"
site_id = "market"
site_kind = "market"
timezone = "Europe/Paris"

[detection]
walkable = [[0, 200], [640, 200], [640, 480], [0, 480]]
face_min_person_px = 80
box_threshold = 0.4

[calibration]
image_points = [[102, 388], [540, 391], [470, 210], [180, 205]]
world_points = [[0, 0], [6, 0], [6, 9], [0, 9]]

[[zones]]
name = "entrance"
polygon = [[0, 0], [120, 0], [120, 90], [0, 90]]

[[privacy_masks]]
polygon = [[400, 0], [640, 0], [640, 60]]

[[privacy_masks]]
box = [0, 420, 200, 60]
"""

CLEAN_LOG = """\
2024-03-01 08:00:00 INFO sanitary: opened /videos/market/cam1_20240301.mp4 (25 fps, 640x480)
2024-03-01 08:00:00 INFO sanitary: detector loaded, box_threshold=0.4, tracks=0
2024-03-01 08:00:01 DEBUG ffmpeg: -vf crop=640:480 -r 2
2024-03-01 08:01:00 INFO sanitary: window done {"people_sum": 35, "faces_sum": 6, "tracks": 3}
"""


# ------------------------------------------------------------------------------------------------------------
# The project's own outputs pass


def test_project_outputs_are_clean(tmp_path: Path) -> None:
    make_project_db(tmp_path / "sanitary.duckdb")
    (tmp_path / "count.jsonl").write_text("".join(json.dumps(line) + "\n" for line in COUNT_LINES))
    (tmp_path / "cam1.toml").write_text(CAMERA_TOML)
    (tmp_path / "run.log").write_text(CLEAN_LOG)
    con = duckdb.connect(str(tmp_path / "sanitary.duckdb"), read_only=True)
    con.execute(f"COPY window_aggregates TO '{tmp_path / 'export.csv'}' (HEADER)")
    con.execute(f"COPY window_aggregates TO '{tmp_path / 'export.parquet'}' (FORMAT parquet)")
    con.close()

    assert audit_paths([tmp_path]) == []


def test_random_binary_is_not_mistaken_for_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (tmp_path / "weights.onnx").write_bytes(rng.integers(0, 256, 8 << 20, dtype=np.uint8).tobytes())
    (tmp_path / "sparse.bin").write_bytes(
        (rng.random(1 << 20) < 0.05).astype(np.uint8).tobytes() + b"BM" + bytes(64) + b"II*\x00" + bytes(8)
    )
    np.save(tmp_path / "mean.npy", np.zeros(512, dtype=np.float32))
    np.save(tmp_path / "lut.npy", np.arange(256, dtype=np.uint8))
    (tmp_path / "readme.txt").write_text("Formats: GIF89a, PNG, /9j/ is how JPEG base64 starts; path a/9j/b.\n")

    assert audit_paths([tmp_path]) == []


# ------------------------------------------------------------------------------------------------------------
# Crops and frames, however they are written


def test_crop_written_as_jpg(tmp_path: Path, face: np.ndarray) -> None:
    crop = tmp_path / "debug" / "face_0001.jpg"
    crop.parent.mkdir()
    crop.write_bytes(encode(face, ".jpg"))

    leaks = audit_paths([tmp_path])

    assert leaks == [Leak(crop, "byte offset 0", leaks[0].what)]
    assert "JPEG" in leaks[0].what


def test_crop_written_as_png_with_misleading_extension(tmp_path: Path, face: np.ndarray) -> None:
    blob = tmp_path / "cache.bin"
    blob.write_bytes(b"\x00" * 100 + encode(face, ".png"))

    leaks = audit_paths([blob])

    assert [(leak.path, leak.where) for leak in leaks] == [(blob, "byte offset 100")]
    assert "PNG" in leaks[0].what


@pytest.mark.parametrize(("ext", "label"), [(".gif", "GIF"), (".bmp", "BMP"), (".webp", "WebP"), (".tiff", "TIFF")])
def test_crop_in_other_image_formats(tmp_path: Path, ext: str, label: str) -> None:
    dump = tmp_path / "dump.dat"
    dump.write_bytes(b"header" + encode(synthetic_face(), ext) + b"trailer")

    leaks = audit_paths([dump])

    assert [leak.where for leak in leaks] == ["byte offset 6"]
    assert label in leaks[0].what


def test_crop_saved_as_npy_and_npz(tmp_path: Path, face: np.ndarray) -> None:
    np.save(tmp_path / "crop.npy", face)
    np.save(tmp_path / "gray.npy", cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    np.savez_compressed(tmp_path / "crops.npz", faces=np.stack([face, face]))

    leaks = audit_paths([tmp_path])

    npy = leaks_at(leaks, tmp_path / "crop.npy")
    assert [leak.where for leak in npy] == ["byte offset 0"]
    assert "NumPy uint8 array" in npy[0].what and str(face.shape) in npy[0].what
    assert [leak.where for leak in leaks_at(leaks, tmp_path / "gray.npy")] == ["byte offset 0"]
    assert [leak.where for leak in leaks_at(leaks, tmp_path / "crops.npz")] == ["archive member faces.npy"]


def test_crop_stored_as_blob_in_duckdb(tmp_path: Path, face: np.ndarray) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE debug_snapshots (window_start TIMESTAMPTZ, payload BLOB)")
    con.execute("INSERT INTO debug_snapshots VALUES (now(), ?)", [encode(face, ".jpg")])
    con.close()

    leaks = audit_paths([db])

    assert all(leak.path == db for leak in leaks)
    blob = [leak for leak in leaks if leak.where == "table debug_snapshots, column payload"]
    assert blob and "BLOB" in blob[0].what


def test_crop_base64_in_json_log(tmp_path: Path, face: np.ndarray) -> None:
    log = tmp_path / "debug.jsonl"
    data_url = "data:image/jpeg;base64," + base64.b64encode(encode(face, ".jpg")).decode()
    log.write_text(
        json.dumps(COUNT_LINES[0]) + "\n" + json.dumps({"level": "debug", "msg": "face", "image": data_url}) + "\n"
    )

    leaks = audit_paths([tmp_path])

    assert len(leaks) == 1 and leaks[0].path == log
    assert leaks[0].where.startswith("line 2, byte offset ")
    assert "Base64" in leaks[0].what and "JPEG" in leaks[0].what


def test_crop_base64_in_duckdb_text(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    png = base64.b64encode(encode(synthetic_face(), ".png")).decode()
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET notes = ?", [f"see data:image/png;base64,{png}"])
    con.close()

    leaks = audit_paths([db])

    text = [leak for leak in leaks if leak.where == "table runs, column notes"]
    assert text and "PNG" in text[0].what and "ase64" in text[0].what


# ------------------------------------------------------------------------------------------------------------
# Boxes, ids and vectors


def test_faces_table_with_box_corners(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE faces (frame BIGINT, x1 REAL, y1 REAL, x2 REAL, y2 REAL, masked BOOLEAN)")
    con.execute("INSERT INTO faces VALUES (3, 10, 20, 50, 70, true)")
    con.execute("CREATE VIEW face_boxes AS SELECT frame, x1, y1 FROM faces")
    con.close()

    wheres = {leak.where for leak in audit_paths([db])}

    assert {
        "table faces",
        "table faces, column x1",
        "table faces, column y2",
        "view face_boxes, column x1",
    } <= wheres
    assert not {w for w in wheres if "window_aggregates" in w or "runs" in w or "meta" in w}


def test_box_in_json_log_line(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    log.write_text(
        "2024-03-01 08:00:00 INFO started\n"
        + json.dumps(COUNT_LINES[0])
        + "\n"
        + json.dumps({"frame": 3, "bbox": [1, 2, 3, 4]})
        + "\n"
        + "2024-03-01 08:00:02 DEBUG face at bbox=(12, 40, 30, 30)\n"
    )

    leaks = audit_paths([log])

    assert [(leak.path, leak.where) for leak in leaks] == [(log, "line 3, key bbox (and 1 more line)")]
    assert all("box" in leak.what for leak in leaks)


def test_track_id_column_in_aggregate_table(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE window_aggregates ADD COLUMN track_id INTEGER")
    con.close()

    leaks = audit_paths([db])

    assert [(leak.path, leak.where) for leak in leaks] == [(db, "table window_aggregates, column track_id")]
    assert "identifier" in leaks[0].what


def test_track_id_in_jsonl(tmp_path: Path) -> None:
    lines = tmp_path / "tracks.jsonl"
    lines.write_text("".join(json.dumps({"t": i / 2, "track_id": i % 3, "zone": "door"}) + "\n" for i in range(5)))

    leaks = audit_paths([lines])

    assert [(leak.path, leak.where) for leak in leaks] == [(lines, "line 1, key track_id (and 4 more lines)")]


def test_list_column_of_floats(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE window_extras (window_start TIMESTAMPTZ, v FLOAT[], w DOUBLE[4], tags VARCHAR[])")
    con.execute("INSERT INTO window_extras VALUES (now(), [0.1, 0.2], [1, 2, 3, 4], ['a'])")
    con.close()

    leaks = audit_paths([db])

    assert {leak.where for leak in leaks} == {
        "table window_extras, column v",
        "table window_extras, column w",
    }
    assert all("List/array of numbers" in leak.what for leak in leaks)


def test_per_person_json_in_duckdb_text(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("""UPDATE runs SET notes = '{"faces": [{"bbox": [1, 2, 3, 4], "track_id": 7}]}'""")
    con.close()

    leaks = audit_paths([db])

    assert {leak.where for leak in leaks} == {"table runs, column notes"}
    assert any("track_id" in leak.what for leak in leaks) and any("bbox" in leak.what for leak in leaks)


def test_exports_with_person_columns(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1 AS frame, 2.0 AS cx, 3.0 AS cy) TO '{tmp_path / 'det.parquet'}'")
    con.close()
    (tmp_path / "det.csv").write_text("window_start,person_id,people_sum\n2024-03-01T08:00,4,3\n")

    leaks = audit_paths([tmp_path])

    assert {(leak.path.name, leak.where) for leak in leaks} == {
        ("det.csv", "header, column person_id"),
        ("det.parquet", "parquet, column cx"),
        ("det.parquet", "parquet, column cy"),
        ("det.parquet", "parquet"),
    }


# ------------------------------------------------------------------------------------------------------------
# Streaming and failure modes


@pytest.mark.parametrize("offset", range(24, 41))
def test_signature_straddling_chunks_is_found_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    monkeypatch.setattr(audit, "CHUNK_SIZE", 16)
    png = encode(synthetic_face(16), ".png")
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"\x01" * offset + png + b"\x02" * 50)
    b64 = tmp_path / "b64.txt"
    b64.write_text("x" * offset + base64.b64encode(png).decode() + "\n")

    leaks = audit_paths([raw, b64])

    assert [(leak.path, leak.where) for leak in leaks] == [
        (raw, f"byte offset {offset}"),
        (b64, f"line 1, byte offset {offset}"),
    ]


def test_locked_duckdb_raises(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    # Another process holding the write lock, as a run still in progress does.
    code = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(AuditError, match=r"in use by another process.*cp .*cannot be audited"):
            audit_paths([tmp_path])
    finally:
        holder.kill()
        holder.wait()


def test_duckdb_open_for_writing_in_this_process_raises(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    try:
        with pytest.raises(AuditError, match="copy"):
            audit_paths([db])
    finally:
        con.close()


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no such file"):
        audit_paths([tmp_path / "nope"])


# Head points are where each person in a crowd is: per-person data like boxes. The count's `heads` is a number.
HEAD_POINTS = [[101.5, 40.0], [220.0, 61.5], [301.0, 58.25]]


@pytest.mark.parametrize(
    "line",
    [
        {"frame": 3, "people": 5, "heads": HEAD_POINTS},
        {"frame": 3, "head_points": HEAD_POINTS},
        {"frame": 3, "crowd": {"heads": [{"x": 101.5, "y": 40.0, "score": 0.8}]}},
        {"frame": 3, "head_x": 101.5, "head_y": 40.0},
    ],
    ids=["heads-list", "head_points", "nested-head-objects", "head-xy-keys"],
)
def test_head_points_in_json_lines(tmp_path: Path, line: dict) -> None:
    log = tmp_path / "heads.jsonl"
    log.write_text(json.dumps({"frame": 2, "people": 4, "heads": 3, "detected": 2}) + "\n" + json.dumps(line) + "\n")

    leaks = audit_paths([log])

    assert [leak.path for leak in leaks] == [log]
    assert leaks[0].where.startswith("line 2, key ")


def test_head_points_in_duckdb(tmp_path: Path) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE heads (frame BIGINT, x REAL, y REAL)")
    con.execute("INSERT INTO heads VALUES (3, 101.5, 40.0)")
    con.execute("CREATE TABLE crowd_frames (frame BIGINT, head_points DOUBLE[][])")
    con.execute("INSERT INTO crowd_frames VALUES (3, [[101.5, 40.0], [220.0, 61.5]])")
    con.close()

    wheres = {leak.where for leak in audit_paths([db])}

    assert {"table heads", "table heads, column x", "table crowd_frames, column head_points"} <= wheres
    assert not {w for w in wheres if "window_aggregates" in w or "runs" in w or "meta" in w}


def test_head_points_in_csv_and_npy(tmp_path: Path) -> None:
    (tmp_path / "heads.csv").write_text("frame,head_x,head_y\n3,101.5,40.0\n3,220.0,61.5\n")
    np.save(tmp_path / "heads.npy", np.array(HEAD_POINTS * 10, np.float32))

    leaks = {leak.path.name for leak in audit_paths([tmp_path])}

    assert leaks == {"heads.csv", "heads.npy"}


# ------------------------------------------------------------------------------------------------------------
# Numbers as text: vectors and image positions hidden in text columns


@pytest.mark.parametrize("separator", [", ", " ", ";"])
def test_vector_stored_as_text_in_a_neutral_table(tmp_path: Path, separator: str) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    floats = np.random.default_rng(0).normal(size=128).round(4).tolist()
    vector = separator.join(f"{v:.4f}" for v in floats)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE misc (k VARCHAR, payload VARCHAR, v JSON)")
    con.execute("INSERT INTO misc VALUES ('a', ?, '{}'), ('b', 'ok', ?)", [vector, json.dumps(floats)])
    con.close()

    leaks = audit_paths([db])

    assert {leak.where for leak in leaks} == {"table misc, column payload", "table misc, column v"}
    assert all("run of numbers stored as text" in leak.what for leak in leaks)


@pytest.mark.parametrize(
    "notes",
    [
        "people at (312.5, 88.0), (140.0, 201.5) and (20, 33)",
        "head x=312.5, y=88.0; head x=140, y=201",
    ],
)
def test_positions_written_into_run_notes(tmp_path: Path, notes: str) -> None:
    db = tmp_path / "sanitary.duckdb"
    make_project_db(db)
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET notes = ?", [notes])
    con.close()

    leaks = audit_paths([db])

    assert [(leak.where, leak.what) for leak in leaks] == [("table runs, column notes", audit._MESSAGES["text_points"])]


def test_sanitary_own_store_with_its_config_passes(tmp_path: Path) -> None:
    """What sanitary itself writes: the camera config in runs.params (homography, walkable polygon, zones, lines,
    twenty dwell bins), a continuity note, an error naming one point, tags, signs, and windows of every kind."""
    camera = load_camera(PETS_CAMERA)
    camera = dataclasses.replace(
        camera, tracking=dataclasses.replace(camera.tracking, dwell_bins_s=[5.0 * i for i in range(1, 21)])
    )
    db = two_bases(tmp_path / "sanitary.duckdb")
    with Store(db) as store:
        run = store.begin_run(RunStart("h2", "/b.avi", "c", "s", "u", "p", {**config_params(camera), "fps": 7.0}))
        store.finish_run(run, [], status="truncated", error="homography maps (12.5, 300.0) outside; fix it",
                         frames_analysed=0, footage=None, notes="gap of 12.0 s after a.avi")  # fmt: skip
        store.con.execute('UPDATE window_aggregates SET tags = \'{"route": "12", "stop": "Gare (north)"}\'')
    assert json.dumps(config_params(camera)).count("[5.0, 10.0") == 1  # the long list is there, as config

    assert audit_paths([db]) == []


# ------------------------------------------------------------------------------------------------------------
# Per-person data under innocent names: told by its shape


def test_a_trajectory_table_under_innocent_names(tmp_path: Path) -> None:
    """visits(vid, gx, gy, t): three visitors, each seen at four times in different places."""
    with duckdb.connect(str(tmp_path / "notes.duckdb")) as con:
        con.execute(
            "CREATE TABLE visits AS SELECT v AS vid, v * 1.5 + s AS gx, 2.0 * s AS gy,"
            " TIMESTAMP '2024-03-01 08:00' + INTERVAL (s) SECOND AS t FROM range(3) a(v), range(4) b(s)"
        )
    assert [(leak.where, leak.what) for leak in audit_paths([tmp_path])] == [
        ("table visits, column vid", "Rows shaped like trajectories: one id seen again with other values of two or"
         " more numbers (a position over time), whatever the columns are called.")
    ]  # fmt: skip


def test_a_trajectory_parquet_under_innocent_names(tmp_path: Path) -> None:
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT s AS window_no, 'v' || v AS visitor, 10.0 * v + s AS east_m, 3.0 * s AS north_m"
            f" FROM range(3) a(v), range(4) b(s)) TO '{tmp_path / 'w.parquet'}' (FORMAT parquet)"
        )
    assert [leak.where for leak in audit_paths([tmp_path])] == ["parquet, column visitor"]


def test_a_trajectory_in_json_under_innocent_keys(tmp_path: Path) -> None:
    (tmp_path / "trip.json").write_text(json.dumps([{"t": i, "p": [1.0 + i, 2.5 * i]} for i in range(5)]))
    (tmp_path / "trips.json").write_text(json.dumps({"a": [{"ts": 1.0, "at": [1, 2]}, {"ts": 2.0, "at": [2, 2]}]}))
    found = {(leak.path.name, leak.where) for leak in audit_paths([tmp_path])}
    assert found == {("trip.json", "key (top level)"), ("trips.json", "key a")}


def test_the_same_shapes_without_a_trajectory_pass(tmp_path: Path) -> None:
    """An id seen once, or again in the same place, is not a trajectory; nor is a time series of one place (a column
    of one value tells no one apart)."""
    with duckdb.connect(str(tmp_path / "notes.duckdb")) as con:
        grid = "FROM range(3) a(v), range(4) b(s)"
        con.execute("CREATE TABLE once AS SELECT v AS vid, v * 1.5 AS gx, 2.0 AS gy FROM range(5) a(v)")
        con.execute(f"CREATE TABLE still AS SELECT v AS vid, 1.5 AS gx, 2.0 AS gy, s AS t {grid}")
        con.execute(
            "CREATE TABLE temperature AS SELECT 'hall' AS room, range AS minute, 2.0 * range AS c,"
            " 0.5 * range AS humidity FROM range(9)"
        )
    (tmp_path / "one.json").write_text(json.dumps([{"t": 1, "p": [1.0, 2.0]}]))
    assert audit_paths([tmp_path]) == []


def test_sanitary_views_copied_to_parquet_pass(tmp_path: Path) -> None:
    """A site repeated day after day with several numbers is the shape of a trajectory, but the store's own views
    (and tables) are aggregates by design: their copies pass."""
    db = tmp_path / "store" / "sanitary.duckdb"
    db.parent.mkdir()
    for day in range(3):
        analyse(db, "s1", f"day{day}", 6 + day, start=T0 + timedelta(days=day))
    with duckdb.connect(str(db), read_only=True) as con:
        for view in ("mask_rate_daily", "camera_windows", "occupancy_hourly", "window_aggregates"):
            con.execute(f"COPY {view} TO '{tmp_path / view}.parquet' (FORMAT parquet)")
    assert audit_paths([tmp_path]) == []


def test_a_trajectory_behind_many_other_columns(tmp_path: Path) -> None:
    """Twenty text columns before the id: every id-like column is tried, in one scan."""
    decoys = ", ".join(f"'same' AS note{i}" for i in range(20))
    with duckdb.connect(str(tmp_path / "notes.duckdb")) as con:
        con.execute(
            f"CREATE TABLE log AS SELECT {decoys}, v AS who, 1.0 * s AS a, 2.0 * v AS b"
            " FROM range(3) x(v), range(4) y(s)"
        )
    assert [leak.where for leak in audit_paths([tmp_path])] == ["table log, column who"]
