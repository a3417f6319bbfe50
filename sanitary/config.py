"""Camera configuration: one TOML file per camera, parsed into typed, validated values.

Every section is a frozen dataclass; later features add sections (calibration, zones, alerts) without touching
the loader. A wrong key or value is a one-line `SanitaryError` that names the file, the key and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from sanitary.errors import SanitaryError
from sanitary.geometry.homography import ZoneGeometry, check_horizon, frame_region, polygon_area_m2

SiteKind = Literal["market", "bus"]
PersonModelName = Literal["bytetrack-nano", "yolox-nano-coco"]
Point = tuple[float, float]
# Keys of earlier releases, refused with what replaced them rather than as merely unknown.
WHOLE_FRAME = "the person detector now sees the whole frame in one pass, sized by the frame's shape; remove the key"
RETIRED = {f"detection.{key}": WHOLE_FRAME for key in ("tile_px", "tile_px_far", "tile_overlap", "full_frame")}
# Footage times outside these years are typing mistakes, and beyond 9999 they cannot be stored at all (a window's
# end, a retention cut-off): refused before any frame is read.
YEARS = (1970, 2100)
# Integers past this lose precision as floats and overflow DuckDB's BIGINT arithmetic; no setting needs one.
MAX_INT = 2**53
DAY_S = 86_400
# A slower true rate makes a short file last centuries, past what a date can hold.
MIN_FPS = 0.01
# No camera films faster, and a higher rate only asks for frames that do not exist (time.fps and the commands' rates).
MAX_FPS = 1000.0
# A pixel coordinate of a frame this wide is a typo (the largest sensors are ~16k pixels wide).
MAX_FRAME_PX = 65_536
# A homography whose smallest singular value is this far under its largest maps the image onto a line: every
# distance would come out zero. Real calibrations sit near 1e-4 (PETS: 1.3e-4).
MIN_SINGULAR_RATIO = 1e-10


@dataclass(frozen=True)
class TimeConfig:
    window_seconds: int = 60
    # The container's rate can be wrong (the PETS clip says 10 fps, it was shot at 7).
    fps: float | None = None
    # ISO 8601; naive times are in the camera's time zone.
    start: str | None = None
    # strftime-style pattern found in file names, e.g. "%Y%m%d_%H%M%S" for NVR exports.
    filename_pattern: str | None = None
    # A folder (or glob) of images is the frames of this camera in name order, an image-sequence export, played at
    # `fps` as a video is (heads.every_s, tracking); false: each image is a photo of its own scene.
    sequence: bool = False


@dataclass(frozen=True)
class DetectionConfig:
    # The person detector (perception/people.py): ByteTrack-Nano, trained on crowds, or YOLOX-Nano COCO, whose
    # training data carry no non-commercial terms (weights/*.json have both cards).
    model: PersonModelName = "bytetrack-nano"
    # Chosen for bytetrack-nano on ShanghaiTech B train photos (weights/bytetrack_nano.json); yolox-nano-coco: 0.25.
    person_score: float = 0.4
    # Image polygon (pixels) where people can stand; people whose feet are outside it are dropped.
    walkable: list[Point] = field(default_factory=list)
    face_score: float = 0.5
    # "people": faces in the head region of each person; "frame": the whole frame, for close-range cameras
    # (inside a bus) that see heads and shoulders rather than whole people.
    face_search: Literal["people", "frame"] = "people"
    face_frame_px: int = 640
    # Below this height a person's face is a few pixels wide: no detector finds it, so don't pay for the search.
    face_min_person_px: int = 80
    threads: int = 0


@dataclass(frozen=True)
class MaskConfig:
    """When a face is read as `unknown` rather than guessed into either side of the mask rate."""

    min_face_px: float = 4.0
    # Nose offset from the middle of the eyes, in eye distances; beyond it the face is too side-on.
    max_nose_offset: float = 0.5
    min_confidence: float = 0.6
    # A tracked person's face is read every frame until tracking.min_mask_frames confident readings, then once in
    # each period of this many seconds, the reading carried to their frames between (0: every face every frame):
    # mask wearing does not change from frame to frame, and a reading costs a few ms a face on 2 cores. Faces of
    # nobody tracked are read every frame (perception/mask_schedule.py).
    every_s: float = 1.0


@dataclass(frozen=True)
class CalibrationConfig:
    """Image-to-ground calibration: point pairs (here or in a CSV), and the homography fitted from them."""

    # Pixels at the footage's resolution and the same points on the ground in metres, in the same order.
    image_points: list[Point] = field(default_factory=list)
    ground_points: list[Point] = field(default_factory=list)
    # CSV with columns image_x, image_y, ground_x, ground_y; a relative path is relative to this config file.
    points_csv: str | None = None
    # Written by `sanitary calibrate`: image pixels -> ground metres, for frames of `image_size` (width, height).
    homography: list[list[float]] = field(default_factory=list)
    image_size: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DistancingConfig:
    threshold_m: float = 1.0
    # A pair counts as close only when it is closer than the threshold with at least this probability, given
    # the distance's uncertainty; 0.5 counts the pairs whose measured distance is under the threshold.
    confidence: float = 0.5
    # Uncertainty of a feet point, as a share of the person's box height (measured on PETS, README "Geometry").
    feet_sigma_fraction: float = 0.06


@dataclass(frozen=True)
class ZoneConfig:
    name: str
    polygon: list[Point]
    units: Literal["m", "px"] = "m"


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = True
    # A person unseen this long is gone: their track ends and is forgotten.
    max_lost_s: float = 2.0
    # Detections in this many consecutive analysed frames before a track counts as a person.
    confirm_frames: int = 3
    max_iou_distance: float = 0.7
    # A detection scoring under this may continue a person's track, never start one (ByteTrack's 0.5 + 0.1, for
    # YOLOX scores): half-hidden people score low, and so do things that look a little like a person.
    start_score: float = 0.6
    max_appearance_distance: float = 0.3
    # A track shorter than this is a detector flicker, not a person: it is not counted.
    min_person_s: float = 1.0
    # A person's mask reading is a vote over the frames where their face was read with confidence.
    min_mask_frames: int = 2
    # Two people closer than distancing.threshold_m for this long make one close contact.
    contact_s: float = 2.0
    # Upper edges of the dwell-time histogram bins, in seconds (a last, open bin follows).
    dwell_bins_s: list[float] = field(default_factory=lambda: [10.0, 30.0, 60.0, 300.0])


@dataclass(frozen=True)
class HeadConfig:
    """The head model (weights/head_points.onnx): head centres where bodies are hidden."""

    enabled: bool = True
    # Peak score for a head; the card's, chosen on every source's tuning photos (head_points.json, decision).
    min_score: float = 0.3
    # A head no detected body accounts for counts as a person from this score: alone, it needs stronger evidence.
    # In a crowd (below) it counts from min_score: most people there are only a head. The three are chosen with
    # the crowd benchmark's sweep on tuning photos of every source and on PETS, keeping PETS within 0.4 a frame
    # (README "People in crowds").
    unboxed_score: float = 0.5
    # A frame is a crowd when at least crowd_heads heads no detected body accounts for make at least crowd_share
    # of the heads found (the detector sees few of its people).
    crowd_heads: int = 5
    crowd_share: float = 0.25
    # The frame is resized so that heads come out at the size the model knows best (from the people's heights),
    # but never to more than this many pixels (a 1024x768 photo enlarged x2, the enlargement chosen in training):
    # the model's cost grows with the area.
    max_pixels: int = 3_200_000
    # Seconds of footage between two runs of the model: occupancy changes slowly, and one run at 3 million pixels
    # costs ~270 ms on 2 cores, twenty detector passes (0: every analysed frame).
    every_s: float = 2.0
    threads: int = 0


@dataclass(frozen=True)
class LineConfig:
    """A counting line (a door, a gate): crossing it from its left to its right, walking from `a` to `b`, is in."""

    name: str
    a: Point
    b: Point
    units: Literal["m", "px"] = "px"


Profile = Literal["market", "fr-transport-2021-269"]
# Decree 2021-269 (France): counts and mask rates only, on public transport, aggregated over 20 minutes.
FR_TRANSPORT = "fr-transport-2021-269"
FR_TRANSPORT_WINDOW_S = 1200


@dataclass(frozen=True)
class PrivacyConfig:
    """What may be stored: the compliance profile, the smallest group a mask rate is shown for, how long."""

    profile: Profile = "market"
    # A window with fewer people keeps its people count, but its mask counts and rates are suppressed: a rate
    # over two people tells who of the two wore a mask.
    k_min: int = 5
    # Aggregates older than this are deleted when the store is next written (0: kept until deleted by hand).
    retention_days: float = 0.0


@dataclass(frozen=True)
class PrivacyMask:
    """Pixels (at the footage's resolution) blanked before any detector sees the frame: a window, a doorway."""

    polygon: list[Point]


@dataclass(frozen=True)
class OptOutConfig:
    """The head-shake opt-out: a "no" (yaw swinging left-right-left) excludes the person from the aggregates."""

    enabled: bool = True
    # Yaw (degrees, from the face landmarks) the head must pass on each side of straight ahead.
    yaw_deg: float = 15.0
    # Left-right-left within this many seconds.
    max_shake_s: float = 2.0


AlertMeasure = Literal["occupancy", "zone_occupancy", "mask_rate", "close_pairs_per_min", "close_contacts_per_min"]


@dataclass(frozen=True)
class AlertRule:
    """Raised when `measure`, over the trailing `span_s`, goes above `above` (or below `below`); cleared only once
    it is back past the threshold by `hysteresis` (a share of it); raised again no sooner than `cooldown_s`."""

    name: str
    measure: AlertMeasure
    above: float | None = None
    below: float | None = None
    zone: str | None = None  # for zone_occupancy
    min_people: int = 5  # mask_rate: only judged with at least this many people seen over the span
    span_s: float = 60.0
    hysteresis: float = 0.1
    cooldown_s: float = 600.0


@dataclass(frozen=True)
class AlertSinks:
    stdout: bool = True
    # Append-only JSON lines; a relative path is relative to the working directory.
    file: str | None = None
    webhook: str | None = None
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3
    webhook_backoff_s: float = 1.0


@dataclass(frozen=True)
class CameraConfig:
    camera_id: str
    site_id: str
    site_kind: SiteKind
    timezone: str = "UTC"
    unit_id: str | None = None
    time: TimeConfig = field(default_factory=TimeConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    distancing: DistancingConfig = field(default_factory=DistancingConfig)
    zones: list[ZoneConfig] = field(default_factory=list)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    heads: HeadConfig = field(default_factory=HeadConfig)
    lines: list[LineConfig] = field(default_factory=list)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    privacy_masks: list[PrivacyMask] = field(default_factory=list)
    optout: OptOutConfig = field(default_factory=OptOutConfig)
    alerts: list[AlertRule] = field(default_factory=list)
    alert_sinks: AlertSinks = field(default_factory=AlertSinks)
    path: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def ground_homography(self) -> np.ndarray | None:
        """Image pixels -> ground metres, or None for a camera not calibrated yet."""
        return np.asarray(self.calibration.homography, np.float64) if self.calibration.homography else None

    def zone_geometry(self) -> tuple[ZoneGeometry, ...]:
        return tuple(ZoneGeometry(z.name, tuple(z.polygon), z.units) for z in self.zones)

    def resolved_unit_id(self) -> str:
        """The machine that ran: the config's setting, else SANITARY_UNIT_ID, else the host name."""
        if self.unit_id:
            return self.unit_id
        unit = os.environ.get("SANITARY_UNIT_ID")
        if unit and not unit_id_fits(unit):
            raise SanitaryError(f"SANITARY_UNIT_ID: {UNIT_ID_RULE}")
        return unit or socket.gethostname()


# A unit id names the unit's export files (a folder `unit=<id>`, URL-quoted): it must fit in a file name anywhere.
MAX_UNIT_ID = 64
UNIT_ID_RULE = (
    f"a unit id is printable text of 1 to {MAX_UNIT_ID} bytes in UTF-8 (it names export files), e.g. 'bus-12'"
)


# Live tags (`live --tags`) label windows with where the vehicle was: declared keys only, short values, and not as
# many digits as a card, phone or staff number has, so that no driver's name or passenger's card ends up stored.
TAG_KEYS = ("route", "line", "stop", "direction", "vehicle", "trip")
MAX_TAG_CHARS = 32
MAX_TAG_DIGITS = 6


def tag_problem(key: str, value: object) -> str | None:
    """Why a live tag may not be stored (None: it may)."""
    if key not in TAG_KEYS:
        return f"not one of the tag keys {', '.join(TAG_KEYS)}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return "a tag's value is a string or a number"
    text = str(value)
    if not 0 < len(text) <= MAX_TAG_CHARS or not text.isprintable():
        return f"a tag's value is printable text of 1 to {MAX_TAG_CHARS} characters"
    if sum(c.isdigit() for c in text) > MAX_TAG_DIGITS:
        return f"more than {MAX_TAG_DIGITS} digits (a card or phone number is not a label)"
    return None


def unit_id_fits(unit: str) -> bool:
    return 0 < len(unit.encode()) <= MAX_UNIT_ID and unit.isprintable() and unit.strip() == unit


def load_camera(path: Path) -> CameraConfig:
    if not path.is_file():
        raise SanitaryError(f"{path}: camera config not found; pass --camera with a TOML file (see examples/)")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SanitaryError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    config = _build(CameraConfig, table, path, "")
    config = dataclasses.replace(config, path=path)
    _check(config, path)
    return config


def default_camera(camera_id: str = "camera", site_id: str = "site") -> CameraConfig:
    return CameraConfig(camera_id=camera_id, site_id=site_id, site_kind="market")


def _check(config: CameraConfig, path: Path) -> None:
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SanitaryError(
            f"{path}: timezone {config.timezone!r} is unknown; use an IANA name such as 'Europe/Paris'"
        ) from None
    checks: list[tuple[bool, str]] = [
        (config.camera_id.strip() != "", "camera_id is empty; name the camera, e.g. camera_id = 'entrance-1'"),
        (config.site_id.strip() != "", "site_id is empty; name the site, e.g. site_id = 'market-square'"),
        (config.unit_id is None or unit_id_fits(config.unit_id), f"unit_id: {UNIT_ID_RULE}"),
        (
            0 < config.time.window_seconds <= DAY_S,
            f"time.window_seconds must be between 1 and {DAY_S} seconds (a day)",
        ),
        (
            config.time.fps is None or MIN_FPS <= config.time.fps <= MAX_FPS,
            f"time.fps must be between {MIN_FPS} and {MAX_FPS:g} frames a second",
        ),
        (config.time.filename_pattern != "", "time.filename_pattern is empty; remove it or give e.g. '%Y%m%d_%H%M%S'"),
        (0.0 < config.detection.person_score < 1.0, "detection.person_score must be between 0 and 1"),
        (0.0 < config.detection.face_score < 1.0, "detection.face_score must be between 0 and 1"),
        (
            0 <= config.detection.face_min_person_px <= MAX_FRAME_PX,
            f"detection.face_min_person_px must be between 0 and {MAX_FRAME_PX}",
        ),
        (0 <= config.detection.threads <= 1024, "detection.threads must be between 0 (one per core) and 1024"),
        (
            64 <= config.detection.face_frame_px <= 8192,
            "detection.face_frame_px must be between 64 and 8192",
        ),
        (0 <= config.masks.min_face_px <= MAX_FRAME_PX, f"masks.min_face_px must be between 0 and {MAX_FRAME_PX}"),
        (0 < config.masks.max_nose_offset <= 10, "masks.max_nose_offset must be between 0 and 10 eye distances"),
        (0.0 <= config.masks.min_confidence < 1.0, "masks.min_confidence must be in [0, 1)"),
        (
            0 <= config.masks.every_s <= DAY_S,
            f"masks.every_s must be between 0 (every face every frame) and {DAY_S} seconds",
        ),
        (0 < config.distancing.threshold_m <= 100, "distancing.threshold_m must be between 0 and 100 metres"),
        (0.0 < config.distancing.confidence < 1.0, "distancing.confidence must be between 0 and 1"),
        (
            0 < config.distancing.feet_sigma_fraction <= 1,
            "distancing.feet_sigma_fraction must be between 0 and 1 (a share of the box height)",
        ),
        (
            len(config.calibration.image_points) == len(config.calibration.ground_points),
            "calibration.image_points and calibration.ground_points must pair up (same number of points)",
        ),
        (
            config.calibration.homography == [] or len(config.calibration.image_size) == 2,
            "calibration.image_size [width, height] must come with calibration.homography",
        ),
        (
            config.calibration.image_size == []
            or (
                len(config.calibration.image_size) == 2
                and all(0 < x <= MAX_FRAME_PX for x in config.calibration.image_size)
            ),
            f"calibration.image_size must be [width, height] in pixels, each between 1 and {MAX_FRAME_PX}",
        ),
        (config.calibration.points_csv != "", "calibration.points_csv is empty; remove it or give a CSV path"),
        (len({z.name for z in config.zones}) == len(config.zones), "zones must have distinct names"),
        (all(z.name.strip() for z in config.zones), "a zone's name is empty; name every [[zones]]"),
        (len({x.name for x in config.lines}) == len(config.lines), "lines must have distinct names"),
        (all(x.name.strip() for x in config.lines), "a line's name is empty; name every [[lines]]"),
        (all(x.a != x.b for x in config.lines), "a line's two points a and b must differ"),
        (
            all(x.units == "px" for x in config.lines) or bool(config.calibration.homography),
            "a line in metres needs the camera's calibration (run sanitary calibrate)",
        ),
        (0 < config.tracking.max_lost_s <= 3600, "tracking.max_lost_s must be between 0 and 3600 seconds"),
        (1 <= config.tracking.confirm_frames <= 1000, "tracking.confirm_frames must be between 1 and 1000"),
        (0 <= config.tracking.max_iou_distance <= 1, "tracking.max_iou_distance must be between 0 and 1"),
        (0 <= config.tracking.start_score <= 1, "tracking.start_score must be between 0 and 1"),
        (
            0 <= config.tracking.max_appearance_distance <= 2,
            "tracking.max_appearance_distance must be between 0 and 2 (a cosine distance)",
        ),
        (1 <= config.tracking.min_mask_frames <= 100_000, "tracking.min_mask_frames must be between 1 and 100000"),
        (0 <= config.tracking.contact_s <= DAY_S, f"tracking.contact_s must be between 0 and {DAY_S} seconds"),
        (0 <= config.tracking.min_person_s <= DAY_S, f"tracking.min_person_s must be between 0 and {DAY_S} seconds"),
        (
            config.tracking.dwell_bins_s == sorted(set(config.tracking.dwell_bins_s))
            and all(0 < b <= 365 * DAY_S for b in config.tracking.dwell_bins_s),
            "tracking.dwell_bins_s must be increasing positive seconds, at most a year",
        ),
        (0.0 < config.heads.min_score < 1.0, "heads.min_score must be between 0 and 1"),
        (
            config.heads.min_score <= config.heads.unboxed_score <= 1.0,
            "heads.unboxed_score must be between heads.min_score and 1",
        ),
        (1 <= config.heads.crowd_heads <= 1_000_000, "heads.crowd_heads must be between 1 and 1000000"),
        (0 <= config.heads.crowd_share <= 1, "heads.crowd_share must be between 0 and 1 (a share of the heads)"),
        (
            65_536 <= config.heads.max_pixels <= 100_000_000,
            "heads.max_pixels must be between 65536 (256x256) and 100000000",
        ),
        (
            0 <= config.heads.every_s <= DAY_S,
            f"heads.every_s must be between 0 (every analysed frame) and {DAY_S} seconds",
        ),
        (0 <= config.heads.threads <= 1024, "heads.threads must be between 0 (one per core) and 1024"),
        (
            not config.detection.walkable or _is_polygon(config.detection.walkable),
            "detection.walkable needs at least 3 points enclosing an area, or none for the whole frame",
        ),
        (1 <= config.privacy.k_min <= 1_000_000, "privacy.k_min must be at least 1 and at most 1000000"),
        (
            0 <= config.privacy.retention_days <= 36_500,
            "privacy.retention_days must be >= 0 (0: keep) and at most 36500 (100 years)",
        ),
        (
            all(_is_polygon(m.polygon) for m in config.privacy_masks),
            "a privacy_masks polygon needs at least 3 points enclosing an area",
        ),
        (0.0 < config.optout.yaw_deg < 90.0, "optout.yaw_deg must be between 0 and 90 degrees"),
        (0 < config.optout.max_shake_s <= 60, "optout.max_shake_s must be between 0 and 60 seconds"),
        *_alert_checks(config),
        *_profile_checks(config),
    ]
    for ok, message in checks:
        if not ok:
            raise SanitaryError(f"{path}: {message}")
    if config.time.start is not None:
        parse_start(config.time.start, config.tz, f"{path}: time.start")
    try:
        config.zone_geometry()
    except SanitaryError as exc:
        raise SanitaryError(f"{path}: {exc}") from None
    _check_homography(config, path)


def _is_polygon(points: list[Point]) -> bool:
    """At least 3 points enclosing a finite, non-zero area."""
    if len(points) < 3:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return 0 < polygon_area_m2(np.asarray(points, np.float64)) < math.inf


def _check_homography(config: CameraConfig, path: Path) -> None:
    """A homography of 3 rows of 3 numbers, of full rank, under which the walkable area (the whole frame without
    one, as `sanitary calibrate` checks it) lies on the ground: else every distance and zone would be wrong."""
    rows = config.calibration.homography
    if not rows:
        return
    fix = "run `sanitary calibrate` again, or remove the key for a camera without calibration"
    if len(rows) != 3 or any(len(row) != 3 for row in rows):
        raise SanitaryError(f"{path}: calibration.homography must be 3 rows of 3 numbers; {fix}")
    singular = np.linalg.svd(np.asarray(rows, np.float64), compute_uv=False)
    if not singular[0] > 0 or singular[2] < MIN_SINGULAR_RATIO * singular[0]:
        raise SanitaryError(f"{path}: calibration.homography is all zeros or maps the image onto a line; {fix}")
    walkable = config.detection.walkable
    width, height = config.calibration.image_size
    region = np.asarray(walkable, np.float64) if walkable else frame_region(width, height)
    try:
        check_horizon(np.asarray(rows, np.float64), region)
    except SanitaryError as exc:
        raise SanitaryError(f"{path}: calibration.homography: {exc}") from None


def _alert_checks(config: CameraConfig) -> list[tuple[bool, str]]:
    sinks = config.alert_sinks
    checks = [
        (len({r.name for r in config.alerts}) == len(config.alerts), "alerts must have distinct names"),
        (
            sinks.webhook is None or sinks.webhook.startswith(("http://", "https://")),
            "alert_sinks.webhook must be an http:// or https:// URL",
        ),
        (
            0 < sinks.webhook_timeout_s <= 300,
            "alert_sinks.webhook_timeout_s must be between 0 and 300 seconds",
        ),
        (0 <= sinks.webhook_retries <= 100, "alert_sinks.webhook_retries must be between 0 and 100"),
        (
            0 <= sinks.webhook_backoff_s <= 3600,
            "alert_sinks.webhook_backoff_s must be between 0 and 3600 seconds",
        ),
    ]
    zones = {z.name for z in config.zones}
    for rule in config.alerts:
        where = f"alert '{rule.name}'"
        checks += [
            ((rule.above is None) != (rule.below is None), f"{where} needs exactly one of 'above' or 'below'"),
            (
                (rule.zone is not None) == (rule.measure == "zone_occupancy"),
                f"{where}: 'zone' goes with measure 'zone_occupancy', and only with it",
            ),
            (rule.zone is None or rule.zone in zones, f"{where}: zone {rule.zone!r} is not one of the [[zones]]"),
            (
                rule.measure != "mask_rate" or all(0 <= x <= 1 for x in (rule.above, rule.below) if x is not None),
                f"{where}: a mask_rate threshold is a share between 0 and 1",
            ),
            (
                rule.measure != "mask_rate" or rule.min_people >= config.privacy.k_min,
                f"{where}: min_people must be at least privacy.k_min ({config.privacy.k_min}), or the alert would "
                "tell a rate the store suppresses",
            ),
            (
                not rule.measure.startswith("close_") or bool(config.calibration.homography),
                f"{where}: {rule.measure} needs distances in metres; calibrate the camera (sanitary calibrate)",
            ),
            (
                rule.measure != "close_contacts_per_min" or config.tracking.enabled,
                f"{where}: close_contacts_per_min needs tracking.enabled = true",
            ),
            (bool(rule.name.strip()), "an alert's name is empty; name every [[alerts]]"),
            (0 < rule.span_s <= DAY_S, f"{where}: span_s must be between 0 and {DAY_S} seconds"),
            (0.0 <= rule.hysteresis < 1.0, f"{where}: hysteresis must be in [0, 1)"),
            (0 <= rule.cooldown_s <= 7 * DAY_S, f"{where}: cooldown_s must be between 0 and {7 * DAY_S} seconds"),
            (0 <= rule.min_people <= 1_000_000, f"{where}: min_people must be between 0 and 1000000"),
        ]
    return checks


def _profile_checks(config: CameraConfig) -> list[tuple[bool, str]]:
    """The decree's profile refuses any setting that would store more than counts and mask rates."""
    if config.privacy.profile != FR_TRANSPORT:
        return []
    return [
        (config.site_kind == "bus", f"profile {FR_TRANSPORT} is for public transport only; site_kind must be 'bus'"),
        (
            config.time.window_seconds == FR_TRANSPORT_WINDOW_S,
            f"profile {FR_TRANSPORT} aggregates over 20 minutes; set time.window_seconds = {FR_TRANSPORT_WINDOW_S}",
        ),
        (not config.zones, f"profile {FR_TRANSPORT} stores no zone aggregates; remove the [[zones]]"),
        (
            all(r.measure in ("occupancy", "mask_rate") for r in config.alerts),
            f"profile {FR_TRANSPORT} alerts only on occupancy and mask_rate; remove the other [[alerts]]",
        ),
    ]


def parse_start(text: str, tz: ZoneInfo, where: str) -> datetime:
    """An ISO 8601 time within YEARS; a naive one is read in the camera's time zone."""
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SanitaryError(
            f"{where}: start time {text!r} is not ISO 8601; write e.g. 2021-03-01T08:00:00+01:00"
        ) from None
    check_year(start, where)
    return start if start.tzinfo else start.replace(tzinfo=tz)


def check_year(when: date, where: str) -> None:
    """Refuse a date (or time) outside YEARS: a typo, and past 9999 not storable at all."""
    first, last = YEARS
    if not first <= when.year <= last:
        raise SanitaryError(f"{where}: {when.isoformat()} is not between {first} and {last}; check the year")


def _build(cls: type, table: dict[str, Any], path: Path, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    unknown = sorted(set(table) - set(fields))
    retired = [prefix + key for key in unknown if prefix + key in RETIRED]
    if retired:
        raise SanitaryError(f"{path}: '{retired[0]}' is no longer used: {RETIRED[retired[0]]}")
    if unknown:
        where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
        raise SanitaryError(
            f"{path}: unknown key '{prefix}{unknown[0]}' in {where}; expected one of: {', '.join(fields)}"
        )
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SanitaryError(f"{path}: missing required key '{prefix}{name}'")
            continue
        values[name] = _coerce(hints[name], table[name], path, prefix + name)
    return cls(**values)


def _coerce(hint: Any, value: Any, path: Path, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise SanitaryError(f"{path}: '{key}' must be a table ([{key}])")
        return _build(hint, value, path, key + ".")
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in get_args(hint) if a is not type(None)]
        return _coerce(options[0], value, path, key)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(repr(a) for a in get_args(hint))
            raise SanitaryError(f"{path}: '{key}' is {value!r}; it must be one of {allowed}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SanitaryError(f"{path}: '{key}' must be a list")
        (item,) = get_args(hint)
        return [_coerce(item, v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, list) or len(value) != len(args):
            raise SanitaryError(f"{path}: '{key}' must be a list of {len(args)} numbers")
        return tuple(_coerce(a, v, path, key) for a, v in zip(args, value, strict=True))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise SanitaryError(f"{path}: '{key}' is {value!r}; it must be a finite number")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise SanitaryError(f"{path}: '{key}' is {value}; no setting needs a number this large, check it")
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise SanitaryError(f"{path}: '{key}' is {value!r}; it must be of type {hint.__name__}")
