"""API keys: created once in clear, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import utcnow
from server.errors import NotFound, Unauthenticated
from server.security.models import ApiKey, User

KEY_PREFIX = "obk"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key; ``key`` is never stored and shown only once."""

    key: str
    prefix: str
    name: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_prefix(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    # The secret is URL-safe base64 and may itself contain underscores.
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


async def create_api_key(session: AsyncSession, user: User, name: str) -> NewApiKey:
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(user_id=user.id, name=name, prefix=prefix, key_hash=_digest(key))
    )
    await session.commit()
    return NewApiKey(key=key, prefix=prefix, name=name)


async def revoke_api_key(session: AsyncSession, prefix: str) -> None:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"No active API key with prefix {prefix!r}.")


async def authenticate_api_key(session: AsyncSession, key: str) -> User:
    """The active user owning a valid, unrevoked key, else 401."""
    prefix = parse_prefix(key)
    row = None
    if prefix is not None:
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    valid = (
        row is not None
        and hmac.compare_digest(row.key_hash, _digest(key))
        and row.revoked_at is None
        and row.user.is_active
    )
    if not valid or row is None:
        raise Unauthenticated(
            "API key is invalid or revoked.", reason="invalid_api_key"
        )
    await _touch(session, row)
    return row.user


async def _touch(session: AsyncSession, row: ApiKey) -> None:
    """Record use at most once a minute: a write per request would double
    the cost of every API-key call."""
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        await session.commit()
