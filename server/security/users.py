"""User account management used by the CLI and the auth service."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import AlreadyExists, InvalidArgument, NotFound
from server.security.models import User
from server.security.passwords import hash_password

MIN_PASSWORD_LENGTH = 8


async def create_user(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """Create an active user; 400 for a weak password, 409 for a taken name."""
    errors: dict[str, list[str]] = {}
    if not username.strip():
        errors["username"] = ["This field may not be blank."]
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = [
            f"Ensure this field has at least {MIN_PASSWORD_LENGTH} characters."
        ]
    if errors:
        raise InvalidArgument("Invalid user.", field_errors=errors)

    user = User(
        username=username.strip(),
        password_hash=hash_password(password),
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as err:
        await session.rollback()
        raise AlreadyExists(f"User {username!r} already exists.") from err
    return user


async def get_user_by_name(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    return user
