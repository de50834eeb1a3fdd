"""CreateCheckpoint and ListCheckpoints input: validation, size and hash."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from onboarding.v1 import sessions_pb2

from services.sessions.access import parse_session_id
from services.sessions.convert import canonical_json, struct_to_dict
from services.sessions.states import STATES
from services.sessions.validation import (
    NUL_MESSAGE,
    REQUIRED,
    FieldErrors,
    contains_nul,
)

DEFAULT_LIST_LIMIT = 10
MAX_LIST_LIMIT = 100


@dataclass(frozen=True)
class NewCheckpoint:
    """A validated CreateCheckpoint request."""

    session_id: uuid.UUID
    version: int
    state: str
    data: dict[str, Any]
    force: bool
    size_bytes: int
    checkpoint_hash: str


def content_hash(state: str, data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of state and data."""
    document = canonical_json({"state": state, "data": data})
    return hashlib.sha256(document.encode()).hexdigest()


def parse_create(
    request: sessions_pb2.CreateCheckpointRequest, max_bytes: int
) -> NewCheckpoint:
    """Validate a CreateCheckpoint request; one 400 lists every problem."""
    session_id = parse_session_id(request.session_id)
    errors = FieldErrors()
    if not request.HasField("checkpoint_data"):
        errors.add("checkpoint_data", REQUIRED)
        errors.raise_if_any()
    checkpoint = request.checkpoint_data
    errors.check_range("checkpoint_data.version", checkpoint.version, minimum=1)
    errors.check_choice("checkpoint_data.state", checkpoint.state, STATES)
    data, size = _parse_data(checkpoint, max_bytes, errors)
    errors.raise_if_any()
    return NewCheckpoint(
        session_id=session_id,
        version=checkpoint.version,
        state=checkpoint.state,
        data=data,
        force=request.force,
        size_bytes=size,
        checkpoint_hash=content_hash(checkpoint.state, data),
    )


def _parse_data(
    checkpoint: sessions_pb2.CheckpointData, max_bytes: int, errors: FieldErrors
) -> tuple[dict[str, Any], int]:
    """The data as stored and its size as compact JSON."""
    field = "checkpoint_data.data"
    if not checkpoint.HasField("data"):
        errors.add(field, REQUIRED)
        return {}, 0
    try:
        data = struct_to_dict(checkpoint.data)
        size = len(canonical_json(data).encode())
    except ValueError:
        # NaN and infinities reach a Struct over gRPC but are not JSON.
        errors.add(field, "Numbers must be finite.")
        return {}, 0
    if contains_nul(data):
        errors.add(field, NUL_MESSAGE)
    if size > max_bytes:
        errors.add(
            field,
            f"Ensure the data is at most {max_bytes} bytes as JSON (it is {size}).",
        )
    return data, size
