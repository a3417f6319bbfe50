"""Frames from a video file, a folder of images or a glob, with timestamps and cheap frame skipping.

Skipped video frames are only `grab()`bed (demuxed and decoded, never converted to BGR or copied to Python);
skipped images are never read from disk.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

# FFmpeg and OpenCV log a bad file's faults ("moov atom not found") straight to stderr, before sanitary's own line
# saying what to do; they read these when OpenCV is loaded, and this module loads it first in every command that
# decodes. Set either in the environment to see them again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

import cv2
import numpy as np

from sanitary.errors import SanitaryError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# A container's frame count is an estimate for some formats; only a clear shortfall means a cut file.
TRUNCATION_TOLERANCE = 0.02


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based position of the frame in its source
    t: float  # seconds since the start of the source
    image: np.ndarray  # BGR, uint8, H x W x 3
    file: str | None  # image file name for folder/glob sources, None for a video
    # An unrelated photo (of a folder not played as a sequence): it shares no scene with the frame before, so
    # nothing seen earlier (a head count, a track) carries over to it.
    photo: bool = False


@dataclass(frozen=True)
class SourceInfo:
    path: Path
    kind: Literal["video", "images"]
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def analysed_fps(self, sample_fps: float | None) -> float:
        """Frames analysed per second of footage: the sample rate, never more than the footage has."""
        return min(sample_fps or self.fps, self.fps)


class TruncatedSourceError(SanitaryError):
    """The source ended before its declared length; the frames before the cut were analysed."""


class Source:
    """One footage file, or a folder or glob of images; iterate it with `frames()`. The images are photos, each
    its own scene, unless `sequence` says they are the frames of one camera (an image-sequence export), played at
    `fps` as a video is."""

    def __init__(self, spec: str, fps: float | None = None, sequence: bool = False) -> None:
        self.spec = spec
        self.sequence = sequence
        path = Path(spec)
        if path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise SanitaryError(f"{spec}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif any(c in spec for c in "*?[") and not path.exists():
            self._images = [Path(p) for p in sorted(glob.glob(spec)) if Path(p).is_file()]
            if not self._images:
                raise SanitaryError(f"{spec}: the pattern matches no file; check the glob and quote it")
        elif path.is_file():
            self._images = [path] if path.suffix.lower() in IMAGE_SUFFIXES else []
        else:
            raise SanitaryError(f"{spec}: no such file or folder; check the path")
        self.info = self._probe_images(path, fps) if self._images else self._probe_video(path, fps)
        self.decoded = 0  # frames read from the source so far, analysed or skipped
        self.unreadable: list[Path] = []  # images of the last read left out: cut short, or not images

    def _probe_images(self, path: Path, fps: float | None) -> SourceInfo:
        first = next((image for p in self._images if (image := read_image(p)) is not None), None)
        if first is None:
            raise SanitaryError(
                f"{self.spec}: no image here can be read (each is cut short or not an image); re-export them"
            )
        if fps is None:
            raise SanitaryError(
                f"{self.spec}: images carry no frame rate; pass --fps or set time.fps in the camera config"
            )
        h, w = first.shape[:2]
        return SourceInfo(path, "images", fps, len(self._images), w, h)

    def _probe_video(self, path: Path, fps: float | None) -> SourceInfo:
        cap = cv2.VideoCapture(str(path))
        try:
            ok = cap.isOpened() and cap.grab()
            if not ok:
                raise SanitaryError(
                    f"{path}: cannot decode this video (corrupt, empty or not a video); re-export it or drop it"
                )
            container_fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        rate = fps or container_fps
        if not rate or not math.isfinite(rate) or rate <= 0:
            raise SanitaryError(f"{path}: the container gives no frame rate; pass --fps or set time.fps")
        return SourceInfo(path, "video", rate, max(count, 0), w, h)

    def frames(self, sample_fps: float | None = None, from_s: float = 0.0) -> Iterator[Frame]:
        """Frames in order; with `sample_fps`, about that many a second, the rest skipped cheaply. From `from_s`
        on, the frames a read from the start keeps from there, with the same indices and times: the frames before
        are decoded to find the position (a seek lands on a key frame, not on the frame asked for, in many
        containers), never analysed."""
        keep = _Keep(self.info.fps, sample_fps, max(0, math.floor(from_s * self.info.fps)))
        if self.info.kind == "images":
            yield from self._image_frames(keep)
        else:
            yield from self._video_frames(keep)

    def _image_frames(self, keep: _Keep) -> Iterator[Frame]:
        # An image that cannot be read is a frame missing, not a source lost: the others keep their times.
        self.unreadable = []
        for i, p in enumerate(self._images):
            self.decoded = i + 1
            if not keep(i):
                continue
            image = read_image(p)
            if image is None:
                self.unreadable.append(p)
                continue
            yield Frame(i, i / self.info.fps, image, p.name, photo=not self.sequence)

    def _video_frames(self, keep: _Keep) -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(self.info.path))
        i = 0
        try:
            while cap.grab():
                self.decoded = i + 1
                if keep(i):
                    ok, image = cap.retrieve()
                    if not ok:
                        break
                    yield Frame(i, i / self.info.fps, image, None)
                i += 1
        finally:
            cap.release()
        declared = self.info.frame_count
        if declared and i < declared * (1 - TRUNCATION_TOLERANCE):
            raise TruncatedSourceError(
                f"{self.info.path}: video is truncated (decoded {i} of {declared} frames); "
                "the frames before the cut were stored, re-export the file and run again to complete it"
            )

    def content_hash(self) -> str:
        """Identity of the footage itself, so a renamed or copied file is still recognised as done."""
        digest = hashlib.blake2b(digest_size=16)
        for p in self._images or [self.info.path]:
            if self._images:
                digest.update(p.name.encode())
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
        return digest.hexdigest()


def read_image(path: Path) -> np.ndarray | None:
    """The image at `path` (BGR), or None when it cannot be read, cannot be decoded, or is cut short: OpenCV
    decodes a JPEG that lost its end with a warning only, the missing part grey, which would be analysed as an
    empty scene."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data or not whole_image(data):
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # what the decoder does not recognise it mostly answers with None, some with an error
        return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def whole_image(data: bytes) -> bool:
    """False for a JPEG or PNG cut short: a JPEG without an end-of-image marker after its first scan, a PNG
    without its IEND chunk. Other formats are left to the decoder, which refuses them when cut."""
    if data.startswith(PNG_SIGNATURE):
        return data.rfind(b"IEND") != -1
    if not data.startswith(b"\xff\xd8"):
        return True
    # Walk the length-prefixed header segments to the first scan: an EXIF thumbnail inside them has its own end
    # marker. Scan data escapes every 0xFF byte, so the next FFD9 after the scan starts is the image's end.
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xDA:
            return data.find(b"\xff\xd9", at) != -1
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return False


class _Keep:
    """Frame i is kept when it is the first frame of a new 1/sample_fps slot, and not before frame `first`."""

    def __init__(self, fps: float, sample_fps: float | None, first: int = 0) -> None:
        self.ratio = None if sample_fps is None or sample_fps >= fps else sample_fps / fps
        self.first = first

    def __call__(self, i: int) -> bool:
        if i < self.first:
            return False
        if self.ratio is None:
            return True
        return i == 0 or math.floor(i * self.ratio) > math.floor((i - 1) * self.ratio)


_STRFTIME_TO_REGEX = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%M": r"\d{2}", "%S": r"\d{2}"}


def start_from_filename(path: Path, pattern: str, tz: ZoneInfo) -> datetime | None:
    """The time an NVR wrote into the file name, e.g. cam3_20210301_080000.mp4 with %Y%m%d_%H%M%S."""
    regex = re.escape(pattern)
    for code, digits in _STRFTIME_TO_REGEX.items():
        regex = regex.replace(re.escape(code), digits)
    match = re.search(regex, path.stem)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(0), pattern).replace(tzinfo=tz)
    except ValueError:
        return None


@dataclass(frozen=True)
class Continuity:
    """How a file sits after the previous file of the same camera: a gap (> 0) or overlap (< 0), in seconds."""

    previous: Path
    current: Path
    seconds: float


def continuity(spans: list[tuple[Path, datetime, float]], tolerance_s: float) -> list[Continuity]:
    """Gaps and overlaps between consecutive files (path, start, duration) of one camera, in time order."""
    ordered = sorted(spans, key=lambda s: s[1])
    found = []
    for (p0, s0, d0), (p1, s1, _) in itertools.pairwise(ordered):
        delta = (s1 - (s0 + timedelta(seconds=d0))).total_seconds()
        if abs(delta) > tolerance_s:
            found.append(Continuity(p0, p1, delta))
    return found
