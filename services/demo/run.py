"""``onboarding demo``: plan the workload, send it, enqueue its tasks, report.

The command needs the gateway, the database (for the demo users and their
API keys, as ``create-user`` and ``create-api-key`` do) and the Celery
broker. Staff credentials are optional: with them the summary adds the
funnel as the server computes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from server.db import Database, create_engine, utcnow
from server.settings import Settings
from services.demo.accounts import DemoAccount, close_accounts, open_accounts
from services.demo.driver import Advance, DemoError, Sent, send_plan
from services.demo.generator import generate_plan
from services.demo.plan import Plan, iso
from services.demo.tasks import enqueue_tasks
from services.dlq.celery_app import create_celery

# How far ahead of this machine's clock --now may be (the API takes events
# up to five minutes ahead of the server's).
MAX_CLOCK_SKEW = timedelta(minutes=1)
FUNNEL = "/api/v1/onboarding/analytics/funnel/"


@dataclass(frozen=True)
class StaffCredentials:
    """A staff login or API key whose view of the result is printed."""

    username: str | None = None
    password: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class DemoOptions:
    """What ``onboarding demo`` was asked for."""

    sessions: int
    days: int
    seed: int
    dlq_tasks: int
    gateway: str
    concurrency: int = 8
    now: datetime | None = None
    staff: StaffCredentials | None = None


def run_demo(options: DemoOptions, settings: Settings, console: Console) -> Plan:
    """Send the workload; raises ``DemoError`` when part of it cannot be."""
    plan = _plan(options, settings)
    console.print(
        f"Planned {len(plan.sessions)} sessions of {len(plan.users)} demo users "
        f"over the {plan.days} days before {iso(plan.now)} (seed {plan.seed})."
    )
    staff_headers = _staff_headers(options)

    started = time.monotonic()
    with _progress(console, plan) as advance:
        sent, accounts = asyncio.run(_send(plan, options, settings, advance))
        user_ids = {index: account.user_id for index, account in accounts.items()}
        enqueue_tasks(create_celery(settings), plan, user_ids, advance)
    elapsed = time.monotonic() - started

    _print_summary(console, plan, sent, elapsed)
    if staff_headers is not None:
        _print_server_view(console, options.gateway, staff_headers, plan)
    return plan


def _plan(options: DemoOptions, settings: Settings) -> Plan:
    now = options.now or utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if now > utcnow() + MAX_CLOCK_SKEW:
        raise DemoError(f"--now {iso(now)} is in the future")
    return generate_plan(
        seed=options.seed,
        sessions=options.sessions,
        days=options.days,
        now=now,
        dlq_tasks=options.dlq_tasks,
        abandon_after=timedelta(minutes=settings.session_abandon_after_minutes),
    )


async def _send(
    plan: Plan, options: DemoOptions, settings: Settings, advance: Advance
) -> tuple[Sent, dict[int, DemoAccount]]:
    db = Database(create_engine(settings))
    try:
        accounts = await open_accounts(db, plan.users)
        try:
            keys = {index: account.api_key for index, account in accounts.items()}
            sent = await send_plan(
                plan,
                options.gateway,
                keys,
                concurrency=options.concurrency,
                advance=advance,
            )
        finally:
            await close_accounts(db, list(accounts.values()))
    finally:
        await db.dispose()
    return sent, accounts


@contextmanager
def _progress(console: Console, plan: Plan) -> Iterator[Advance]:
    steps = {
        "sessions": len(plan.sessions),
        "events": plan.event_count,
        "checkpoints": plan.checkpoint_count,
        "resumes": plan.resume_count,
        "tasks": len(plan.tasks),
    }
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        ids = {
            name: progress.add_task(name, total=total)
            for name, total in steps.items()
            if total
        }

        def advance(step: str, amount: int) -> None:
            progress.advance(ids[step], amount)

        yield advance


def _staff_headers(options: DemoOptions) -> dict[str, str] | None:
    """Headers of the staff credentials, checked before anything is sent."""
    staff = options.staff
    if staff is None:
        return None
    with httpx.Client(base_url=options.gateway, timeout=30) as client:
        try:
            if staff.api_key:
                headers = {"X-API-Key": staff.api_key}
            else:
                login = client.post(
                    "/api/v1/auth/login/",
                    json={"username": staff.username, "password": staff.password},
                )
                if login.status_code != 200:
                    raise DemoError(f"login as {staff.username} failed: {login.text}")
                headers = {"Authorization": f"Bearer {login.json()['access']}"}
            me = client.get("/api/v1/auth/me/", headers=headers)
        except httpx.TransportError as err:
            raise DemoError(f"cannot reach {options.gateway}: {err!r}") from err
    if me.status_code != 200 or not me.json().get("is_staff"):
        raise DemoError("the staff credentials do not belong to a staff user")
    return headers


def _print_summary(console: Console, plan: Plan, sent: Sent, elapsed: float) -> None:
    figures = plan.figures()
    rate = figures.completed / figures.total
    console.print(
        f"Sent {sent.sessions} sessions, {sent.events} events, "
        f"{sent.checkpoints} checkpoints and {sent.resumes} resumes, and enqueued "
        f"{len(plan.tasks)} tasks, in {elapsed:.1f} s."
    )
    console.print(
        f"The plan's funnel: {figures.total} sessions, {figures.completed} "
        f"completed, {figures.abandoned} abandoned, {figures.active} active "
        f"(conversion {rate:.1%})."
    )
    if plan.tasks:
        console.print(
            f"{plan.failing_task_count} of the tasks carry input the task rejects "
            "and go straight to the DLQ; the others land there only when the "
            "worker's LLM client keeps failing."
        )
    console.print(
        f"The same data again, under the same ids: --seed {plan.seed} "
        f"--now {iso(plan.now)}"
    )


def _print_server_view(
    console: Console, gateway: str, headers: dict[str, str], plan: Plan
) -> None:
    """The funnel of the period as the server computes it (other sessions of
    the period included)."""
    start = plan.now - timedelta(days=plan.days)
    params = {"start_date": iso(start)}
    try:
        reply = httpx.get(gateway + FUNNEL, params=params, headers=headers, timeout=60)
    except httpx.TransportError as err:
        console.print(f"The funnel could not be read: {err!r}")
        return
    if reply.status_code != 200:
        console.print(f"The funnel answered {reply.status_code}: {reply.text}")
        return
    body = reply.json()
    console.print(
        f"The server's funnel since {iso(start)}: {body['total_sessions']} "
        f"sessions, {body['completed_sessions']} completed, "
        f"{body['abandoned_sessions']} abandoned "
        f"(conversion {body['overall_conversion_rate']:.1%})."
    )
