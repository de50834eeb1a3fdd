"""Signed JWT access and refresh tokens with a fixed algorithm and type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from server.errors import Unauthenticated
from server.settings import Settings


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of a token."""

    user_id: int
    username: str
    is_staff: bool
    is_superuser: bool
    token_type: TokenType


class TokenService:
    """Issues and verifies tokens; verification accepts only one algorithm."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._lifetimes = {
            TokenType.ACCESS: timedelta(seconds=settings.jwt_access_lifetime_seconds),
            TokenType.REFRESH: timedelta(seconds=settings.jwt_refresh_lifetime_seconds),
        }

    def issue(
        self,
        token_type: TokenType,
        *,
        user_id: int,
        username: str,
        is_staff: bool,
        is_superuser: bool,
        now: datetime | None = None,
    ) -> str:
        now = now or datetime.now(UTC)
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "username": username,
            "is_staff": is_staff,
            "is_superuser": is_superuser,
            "type": token_type.value,
            "iss": self._issuer,
            "iat": now,
            "exp": now + self._lifetimes[token_type],
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._secret, algorithm=self._algorithm)

    def verify(self, token: str, expected: TokenType) -> TokenClaims:
        """The claims of a valid token of the expected type, else 401."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "type", "iss"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise Unauthenticated("Token has expired.", reason="token_expired") from err
        except jwt.InvalidTokenError as err:
            raise Unauthenticated("Token is invalid.", reason="token_invalid") from err
        if payload.get("type") != expected.value:
            raise Unauthenticated(
                f"Expected an {expected.value} token.", reason="token_invalid"
            )
        try:
            return TokenClaims(
                user_id=int(payload["sub"]),
                username=str(payload.get("username", "")),
                is_staff=bool(payload.get("is_staff", False)),
                is_superuser=bool(payload.get("is_superuser", False)),
                token_type=expected,
            )
        except (TypeError, ValueError) as err:
            raise Unauthenticated("Token is invalid.", reason="token_invalid") from err
