"""The demo's users and the API keys they act with.

Users come only from the CLI, never from the API, so the demo creates its
users in the database as ``onboarding create-user`` does, and reuses them on
later runs. They get no usable password, so nobody can log in as them: each
run issues every user an API key, sends the user's traffic with it, and
revokes it at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from server.db import Database
from server.security.api_keys import create_api_key, revoke_api_key
from server.security.models import User
from services.demo.plan import DemoUser

# Not an argon2 hash, so verify_password refuses every password against it.
UNUSABLE_PASSWORD_HASH = "!demo-user-without-password"
KEY_NAME = "onboarding demo"


@dataclass(frozen=True)
class DemoAccount:
    """A demo user as stored, with the API key of this run."""

    user_index: int
    user_id: int
    api_key: str
    key_prefix: str


async def open_accounts(
    db: Database, users: Sequence[DemoUser]
) -> dict[int, DemoAccount]:
    """Create the users that do not exist yet and give each a fresh API key."""
    names = [user.username for user in users]
    async with db.session() as session:
        await session.execute(
            insert(User)
            .values(
                [
                    {"username": name, "password_hash": UNUSABLE_PASSWORD_HASH}
                    for name in names
                ]
            )
            .on_conflict_do_nothing(index_elements=["username"])
        )
        await session.commit()
        stored = await session.scalars(select(User).where(User.username.in_(names)))
        by_name = {user.username: user for user in stored}

        accounts = {}
        for user in users:
            row = by_name[user.username]
            key = await create_api_key(session, row, KEY_NAME)
            accounts[user.index] = DemoAccount(user.index, row.id, key.key, key.prefix)
    return accounts


async def close_accounts(db: Database, accounts: Sequence[DemoAccount]) -> None:
    """Revoke the run's API keys."""
    async with db.session() as session:
        for account in accounts:
            await revoke_api_key(session, account.key_prefix)
