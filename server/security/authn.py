"""Turns request credentials into a principal: Bearer JWT or X-API-Key."""

from __future__ import annotations

from collections.abc import Mapping

from server.db import Database
from server.errors import Unauthenticated
from server.security.api_keys import authenticate_api_key
from server.security.principal import ANONYMOUS, Principal
from server.security.tokens import TokenService, TokenType


class Authenticator:
    """Resolves the caller of one request; bad credentials are always 401."""

    def __init__(self, tokens: TokenService, db: Database) -> None:
        self._tokens = tokens
        self._db = db

    async def authenticate(self, metadata: Mapping[str, str]) -> Principal:
        authorization = metadata.get("authorization")
        if authorization:
            return self._from_bearer(authorization)
        api_key = metadata.get("x-api-key")
        if api_key:
            return await self._from_api_key(api_key)
        return ANONYMOUS

    def _from_bearer(self, header: str) -> Principal:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "Authorization header must be 'Bearer <token>'.",
                reason="token_invalid",
            )
        claims = self._tokens.verify(token.strip(), TokenType.ACCESS)
        return Principal(
            user_id=claims.user_id,
            username=claims.username,
            is_staff=claims.is_staff,
            is_superuser=claims.is_superuser,
            auth_method="jwt",
        )

    async def _from_api_key(self, key: str) -> Principal:
        async with self._db.session() as session:
            user = await authenticate_api_key(session, key.strip())
        return Principal(
            user_id=user.id,
            username=user.username,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            auth_method="api_key",
        )
