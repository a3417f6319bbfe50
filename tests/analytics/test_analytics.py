from datetime import UTC, datetime, timedelta

import numpy as np

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.analytics.windows import aggregate, coverage, window_start

T0 = datetime(2021, 3, 1, 8, 0, 30, tzinfo=UTC)
PERFECT = np.diag([100, 100, 100])


def test_windows_align_on_the_clock() -> None:
    assert window_start(T0, 60) == datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
    assert window_start(T0, 1200) == datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
    assert window_start(datetime(2021, 3, 1, 8, 39, 59, tzinfo=UTC), 1200) == datetime(2021, 3, 1, 8, 20, tzinfo=UTC)


def test_coverage_is_the_overlap_in_seconds() -> None:
    w = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
    assert coverage(T0, 90.0, w, 60) == 30.0
    assert coverage(T0, 90.0, w + timedelta(seconds=60), 60) == 60.0
    assert coverage(T0, 90.0, w + timedelta(seconds=120), 60) == 0.0
    assert coverage(T0, 10.0, w, 60) == 10.0


def test_aggregate_exact_numbers() -> None:
    # 95 s of footage from 08:00:30, one frame analysed every 10 s.
    readings = [(1, 0, 0, 0), (0, 0, 0, 0), (1, 1, 0, 0), (0, 0, 0, 1), (0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 1, 0),
                (0, 0, 0, 0), (0, 0, 1, 0), (0, 0, 0, 0)]  # fmt: skip
    people = [2, 3, 5, 4, 0, 1, 6, 2, 3, 1]
    obs = [
        Observation(frame=i * 70, t=i * 10.0, people=p, masks=MaskCounts(*m))
        for i, (p, m) in enumerate(zip(people, readings, strict=True))
    ]
    windows = aggregate(
        obs, site_id="s", camera_id="c", source="h", start=T0, duration_s=95.0, window_s=60, confusion=PERFECT
    )
    assert [w.key.window_start.minute for w in windows] == [0, 1, 2]
    first, second, third = windows
    # 08:00:30-08:01:00 holds t = 0, 10, 20 s.
    assert (first.frames_analysed, first.people_sum, first.people_max, first.faces_sum) == (3, 10, 5, 3)
    assert first.covered_s == 30.0
    assert first.masks == MaskCounts(2, 1, 0, 0)
    assert first.mask_shares is not None and first.mask_shares.n == 3
    # 08:01:00-08:02:00 holds t = 30 ... 80 s.
    assert (second.frames_analysed, second.people_sum, second.people_max, second.faces_sum) == (6, 16, 6, 6)
    assert second.covered_s == 60.0
    # The unknown face (t = 30 s) counts as a face seen, never in the rate's denominator.
    assert second.masks == MaskCounts(2, 1, 2, 1)
    assert second.mask_shares is not None and second.mask_shares.n == 5
    # 08:02:00-08:02:05 holds t = 90 s.
    assert (third.frames_analysed, third.people_sum, third.people_max, third.faces_sum) == (1, 1, 1, 0)
    assert third.covered_s == 5.0
    assert third.window_end == datetime(2021, 3, 1, 8, 3, tzinfo=UTC)
    assert third.mask_shares is None  # no face classified: the rate is missing, not zero
    assert {w.key.source for w in windows} == {"h"}


def test_window_with_footage_but_no_analysed_frame_is_kept() -> None:
    obs = [Observation(frame=0, t=0.0, people=4, masks=MaskCounts())]
    windows = aggregate(
        obs, site_id="s", camera_id="c", source="h", start=T0, duration_s=60.0, window_s=60, confusion=PERFECT
    )
    assert [(w.frames_analysed, w.covered_s) for w in windows] == [(1, 30.0), (0, 30.0)]


def test_mask_counts_of_readings() -> None:
    classes = np.array([0, 2, -1, 0, 1, 0, -1, 2, 0], np.int64)
    assert MaskCounts.of(classes) == MaskCounts(with_mask=4, without_mask=1, incorrect=2, unknown=2)
    assert MaskCounts.of(np.zeros(0, np.int64)) == MaskCounts()
