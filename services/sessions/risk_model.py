"""The abandonment probability: a logistic curve over the risk score.

``p = 1 / (1 + exp(-(intercept + slope x risk_score)))``

While fewer than ``risk_model_min_sessions`` completed *and* as many abandoned
sessions (started in the last ``risk_model_window_days``) exist, the
documented prior is used: intercept -50/16 and slope 1/16, a curve centred on
the ``high`` threshold (50 gives 0.5) that reproduces the spec's example (a
score of 65 gives 0.72). With enough finished sessions, intercept and slope
are fitted by maximum likelihood to their outcomes (abandoned = 1), each
session scored as it was at its last event. A tiny ridge penalty on the
slope keeps the fit finite when the score separates the outcomes perfectly.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.db import Database
from server.settings import Settings
from services.sessions.risk import ScoreBucket, finished_score_buckets

logger = logging.getLogger(__name__)

# Scores are fitted in units of 100 points, which keeps Newton's steps well
# conditioned; coefficients are reported per point.
_SCALE = 100.0
RIDGE = 1e-4
_MAX_ITERATIONS = 100
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class LogisticModel:
    """A logistic curve over the risk score and where it came from."""

    intercept: float
    slope: float
    source: str
    completed: int = 0
    abandoned: int = 0

    def probability(self, risk_score: float) -> float:
        return _sigmoid(self.intercept + self.slope * risk_score)


PRIOR = LogisticModel(intercept=-50 / 16, slope=1 / 16, source="prior")


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    exp_z = math.exp(z)
    return exp_z / (1.0 + exp_z)


def fit_logistic(buckets: Sequence[ScoreBucket]) -> tuple[float, float] | None:
    """Maximum-likelihood (intercept, slope) per score point, or None.

    Newton-Raphson on the binomial log-likelihood of grouped sessions; the
    objective is strictly concave thanks to the ridge, so it converges
    unless the data hold a single score, which cannot determine a slope.
    """
    if len({bucket.score for bucket in buckets}) < 2:
        return None
    a = b = 0.0
    for _ in range(_MAX_ITERATIONS):
        step_a, step_b = _newton_step(buckets, a, b)
        a, b = a + step_a, b + step_b
        if abs(step_a) + abs(step_b) < _TOLERANCE:
            return a, b / _SCALE
    logger.warning("abandonment model fit did not converge; using the prior")
    return None


def _newton_step(
    buckets: Sequence[ScoreBucket], a: float, b: float
) -> tuple[float, float]:
    grad_a, grad_b = 0.0, -RIDGE * b
    h_aa, h_ab, h_bb = 0.0, 0.0, RIDGE
    for bucket in buckets:
        x = bucket.score / _SCALE
        p = _sigmoid(a + b * x)
        residual = bucket.abandoned - bucket.sessions * p
        weight = bucket.sessions * p * (1.0 - p)
        grad_a += residual
        grad_b += residual * x
        h_aa += weight
        h_ab += weight * x
        h_bb += weight * x * x
    determinant = h_aa * h_bb - h_ab * h_ab
    return (
        (h_bb * grad_a - h_ab * grad_b) / determinant,
        (h_aa * grad_b - h_ab * grad_a) / determinant,
    )


def model_from(buckets: Sequence[ScoreBucket], min_sessions: int) -> LogisticModel:
    """The fitted model when each outcome has ``min_sessions``, else the prior."""
    abandoned = sum(bucket.abandoned for bucket in buckets)
    completed = sum(bucket.sessions for bucket in buckets) - abandoned
    if min(abandoned, completed) < min_sessions:
        return PRIOR
    fitted = fit_logistic(buckets)
    if fitted is None:
        return PRIOR
    return LogisticModel(fitted[0], fitted[1], "fitted", completed, abandoned)


class RiskModelCache:
    """The current model of this process, fitted again every few minutes."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._model = PRIOR
        self._fitted_at: float | None = None
        self._lock = asyncio.Lock()

    async def current(self, now: datetime) -> LogisticModel:
        async with self._lock:
            if self._is_stale():
                self._model = await self._fit(now)
                self._fitted_at = time.monotonic()
            return self._model

    def _is_stale(self) -> bool:
        if self._fitted_at is None:
            return True
        age = time.monotonic() - self._fitted_at
        return age >= self._settings.risk_model_refit_seconds

    async def _fit(self, now: datetime) -> LogisticModel:
        settings = self._settings
        async with self._db.session() as session:
            buckets = await finished_score_buckets(
                session,
                now=now,
                abandoned_before=now
                - timedelta(minutes=settings.session_abandon_after_minutes),
                since=now - timedelta(days=settings.risk_model_window_days),
            )
        model = model_from(buckets, settings.risk_model_min_sessions)
        # Refits are routine; only a switch between prior and fit is news.
        level = logging.INFO if model.source != self._model.source else logging.DEBUG
        logger.log(
            level,
            "abandonment model ready",
            extra={
                "source": model.source,
                "intercept": model.intercept,
                "slope": model.slope,
                "completed": model.completed,
                "abandoned": model.abandoned,
            },
        )
        return model
