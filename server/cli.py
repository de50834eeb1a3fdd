"""The ``onboarding`` command: serve, migrate, manage users and API keys."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from server import logs
from server.db import Database, create_engine
from server.errors import ApiError
from server.settings import get_settings

app = typer.Typer(help="Onboarding reliability API.", no_args_is_help=True)

T = TypeVar("T")


def _with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(create_engine(get_settings()))
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except ApiError as err:
        typer.echo(f"error: {err.detail}", err=True)
        for field, messages in err.field_errors.items():
            typer.echo(f"  {field}: {' '.join(messages)}", err=True)
        raise typer.Exit(1) from err


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        typer.echo("error: passwords differ", err=True)
        raise typer.Exit(1)
    return first


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="gRPC port (GRPC_PORT).")] = None,
) -> None:
    """Run the gRPC server until SIGTERM or Ctrl-C."""
    from server.app import serve as run_server

    settings = get_settings()
    if port is not None:
        settings = settings.model_copy(update={"grpc_port": port})
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(run_server(settings))


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest revision."""
    from server.migrate import upgrade

    upgrade(get_settings())
    typer.echo("database is up to date")


@app.command("create-user")
def create_user(
    username: str,
    staff: Annotated[bool, typer.Option("--staff", help="Staff user.")] = False,
    superuser: Annotated[bool, typer.Option("--superuser", help="Superuser.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user; the password is prompted for or read from stdin."""
    from server.security.users import create_user as create

    password = _read_password(password_stdin)

    async def work(db: Database) -> None:
        async with db.session() as session:
            user = await create(
                session, username, password, is_staff=staff, is_superuser=superuser
            )
            typer.echo(
                f"created user {user.username} (id {user.id}, staff={user.is_staff}, "
                f"superuser={user.is_superuser})"
            )

    _with_db(work)


@app.command("create-api-key")
def create_api_key(
    username: str,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
) -> None:
    """Create an API key for a user and print it once."""
    from server.security.api_keys import create_api_key as create
    from server.security.users import get_user_by_name

    async def work(db: Database) -> None:
        async with db.session() as session:
            user = await get_user_by_name(session, username)
            new = await create(session, user, name)
        typer.echo(f"API key for {username} (prefix {new.prefix}); shown only once:")
        typer.echo(new.key)

    _with_db(work)


@app.command("revoke-api-key")
def revoke_api_key(prefix: str) -> None:
    """Revoke an API key by its prefix (the part after ``obk_``)."""
    from server.security.api_keys import revoke_api_key as revoke

    async def work(db: Database) -> None:
        async with db.session() as session:
            await revoke(session, prefix)
        typer.echo(f"revoked API key {prefix}")

    _with_db(work)


@app.command("prune-checkpoints")
def prune_checkpoints(
    keep: Annotated[
        int | None,
        typer.Option(help="Newest versions kept per session (CHECKPOINT_KEEP_LATEST)."),
    ] = None,
    max_age_days: Annotated[
        int | None,
        typer.Option(help="Prune versions older than this (CHECKPOINT_MAX_AGE_DAYS)."),
    ] = None,
) -> None:
    """Delete checkpoint versions outside the retention policy."""
    from services.sessions.retention import run_prune_checkpoints

    try:
        result = run_prune_checkpoints(
            get_settings(), keep_latest=keep, max_age_days=max_age_days
        )
    except ApiError as err:
        typer.echo(f"error: {err.detail}", err=True)
        for field, messages in err.field_errors.items():
            typer.echo(f"  {field}: {' '.join(messages)}", err=True)
        raise typer.Exit(1) from err
    typer.echo(
        f"pruned {result.deleted} checkpoints of {result.sessions} sessions "
        f"({result.hot_copies_deleted} hot copies)"
    )


# Celery's own options (--concurrency, --hostname, --pool ...) pass through.
_CELERY_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=_CELERY_PASSTHROUGH)
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker (late acknowledgement) until SIGTERM or Ctrl-C."""
    from services.dlq.worker import run_worker

    run_worker(list(ctx.args))


@app.command(context_settings=_CELERY_PASSTHROUGH)
def beat(ctx: typer.Context) -> None:
    """Run the Celery scheduler: the DLQ sweep and checkpoint retention."""
    from services.dlq.worker import run_beat

    run_beat(list(ctx.args))


@app.command("dlq-demo")
def dlq_demo(
    count: Annotated[int, typer.Option(help="How many example tasks.")] = 20,
) -> None:
    """Enqueue example tasks; the flaky LLM test double fails some into the DLQ."""
    from services.dlq.demo import enqueue_examples
    from services.dlq.worker import app as celery_app

    ids = enqueue_examples(celery_app, count)
    typer.echo(f"enqueued {len(ids)} example tasks")


@app.command()
def demo(
    sessions: Annotated[int, typer.Option(min=1, help="Sessions to create.")] = 2000,
    days: Annotated[
        int, typer.Option(min=1, help="Past days the sessions spread over.")
    ] = 14,
    seed: Annotated[int, typer.Option(help="The same seed, the same data.")] = 42,
    dlq_tasks: Annotated[
        int, typer.Option(min=0, help="Onboarding Celery tasks to enqueue.")
    ] = 30,
    gateway: Annotated[
        str | None,
        typer.Option(
            help="The REST gateway.", show_default="http://localhost:HTTP_PORT"
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="A staff user: print the server's funnel.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="ONBOARDING_PASSWORD", help="Its password (prompted)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="ONBOARDING_API_KEY", help="Or a staff API key."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="End of the period (ISO 8601); with the same seed, the same ids.",
            show_default="now",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Users sending at once.")
    ] = 8,
) -> None:
    """Drive a realistic, seeded workload through the REST gateway."""
    from datetime import datetime

    from rich.console import Console

    from services.demo.driver import DemoError
    from services.demo.run import DemoOptions, StaffCredentials, run_demo

    try:
        end = datetime.fromisoformat(now) if now else None
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--now") from err
    staff = None
    if api_key:
        staff = StaffCredentials(api_key=api_key)
    elif username:
        if password is None:
            password = getpass.getpass(f"Password of {username}: ")
        staff = StaffCredentials(username=username, password=password)

    settings = get_settings()
    options = DemoOptions(
        sessions=sessions,
        days=days,
        seed=seed,
        dlq_tasks=dlq_tasks,
        gateway=gateway or f"http://localhost:{settings.http_port}",
        concurrency=concurrency,
        now=end,
        staff=staff,
    )
    try:
        run_demo(options, settings, Console())
    except DemoError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    except ApiError as err:
        typer.echo(f"error: {err.detail}", err=True)
        for field, messages in err.field_errors.items():
            typer.echo(f"  {field}: {' '.join(messages)}", err=True)
        raise typer.Exit(1) from err


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def dev(ctx: typer.Context) -> None:
    """Run the whole local stack: database, Redis, server, worker and Envoy."""
    from server import devstack

    devstack.main(ctx.args)


def main() -> None:
    app()
