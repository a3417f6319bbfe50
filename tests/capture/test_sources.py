from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from sanitary.capture.sources import Source, TruncatedSourceError, continuity, start_from_filename
from sanitary.errors import SanitaryError


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
