"""Threshold alerts on live measures: pure logic, no I/O, so the rules can be tested to the number.

A stored window tells what happened after the fact; an alert tells staff now, while the crowd is still there.
Measures are taken over a trailing span, and a rule fires once per episode (hysteresis, then a cooldown), so a
crowded minute evaluated every second sends one alert, not sixty. An alert carries the measure and the rule only,
never anything about a person, and no measure the store would suppress: over fewer than `privacy.k_min` people only
occupancy is judged (people counts are all a window of so few people keeps), every other rule keeps its state.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sanitary.analytics.observations import MaskCounts, Observation
from sanitary.config import AlertMeasure, AlertRule
from sanitary.tracking.ledger import Contact

Direction = Literal["above", "below"]
AlertState = Literal["raised", "cleared"]


@dataclass(frozen=True)
class ZoneOccupancy:
    name: str
    people: float | None  # mean people standing in the zone per analysed frame; None with no frame in the span


@dataclass(frozen=True)
class AlertSample:
    """The measures over the trailing span (now_t - span_s, now_t]; None where the span cannot tell."""

    now_t: float  # seconds since the start of the source
    span_s: float
    covered_s: float  # seconds of footage in the span: span_s, or less at the start of the footage
    frames: int  # analysed frames in the span
    occupancy: float | None  # mean people per analysed frame
    zone_occupancy: tuple[ZoneOccupancy, ...]
    people: int  # the most people seen in one frame of the span, for a mask_rate rule's min_people
    mask_rate: float | None  # with_mask / classified face-frames; None with no classified face
    close_pairs_per_min: float | None  # close-pair episodes that started in the span, per minute of covered_s
    close_contacts_per_min: float | None  # close contacts that ended in the span, per minute of covered_s

    def value(self, measure: AlertMeasure, zone: str | None = None) -> float | None:
        if measure == "zone_occupancy":
            for z in self.zone_occupancy:
                if z.name == zone:
                    return z.people
            raise ValueError(f"zone {zone!r} is not among the sample's zones; pass the camera's zone names")
        match measure:
            case "occupancy":
                return self.occupancy
            case "mask_rate":
                return self.mask_rate
            case "close_pairs_per_min":
                return self.close_pairs_per_min
            case "close_contacts_per_min":
                return self.close_contacts_per_min


def trailing_sample(
    observations: Sequence[Observation],
    contacts: Sequence[Contact] | None,
    pair_starts: Sequence[float] | None,
    now_t: float,
    span_s: float,
    zone_names: tuple[str, ...] = (),
) -> AlertSample:
    """The measures over (now_t - span_s, now_t], from `observations` in time order (only the span's are read, so
    the whole history may be passed).

    `pair_starts` are the times close pairs of tracked people began; None without tracking, and then an episode
    starts wherever a frame has more close pairs than the frame before it (a lower bound: a pair that parts as
    another meets in the same frame is missed). `contacts` are the tracker's close contacts, counted when they
    end; None without tracking makes that measure None. Distancing measures are None unless every frame of the
    span was measured on the ground (a calibrated camera): zero close pairs from an uncalibrated camera means
    "unknown", not "none".

    Rates are per minute of footage the span covers: at the start of the footage that is less than span_s (an
    episode in the first 10 s is 6 per minute), and with nothing covered yet (now_t = 0) they are None.
    """
    lo = now_t - span_s
    first = bisect.bisect_right(observations, lo, key=lambda o: o.t)
    end = bisect.bisect_right(observations, now_t, key=lambda o: o.t)
    # Indexed rather than sliced: a deque of recent frames is a Sequence too.
    span = [observations[i] for i in range(first, end)]
    covered_s = min(span_s, max(now_t, 0.0))
    if not span:
        return AlertSample(
            now_t, span_s, covered_s, 0, None, tuple(ZoneOccupancy(n, None) for n in zone_names), 0, None, None, None
        )
    n = len(span)
    masks = sum((o.masks for o in span), MaskCounts())
    classified = sum(masks.classified)
    zones = tuple(
        ZoneOccupancy(name, sum(o.ground.zone_people[z] for o in span) / n) for z, name in enumerate(zone_names)
    )
    measured = all(o.ground.measured for o in span)

    def per_min(count: int) -> float | None:
        return count * 60.0 / covered_s if measured and covered_s > 0 else None

    if pair_starts is None:
        before = observations[first - 1].ground.close_pairs if first > 0 else 0
        counts = [before] + [o.ground.close_pairs for o in span]
        starts = sum(max(0, b - a) for a, b in itertools.pairwise(counts))
    else:
        starts = sum(lo < t <= now_t for t in pair_starts)
    return AlertSample(
        now_t=now_t,
        span_s=span_s,
        covered_s=covered_s,
        frames=n,
        occupancy=sum(o.people for o in span) / n,
        zone_occupancy=zones,
        people=max(o.people for o in span),
        mask_rate=masks.with_mask / classified if classified else None,
        close_pairs_per_min=per_min(starts),
        close_contacts_per_min=None if contacts is None else per_min(sum(lo < c.end_t <= now_t for c in contacts)),
    )


@dataclass(frozen=True)
class Alert:
    """One rule raised or cleared: the measure's value and the rule, for one camera; nothing about anyone."""

    rule: str
    measure: AlertMeasure
    zone: str | None
    value: float
    threshold: float
    direction: Direction
    state: AlertState
    at: datetime  # UTC
    site_id: str
    camera_id: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "rule": self.rule,
                "measure": self.measure,
                "zone": self.zone,
                "value": self.value,
                "threshold": self.threshold,
                "direction": self.direction,
                "state": self.state,
                "at": self.at.isoformat(),
                "site_id": self.site_id,
                "camera_id": self.camera_id,
            }
        )


@dataclass
class _RuleState:
    raised: bool = False
    last_raise: datetime | None = None


def _threshold(rule: AlertRule) -> tuple[float, Direction]:
    if rule.above is not None and rule.below is None:
        return rule.above, "above"
    if rule.below is not None and rule.above is None:
        return rule.below, "below"
    raise ValueError(f"alert '{rule.name}' needs exactly one of 'above' or 'below'")


class AlertEngine:
    """Each rule's state across samples: raised once when its measure passes the threshold, cleared once it is back
    past the threshold by the hysteresis margin, and never raised again within cooldown_s of its last raise."""

    def __init__(self, rules: Sequence[AlertRule], site_id: str, camera_id: str, k_min: int) -> None:
        self.rules = tuple(rules)
        self.k_min = k_min
        self.thresholds = tuple(_threshold(r) for r in self.rules)
        self.site_id = site_id
        self.camera_id = camera_id
        self.states = tuple(_RuleState() for _ in self.rules)

    @property
    def spans(self) -> tuple[float, ...]:
        """The trailing spans the rules are judged over: `update` needs one sample for each."""
        return tuple(sorted({r.span_s for r in self.rules}))

    def update(self, at: datetime, samples: Sequence[AlertSample]) -> list[Alert]:
        """The alerts raised or cleared at `at`, the time zone aware wall-clock time of the samples' now_t; each
        rule is judged on the sample over its own span_s."""
        if at.tzinfo is None:
            raise ValueError("alert time must be time zone aware")
        at = at.astimezone(UTC)
        by_span = {s.span_s: s for s in samples}
        alerts = []
        for rule, (threshold, direction), state in zip(self.rules, self.thresholds, self.states, strict=True):
            if rule.span_s not in by_span:
                raise ValueError(f"no sample over {rule.span_s} s for alert '{rule.name}'; pass one per engine.spans")
            sample = by_span[rule.span_s]
            value = sample.value(rule.measure, rule.zone)
            # Unknown, or a mask rate over too few people to mean anything: the rule keeps its state. Over fewer than
            # k people (the most seen at once: never more than the distinct people the store judges a window by, so
            # never more lenient) only their count is told, as the store keeps only people counts of such a window.
            few = sample.people < (rule.min_people if rule.measure == "mask_rate" else self.k_min)
            if value is None or (few and rule.measure != "occupancy"):
                continue
            if state.raised:
                h = rule.hysteresis
                back = value <= threshold * (1 - h) if direction == "above" else value >= threshold * (1 + h)
                if not back:
                    continue
                state.raised = False
                alerts.append(self._alert(rule, value, threshold, direction, "cleared", at))
            else:
                passed = value > threshold if direction == "above" else value < threshold
                cooling = state.last_raise is not None and (at - state.last_raise).total_seconds() < rule.cooldown_s
                if not passed or cooling:
                    continue
                state.raised, state.last_raise = True, at
                alerts.append(self._alert(rule, value, threshold, direction, "raised", at))
        return alerts

    def _alert(
        self, rule: AlertRule, value: float, threshold: float, direction: Direction, state: AlertState, at: datetime
    ) -> Alert:
        return Alert(
            rule=rule.name,
            measure=rule.measure,
            zone=rule.zone,
            value=value,
            threshold=threshold,
            direction=direction,
            state=state,
            at=at,
            site_id=self.site_id,
            camera_id=self.camera_id,
        )
