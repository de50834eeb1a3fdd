"""Reject NUL characters in any string of a request, for every RPC at once.

PostgreSQL cannot store U+0000 in text or JSONB, so a NUL that slipped
through would turn a bad input into a server error deep in some service.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from server.errors import InvalidArgument

MESSAGE = "Null characters are not allowed."


def _in_value(value: Any, field: FieldDescriptor) -> bool:
    if field.type == FieldDescriptor.TYPE_STRING:
        return "\x00" in value
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return any(True for _ in _nul_fields(value))
    return False


def _in_field(field: FieldDescriptor, value: Any) -> bool:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        return any(
            (isinstance(key, str) and "\x00" in key) or _in_value(item, value_field)
            for key, item in value.items()
        )
    if field.is_repeated:
        return any(_in_value(item, field) for item in value)
    return _in_value(value, field)


def _nul_fields(message: Message) -> Iterator[str]:
    for field, value in message.ListFields():
        if _in_field(field, value):
            yield field.name


def reject_nul_characters(request: Any) -> None:
    """400 naming each top-level field that holds a NUL somewhere inside."""
    if not isinstance(request, Message):
        return
    fields = list(_nul_fields(request))
    if fields:
        raise InvalidArgument(
            "Invalid request.", field_errors={name: [MESSAGE] for name in fields}
        )
