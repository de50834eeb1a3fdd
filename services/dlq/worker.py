"""The worker and beat processes: ``onboarding worker`` and ``onboarding beat``.

Also usable as ``celery -A services.dlq.worker worker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import signals

from server import logs
from server.settings import get_settings
from services.dlq.capture import correlation_id_of
from services.dlq.celery_app import create_celery

app = create_celery(get_settings())


def run_worker(extra_args: list[str]) -> None:
    """Run a worker in the foreground until SIGTERM or Ctrl-C.

    ``-B`` in ``extra_args`` embeds the scheduler, for a one-process setup.
    """
    settings = get_settings()
    _schedule_folder(settings.celery_beat_schedule_file)
    argv = ["worker", "--loglevel", settings.log_level]
    if settings.celery_worker_concurrency > 0:
        argv += ["--concurrency", str(settings.celery_worker_concurrency)]
    app.worker_main([*argv, *extra_args])


def run_beat(extra_args: list[str]) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C."""
    settings = get_settings()
    _schedule_folder(settings.celery_beat_schedule_file)
    argv = ["beat", "--loglevel", settings.log_level]
    app.start([*argv, *extra_args])


def _schedule_folder(schedule_file: str) -> None:
    Path(schedule_file).parent.mkdir(parents=True, exist_ok=True)


@signals.setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connecting here stops Celery from installing its own handlers, so worker
    # and beat log the JSON lines the server does.
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)


@signals.task_prerun.connect
def _bind_task_context(task: Any = None, task_id: str = "", **_: Any) -> None:
    logs.clear_context()
    logs.bind_context(
        task=getattr(task, "name", ""),
        task_id=task_id,
        correlation_id=correlation_id_of(task.request) if task else "",
    )


@signals.task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    logs.clear_context()
