"""Periodic session work that ``onboarding beat`` schedules on the workers."""

from __future__ import annotations

import logging

from celery import shared_task

from server.settings import get_settings
from services.dlq.celery_app import PRUNE_CHECKPOINTS_TASK
from services.sessions.retention import run_prune_checkpoints

logger = logging.getLogger(__name__)


@shared_task(name=PRUNE_CHECKPOINTS_TASK, ignore_result=True)
def prune_checkpoints() -> int:
    """Apply the checkpoint retention policy; returns how many were pruned."""
    result = run_prune_checkpoints(get_settings())
    logger.info("checkpoint retention ran", extra={"pruned": result.deleted})
    return result.deleted
