"""The abandonment probability: the prior, then a model fitted on outcomes.

These tests run on a stack with a database of its own, so the finished
sessions the model learns from are exactly the ones built here; it fits as
soon as 10 sessions of each outcome exist and refits on every request.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import pytest

from services.sessions.risk import ScoreBucket
from services.sessions.risk_model import PRIOR, fit_logistic, model_from
from tests.conftest import Account
from tests.sessions.api import Api
from tests.sessions.conftest import (
    TRANSPORTS,
    ExtraStack,
    Plan,
    build,
    create_account,
    idle,
)

MIN_SESSIONS = 10


@pytest.fixture(scope="module")
def model_stack(
    isolated_stack_factory: Callable[[dict[str, str]], ExtraStack],
) -> ExtraStack:
    return isolated_stack_factory(
        {
            "RISK_MODEL_MIN_SESSIONS": str(MIN_SESSIONS),
            "RISK_MODEL_REFIT_SECONDS": "0",
        }
    )


@pytest.fixture(scope="module")
def carol(model_stack: ExtraStack) -> Account:
    return create_account(model_stack, "carol")


@pytest.fixture(params=TRANSPORTS)
def model_api(request: pytest.FixtureRequest, model_stack: ExtraStack) -> Api:
    return model_stack.api(request.param)


def _probability(api: Api, account: Account, plan: Plan) -> tuple[float, float]:
    session_id = build(api, account, plan)
    body = api.call("GetAbandonmentRisk", account, session_id=session_id).body
    return body["risk_score"], body["predicted_abandonment_probability"]


def test_the_prior_applies_while_few_sessions_have_finished(
    model_api: Api, carol: Account
) -> None:
    # 0.3 x 25 + 0.25 x 100 + 0.25 x 100 = 57.5
    plan = Plan(client_id=1, idle=idle(25), repeats=4, errors=4)

    score, probability = _probability(model_api, carol, plan)

    assert score == 57.5
    assert probability == round(1 / (1 + math.exp(-(57.5 - 50) / 16)), 2) == 0.62


@pytest.fixture(scope="module")
def finished_sessions(model_stack: ExtraStack, carol: Account) -> None:
    """Scores 0 and 50 (4 repeats, 4 errors), abandoned 20% and 80% of the time.

    With two distinct scores the fitted curve passes through both observed
    rates: p(0) = 0.2 and p(50) = 0.8, hence p(25) = 0.5.
    """
    api = model_stack.api()
    counts = {(0, False): 8, (0, True): 2, (50, False): 2, (50, True): 8}
    for (score, abandoned), count in counts.items():
        repeats = errors = 4 if score else 0
        for _ in range(count):
            if abandoned:
                plan = Plan(
                    2,
                    idle=timedelta(hours=1),
                    repeats=repeats,
                    errors=errors,
                    age=timedelta(hours=2),
                )
            else:
                plan = Plan(2, repeats=repeats, errors=errors, completed=True)
            build(api, carol, plan)


@pytest.mark.usefixtures("finished_sessions")
@pytest.mark.parametrize(
    ("repeats", "errors", "expected"),
    [(0, 0, (0, 0.2)), (2, 2, (25, 0.5)), (4, 4, (50, 0.8))],
)
def test_the_model_is_fitted_on_finished_sessions(
    model_api: Api,
    carol: Account,
    repeats: int,
    errors: int,
    expected: tuple[float, float],
) -> None:
    plan = Plan(client_id=3, repeats=repeats, errors=errors)

    assert _probability(model_api, carol, plan) == expected


def test_the_prior_reproduces_the_spec_example() -> None:
    assert round(PRIOR.probability(65), 2) == 0.72
    assert PRIOR.probability(50) == 0.5


def test_fitting_grouped_outcomes_recovers_their_rates() -> None:
    buckets = [ScoreBucket(10, 100, 10), ScoreBucket(60, 100, 75)]

    fitted = fit_logistic(buckets)

    assert fitted is not None
    intercept, slope = fitted
    rate = lambda score: 1 / (1 + math.exp(-(intercept + slope * score)))  # noqa: E731
    assert rate(10) == pytest.approx(0.10, abs=1e-4)
    assert rate(60) == pytest.approx(0.75, abs=1e-4)


def test_perfectly_separated_outcomes_still_give_a_finite_fit() -> None:
    buckets = [ScoreBucket(0, 30, 0), ScoreBucket(80, 30, 30)]

    fitted = fit_logistic(buckets)

    assert fitted is not None
    assert all(math.isfinite(value) for value in fitted)


def test_a_single_score_cannot_be_fitted() -> None:
    assert fit_logistic([ScoreBucket(40, 100, 50)]) is None


def test_too_few_of_either_outcome_keeps_the_prior() -> None:
    buckets = [ScoreBucket(0, 20, 2), ScoreBucket(50, 10, 7)]

    assert model_from(buckets, min_sessions=10) is PRIOR
    fitted = model_from(buckets, min_sessions=9)
    assert (fitted.source, fitted.completed, fitted.abandoned) == ("fitted", 21, 9)
