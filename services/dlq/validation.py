"""Checks of DLQ request fields; every bad value becomes a 400 with
``field_errors`` before anything reaches the database."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format

from server.errors import InvalidArgument, NotFound
from services.dlq.categories import known_categories
from services.dlq.lifecycle import ALL_STATUSES

TASK_ID_PREFIX = "dlq_"
_TASK_ID = re.compile(r"dlq_([1-9][0-9]{0,17})")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
DEFAULT_TIME_RANGE_HOURS = 24
# Ten years; keeps every window and cutoff a valid timestamp.
MAX_HOURS = 10 * 365 * 24
MAX_FILTER_LENGTH = 200
# Longest reason an operator may give for abandoning an entry.
MAX_REASON_LENGTH = 500


class FieldErrors:
    """Collects messages per field, then raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidArgument("Invalid request.", field_errors=self.errors)


def entry_id_of(task_id: str) -> int:
    """The row id in ``dlq_<n>``; anything else cannot exist, hence 404."""
    match = _TASK_ID.fullmatch(task_id)
    if match is None:
        raise NotFound(f"No DLQ task with id {task_id[:100]!r}.")
    return int(match.group(1))


def check_status(errors: FieldErrors, value: str, *, required: bool = False) -> None:
    """An empty value is unset, unless the field was explicitly present."""
    if (value or required) and value not in ALL_STATUSES:
        choices = ", ".join(ALL_STATUSES)
        errors.add("status", f"Must be one of: {choices}.")


def check_category(errors: FieldErrors, value: str, *, required: bool = False) -> None:
    categories = known_categories()
    if (value or required) and value not in categories:
        errors.add("category", f"Must be one of: {', '.join(categories)}.")


def check_text(errors: FieldErrors, field: str, value: str) -> None:
    if len(value) > MAX_FILTER_LENGTH:
        errors.add(field, f"Must be at most {MAX_FILTER_LENGTH} characters.")
    elif "\x00" in value:
        errors.add(field, "Must not contain NUL characters.")


def check_abandon_reason(reason: str) -> str:
    """The operator's reason for abandoning, or 400."""
    errors = FieldErrors()
    if len(reason) > MAX_REASON_LENGTH:
        errors.add("reason", f"Must be at most {MAX_REASON_LENGTH} characters.")
    elif "\x00" in reason:
        errors.add("reason", "Must not contain NUL characters.")
    errors.raise_if_any()
    return reason.strip()


def page_of(errors: FieldErrors, page: int) -> int:
    """The 1-based page; 0 (unset) means the first."""
    if page < 0:
        errors.add("page", "Must be a positive integer.")
    return max(page, 1)


def page_size_of(errors: FieldErrors, page_size: int) -> int:
    """Entries per page; 0 (unset) means the default."""
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        errors.add("page_size", f"Must be between 1 and {MAX_PAGE_SIZE}.")
    return page_size


def time_range_of(errors: FieldErrors, hours: int) -> int:
    """The stats window in hours; 0 (unset) means a day."""
    if hours == 0:
        return DEFAULT_TIME_RANGE_HOURS
    if not 1 <= hours <= MAX_HOURS:
        errors.add("time_range_hours", f"Must be between 1 and {MAX_HOURS}.")
    return hours


def check_hours(errors: FieldErrors, field: str, hours: int) -> None:
    if not 0 <= hours <= MAX_HOURS:
        errors.add(field, f"Must be between 0 and {MAX_HOURS}.")


def json_of(errors: FieldErrors, field: str, message: Any) -> Any:
    """A ListValue or Struct as JSON that PostgreSQL and Celery accept."""
    try:
        value = json_format.MessageToDict(message)
    except (json_format.Error, ValueError):
        # NaN, infinity, or a Value with no kind, which only gRPC can send.
        errors.add(field, "Must be JSON: finite numbers and no empty values.")
        return None
    if _has_nul(value):
        errors.add(field, "Must not contain NUL characters.")
    return _with_integers(value)


def _has_nul(value: Any) -> bool:
    """PostgreSQL's JSONB refuses the NUL character anywhere."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _with_integers(value: Any) -> Any:
    """JSON numbers arrive as doubles; whole ones become ints again, as the
    task was called with."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _with_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_integers(item) for item in value]
    return value
