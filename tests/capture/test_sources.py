from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from sanitary.capture.sources import (
    Source,
    TruncatedSourceError,
    continuity,
    read_image,
    start_from_filename,
    whole_image,
)
from sanitary.errors import SanitaryError
from tests.conftest import run_cli


def write_video(path: Path, frames: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        image = np.full((48, 64, 3), i * 3 % 256, np.uint8)
        cv2.putText(image, str(i), (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        writer.write(image)
    writer.release()
    return path


def write_images(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), np.full((24, 32, 3), i, np.uint8))
    return folder


def test_video_frames_timestamps_and_sampling(tmp_path: Path) -> None:
    source = Source(str(write_video(tmp_path / "v.avi", 21)), fps=7.0)
    assert (source.info.kind, source.info.fps, source.info.frame_count) == ("video", 7.0, 21)
    everything = list(source.frames())
    assert [f.index for f in everything] == list(range(21))
    assert everything[14].t == 2.0
    assert everything[0].file is None
    # 5 of every 7 frames, evenly: the first of each 1/5 s slot.
    sampled = [f.index for f in source.frames(sample_fps=5.0)]
    assert sampled == [0, 2, 3, 5, 6, 7, 9, 10, 12, 13, 14, 16, 17, 19, 20]
    assert [f.index for f in source.frames(sample_fps=1.0)] == [0, 7, 14]
    assert source.decoded == 21


def test_container_rate_used_without_override(tmp_path: Path) -> None:
    assert Source(str(write_video(tmp_path / "v.avi", 5, fps=12.0))).info.fps == 12.0


def test_image_folder_and_glob_are_sorted(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 6)
    frames = list(Source(str(folder), fps=2.0).frames(sample_fps=1.0))
    assert [(f.index, f.file, f.t) for f in frames] == [
        (0, "img_000.png", 0.0),
        (2, "img_002.png", 1.0),
        (4, "img_004.png", 2.0),
    ]
    globbed = Source(str(folder / "img_00[3-5].png"), fps=1.0)
    assert [f.file for f in globbed.frames()] == ["img_003.png", "img_004.png", "img_005.png"]
    with pytest.raises(SanitaryError, match="pass --fps"):
        Source(str(folder))


def test_images_are_photos_unless_played_as_a_sequence(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 3)
    assert [f.photo for f in Source(str(folder), fps=2.0).frames()] == [True, True, True]
    assert [f.photo for f in Source(str(folder / "img_00[0-1].png"), fps=2.0).frames()] == [True, True]
    sequence = list(Source(str(folder), fps=2.0, sequence=True).frames())
    assert [(f.photo, f.t, f.file) for f in sequence] == [
        (False, 0.0, "img_000.png"),
        (False, 0.5, "img_001.png"),
        (False, 1.0, "img_002.png"),
    ]
    video = Source(str(write_video(tmp_path / "v.avi", 2)))
    assert [f.photo for f in video.frames()] == [False, False]
    with pytest.raises(SanitaryError, match="pass --fps"):
        Source(str(folder), sequence=True)


def test_content_hash_follows_content_not_name(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a.avi", 5)
    b = tmp_path / "renamed.avi"
    b.write_bytes(a.read_bytes())
    c = write_video(tmp_path / "c.avi", 6)
    assert Source(str(a)).content_hash() == Source(str(b)).content_hash() != Source(str(c)).content_hash()


def test_missing_undecodable_and_truncated(tmp_path: Path) -> None:
    with pytest.raises(SanitaryError, match="no such file or folder"):
        Source(str(tmp_path / "absent.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(SanitaryError, match="cannot decode this video"):
        Source(str(junk))
    with pytest.raises(SanitaryError, match="matches no file"):
        Source(str(tmp_path / "*.mkv"))
    video = write_video(tmp_path / "cut.avi", 60)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    source = Source(str(video), fps=10.0)
    seen = []
    with pytest.raises(TruncatedSourceError, match="truncated"):
        seen.extend(f.index for f in source.frames())
    assert 0 < len(seen) < 60
    assert source.decoded == len(seen)


def test_start_from_nvr_file_name() -> None:
    paris = ZoneInfo("Europe/Paris")
    found = start_from_filename(Path("/x/bus12_door1_20210301_083015.mp4"), "%Y%m%d_%H%M%S", paris)
    assert found == datetime(2021, 3, 1, 8, 30, 15, tzinfo=paris)
    assert start_from_filename(Path("clip.mp4"), "%Y%m%d_%H%M%S", paris) is None
    assert start_from_filename(Path("cam_20211399_000000.mp4"), "%Y%m%d_%H%M%S", paris) is None


def test_gaps_and_overlaps_between_files() -> None:
    t = datetime(2021, 3, 1, 8, tzinfo=UTC)
    spans = [
        (Path("b.mp4"), t.replace(minute=10), 600.0),  # ends 08:20, next starts 08:19:30: overlap
        (Path("a.mp4"), t, 600.0),  # ends 08:10 exactly when b starts
        (Path("c.mp4"), t.replace(minute=19, second=30), 60.0),  # ends 08:20:30, d starts 08:25: gap
        (Path("d.mp4"), t.replace(minute=25), 60.0),
    ]
    found = continuity(spans, tolerance_s=0.5)
    assert [(c.previous.name, c.current.name, c.seconds) for c in found] == [
        ("b.mp4", "c.mp4", -30.0),
        ("c.mp4", "d.mp4", 270.0),
    ]


def encoded(suffix: str, shade: int = 0) -> bytes:
    """A small image with detail (a flat one compresses to almost nothing), as a camera's file holds it."""
    y, x = np.mgrid[0:120, 0:160]
    image = np.dstack([x * 3 % 256, (x + y) * 7 % 256, np.full_like(x, shade)]).astype(np.uint8)
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def with_thumbnail(jpeg: bytes) -> bytes:
    """`jpeg` with an EXIF-like APP1 segment holding a whole small JPEG, end marker included, before its scan."""
    thumbnail = encoded(".jpg", 99)
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def test_a_cut_jpeg_or_png_is_not_whole(tmp_path: Path) -> None:
    jpeg, png = encoded(".jpg"), encoded(".png")
    assert whole_image(jpeg) and whole_image(png) and whole_image(with_thumbnail(jpeg))
    assert whole_image(jpeg + b"\x00" * 100)  # padding after the end marker, as some cameras write
    assert not whole_image(jpeg[:-2]) and not whole_image(jpeg[: len(jpeg) // 2]) and not whole_image(jpeg[:20])
    assert not whole_image(with_thumbnail(jpeg)[:-2])  # the thumbnail's end marker is not the image's
    assert not whole_image(png[:-12])  # IEND lost: the image data may be whole, the file is not
    # cv2.imread decodes a cut JPEG file with a warning only, its lost part grey; read_image refuses it.
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpeg[: len(jpeg) // 2])
    assert cv2.imread(str(cut)) is not None and read_image(cut) is None


def test_unreadable_images_are_left_out_and_the_others_analysed(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(10):
        (folder / f"{i}.jpg").write_bytes(encoded(".jpg", i))
    (folder / "0.jpg").write_bytes(b"not an image")  # the first: the frame size comes from the next
    (folder / "3.jpg").write_bytes(encoded(".jpg")[:3000])
    (folder / "5.jpg").write_bytes(b"")
    (folder / "7.jpg").write_bytes(encoded(".jpg")[:-2])
    source = Source(str(folder), fps=1.0)
    assert (source.info.frame_count, source.info.width, source.info.height) == (10, 160, 120)
    frames = list(source.frames())
    assert [(f.index, f.t) for f in frames] == [(i, float(i)) for i in (1, 2, 4, 6, 8, 9)]
    assert [p.name for p in source.unreadable] == ["0.jpg", "3.jpg", "5.jpg", "7.jpg"]
    assert all(np.array_equal(f.image, read_image(folder / f"{f.index}.jpg")) for f in frames)
    # Sampled: an image never read is never judged.
    assert [f.index for f in source.frames(sample_fps=0.5)] == [2, 4, 6, 8]
    assert [p.name for p in source.unreadable] == ["0.jpg"]


def test_a_folder_of_nothing_readable_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded(".png")[:100])
    (folder / "b.jpg").write_bytes(b"\xff\xd8junk")
    with pytest.raises(SanitaryError, match="imgs: no image here can be read"):
        Source(str(folder), fps=1.0)


def test_a_sequence_needs_its_frame_rate_on_the_command_line_or_in_the_config(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 2)
    expected = f"error: {folder}: images carry no frame rate; pass --fps or set time.fps in the camera config\n"
    by_option = run_cli("count", str(folder), "--sequence")
    assert (by_option.returncode, by_option.stderr) == (2, expected)
    camera = tmp_path / "cam.toml"
    camera.write_text('camera_id = "c"\nsite_id = "s"\nsite_kind = "market"\n[time]\nsequence = true\n')
    by_config = run_cli("count", str(folder), "--camera", str(camera))
    assert (by_config.returncode, by_config.stderr) == (2, expected)
