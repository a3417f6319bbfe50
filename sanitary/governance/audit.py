"""Anonymity checker: looks at what sanitary left on disk for anything that could identify a person.

The pipeline promises that frames, face crops, boxes, landmarks, embeddings, track ids and per-person rows
never leave memory, and that only per-window aggregates reach DuckDB. `audit_paths` checks that promise from
the outside, on the bytes of the files themselves, so it also catches what a debug dump, a log line or a
hand-made export wrote behind the pipeline's back. When in doubt it reports: a false alarm costs a look, a
missed face crop costs someone's privacy. What it cannot inspect (a locked or unreadable file) is an error,
never a silent pass.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import csv
import dataclasses
import functools
import io
import itertools
import json
import os
import re
import stat
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np

from sanitary import config as sanitary_config
from sanitary.errors import SanitaryError
from sanitary.storage.connection import connect
from sanitary.storage.schema import migrate

# Bytes read per step. Files can be gigabytes (a long-running DuckDB file), so they are streamed; tests shrink
# it to put signatures across chunk borders.
CHUNK_SIZE = 1 << 20
# A folder full of leaked crops needs a handful of examples and a count, not a million lines of report.
MAX_HITS_PER_FILE = 20
# Enough to tell text from binary and to see a file's magic numbers.
SNIFF_BYTES = 64 * 1024
# Whole-document parsers need the whole document in memory; above these sizes line-wise checks take over.
JSON_DOCUMENT_MAX_BYTES = 64 * 1024 * 1024
TOML_MAX_BYTES = 4 * 1024 * 1024
# A log line can hold a multi-megabyte base64 blob; reading lines in bounded pieces keeps memory flat.
LINE_MAX_CHARS = 1024 * 1024
# Base64 text read after a prefix: enough to decode any image header, including a JPEG's first segment.
BASE64_WINDOW = 8192
# Rows fetched to confirm a suspicious text column; the scan itself stays inside DuckDB.
SQL_SAMPLE_ROWS = 20
# Embeddings have 64 to 2048 numbers; nothing sanitary writes has a run of numbers this long outside a table.
VECTOR_MIN = 16
# What a zip member must show at its start (npy headers can be long).
ZIP_MEMBER_HEAD = 70 * 1024

# The tables the pipeline itself writes; any other table with a person-ish name is suspect.
KNOWN_TABLES = frozenset({"meta", "runs", "window_aggregates"})


@dataclass(frozen=True)
class Leak:
    path: Path  # the file where it was found
    where: str  # e.g. "table detections, column bbox" or "byte offset 1234" or "line 7"
    what: str  # one short sentence: what kind of personal data it looks like


class AuditError(SanitaryError):
    """A file could not be inspected, so the audit cannot vouch for it."""


def audit_paths(paths: Iterable[Path]) -> list[Leak]:
    """Every file under the given files/folders (recursively) checked; [] means nothing personal found."""
    leaks: list[Leak] = []
    for path in _files(paths):
        leaks.extend(_audit_file(path))
    return leaks


# ----------------------------------------------------------------------------------------------------
# Walking the inputs


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise AuditError(f"{root}: no such file or folder; pass the folder the run wrote to")
        candidates = [root] if not root.is_dir() else _walk_dir(root)
        for path in candidates:
            if path.is_symlink() and not path.exists():
                continue  # a dangling link holds no data
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise AuditError(f"{path}: cannot be read ({exc.strerror or exc}); fix its permissions") from None
            # Pipes and devices would block or never end; they cannot hold a stored leak anyway.
            if stat.S_ISREG(mode):
                yield path


def _walk_dir(root: Path) -> Iterator[Path]:
    # Symlinked folders are not followed: a link to / would audit the whole machine.
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            yield Path(folder) / name


def _audit_file(path: Path) -> list[Leak]:
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
        text = _is_text(head)
        # The database first: a locked one stops the audit before a long byte scan.
        found: list[tuple[str, str]] = []
        if head[8:12] == b"DUCK":
            found = _audit_duckdb(path)
        elif head[:4] == b"PAR1":
            found = _audit_parquet(path)
        elif head[:4] == b"PK\x03\x04":
            found = _audit_zip(path)
        elif text:
            found = _audit_text(path, head)
        leaks = _hit_leaks(path, _scan_bytes(path), text)
    except OSError as exc:
        raise AuditError(f"{path}: cannot be read ({exc.strerror or exc}); fix its permissions") from None
    return leaks + [Leak(path, where, what) for where, what in found]


# ----------------------------------------------------------------------------------------------------
# Image data in raw bytes
#
# A validator gets `read(offset, n)` relative to a candidate signature and `partial`, which says whether a
# short read means "unknown" (a truncated base64 window) rather than "the file ends here". It returns a noun
# such as "JPEG image", or None. Each checks its own magic, so the same validators serve raw bytes and decoded
# base64. The extra header checks keep random bytes (model weights, DuckDB pages) from looking like images.

_Reader = Callable[[int, int], bytes]
_Validator = Callable[[_Reader, bool], str | None]
_Order = Literal["little", "big"]

_JPEG_FIRST_MARKERS = frozenset({*range(0xE0, 0xF0), 0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xFE})
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def _u16(data: bytes, at: int, order: _Order = "little") -> int:
    return int.from_bytes(data[at : at + 2], order)


def _u32(data: bytes, at: int, order: _Order = "little") -> int:
    return int.from_bytes(data[at : at + 4], order)


def _jpeg(read: _Reader, partial: bool) -> str | None:
    head = read(0, 6)
    if len(head) < 6 or head[:3] != b"\xff\xd8\xff" or head[3] not in _JPEG_FIRST_MARKERS:
        return None
    length = _u16(head, 4, "big")
    if length < 2:
        return None
    # The first segment must be followed by the next marker: three magic bytes alone are too common.
    after = read(4 + length, 1)
    return "JPEG image" if after == b"\xff" or (not after and partial) else None


def _png(read: _Reader, partial: bool) -> str | None:
    head = read(0, 16)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return "PNG image" if head[12:16] == b"IHDR" or (len(head) < 16 and partial) else None


def _gif(read: _Reader, partial: bool) -> str | None:
    head = read(0, 10)
    if len(head) < 10 or head[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    # Real screens are under 8192 px; text after a "GIF89a" in prose decodes as larger.
    width, height = _u16(head, 6), _u16(head, 8)
    return "GIF image" if 0 < width < 8192 and 0 < height < 8192 else None


def _bmp(read: _Reader, partial: bool) -> str | None:
    head = read(0, 30)
    if len(head) < 26 or head[:2] != b"BM":
        return None
    declared, reserved, offset, dib = _u32(head, 2), _u32(head, 6), _u32(head, 10), _u32(head, 14)
    if reserved != 0 or dib not in _BMP_DIB_SIZES or not 14 + dib <= offset < 1 << 28:
        return None
    if declared and declared < offset:
        return None
    if dib == 12:
        width, height = _u16(head, 18), _u16(head, 20)
    else:
        width = int.from_bytes(head[18:22], "little", signed=True)
        height = abs(int.from_bytes(head[22:26], "little", signed=True))
    if not (0 < width <= 65535 and 0 < height <= 65535):
        return None
    if dib >= 40 and len(head) >= 30 and _u16(head, 28) not in (1, 2, 4, 8, 16, 24, 32, 64):
        return None
    return "BMP image"


def _webp(read: _Reader, partial: bool) -> str | None:
    head = read(0, 15)
    return "WebP image" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:15] == b"VP8" else None


def _tiff(read: _Reader, partial: bool) -> str | None:
    head = read(0, 8)
    if len(head) < 8 or head[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    # A JPEG's Exif block holds a TIFF header; the JPEG itself is already reported.
    if read(-6, 6) == b"Exif\x00\x00":
        return None
    order: _Order = "little" if head[:2] == b"II" else "big"
    ifd = _u32(head, 4, order)
    if ifd < 8:
        return None
    entry = read(ifd, 6)
    if len(entry) < 6:
        return "TIFF image" if partial else None
    count, tag, kind = _u16(entry, 0, order), _u16(entry, 2, order), _u16(entry, 4, order)
    return "TIFF image" if 0 < count <= 1000 and tag >= 254 and 1 <= kind <= 18 else None


def _npy(read: _Reader, partial: bool) -> str | None:
    head = read(0, 12)
    if len(head) < 10 or head[:6] != b"\x93NUMPY":
        return None
    if head[6] == 1:
        size, start = _u16(head, 8), 10
    elif head[6] in (2, 3) and len(head) == 12:
        size, start = _u32(head, 8), 12
    else:
        return None
    if size > 65536:
        return None
    header = read(start, size)
    if len(header) < size:
        return None
    try:
        fields = ast.literal_eval(header.decode("latin-1"))
        dtype = np.dtype(fields["descr"])
        shape = tuple(int(n) for n in fields["shape"])
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
        return None
    if dtype.kind == "f" and len(shape) in (1, 2) and shape and shape[-1] >= VECTOR_MIN:
        # A constant vector (zeros, a fill value) describes no one; the first vector tells.
        first = np.frombuffer(read(start + size, shape[-1] * dtype.itemsize), dtype)
        if len(first) == shape[-1] and np.ptp(first) > 0:
            return f"NumPy float array of {shape[-1]}-number vectors {shape}"
        return None
    if dtype.kind == "f" and len(shape) == 2 and shape[1] == 2 and shape[0] >= 3:
        return f"NumPy float array of {shape[0]} image points (head or feet positions) {shape}"
    if dtype != np.uint8 or not _image_shaped(shape):
        return None
    return f"NumPy uint8 array shaped like an image {shape}"


def _image_shaped(shape: tuple[int, ...]) -> bool:
    dims = list(shape)
    if len(dims) >= 3 and dims[-1] in (1, 3, 4):
        dims = dims[:-1]  # height, width, channels
    elif len(dims) == 3 and dims[0] in (1, 3, 4):
        dims = dims[1:]  # channels first, as fed to a network
    if len(dims) == 3:
        dims = dims[1:]  # a stack of crops
    return len(dims) == 2 and min(dims) >= 8


_SIGNATURES: tuple[tuple[bytes, _Validator], ...] = (
    (b"\xff\xd8\xff", _jpeg),
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    (b"BM", _bmp),
    (b"RIFF", _webp),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
    (b"\x93NUMPY", _npy),
)
# How those magic numbers start once base64-encoded (a data: URL, a JSON field); JSON may escape "/" as "\/".
# BMP's "Qk" is too short to search for without drowning in base64 that is not an image.
_BASE64_PREFIXES: tuple[tuple[bytes, _Validator], ...] = (
    (b"/9j/", _jpeg),
    (b"\\/9j\\/", _jpeg),
    (b"iVBORw0KGgo", _png),
    (b"R0lGOD", _gif),
    (b"UklGR", _webp),
    (b"SUkqA", _tiff),
    (b"TU0AK", _tiff),
    (b"k05VTVBZ", _npy),
)
_PATTERNS: tuple[tuple[bytes, _Validator, bool], ...] = (
    *((p, v, False) for p, v in _SIGNATURES),
    *((p, v, True) for p, v in _BASE64_PREFIXES),
)
# A signature that starts in the last bytes of one chunk is matched again with the next one.
_OVERLAP = max(len(p) for p, _, _ in _PATTERNS) - 1
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=\r\n]*")


def _decode_base64(raw: bytes) -> tuple[bytes, bool]:
    """The decoded start of a base64 run, and whether the run went on past the window."""
    cleaned = raw.replace(b"\\/", b"/").replace(b"\\n", b"\n").replace(b"\\r", b"\r")
    match = _BASE64_RUN.match(cleaned)
    run = match.group() if match else b""
    partial = len(run) == len(cleaned) and len(raw) >= BASE64_WINDOW
    run = re.sub(rb"\s", b"", run).split(b"=", 1)[0]
    run = run[: len(run) // 4 * 4]
    try:
        return base64.b64decode(run, validate=True), partial
    except (binascii.Error, ValueError):
        return b"", False


def _buffer_reader(data: bytes) -> _Reader:
    return lambda offset, n: data[offset : offset + n] if offset >= 0 else b""


def _check_candidate(read: _Reader, validator: _Validator, encoded: bool) -> str | None:
    """The leak's description if the candidate is a real image header, else None."""
    if not encoded:
        noun = validator(read, False)
        return f"{noun[0].upper()}{noun[1:]}: {_could_be(noun)}." if noun else None
    decoded, partial = _decode_base64(read(0, BASE64_WINDOW))
    if len(decoded) < 8:
        return None
    noun = validator(_buffer_reader(decoded), partial)
    return f"Base64-encoded {noun}: {_could_be(noun)}." if noun else None


def _could_be(noun: str) -> str:
    return "could be face or person embeddings" if "vectors" in noun else "could be a frame or a face crop"


def _scan_bytes(path: Path) -> list[tuple[int, str]]:
    """(offset, description) of every image-like signature, reading the file in chunks."""
    hits: list[tuple[int, str]] = []
    with path.open("rb") as f:
        carry = b""
        base = 0  # file offset of buf[0]
        next_read = 0
        while True:
            f.seek(next_read)
            chunk = f.read(CHUNK_SIZE)
            if not chunk:
                break
            next_read += len(chunk)
            buf = carry + chunk
            found: list[tuple[int, str]] = []
            for pattern, validator, encoded in _PATTERNS:
                start = 0
                while (at := buf.find(pattern, start)) != -1:
                    start = at + 1
                    if at + len(pattern) <= len(carry):
                        continue  # already wholly inside the previous buffer
                    label = _check_candidate(_file_reader(f, buf, base, base + at), validator, encoded)
                    if label:
                        found.append((base + at, label))
            hits.extend(sorted(found))
            carry = buf[-_OVERLAP:] if len(buf) > _OVERLAP else buf
            base += len(buf) - len(carry)
    return hits


def _file_reader(f: io.BufferedReader, buf: bytes, base: int, origin: int) -> _Reader:
    def read(offset: int, n: int) -> bytes:
        at = origin + offset
        if at < 0:
            return b""
        if base <= at and at + n <= base + len(buf):
            return buf[at - base : at - base + n]
        # Headers can point past the chunk (a JPEG segment, a TIFF directory): look there directly.
        f.seek(at)
        return f.read(n)

    return read


def _hit_leaks(path: Path, hits: list[tuple[int, str]], text: bool) -> list[Leak]:
    shown = hits[:MAX_HITS_PER_FILE]
    lines = _line_numbers(path, [offset for offset, _ in shown]) if text else {}
    leaks = [
        Leak(path, f"line {lines[offset]}, byte offset {offset}" if text else f"byte offset {offset}", what)
        for offset, what in shown
    ]
    if len(hits) > len(shown):
        leaks.append(
            Leak(
                path,
                f"byte offsets after {shown[-1][0]}",
                f"{len(hits) - len(shown)} more embedded images or image arrays like those above.",
            )
        )
    return leaks


def _line_numbers(path: Path, offsets: list[int]) -> dict[int, int]:
    wanted = sorted(set(offsets))
    lines: dict[int, int] = {}
    line, pos, i = 1, 0, 0
    with path.open("rb") as f:
        while i < len(wanted) and (chunk := f.read(CHUNK_SIZE)):
            end = pos + len(chunk)
            while i < len(wanted) and wanted[i] < end:
                lines[wanted[i]] = line + chunk.count(b"\n", 0, wanted[i] - pos)
                i += 1
            line += chunk.count(b"\n")
            pos = end
    return lines


# ----------------------------------------------------------------------------------------------------
# Names: which column, key or table names mean per-person data


# Logs repeat the same few keys millions of times.
@functools.lru_cache(maxsize=4096)
def _tokens(name: str) -> tuple[str, ...]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return tuple(t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t)


# An aggregate of a per-person quantity is the product, not a leak: people_max, box_count, faces_per_window.
_AGGREGATE = frozenset(
    {
        "sum", "sums", "max", "min", "mean", "avg", "average", "median", "std", "stddev", "var", "variance",
        "count", "counts", "cnt", "total", "totals", "n", "num", "number", "nb", "rate", "ratio", "pct",
        "percent", "percentage", "share", "fraction", "frac", "distinct", "unique", "nunique", "per", "hist",
        "histogram", "quantile", "p50", "p90", "p95", "p99",
    }
)  # fmt: skip
# Settings mention boxes and faces too (box_threshold, face_min_person_px) without holding anyone's data.
_SETTING = frozenset(
    {"threshold", "thresholds", "thresh", "thr", "nms", "iou", "param", "params", "setting", "settings",
     "config", "enabled", "enable", "model", "version"}
)  # fmt: skip
_ID_WORDS = frozenset(
    {"track", "tracks", "trackid", "trackids", "tracklet", "tracklets", "reid", "faceid", "personid",
     "detid", "detectionid", "identity", "identities"}
)  # fmt: skip
_ID_OWNERS = frozenset(
    {"person", "persons", "people", "face", "faces", "detection", "detections", "det", "dets", "pedestrian",
     "pedestrians", "ped", "subject", "individual", "visitor", "passenger", "customer", "head", "body",
     "object", "obj"}
)  # fmt: skip
_ID_SUFFIXES = frozenset({"id", "ids", "idx", "index", "uid", "uuid", "key"})
_BOX_WORDS = frozenset(
    {"bbox", "bboxes", "bb", "bbs", "box", "boxes", "rect", "rects", "rectangle", "rectangles", "bounding",
     "boundingbox", "bndbox", "facebox", "faceboxes", "headbox"}
)  # fmt: skip
_LANDMARK_WORDS = frozenset(
    {"landmark", "landmarks", "lmk", "lmks", "keypoint", "keypoints", "kpt", "kpts", "kps", "skeleton",
     "skeletons"}
)  # fmt: skip
_EMBEDDING_WORDS = frozenset({"embedding", "embeddings", "emb", "embs", "descriptor", "descriptors"})
_FEATURE_WORDS = frozenset({"feature", "features", "feat", "feats"})
_CROP_WORDS = frozenset({"crop", "crops", "facecrop", "thumbnail", "thumbnails", "thumb", "thumbs", "mugshot"})
_IMAGE_WORDS = frozenset(
    {"image", "images", "img", "imgs", "pixel", "pixels", "jpeg", "jpg", "png", "snapshot", "snapshots",
     "patch", "patches"}
)  # fmt: skip
# An image's file name or size is metadata about a frame, not its pixels (count --json prints file names).
_IMAGE_META = frozenset(
    {"path", "paths", "file", "files", "filename", "name", "dir", "url", "uri", "format", "fmt", "ext",
     "width", "height", "size", "w", "h", "shape", "points", "fps", "id", "hash", "source"}
)  # fmt: skip
_TRAJECTORY_WORDS = frozenset({"trajectory", "trajectories"})
_GEO_WORDS = frozenset({"lat", "lon", "lng", "latitude", "longitude", "gps"})
_COORD_SINGLE = frozenset(
    {"x0", "y0", "x1", "y1", "x2", "y2", "xmin", "ymin", "xmax", "ymax", "cx", "cy", "xc", "yc", "centroid",
     "centroids", "left", "top", "right", "bottom"}
)  # fmt: skip
_COORD_EDGES = frozenset({"min", "max", "c", "center", "centre", "mid", "0", "1", "2"})
_COORD_AXES = frozenset(
    {"x", "y", "w", "h", "width", "height", "left", "top", "right", "bottom", "x0", "y0", "x1", "y1", "x2",
     "y2"}
)  # fmt: skip
_COORD_OWNERS = frozenset(
    {"face", "faces", "person", "head", "body", "pedestrian", "det", "detection", "pos", "position", "center",
     "centre", "centroid", "foot", "feet", "track", "obj", "object"}
)  # fmt: skip
# Bare coordinate columns only mean a position when they come in pairs.
_BARE_PAIRS = (("x", "y"), ("left", "top"), ("u", "v"), ("px", "py"))
_BARE_SIZES = frozenset({"w", "h", "width", "height"})
_FRAME_KEYS = frozenset(
    {"frame", "frame_id", "frame_idx", "frame_index", "frame_no", "frame_nr", "frame_num", "frame_number",
     "frame_ts", "frame_time", "frame_pts", "frame_timestamp", "pts", "ts", "timestamp", "time", "t",
     "time_s", "t_s", "ts_ms", "timestamp_ms"}
)  # fmt: skip
_TABLE_WORDS = frozenset(
    {"detection", "detections", "det", "dets", "track", "tracks", "tracklet", "tracklets", "face", "faces",
     "person", "persons", "pedestrian", "pedestrians", "crop", "crops", "box", "boxes", "bbox", "bboxes",
     "landmark", "landmarks", "keypoint", "keypoints", "embedding", "embeddings", "trajectory",
     "trajectories", "sighting", "sightings", "identity", "identities", "individual", "individuals"}
)  # fmt: skip
_PEOPLE_ROW_WORDS = frozenset({"row", "rows", "raw", "list", "log", "records", "record"})
_SUMMARY_WORDS = _AGGREGATE | frozenset(
    {"agg", "aggregate", "aggregates", "summary", "summaries", "stats", "stat", "statistics", "by",
     "hourly", "daily", "weekly", "monthly", "window", "windows"}
)  # fmt: skip

_MESSAGES = {
    "id": "Looks like a per-person identifier (track, face or person id).",
    "box": "Looks like face or person bounding boxes.",
    "coords": "Looks like per-detection image coordinates (box corners, centres or sizes).",
    "landmarks": "Looks like facial landmarks or body keypoints.",
    "embedding": "Looks like face or person embeddings (feature vectors).",
    "crop": "Looks like stored images or face crops.",
    "trajectory": "Looks like per-person trajectories.",
    "geo": "Looks like per-record geographic positions (latitude/longitude).",
    "blob": "Binary (BLOB) column: it can hold frames or face crops.",
    "numlist": "List/array of numbers: a box, landmarks or an embedding in disguise.",
    "rows": "Looks like per-person records (one entry per face or person).",
    "table": "Table name suggests one row per detection, track, face or person.",
    "per_frame": "One row per detection: a frame/time column next to image coordinates.",
    "box_keys": "Looks like a box stored as separate coordinate keys.",
    "point_keys": "Looks like a person's image position (a head or feet point) stored as coordinate keys.",
    "text_vector": "A long run of numbers stored as text: an embedding or feature vector in disguise.",
    "text_points": "Image positions written in free text (pairs such as (x, y) or x=..., y=...): people's places.",
    "tracked": "Rows shaped like trajectories: one id seen again with other values of two or more numbers"
    " (a position over time), whatever the columns are called.",
    "timed_points": "Looks like a trajectory: records each holding a time and a point (a pair of numbers).",
}
# Kinds that describe where someone is in the image; allowed in configs (zones, privacy masks), not in data.
_GEOMETRY_KINDS = frozenset({"box", "coords", "trajectory"})


def _is_coordinate(tokens: tuple[str, ...]) -> bool:
    if len(tokens) == 1:
        return tokens[0] in _COORD_SINGLE
    if len(tokens) == 2 and (
        (tokens[0] in ("x", "y") and tokens[1] in _COORD_EDGES)
        or (tokens[1] in ("x", "y") and tokens[0] in _COORD_EDGES)
    ):
        return True  # x_min, center_y
    words = set(tokens)
    return bool(words & _COORD_AXES and words & _COORD_OWNERS and not words & (_AGGREGATE | _SETTING))


@functools.lru_cache(maxsize=4096)
def _name_kind(name: str, *, broad: bool) -> str | None:
    """The kind of personal data a column or key name suggests.

    `broad` is for database and CSV columns, where any such name is a schema decision; JSON and TOML keys use
    only the unambiguous words, because configs and logs reuse words like "image" and "x1" harmlessly.
    """
    tokens = _tokens(name)
    words = set(tokens)
    if broad and _is_coordinate(tokens):
        return "coords"
    if words & (_AGGREGATE | _SETTING):
        return None
    if words & _ID_WORDS or any(a in _ID_OWNERS and b in _ID_SUFFIXES for a, b in itertools.pairwise(tokens)):
        return "id"
    if words & _BOX_WORDS:
        return "box"
    if words & _LANDMARK_WORDS:
        return "landmarks"
    if words & _EMBEDDING_WORDS or (words & {"encoding", "encodings"} and words & _ID_OWNERS):
        return "embedding"
    if words & _CROP_WORDS:
        return "crop"
    if words & _TRAJECTORY_WORDS:
        return "trajectory"
    if not broad:
        return None
    if words & _FEATURE_WORDS:
        return "embedding"
    if words & _IMAGE_WORDS and not words & _IMAGE_META:
        return "crop"
    if words & _GEO_WORDS:
        return "geo"
    return None


def _table_name_suspect(name: str) -> bool:
    if name.lower() in KNOWN_TABLES:
        return False
    words = set(_tokens(name))
    if words & _SUMMARY_WORDS:
        return False
    return bool(words & _TABLE_WORDS or ("people" in words and words & _PEOPLE_ROW_WORDS))


# ----------------------------------------------------------------------------------------------------
# Columns: shared by DuckDB tables, Parquet files and CSV headers

_NUMERIC_TYPE = (
    r"(?:TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE"
    r"|REAL|NUMERIC|INT\d*|DECIMAL(?:\(\d+,\s*\d+\))?)"
)
_NUMERIC_LIST = re.compile(rf"{_NUMERIC_TYPE}(?:\[\d*\])+")
_NUMERIC_SCALAR = re.compile(_NUMERIC_TYPE)


def _struct_fields(dtype: str) -> list[tuple[str, str]]:
    """(name, type) of a STRUCT type's fields, or [] for any other type."""
    match = re.fullmatch(r"STRUCT\((.*)\)(?:\[\d*\])*", dtype.strip(), re.S)
    if not match:
        return []
    parts: list[str] = []
    depth, quoted, current = 0, False, ""
    for ch in match.group(1):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    fields = []
    for part in parts:
        part = part.strip()
        if part.startswith('"'):
            end = part.find('"', 1)
            while end != -1 and part[end + 1 : end + 2] == '"':
                end = part.find('"', end + 2)
            name, rest = part[1:end].replace('""', '"'), part[end + 1 :]
        else:
            name, _, rest = part.partition(" ")
        fields.append((name, rest.strip()))
    return fields


def _is_numeric_list(dtype: str) -> bool:
    dtype = dtype.strip()
    if _NUMERIC_LIST.fullmatch(dtype):
        return True
    fields = _struct_fields(dtype)
    # A list of {x, y} structs is a polygon or a landmark set all the same.
    return bool(fields and dtype.endswith("]") and all(_NUMERIC_SCALAR.fullmatch(t) for _, t in fields))


def _column_findings(columns: list[tuple[str, str | None]]) -> list[tuple[str | None, str]]:
    """(column or None for the whole relation, kind) for one table's columns; types may be unknown (CSV)."""
    findings: list[tuple[str | None, str]] = []
    positional = False
    for name, dtype in columns:
        kind = _name_kind(name, broad=True)
        if kind:
            findings.append((name, kind))
            positional = positional or kind in _GEOMETRY_KINDS or kind == "landmarks"
        if dtype is None:
            continue
        if "BLOB" in dtype.upper() or "BYTEA" in dtype.upper():
            findings.append((name, "blob"))
        if _is_numeric_list(dtype):
            findings.append((name, "numlist"))
            positional = True
        fields = _struct_fields(dtype)
        field_names = {"_".join(_tokens(f)) for f, _ in fields}
        for field, _ in fields:
            field_kind = _name_kind(field, broad=True)
            if field_kind:
                findings.append((f"{name}, field {field}", field_kind))
                positional = positional or field_kind in _GEOMETRY_KINDS
        if any(a in field_names and b in field_names for a, b in _BARE_PAIRS):
            findings.append((name, "coords"))
            positional = True
    normalized = {"_".join(_tokens(name)): name for name, _ in columns}
    if any(a in normalized and b in normalized for a, b in _BARE_PAIRS):
        positional = True
        for bare in sorted({*itertools.chain.from_iterable(_BARE_PAIRS), *_BARE_SIZES} & set(normalized)):
            findings.append((normalized[bare], "coords"))
    flagged = {column for column, _ in findings}
    if positional and any(n in _FRAME_KEYS and c not in flagged for n, c in normalized.items()):
        findings.append((None, "per_frame"))
    return list(dict.fromkeys(findings))


# ----------------------------------------------------------------------------------------------------
# DuckDB and Parquet


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _like_escape(needle: str) -> str:
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# Case matters for base64; JSON keys are matched case-insensitively.
_SQL_BASE64_NEEDLES = ("/9j/", "\\/9j\\/", "iVBORw0KGgo", "R0lGOD", "UklGR", "SUkqA", "TU0AK", "k05VTVBZ")
_SQL_KEY_NEEDLES = tuple(
    f'"{key}"'
    for key in (
        "bbox", "bboxes", "box", "boxes", "landmarks", "landmark", "keypoints", "track_id", "trackId",
        "track", "face_id", "person_id", "embedding", "embeddings", "descriptor", "crop", "thumbnail",
    )
)  # fmt: skip


def _audit_duckdb(path: Path) -> list[tuple[str, str]]:
    try:
        con = connect(path, read_only=True)
    except SanitaryError as exc:
        raise AuditError(f"{exc}; it cannot be audited until then") from None
    try:
        return _audit_catalog(con)
    except duckdb.Error as exc:
        raise AuditError(f"{path}: DuckDB failed while reading it ({exc}); it cannot be audited") from exc
    finally:
        con.close()


def _audit_catalog(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        """
        SELECT c.table_catalog, c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type
        FROM information_schema.columns AS c
        JOIN information_schema.tables AS t USING (table_catalog, table_schema, table_name)
        WHERE c.table_catalog = current_database()
        ORDER BY c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    relations: dict[tuple[str, str, str, str], list[tuple[str, str]]] = {}
    for catalog, schema, table, table_type, column, dtype in rows:
        relations.setdefault((catalog, schema, table, table_type), []).append((column, dtype))
    results: list[tuple[str, str]] = []
    for (catalog, schema, table, table_type), columns in relations.items():
        is_view = table_type == "VIEW"
        shown = table if schema == "main" else f"{schema}.{table}"
        label = f"{'view' if is_view else 'table'} {shown}"
        if not is_view and _table_name_suspect(table):
            results.append((label, _MESSAGES["table"]))
        results.extend(_relation_results(label, columns))
        # Views only re-show their base tables' values (or read files that may be gone); scan tables only.
        if not is_view:
            relation = f"{_q(catalog)}.{_q(schema)}.{_q(table)}"
            results.extend(_value_results(con, relation, label, columns))
            if schema != "main" or not _sanitary_shape(columns, table):
                results.extend(_shape_results(con, relation, label, columns))
    return results


def _relation_results(label: str, columns: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [
        (f"{label}, column {column}" if column is not None else label, _MESSAGES[kind])
        for column, kind in _column_findings(columns)
    ]


def _value_results(
    con: duckdb.DuckDBPyConnection, relation: str, label: str, columns: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Text columns searched inside DuckDB; only a few matching values come out to be confirmed."""
    text_columns = [c for c, t in columns if "VARCHAR" in t.upper() or "JSON" in t.upper()]
    if not text_columns:
        return []
    needles = [(n, False) for n in _SQL_BASE64_NEEDLES] + [(n, True) for n in _SQL_KEY_NEEDLES]
    probes = [(column, needle, nocase) for column in text_columns for needle, nocase in needles]
    selects = ", ".join(
        f"coalesce(bool_or(CAST({_q(c)} AS VARCHAR) {'ILIKE' if nocase else 'LIKE'} ? ESCAPE '\\'), false)"
        for c, _, nocase in probes
    )
    flags = con.execute(f"SELECT {selects} FROM {relation}", [_like_escape(n) for _, n, _ in probes]).fetchone()
    results = _number_text_results(con, relation, label, text_columns)
    reported: set[tuple[str, str]] = set()
    for (column, needle, nocase), flagged in zip(probes, flags or (), strict=False):
        if not flagged:
            continue
        value = f"CAST({_q(column)} AS VARCHAR)"
        op = "ILIKE" if nocase else "LIKE"
        if nocase:
            sql = (
                f"SELECT substr({value}, 1, {LINE_MAX_CHARS}) FROM {relation} "
                f"WHERE {value} {op} ? ESCAPE '\\' LIMIT {SQL_SAMPLE_ROWS}"
            )
            sample = [row[0] for row in con.execute(sql, [_like_escape(needle)]).fetchall()]
            for what in _confirm_json_values(sample):
                if (column, what) not in reported:
                    reported.add((column, what))
                    results.append((f"{label}, column {column}", f"JSON in text values: {what}"))
        else:
            # Only the text from the prefix on is needed to decode an image header.
            sql = (
                f"SELECT substr({value}, strpos({value}, ?), {BASE64_WINDOW}) FROM {relation} "
                f"WHERE {value} LIKE ? ESCAPE '\\' LIMIT {SQL_SAMPLE_ROWS}"
            )
            rows = con.execute(sql, [needle, _like_escape(needle)]).fetchall()
            for (snippet,) in rows:
                validator = dict(_BASE64_PREFIXES)[needle.encode()]
                what = _check_candidate(_buffer_reader(snippet.encode()), validator, encoded=True)
                if what and (column, what) not in reported:
                    reported.add((column, what))
                    results.append((f"{label}, column {column}", f"Text values: {what}"))
                    break
    return results


# Shapes: per-person data under innocent names (visits(vid, gx, gy, t)) is told by its values, not its names. An id
# is a whole number or short text; a position is two or more other numbers that are not aggregates by name.
_ID_TYPES = re.compile(r"(?:TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UUID|VARCHAR)")
# A time or an order is neither the id nor part of the position: a person standing still is not a trajectory.
_TIME_WORDS = frozenset(
    {"t", "ts", "time", "times", "timestamp", "date", "datetime", "at", "when", "epoch", "frame", "frames",
     "window", "windows", "seq", "step", "tick", "second", "seconds", "sec", "s", "ms", "minute", "minutes",
     "hour", "hours", "day", "no", "nr", "idx", "index", "order"}
)  # fmt: skip


def _sanitary_shape(columns: list[tuple[str, str]], table: str | None) -> bool:
    """Whether a relation is one of the store's own tables (of this schema or an older one, which held fewer
    columns), `table` named; or, unnamed (a Parquet file), any of its tables or views, as `export` or a `COPY` of a
    view writes them."""
    names = {c for c, _ in columns}
    own = _own_columns()
    return names <= own.get(table, frozenset()) if table else any(names <= listed for listed in own.values())


@functools.cache
def _own_columns() -> dict[str, frozenset[str]]:
    """The columns of each table and view of sanitary's store, as its migrations build it."""
    with duckdb.connect() as con:
        migrate(con, Path(":memory:"))
        rows = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
        ).fetchall()
    own: dict[str, set[str]] = {}
    for table, column in rows:
        own.setdefault(table, set()).add(column)
    return {table: frozenset(columns) for table, columns in own.items()}


def _shape_results(
    con: duckdb.DuckDBPyConnection, relation: str, label: str, columns: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """A relation where one id is seen again with other values of two or more numbers: a trajectory."""
    timeless = [(c, t.strip()) for c, t in columns if not set(_tokens(c)) & _TIME_WORDS]
    numeric = [c for c, t in timeless if _NUMERIC_SCALAR.fullmatch(t) and not set(_tokens(c)) & _AGGREGATE]
    probes = []
    for id_column in (c for c, t in timeless if _ID_TYPES.fullmatch(t)):
        position = [_q(c) for c in numeric if c != id_column]
        if len(position) >= 2:
            # Some id holds two points exactly when there are more (id, point) pairs than ids: one scan for all. A
            # column of one value tells no one apart: an id takes two values or more.
            known = f"FILTER (WHERE {_q(id_column)} IS NOT NULL)"
            pairs = f"count(DISTINCT row({_q(id_column)}, {', '.join(position)})) {known}"
            ids = f"count(DISTINCT {_q(id_column)}) {known}"
            probes.append((id_column, f"{pairs} > {ids} AND {ids} >= 2"))
    if not probes:
        return []
    moved = con.execute(f"SELECT {', '.join(p for _, p in probes)} FROM {relation}").fetchone() or ()
    return [(f"{label}, column {c}", _MESSAGES["tracked"]) for (c, _), m in zip(probes, moved, strict=True) if m][:1]


# Numbers as text: an embedding serialised into a VARCHAR, as JSON or separated by commas, semicolons or spaces.
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_TEXT_VECTOR = rf"(?:{_NUMBER}\s*[,;\s]\s*){{{VECTOR_MIN - 1},}}{_NUMBER}"
# Image positions in prose, "(312.5, 88.0)" or "x=312.5, y=88.0": twice or more in one value is a list of places
# (one pair can be an error message naming a configured point).
_TEXT_POINT = rf"\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\)|\bx\s*[=:]\s*{_NUMBER}\s*[,;]?\s*y\s*[=:]\s*{_NUMBER}"
_TEXT_POINTS = rf"(?:{_TEXT_POINT})[\s\S]*(?:{_TEXT_POINT})"
# sanitary's own configuration, as runs.params holds it: a long list under one of its keys (twenty dwell bins) is
# a setting. Its sections' keys are known; a vector under any other key is not configuration.
_RUN_CONFIG = ("table runs", "params")
_CONFIG_KEYS = frozenset(
    f.name
    for section in vars(sanitary_config).values()
    if isinstance(section, type) and dataclasses.is_dataclass(section)
    for f in dataclasses.fields(section)
)


def _number_text_results(
    con: duckdb.DuckDBPyConnection, relation: str, label: str, text_columns: list[str]
) -> list[tuple[str, str]]:
    """Vectors and image positions written as text, found inside DuckDB and confirmed on a few values."""
    probes = [(c, kind, pattern) for c in text_columns
              for kind, pattern in (("text_vector", _TEXT_VECTOR), ("text_points", _TEXT_POINTS))]  # fmt: skip
    selects = ", ".join(f"coalesce(bool_or(regexp_matches(CAST({_q(c)} AS VARCHAR), ?)), false)" for c, _, _ in probes)
    flags = con.execute(f"SELECT {selects} FROM {relation}", [p for _, _, p in probes]).fetchone() or ()
    results = []
    for (column, kind, pattern), flagged in zip(probes, flags, strict=True):
        config = (label, column) == _RUN_CONFIG
        if not flagged or (kind == "text_points" and config):
            continue
        value = f"CAST({_q(column)} AS VARCHAR)"
        sample = con.execute(
            f"SELECT {value} FROM {relation} WHERE regexp_matches({value}, ?) LIMIT {SQL_SAMPLE_ROWS}", [pattern]
        ).fetchall()
        if kind == "text_points" or any(_vector_in_text(v, config) for (v,) in sample):
            results.append((f"{label}, column {column}", _MESSAGES[kind]))
    return results


def _vector_in_text(value: str, config: bool) -> bool:
    """Whether a text value matching _TEXT_VECTOR holds a vector: any run of numbers in free text; in sanitary's
    config column only a long list under a key the config does not have."""
    parsed = _parse_embedded_json(value) if config else None
    return parsed is None or any(key not in _CONFIG_KEYS for key in _long_list_keys(parsed, ""))


def _long_list_keys(node: Any, key: str) -> Iterator[str]:
    """The key of each list of VECTOR_MIN numbers or more in parsed JSON ("" at the top level)."""
    if _is_vector(node) and len(node) >= VECTOR_MIN:
        yield key
    elif isinstance(node, list):
        for item in node:
            yield from _long_list_keys(item, key)
    elif isinstance(node, dict):
        for k, item in node.items():
            yield from _long_list_keys(item, str(k))


def _confirm_json_values(values: list[str]) -> list[str]:
    """Messages for per-person keys found in sampled text values (parsed, so config-like JSON stays clean)."""
    found: list[str] = []
    for value in values:
        parsed = _parse_embedded_json(value)
        hits = _walk_all(parsed, geometry_ok=False) if parsed is not None else None
        if hits is None:
            hits = _regex_findings(value, config=False)
        for key_path, kind in hits:
            message = _MESSAGES[kind]
            what = f"{message[0].lower()}{message[1:-1]} (key {key_path})."
            if what not in found:
                found.append(what)
    return found


def _audit_parquet(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        relation = "read_parquet('" + str(path).replace("'", "''") + "')"
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        except duckdb.Error as exc:
            raise AuditError(f"{path}: looks like Parquet but cannot be read ({exc})") from exc
        columns = [(str(row[0]), str(row[1])) for row in described]
        shape = [] if _sanitary_shape(columns, None) else _shape_results(con, relation, "parquet", columns)
        return _relation_results("parquet", columns) + _value_results(con, relation, "parquet", columns) + shape
    finally:
        con.close()


# ----------------------------------------------------------------------------------------------------
# Zip archives (.npz and friends): members are usually compressed, so raw-byte signatures do not show


def _audit_zip(path: Path) -> list[tuple[str, str]]:
    results: list[tuple[str, str]] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if info.flag_bits & 0x1:
                    raise AuditError(f"{path}: member {info.filename} is encrypted; audit the unpacked files")
                with archive.open(info) as member:
                    data = member.read(ZIP_MEMBER_HEAD)
                read = _buffer_reader(data)
                for pattern, validator in _SIGNATURES:
                    if data.startswith(pattern):
                        label = _check_candidate(read, validator, encoded=False)
                        if label:
                            results.append((f"archive member {info.filename}", label))
    except (zipfile.BadZipFile, EOFError):
        # Not a readable zip after all (a file that merely starts with "PK"); its raw bytes were scanned.
        return results
    except NotImplementedError as exc:
        raise AuditError(f"{path}: cannot unpack it ({exc}); audit the unpacked files") from exc
    return results


# ----------------------------------------------------------------------------------------------------
# Text files: JSON, JSON lines, logs, CSV, TOML

_JSON_EXTENSIONS = frozenset({".json", ".geojson"})
_CSV_EXTENSIONS = frozenset({".csv", ".tsv"})
# Configs hold pixel geometry on purpose (calibration points, zones, privacy masks): only ids and embeddings
# count there.
_CONFIG_EXTENSIONS = frozenset({".toml", ".yaml", ".yml", ".ini", ".cfg", ".conf"})
# Keys under which pixel geometry is configuration, whatever the file.
_CONFIG_WORDS = frozenset(
    {"polygon", "polygons", "zone", "zones", "mask", "masks", "points", "roi", "rois", "region", "regions",
     "calibration", "homography", "walkable", "line", "lines", "area", "areas"}
)  # fmt: skip
_PERSON_CONTAINERS = frozenset(
    {"face", "faces", "person", "persons", "people", "pedestrian", "pedestrians", "detection", "detections",
     "dets", "head", "heads", "body", "bodies", "tracks", "tracklets"}
)  # fmt: skip
_BOX_KEY_SETS = (
    frozenset({"x1", "y1", "x2", "y2"}),
    frozenset({"xmin", "ymin", "xmax", "ymax"}),
    frozenset({"x_min", "y_min", "x_max", "y_max"}),
    frozenset({"left", "top", "right", "bottom"}),
    frozenset({"left", "top", "width", "height"}),
    frozenset({"x", "y", "w", "h"}),
    frozenset({"x", "y", "width", "height"}),
)
_DECODER = json.JSONDecoder()
_QUOTED_KEY = re.compile(r"""["']([A-Za-z_][\w-]{0,63})["']\s*:\s*(.?)""")
_VECTOR_KEY = re.compile(r"\b([A-Za-z_]\w{0,63})\s*[:=]\s*[\[(]\s*-?\d")
_ID_ASSIGNMENT = re.compile(r"(?i)\b((?:track|face|person|detection|det|pedestrian)_?id)\s*[:=]\s*#?\d")


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 2 and all(_is_number(v) for v in value)


def _meaningful(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and value != "" and value != [] and value != {}


def _walk(node: Any, trail: str, *, geometry_ok: bool) -> Iterator[tuple[str, str]]:
    """(key path, kind) for each per-person key in parsed JSON/TOML; list indices collapse to []."""
    if isinstance(node, list):
        if not geometry_ok and _timed_points(node):
            yield (trail or "(top level)", "timed_points")
        for item in node:
            yield from _walk(item, f"{trail}[]", geometry_ok=geometry_ok)
        return
    if not isinstance(node, dict):
        return
    numeric_keys = {str(k).lower() for k, v in node.items() if _is_number(v)}
    if not geometry_ok and any(s <= numeric_keys for s in _BOX_KEY_SETS):
        yield (trail or "(top level)", "box_keys")
    elif not geometry_ok and sum(_is_coordinate(_tokens(k)) for k in numeric_keys) >= 2:
        yield (trail or "(top level)", "point_keys")  # head_x and head_y: one person's place in the image
    for key, value in node.items():
        key = str(key)
        path = f"{trail}.{key}" if trail else key
        tokens = _tokens(key)
        words = set(tokens)
        kind = _name_kind(key, broad=False)
        if kind == "id" and isinstance(value, int) and tokens and tokens[-1].endswith("s"):
            kind = None  # "tracks": 12 is a count
        if kind in _GEOMETRY_KINDS and geometry_ok:
            kind = None
        # A short string under "crop" is a file name or a setting; pixels take more room.
        if kind == "crop" and isinstance(value, str) and len(value) < 64:
            kind = None
        if kind and _meaningful(value):
            yield path, kind
        rows = bool(words & _PERSON_CONTAINERS) and isinstance(value, list) and not words & _AGGREGATE
        if rows and not kind and any(isinstance(v, dict) or _is_vector(v) for v in value):
            yield path, "rows"
        elif rows and not kind and len(value) in (4, 5) and _is_vector(value) and not geometry_ok:
            yield path, "box"
        elif not kind and not words & _AGGREGATE and _is_vector(value) and len(value) >= VECTOR_MIN:
            # Whatever its key is called, a long run of numbers in a log line is how embeddings slip out.
            yield path, "numlist"
        # Inside a list of people even a config's geometry is about a person.
        child_ok = False if rows else geometry_ok or bool(words & _CONFIG_WORDS)
        yield from _walk(value, path, geometry_ok=child_ok)


def _timed_points(value: Any) -> bool:
    """Records (two or more) each holding a time and a point: [{"t": 1, "p": [3.5, 2.0]}, ...]."""
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(
            isinstance(record, dict)
            and any(str(k).lower() in _FRAME_KEYS and _is_number(v) for k, v in record.items())
            and any(_is_vector(v) and len(v) in (2, 3) for v in record.values())
            for record in value
        )
    )


def _walk_all(node: Any, *, geometry_ok: bool) -> list[tuple[str, str]] | None:
    """All of `_walk`'s findings, or None when the nesting is too deep to walk (the caller falls back)."""
    try:
        findings = _walk(node, "", geometry_ok=geometry_ok)
        # A report line, not a dump: deep key paths keep their informative end.
        return list(dict.fromkeys((p if len(p) <= 120 else "..." + p[-117:], k) for p, k in findings))
    except RecursionError:
        return None


def _parse_embedded_json(line: str) -> Any | None:
    """The JSON object or array a line holds, or starts after a log prefix; None if there is none."""
    stripped = line.strip()
    if not stripped:
        return None
    start = 0 if stripped[0] in "[{" else stripped.find("{")
    if start < 0:
        return None
    try:
        value, _ = _DECODER.raw_decode(stripped, start)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def _regex_findings(line: str, *, config: bool) -> list[tuple[str, str]]:
    """Per-person keys in text no parser understood: Python reprs, YAML, key=value logs."""
    found: list[tuple[str, str]] = []
    for match in _QUOTED_KEY.finditer(line):
        key, first = match.group(1), match.group(2)
        kind, tokens = _name_kind(key, broad=False), _tokens(key)
        if kind == "id" and first.isdigit() and tokens and tokens[-1].endswith("s"):
            continue  # "tracks": 12 is a count
        if kind and not (config and kind in _GEOMETRY_KINDS):
            found.append((key, kind))
    for match in _VECTOR_KEY.finditer(line):
        kind = _name_kind(match.group(1), broad=False)
        if kind and not (config and kind in _GEOMETRY_KINDS):
            found.append((match.group(1), kind))
    found.extend((m.group(1), "id") for m in _ID_ASSIGNMENT.finditer(line))
    return found


def _bounded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) with overlong lines cut into pieces that share the line number."""
    with path.open("r", encoding="utf-8", errors="replace", newline=None) as f:
        number = 1
        while piece := f.readline(LINE_MAX_CHARS):
            yield number, piece
            if piece.endswith("\n"):
                number += 1


def _audit_text(path: Path, head: bytes) -> list[tuple[str, str]]:
    suffix = path.suffix.lower()
    size = path.stat().st_size
    first = head.lstrip()[:1]
    if suffix in _CSV_EXTENSIONS:
        return _audit_csv(path, head)
    if suffix == ".toml" and size <= TOML_MAX_BYTES:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            pass
        else:
            findings = _walk_all(document, geometry_ok=True)
            if findings is not None:
                return _document_results(findings)
    whole_json = suffix in _JSON_EXTENSIONS or (first == b"[" and suffix not in {".jsonl", ".ndjson"})
    if whole_json and size <= JSON_DOCUMENT_MAX_BYTES:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            pass  # JSON lines, or a log; read line by line
        else:
            findings = _walk_all(document, geometry_ok=False)
            if findings is not None:
                return _document_results(findings)
    return _audit_lines(path, config=suffix in _CONFIG_EXTENSIONS)


def _document_results(findings: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"key {key_path}", _MESSAGES[kind]) for key_path, kind in findings]


def _audit_lines(path: Path, *, config: bool) -> list[tuple[str, str]]:
    # One report per key and kind: the first line, plus how many more lines repeat it.
    first_seen: dict[tuple[str, str], int] = {}
    repeats: dict[tuple[str, str], int] = {}
    for number, line in _bounded_lines(path):
        parsed = None if config else _parse_embedded_json(line)
        walked = _walk_all(parsed, geometry_ok=False) if parsed is not None else None
        findings = walked if walked is not None else _regex_findings(line, config=config)
        for finding in dict.fromkeys(findings):
            if finding not in first_seen:
                first_seen[finding] = number
                repeats[finding] = 0
            else:
                repeats[finding] += 1
    results = []
    for (key, kind), number in first_seen.items():
        more = repeats[(key, kind)]
        suffix = f" (and {more} more line{'s' if more > 1 else ''})" if more else ""
        results.append((f"line {number}, key {key}{suffix}", _MESSAGES[kind]))
    return results


def _audit_csv(path: Path, head: bytes) -> list[tuple[str, str]]:
    header_line = head.decode("utf-8", errors="replace").splitlines()[:1]
    if not header_line:
        return []
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if delimiter == "," and header_line[0].count(";") > header_line[0].count(","):
        delimiter = ";"
    header = next(csv.reader([header_line[0]], delimiter=delimiter), [])
    columns: list[tuple[str, str | None]] = [(name.strip(), None) for name in header if name.strip()]
    return _relation_results("header", columns)
