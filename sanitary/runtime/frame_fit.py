"""The camera config's pixels fitted to the frames actually read: the same footage resized (a lower-resolution
stream, an export) keeps its geometry, other footage is refused rather than analysed silently wrong.

`calibration.image_size` says which frame size the config's pixels were drawn on. Frames of that size use them as
they are; frames of the same shape (aspect ratio within ASPECT_TOLERANCE) get every pixel quantity rescaled to
them: the walkable area, zones and lines in pixels, privacy masks, and the image side of the homography. Frames of
another shape are refused. Without `image_size`, pixel geometry is used as drawn, and refused when any of its
points lies outside the frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sanitary.config import CameraConfig, Point
from sanitary.errors import SanitaryError

# Smaller frames hold no person a detector can find, and break the detectors' resizing.
MIN_FRAME_PX = 32
# Encoders round sizes to even numbers or multiples of 8 or 16: 480x360 resized to 240x180 keeps its shape
# exactly, but 1280x720 exported as 854x480 is 0.06% off.
ASPECT_TOLERANCE = 0.01


def fit_to_frame(camera: CameraConfig, width: int, height: int) -> CameraConfig:
    """The camera config with its pixel geometry for frames of `width` x `height`, or one line saying why these
    frames do not fit it."""
    where = camera.path or "the camera config"
    if width < MIN_FRAME_PX or height < MIN_FRAME_PX:
        raise SanitaryError(
            f"the frames are {width}x{height} pixels, too small to find anyone in (at least "
            f"{MIN_FRAME_PX}x{MIN_FRAME_PX}); check the footage, or re-export it at its full size"
        )
    if not camera.calibration.image_size:
        outside = _outside(camera, width, height)
        if outside:
            raise SanitaryError(
                f"{where}: {outside} has points outside the {width}x{height} frames; set calibration.image_size = "
                "[width, height] to the frame size it was drawn on (it is then rescaled to the footage), or redraw it"
            )
        return camera
    drawn_w, drawn_h = camera.calibration.image_size
    if (drawn_w, drawn_h) == (width, height):
        return camera
    if abs((width / height) / (drawn_w / drawn_h) - 1) > ASPECT_TOLERANCE:
        raise SanitaryError(
            f"{where}: calibration.image_size is {drawn_w}x{drawn_h} but the frames are {width}x{height}, another "
            f"shape; the config's pixels do not fit them: calibrate and draw the areas again on a frame of this "
            "footage (sanitary calibrate --frame), or analyse footage of the size the config was made for"
        )
    return _scaled(camera, width / drawn_w, height / drawn_h, [width, height])


def _scaled(camera: CameraConfig, sx: float, sy: float, size: list[int]) -> CameraConfig:
    def points(pts: list[Point]) -> list[Point]:
        return [(x * sx, y * sy) for x, y in pts]

    H = camera.ground_homography()
    calibration = dataclasses.replace(
        camera.calibration,
        # A new pixel p' is S p: the ground is H S^-1 p'.
        homography=(H @ np.diag([1 / sx, 1 / sy, 1.0])).tolist() if H is not None else [],
        image_size=size,
    )
    return dataclasses.replace(
        camera,
        detection=dataclasses.replace(camera.detection, walkable=points(camera.detection.walkable)),
        calibration=calibration,
        zones=[dataclasses.replace(z, polygon=points(z.polygon)) if z.units == "px" else z for z in camera.zones],
        lines=[
            dataclasses.replace(x, a=(x.a[0] * sx, x.a[1] * sy), b=(x.b[0] * sx, x.b[1] * sy)) if x.units == "px" else x
            for x in camera.lines
        ],
        privacy_masks=[dataclasses.replace(m, polygon=points(m.polygon)) for m in camera.privacy_masks],
    )


def _outside(camera: CameraConfig, width: int, height: int) -> str | None:
    """The first pixel geometry key with a point outside a `width` x `height` frame, or None."""
    keyed: list[tuple[str, list[Point]]] = [
        ("detection.walkable", camera.detection.walkable),
        *((f"zone '{z.name}'", z.polygon) for z in camera.zones if z.units == "px"),
        *((f"line '{x.name}'", [x.a, x.b]) for x in camera.lines if x.units == "px"),
        *((f"privacy_masks[{i}]", m.polygon) for i, m in enumerate(camera.privacy_masks)),
    ]
    for key, pts in keyed:
        if any(not (0 <= x <= width and 0 <= y <= height) for x, y in pts):
            return key
    return None
