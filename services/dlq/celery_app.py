"""The Celery app of the onboarding product: Redis broker, late acks.

The worker and beat processes run the app of ``services.dlq.worker``; the
gRPC server builds one here only to send retries.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from celery import Celery

from server.settings import Settings
from services.dlq.categories import register_categories

SWEEP_TASK = "onboarding.dlq.sweep"
PRUNE_CHECKPOINTS_TASK = "onboarding.sessions.prune_checkpoints"
TASK_MODULES = (
    "services.dlq.tasks",
    "services.dlq.sweep",
    "services.sessions.periodic",
)
# A message not acknowledged this long is delivered again; longer than any
# in-worker retry countdown, or the broker would deliver a waiting retry twice.
VISIBILITY_TIMEOUT_SECONDS = 3600


def broker_url(settings: Settings) -> str:
    """CELERY_BROKER_URL, else REDIS_URL in the spelling kombu expects."""
    url = settings.celery_broker_url or settings.redis_url
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    # redis-py writes a socket as unix://PATH?db=N, kombu as redis+socket://.
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


def create_celery(settings: Settings) -> Celery:
    """A Celery app for these settings, with the DLQ sweep on its schedule."""
    register_categories(settings.dlq_extra_categories)
    app = Celery("onboarding", broker=broker_url(settings), include=TASK_MODULES)
    app.conf.update(
        task_acks_late=True,
        # A worker killed mid-task puts the message back instead of losing it.
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        # Outcomes go to the DLQ tables; nobody reads Celery results.
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        # A retry sent from an RPC should fail fast when Redis is down.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.1,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
        beat_schedule={
            "dlq-sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.dlq_sweep_interval_seconds,
            },
            "prune-checkpoints": {
                "task": PRUNE_CHECKPOINTS_TASK,
                "schedule": settings.checkpoint_prune_interval_seconds,
            },
        },
        beat_schedule_filename=settings.celery_beat_schedule_file,
        enable_utc=True,
    )
    return app
