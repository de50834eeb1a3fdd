"""``onboarding dlq-demo``: enqueue example tasks so a local run fills the DLQ.

With the test double's default fault rates, roughly a quarter of the tasks
fail four times in a row and land in the DLQ, where the sweep retries them.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from celery import Celery

from services.dlq.capture import enqueue

SAMPLE_INPUTS = (
    "I run a bakery with three shops",
    "We want to invoice customers monthly",
    "Our team has twelve people",
)


def enqueue_examples(app: Celery, count: int) -> list[str]:
    """Send ``count`` example tasks in turn; returns their Celery ids."""
    rng = random.Random()
    return [_enqueue_one(app, index, rng) for index in range(count)]


def _enqueue_one(app: Celery, index: int, rng: random.Random) -> str:
    conversation_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    text = rng.choice(SAMPLE_INPUTS)
    calls: list[tuple[str, list[Any]]] = [
        ("process_conversation_step_v2", [conversation_id, text, {}]),
        ("embed_knowledge_document", [f"doc-{index}", text]),
        ("translate_conversation_step", [conversation_id, text, "de"]),
    ]
    name, args = calls[index % len(calls)]
    return enqueue(
        app,
        name,
        args,
        {"task_id": correlation_id},
        correlation_id=correlation_id,
        context={"user_id": rng.randint(1, 500), "client_id": rng.randint(1, 20)},
    )
