import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sanitary.alerts.rules import Alert, AlertEngine, AlertSample, ZoneOccupancy, trailing_sample
from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.config import AlertRule
from sanitary.geometry.distancing import FrameDistancing
from sanitary.tracking.ledger import Contact

T0 = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
K_MIN = 5  # privacy.k_min by default


def frame(
    t: float, people: int, masks: tuple[int, int, int, int] = (0, 0, 0, 0), close: int = 0, zones: tuple[int, ...] = ()
) -> Observation:
    """An analysed frame on a calibrated camera (10 fps source): `masks` is with, without, incorrect, unknown."""
    ground = FrameDistancing(close, 2 * close, (), zones)
    return Observation(frame=int(t * 10), t=t, people=people, masks=MaskCounts(*masks), ground=ground)


def sample(
    occupancy: float | None = None,
    people: int = 0,
    mask_rate: float | None = None,
    zones: tuple[ZoneOccupancy, ...] = (),
    span_s: float = 60.0,
) -> AlertSample:
    return AlertSample(
        now_t=0.0,
        span_s=span_s,
        covered_s=span_s,
        frames=1,
        occupancy=occupancy,
        zone_occupancy=zones,
        people=people,
        mask_rate=mask_rate,
        close_pairs_per_min=None,
        close_contacts_per_min=None,
    )


def test_trailing_sample_exact_numbers() -> None:
    # One frame every 10 s; the 30 s span at t = 100 holds t = 80, 90, 100 (t = 70 is on its open edge).
    obs = [
        frame(60.0, 9, (5, 0, 0, 0), close=3, zones=(9, 0)),
        frame(70.0, 8, (4, 0, 0, 0), close=1, zones=(8, 0)),
        frame(80.0, 4, (2, 1, 0, 1), close=2, zones=(3, 1)),
        frame(90.0, 6, (1, 1, 1, 0), close=2, zones=(4, 2)),
        frame(100.0, 5, (0, 0, 0, 3), close=0, zones=(2, 0)),
        frame(110.0, 20, (9, 0, 0, 0), close=5, zones=(0, 20)),  # after now_t: not yet seen
    ]
    contacts = [Contact(40.0, 69.0), Contact(50.0, 70.0), Contact(60.0, 85.0), Contact(95.0, 100.0)]
    s = trailing_sample(obs, contacts, [65.0, 70.0, 71.0, 100.0, 105.0], 100.0, 30.0, ("door", "till"))
    assert (s.span_s, s.covered_s, s.frames, s.people) == (30.0, 30.0, 3, 6)
    assert s.occupancy == 5.0  # (4 + 6 + 5) / 3
    assert s.zone_occupancy == (ZoneOccupancy("door", 3.0), ZoneOccupancy("till", 1.0))
    # 3 with_mask of 6 classified face-frames; the 4 unknown faces are in neither side.
    assert s.mask_rate == 0.5
    # Pairs started at 71 and 100 s (70 is on the open edge, 105 is to come): 2 in 30 s.
    assert s.close_pairs_per_min == 4.0
    # Contacts that ended at 85 and 100 s.
    assert s.close_contacts_per_min == 4.0
    assert s.value("zone_occupancy", "till") == 1.0
    assert s.value("close_contacts_per_min") == 4.0


def test_without_tracking_pair_episodes_are_rises_in_the_close_pair_count() -> None:
    obs = [frame(0.0, 4, close=1), frame(10.0, 4, close=3), frame(20.0, 4, close=1), frame(30.0, 4, close=2)]
    # Span (5, 30]: rises 1 -> 3 (+2) and 1 -> 2 (+1); the frame before the span is the first one's reference.
    s = trailing_sample(obs, None, None, 30.0, 25.0)
    assert s.close_pairs_per_min == 3 * 60 / 25
    assert s.close_contacts_per_min is None  # no tracking: unknown, not zero
    # From the start of the footage nothing precedes: the first frame's pair started then.
    assert trailing_sample(obs, None, None, 30.0, 60.0).close_pairs_per_min == 4 * 60 / 30


def test_start_of_footage_scales_over_the_covered_time() -> None:
    obs = [frame(0.0, 2), frame(5.0, 4), frame(10.0, 6)]
    s = trailing_sample(obs, [Contact(1.0, 8.0)], [1.0], 10.0, 60.0)
    assert (s.covered_s, s.frames, s.occupancy) == (10.0, 3, 4.0)
    assert s.close_pairs_per_min == 6.0  # one episode in 10 s of footage
    assert s.close_contacts_per_min == 6.0
    first = trailing_sample(obs[:1], [], [], 0.0, 60.0)
    assert (first.covered_s, first.occupancy) == (0.0, 2.0)
    assert first.close_pairs_per_min is None and first.close_contacts_per_min is None


def test_unknowns_are_none_not_zero() -> None:
    unmeasured = Observation(frame=0, t=5.0, people=3, masks=MaskCounts(0, 0, 0, 2))
    s = trailing_sample([unmeasured], [], [], 10.0, 60.0)
    assert s.mask_rate is None  # only unknown faces
    assert s.close_pairs_per_min is None and s.close_contacts_per_min is None  # uncalibrated camera
    empty = trailing_sample([unmeasured], [], [], 100.0, 60.0, ("door",))
    assert (empty.frames, empty.occupancy, empty.people) == (0, None, 0)
    assert empty.zone_occupancy == (ZoneOccupancy("door", None),)


def test_hysteresis_oscillation_raises_once_then_clears_once() -> None:
    rule = AlertRule("crowd", "occupancy", above=10.0, hysteresis=0.1, cooldown_s=0.0)
    engine = AlertEngine([rule], "market-1", "cam-2", K_MIN)
    # Clears only at 9.0 or less: the wobble around 10 stays one episode.
    values = [9.5, 10.5, 9.5, 10.2, 9.1, 10.8, 9.0, 9.5, 10.1]
    states = []
    for i, v in enumerate(values):
        for a in engine.update(T0 + timedelta(seconds=i), [sample(v)]):
            states.append((i, a.state, a.value))
    assert states == [(1, "raised", 10.5), (6, "cleared", 9.0), (8, "raised", 10.1)]


def test_exactly_at_the_threshold_does_not_raise() -> None:
    engine = AlertEngine([AlertRule("crowd", "occupancy", above=10.0)], "s", "c", K_MIN)
    assert engine.update(T0, [sample(10.0)]) == []
    (alert,) = engine.update(T0, [sample(10.01)])
    assert alert == Alert("crowd", "occupancy", None, 10.01, 10.0, "above", "raised", T0, "s", "c")


def test_cooldown_holds_a_new_raise_until_it_ends() -> None:
    rule = AlertRule("crowd", "occupancy", above=10.0, hysteresis=0.1, cooldown_s=600.0)
    engine = AlertEngine([rule], "s", "c", K_MIN)

    def at(s: float, v: float) -> list[tuple[str, float]]:
        return [(a.state, (a.at - T0).total_seconds()) for a in engine.update(T0 + timedelta(seconds=s), [sample(v)])]

    assert at(0, 12.0) == [("raised", 0.0)]
    assert at(60, 8.0) == [("cleared", 60.0)]
    assert at(120, 12.0) == []  # crowded again, but within 600 s of the last raise
    assert at(599, 12.0) == []
    assert at(600, 12.0) == [("raised", 600.0)]  # the cooldown ends with the condition still holding
    assert at(601, 12.0) == []


def test_mask_rate_below_is_judged_only_with_enough_people() -> None:
    rule = AlertRule("masks", "mask_rate", below=0.8, min_people=5, hysteresis=0.1, cooldown_s=0.0)
    engine = AlertEngine([rule], "s", "c", K_MIN)
    assert engine.update(T0, [sample(mask_rate=0.2, people=4)]) == []  # 4 people: not judged
    assert engine.update(T0, [sample(mask_rate=None, people=9)]) == []  # no classified face
    (raised,) = engine.update(T0, [sample(mask_rate=0.5, people=5)])
    assert (raised.state, raised.direction, raised.threshold, raised.value) == ("raised", "below", 0.8, 0.5)
    # Back to 0.9 (>= 0.8 * 1.1 = 0.88) but over 3 people: no state change, it stays raised.
    assert engine.update(T0, [sample(mask_rate=0.9, people=3)]) == []
    assert engine.update(T0, [sample(mask_rate=0.85, people=6)]) == []  # inside the hysteresis band
    (cleared,) = engine.update(T0, [sample(mask_rate=0.9, people=6)])
    assert (cleared.state, cleared.value) == ("cleared", 0.9)


def test_zone_occupancy_rule_reads_its_zone() -> None:
    rule = AlertRule("till queue", "zone_occupancy", above=3.0, zone="till")
    engine = AlertEngine([rule], "s", "c", K_MIN)
    quiet = (ZoneOccupancy("door", 7.0), ZoneOccupancy("till", 2.0))
    busy = (ZoneOccupancy("door", 1.0), ZoneOccupancy("till", 3.5))
    assert engine.update(T0, [sample(occupancy=9.0, people=9, zones=quiet)]) == []
    (alert,) = engine.update(T0, [sample(occupancy=4.5, people=6, zones=busy)])
    assert (alert.rule, alert.zone, alert.value) == ("till queue", "till", 3.5)
    with pytest.raises(ValueError, match="zone 'till'"):
        engine.update(T0, [sample(occupancy=1.0)])


def test_contacts_per_minute_rule_from_trailing_samples() -> None:
    rule = AlertRule("contacts", "close_contacts_per_min", above=2.0, span_s=60.0, hysteresis=0.5, cooldown_s=0.0)
    engine = AlertEngine([rule], "s", "c", K_MIN)
    obs = [frame(float(t), K_MIN) for t in range(0, 301)]
    contacts = [Contact(100.0, 110.0), Contact(105.0, 120.0), Contact(115.0, 130.0), Contact(150.0, 170.0)]
    events = []
    for now in range(60, 301):
        s = trailing_sample(obs, contacts, [], float(now), 60.0)
        events += [(now, a.state, a.value) for a in engine.update(T0 + timedelta(seconds=now), [s])]
    # 3 contacts ended by 130 s: 3 per minute; the 110 s one leaves the span at 170 s while 170 s comes in (still
    # 3); 120 and 130 leave at 180 and 190 s, down to 1 per minute (<= 2 * 0.5).
    assert events == [(130, "raised", 3.0), (190, "cleared", 1.0)]


def test_each_rule_is_judged_over_its_own_span() -> None:
    short = AlertRule("short", "occupancy", above=5.0, span_s=10.0)
    long = AlertRule("long", "occupancy", above=5.0, span_s=300.0)
    engine = AlertEngine([short, long], "s", "c", K_MIN)
    assert engine.spans == (10.0, 300.0)
    alerts = engine.update(T0, [sample(8.0, span_s=10.0), sample(3.0, span_s=300.0)])
    assert [a.rule for a in alerts] == ["short"]
    with pytest.raises(ValueError, match=r"no sample over 300\.0 s"):
        engine.update(T0, [sample(8.0, span_s=10.0)])


def test_alert_json_is_one_object_in_utc() -> None:
    engine = AlertEngine([AlertRule("crowd", "occupancy", above=1.0)], "market-1", "cam-2", K_MIN)
    paris = timezone(timedelta(hours=1))
    (alert,) = engine.update(datetime(2021, 3, 1, 9, 0, tzinfo=paris), [sample(2.5)])
    text = alert.to_json()
    assert "\n" not in text
    assert json.loads(text) == {
        "rule": "crowd",
        "measure": "occupancy",
        "zone": None,
        "value": 2.5,
        "threshold": 1.0,
        "direction": "above",
        "state": "raised",
        "at": "2021-03-01T08:00:00+00:00",
        "site_id": "market-1",
        "camera_id": "cam-2",
    }
    with pytest.raises(ValueError, match="time zone aware"):
        engine.update(datetime(2021, 3, 1, 9, 0), [sample(2.5)])


def test_over_fewer_than_k_people_only_occupancy_is_told() -> None:
    """k_min 5 and 4 people in view: the store keeps only their count, so a zone's count or close pairs raise
    nothing (nor clear a raised rule with their value); occupancy, a people count, is judged as the store keeps it."""
    zone = AlertRule("till queue", "zone_occupancy", above=0.5, zone="till", cooldown_s=0.0)
    crowd = AlertRule("crowd", "occupancy", above=3.0, cooldown_s=0.0)
    engine = AlertEngine([zone, crowd], "s", "c", K_MIN)
    till = (ZoneOccupancy("till", 1.0),)
    assert [(a.rule, a.value) for a in engine.update(T0, [sample(4.0, people=4, zones=till)])] == [("crowd", 4.0)]
    assert [a.rule for a in engine.update(T0, [sample(4.0, people=5, zones=till)])] == ["till queue"]
    empty = (ZoneOccupancy("till", 0.0),)
    assert engine.update(T0, [sample(4.0, people=4, zones=empty)]) == []  # no value of 4 people, even to clear
    assert [(a.state, a.value) for a in engine.update(T0, [sample(4.0, people=6, zones=empty)])] == [("cleared", 0.0)]
