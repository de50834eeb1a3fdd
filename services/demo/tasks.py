"""Enqueueing the plan's onboarding tasks, as the product does.

The tasks go to the Celery broker through ``services.dlq.capture.enqueue``,
with the correlation id and the session, user and client they work for. The
worker runs them against the LLM client it is configured with (locally the
flaky test double): the calls the plan made invalid fail at once into the
DLQ, and the others fail into it only when the LLM keeps failing.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis
from celery import Celery
from kombu.exceptions import KombuError

from services.demo.driver import Advance, DemoError
from services.demo.plan import Plan
from services.dlq.capture import enqueue


def enqueue_tasks(
    app: Celery, plan: Plan, user_ids: Mapping[int, int], advance: Advance
) -> list[str]:
    """Send every task of ``plan``; returns their Celery task ids.

    ``user_ids`` maps a plan's user index to the stored user's id.
    """
    sent = []
    for task in plan.tasks:
        context = {
            "session_id": str(task.session_id),
            "user_id": user_ids[task.user_index],
            "client_id": task.client_id,
        }
        try:
            celery_id = enqueue(
                app,
                task.task_name,
                list(task.args),
                task.kwargs,
                correlation_id=task.correlation_id,
                context=context,
            )
        except (KombuError, redis.RedisError, OSError) as err:
            raise DemoError(f"the task queue is unreachable: {err!r}") from err
        sent.append(celery_id)
        advance("tasks", 1)
    return sent
