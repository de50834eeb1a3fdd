"""AuthService: exchange credentials for JWTs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
from onboarding.v1 import auth_pb2, auth_pb2_grpc
from sqlalchemy import select

from server.db import utcnow
from server.errors import InvalidArgument, Unauthenticated
from server.security.models import User
from server.security.passwords import verify_password
from server.security.principal import current_principal
from server.security.tokens import TokenType

if TYPE_CHECKING:
    from server.app import Resources


def _required(**fields: str) -> None:
    """400 for missing fields, and for NUL characters, which PostgreSQL refuses."""
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        if not value:
            errors[name] = ["This field is required."]
        elif "\x00" in value:
            errors[name] = ["Null characters are not allowed."]
    if errors:
        raise InvalidArgument("Invalid request.", field_errors=errors)


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """Issues token pairs for users stored in PostgreSQL."""

    def __init__(self, resources: Resources) -> None:
        self._db = resources.db
        self._tokens = resources.tokens

    async def Login(
        self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.LoginResponse:
        _required(username=request.username, password=request.password)

        async with self._db.session() as session:
            user = await session.scalar(
                select(User).where(User.username == request.username)
            )
            stored_hash = user.password_hash if user else None
            # argon2 is deliberately slow; keep the event loop free meanwhile.
            matches = await asyncio.to_thread(
                verify_password, stored_hash, request.password
            )
            if user is None or not matches or not user.is_active:
                raise Unauthenticated(
                    "No active account found with the given credentials.",
                    reason="invalid_credentials",
                )
            user.last_login_at = utcnow()
            await session.commit()

        return auth_pb2.LoginResponse(
            access=self._issue(user, TokenType.ACCESS),
            refresh=self._issue(user, TokenType.REFRESH),
            user=auth_pb2.AuthUser(
                id=user.id, username=user.username, is_staff=user.is_staff
            ),
        )

    async def RefreshToken(
        self,
        request: auth_pb2.RefreshTokenRequest,
        context: grpc.aio.ServicerContext,
    ) -> auth_pb2.RefreshTokenResponse:
        _required(refresh=request.refresh)
        claims = self._tokens.verify(request.refresh, TokenType.REFRESH)

        # Flags come from the database, not the old token, so a demotion or
        # deactivation takes effect at the next refresh.
        async with self._db.session() as session:
            user = await session.get(User, claims.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated(
                "The user of this token no longer exists or is inactive.",
                reason="token_invalid",
            )
        return auth_pb2.RefreshTokenResponse(access=self._issue(user, TokenType.ACCESS))

    async def GetCurrentUser(
        self,
        request: auth_pb2.GetCurrentUserRequest,
        context: grpc.aio.ServicerContext,
    ) -> auth_pb2.AuthUser:
        principal = current_principal()
        return auth_pb2.AuthUser(
            id=principal.user_id or 0,
            username=principal.username,
            is_staff=principal.is_staff,
        )

    def _issue(self, user: User, token_type: TokenType) -> str:
        return self._tokens.issue(
            token_type,
            user_id=user.id,
            username=user.username,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
        )
