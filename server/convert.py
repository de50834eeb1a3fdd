"""Python values as the protobuf well-known types every service prints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime as a Timestamp (printed as ``...Z`` by the gateway)."""
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value.astimezone(UTC))
    return message


def struct(fields: dict[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a Struct."""
    message = struct_pb2.Struct()
    message.update(fields)
    return message


def list_value(items: list[Any]) -> struct_pb2.ListValue:
    """A JSON array as a ListValue."""
    message = struct_pb2.ListValue()
    message.extend(items)
    return message
