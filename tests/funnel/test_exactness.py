"""The API against the definitions applied to raw events, on random data.

Random periods exercise every path of the rollup reads: whole hours and days
from the rollups, partial buckets at the edges from the sessions, filters
(daily rollup) and none (hourly rollup), and active sessions subtracted from
whole buckets.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import Account
from tests.funnel import reference
from tests.funnel.conftest import ABANDON_AFTER, T0, Journey, Sessions, iso, now

TYPES = ("site_survey", "business_unit_setup")
ERRORS = ("LLM_TIMEOUT", "VALIDATION_ERROR")


def random_journey(
    rng: random.Random, started_at: datetime, last_gap: float
) -> Journey:
    """A session that goes a random way into the funnel; its last event is
    ``last_gap`` minutes after the previous one."""
    journey = Journey(
        started_at,
        client_id=rng.choice((1, 2, 3)),
        conversation_type=rng.choice(TYPES),
        language=rng.choice(("en", "hi", "pt-BR")),
    )
    minute = 0.0
    furthest = rng.choices(range(5), weights=(2, 2, 2, 1, 4))[0]
    states = [] if rng.random() < 0.5 else ["INITIAL_PROMPT"]
    for stage in reference.STAGES[1 : furthest + 1]:
        states += rng.sample(stage.states, rng.randint(1, len(stage.states)))
    for state in states:
        minute += rng.uniform(0.2, 9)
        journey.to(state, minute)
        if state in ("COLLECTING_INFO", "ASKING_QUESTIONS"):
            for _ in range(rng.randint(0, 3)):
                minute += rng.uniform(0.1, 2)
                journey.repeat(minute) if rng.random() < 0.3 else journey.answer(minute)
    if furthest < 4 and rng.random() < 0.5:
        minute += last_gap
        journey.error(rng.choice(ERRORS), minute)
    elif rng.random() < 0.3:
        minute += last_gap
        journey.activity(minute)
    return journey


def live_journey(rng: random.Random, moment: datetime) -> Journey:
    """A session of the last hours whose last event is well clear of the
    inactivity timeout, so the server and the test agree on its state."""
    idle = rng.choice((rng.uniform(1, 20), rng.uniform(45, 120)))
    while True:
        started = moment - timedelta(minutes=rng.uniform(idle + 1, 360))
        journey = random_journey(rng, started, 0.5)
        last = max(e.at for e in journey.events)
        if last <= moment - timedelta(minutes=idle):
            return journey


@pytest.fixture
def dataset(sessions: Sessions) -> list[Journey]:
    rng = random.Random(20240304)
    past = [
        random_journey(rng, T0 + timedelta(minutes=rng.uniform(0, 7 * 24 * 60)), 3)
        for _ in range(90)
    ]
    moment = now()
    live = [live_journey(rng, moment) for _ in range(25)]
    return sessions.add(*past, *live)


def random_instant(rng: random.Random) -> datetime:
    moment = T0 + timedelta(minutes=rng.uniform(-600, 8 * 24 * 60))
    return rng.choice((moment, moment.replace(minute=0, second=0, microsecond=0)))


def random_periods(rng: random.Random, count: int) -> list[tuple[datetime, datetime]]:
    periods = [(T0 - timedelta(days=1), T0 + timedelta(days=9))]
    for _ in range(count):
        a, b = sorted((random_instant(rng), random_instant(rng)))
        periods.append((a, b))
    moment = now()
    periods += [
        (moment - timedelta(hours=3, minutes=17), moment),
        (moment - timedelta(days=2), moment + timedelta(hours=1)),
    ]
    return periods


def test_funnel_matches_the_definitions(
    rest: httpx.Client, analyst: Account, dataset: list[Journey]
) -> None:
    rng = random.Random(7)
    for start, end in random_periods(rng, 12):
        for filters in (
            {},
            {"client_id": rng.choice((1, 2))},
            {"conversation_type": rng.choice(TYPES)},
        ):
            reply = rest.get(
                "/funnel/",
                params={"start_date": iso(start), "end_date": iso(end), **filters},
                headers=analyst.headers,
            )
            body = reply.json()
            for key in ("recommendations", "time_range", "last_updated"):
                body.pop(key)
            selected = reference.select(dataset, start, end, **filters)
            expected = reference.funnel(selected, now(), ABANDON_AFTER)
            assert body == expected, (start, end, filters)


@pytest.mark.parametrize(
    ("granularity", "unit"), [("hourly", "hour"), ("daily", "day"), ("weekly", "week")]
)
def test_heatmap_matches_the_definitions(
    rest: httpx.Client,
    analyst: Account,
    dataset: list[Journey],
    granularity: str,
    unit: str,
) -> None:
    rng = random.Random(11)
    for start, end in random_periods(rng, 4):
        if granularity == "hourly" and end - start > timedelta(days=40):
            continue
        reply = rest.get(
            "/drop-off-heatmap/",
            params={
                "start_date": iso(start),
                "end_date": iso(end),
                "granularity": granularity,
            },
            headers=analyst.headers,
        )
        selected = reference.select(dataset, start, end)
        expected = reference.heatmap_buckets(selected, now(), ABANDON_AFTER, unit)
        assert reply.json()["heatmap_data"] == expected, (start, end)
