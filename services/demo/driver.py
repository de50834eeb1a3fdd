"""Sending a plan through the REST gateway, as the onboarding product would.

Each demo user's sessions go through the gateway with that user's API key:
StartSession for each, their events in BatchRecordEvents calls, then the
checkpoints in version order and the resumes. Users run side by side,
``concurrency`` of them at a time.

Every call may be repeated safely: a session started again answers
``existing``, an event whose id is stored is skipped, and a checkpoint
version already stored answers 409, which counts as done. A 429 waits for
its Retry-After; a 502, 503, 504 or a dropped connection is retried with
backoff; any other error stops the run with the server's answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from services.demo.plan import Plan, PlannedSession, iso

API = "/api/v1/onboarding"
# Below the server's SESSION_EVENTS_MAX_BATCH (1000), so one call never
# holds many sessions' row locks for long.
MAX_BATCH_EVENTS = 500
MAX_ATTEMPTS = 6
MAX_RATE_LIMIT_WAITS = 10
LONGEST_WAIT_SECONDS = 300.0
TIMEOUT_SECONDS = 60.0
RETRIED_STATUSES = frozenset({502, 503, 504})

# Called with a step name (sessions, events, checkpoints, resumes) and how
# many more of it were sent.
Advance = Callable[[str, int], None]


class DemoError(Exception):
    """The demo could not do what it planned; the message says why."""


@dataclass
class Sent:
    """What the gateway accepted."""

    sessions: int = 0
    events: int = 0
    checkpoints: int = 0
    resumes: int = 0


async def send_plan(
    plan: Plan,
    gateway: str,
    api_keys: Mapping[int, str],
    *,
    concurrency: int,
    advance: Advance,
) -> Sent:
    """Send every session of ``plan``; ``api_keys`` maps user index to key."""
    by_user: dict[int, list[PlannedSession]] = defaultdict(list)
    for session in plan.sessions:
        by_user[session.user_index].append(session)
    sent = Sent()
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency * 2)

    async with httpx.AsyncClient(
        base_url=gateway, timeout=TIMEOUT_SECONDS, limits=limits
    ) as client:

        async def lane(user_index: int, sessions: list[PlannedSession]) -> None:
            async with slots:
                user = _User(client, api_keys[user_index], advance, sent)
                await user.send(sessions)

        async with asyncio.TaskGroup() as group:
            for user_index, sessions in by_user.items():
                group.create_task(lane(user_index, sessions))
    return sent


@dataclass
class _User:
    """One demo user's calls, made in the order the product makes them."""

    client: httpx.AsyncClient
    api_key: str
    advance: Advance
    sent: Sent

    async def send(self, sessions: Sequence[PlannedSession]) -> None:
        await self._start(sessions)
        await self._record(sessions)
        for session in sessions:
            await self._checkpoint_and_resume(session)

    async def _start(self, sessions: Sequence[PlannedSession]) -> None:
        for session in sessions:
            await self._call("POST", f"{API}/sessions", _start_body(session))
            self.sent.sessions += 1
            self.advance("sessions", 1)

    async def _record(self, sessions: Sequence[PlannedSession]) -> None:
        for batch in _batches(sessions, MAX_BATCH_EVENTS):
            await self._call(
                "POST", f"{API}/sessions/events/batch", {"requests": batch}
            )
            count = sum(len(entry["events"]) for entry in batch)
            self.sent.events += count
            self.advance("events", count)

    async def _checkpoint_and_resume(self, session: PlannedSession) -> None:
        path = f"{API}/sessions/{session.session_id}"
        for checkpoint in session.checkpoints:
            data = {
                "version": checkpoint.version,
                "state": checkpoint.state,
                "data": checkpoint.data,
            }
            await self._call(
                "POST", f"{path}/checkpoint", {"checkpoint_data": data}, done=(409,)
            )
            self.sent.checkpoints += 1
            self.advance("checkpoints", 1)
        if session.resumed:
            await self._call("POST", f"{path}/resume", {})
            self.sent.resumes += 1
            self.advance("resumes", 1)

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        done: tuple[int, ...] = (),
    ) -> httpx.Response:
        """The call's successful response, after the retries it deserves."""
        headers = {"X-API-Key": self.api_key}
        attempts = waits = 0
        while True:
            try:
                reply = await self.client.request(
                    method, path, json=body, headers=headers
                )
            except httpx.TransportError as err:
                attempts += 1
                if attempts >= MAX_ATTEMPTS:
                    raise DemoError(f"{method} {path} failed: {err!r}") from err
                await asyncio.sleep(_backoff(attempts))
                continue

            if reply.is_success or reply.status_code in done:
                return reply
            if reply.status_code == 429 and waits < MAX_RATE_LIMIT_WAITS:
                waits += 1
                await asyncio.sleep(_retry_after(reply))
                continue
            attempts += 1
            if reply.status_code in RETRIED_STATUSES and attempts < MAX_ATTEMPTS:
                await asyncio.sleep(_backoff(attempts))
                continue
            raise DemoError(
                f"{method} {path} answered {reply.status_code}: {reply.text[:500]}"
            )


def _start_body(session: PlannedSession) -> dict[str, Any]:
    return {
        "session_id": str(session.session_id),
        "client_id": session.client_id,
        "conversation_type": session.conversation_type,
        "language": session.language,
        "started_at": iso(session.started_at),
    }


def _batches(
    sessions: Sequence[PlannedSession], size: int
) -> Iterator[list[dict[str, Any]]]:
    """BatchRecordEvents entries of at most ``size`` events per call; a
    session with more events is spread over several calls."""
    batch: list[dict[str, Any]] = []
    room = size
    for session in sessions:
        events = [event.as_json() for event in session.events]
        while events:
            piece, events = events[:room], events[room:]
            batch.append({"session_id": str(session.session_id), "events": piece})
            room -= len(piece)
            if room == 0:
                yield batch
                batch, room = [], size
    if batch:
        yield batch


def _backoff(attempt: int) -> float:
    return float(min(2 ** (attempt - 1) * 0.5, 8.0))


def _retry_after(reply: httpx.Response) -> float:
    try:
        seconds = float(reply.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.5), LONGEST_WAIT_SECONDS)
