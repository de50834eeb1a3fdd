"""Who is calling: the authenticated principal of the current RPC."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, or an anonymous one keyed by address."""

    user_id: int | None
    username: str
    is_staff: bool = False
    is_superuser: bool = False
    auth_method: str = "anonymous"

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_privileged(self) -> bool:
        """Staff tier for rate limits and admin endpoints."""
        return self.is_staff or self.is_superuser

    def can_see_all_sessions(self) -> bool:
        return self.is_privileged


ANONYMOUS = Principal(user_id=None, username="")

_current: ContextVar[Principal] = ContextVar("principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The principal of the RPC being served."""
    return _current.get()


def set_principal(principal: Principal) -> None:
    _current.set(principal)
