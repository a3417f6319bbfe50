"""When a tracked person's head region is searched for a face, with exact times."""

import numpy as np

from sanitary.tracking.face_search import AWAY_S, RECENT_S, FaceSearchSchedule


def searches(schedule: FaceSearchSchedule, tracks: list[int], times: list[float], faces: set[float]) -> list[list[int]]:
    """The tracks due at each time, a face found on each searched one at the times in `faces`."""
    due = []
    for t in times:
        ids = np.array(tracks)
        searched = schedule.due(t, ids)
        schedule.found(t, ids, searched, searched & (t in faces))
        due.append(ids[searched].tolist())
    return due


def test_a_track_without_a_face_for_a_second_is_searched_once_in_each_period_until_one_is_found() -> None:
    assert (RECENT_S, AWAY_S) == (1.0, 0.3)
    times = [i / 10 for i in range(31)]  # 10 frames a second
    due = searches(FaceSearchSchedule(), [1], times, faces={2.0})
    searched = [t for t, d in zip(times, due, strict=True) if d]
    # Every frame for a second from the track's first frame; then at track 1's phase once in each 0.3 s, until the
    # face found at 2.0 s brings it back to every frame for a second, and the periods after.
    assert searched == [*times[:11], 1.1, 1.4, 1.7, *times[20:31]]


def test_untracked_people_are_searched_every_frame_and_tracks_at_their_own_phases() -> None:
    times = [i / 10 for i in range(11, 41)]
    schedule = FaceSearchSchedule()
    schedule.due(0.0, np.array([1, 2]))  # both first seen at 0 s, no face ever found
    due = searches(schedule, [-1, 1, 2], times, faces=set())
    assert all(-1 in d for d in due)
    ones = [t for t, d in zip(times, due, strict=True) if 1 in d]
    twos = [t for t, d in zip(times, due, strict=True) if 2 in d]
    # Once in each 0.3 s period of the track's (the first search at 1.1 s, when the second without a face ended).
    assert ones == [1.1, 1.4, 1.7, 2.0, 2.3, 2.6, 2.9, 3.2, 3.5, 3.8]
    assert twos == [1.1, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0, 3.3, 3.6, 3.9]


def test_an_ended_track_is_forgotten() -> None:
    schedule = FaceSearchSchedule()
    schedule.found(0.0, np.array([1]), schedule.due(0.0, np.array([1])), np.array([False]))
    schedule.end((1,))
    assert schedule.last_face == {} and schedule.last_search == {}
    assert schedule.due(5.0, np.array([1])).tolist() == [True]  # seen again: a new track, searched from its start
