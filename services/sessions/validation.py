"""Collecting field errors so one 400 lists every problem of a request."""

from __future__ import annotations

from server.errors import InvalidArgument

REQUIRED = "This field is required."
# PostgreSQL text and JSONB cannot hold U+0000, though JSON and protobuf can.
NUL_MESSAGE = "Must not contain NUL (U+0000) characters."


class FieldErrors:
    """Field errors keyed by the field's JSON path, such as ``events[2].state``."""

    def __init__(self) -> None:
        self._errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self._errors.setdefault(field, []).append(message)

    def __len__(self) -> int:
        """The number of messages; it only grows, so callers can compare."""
        return sum(len(messages) for messages in self._errors.values())

    def check_text(
        self,
        field: str,
        value: str,
        *,
        max_length: int,
        required: bool = True,
    ) -> None:
        """Required-ness and length of a free text field."""
        if not value:
            if required:
                self.add(field, REQUIRED)
            return
        if len(value) > max_length:
            self.add(field, f"Ensure this field has at most {max_length} characters.")
        if "\x00" in value:
            self.add(field, NUL_MESSAGE)

    def check_choice(
        self, field: str, value: str, choices: tuple[str, ...], *, required: bool = True
    ) -> None:
        if not value:
            if required:
                self.add(field, REQUIRED)
            return
        if value not in choices:
            self.add(field, f"Must be one of: {', '.join(choices)}.")

    def check_range(
        self, field: str, value: int, *, minimum: int, maximum: int | None = None
    ) -> None:
        if value < minimum:
            self.add(field, f"Ensure this value is at least {minimum}.")
        elif maximum is not None and value > maximum:
            self.add(field, f"Ensure this value is at most {maximum}.")

    def raise_if_any(self, detail: str = "Invalid request.") -> None:
        if self._errors:
            raise InvalidArgument(detail, field_errors=self._errors)


def is_printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def contains_nul(value: object) -> bool:
    """Whether any string in a JSON value, keys included, holds U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False
