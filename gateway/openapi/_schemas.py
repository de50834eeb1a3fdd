"""JSON Schemas of protobuf messages, as the gateway's transcoder maps them.

The transcoder prints responses with ``preserve_proto_field_names`` (proto
field names, so snake_case) and ``always_print_primitive_fields``: a field
without presence (a scalar, string or enum field, a repeated field, a map) is
always printed, zero or empty included, while a field with presence (a
message, an ``optional`` or a ``oneof`` member) is left out when unset.
Response schemas therefore require exactly the fields without presence.
Request schemas require nothing: the transcoder parses any subset of fields,
and the services say which ones they need. Neither side allows fields the
message does not have, as the transcoder rejects them in requests.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    EnumDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
)

Schema = dict[str, Any]

_F = FieldDescriptorProto
_INT32: Schema = {"type": "integer", "format": "int32"}
_INT32.update(minimum=-(2**31), maximum=2**31 - 1)
_UINT32: Schema = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
# 64-bit integers are printed as JSON strings, so no double loses digits.
_INT64: Schema = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64: Schema = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
_BYTES: Schema = {"type": "string", "contentEncoding": "base64"}

SCALARS: dict[int, Schema] = {
    _F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _F.TYPE_FLOAT: {"type": "number", "format": "float"},
    _F.TYPE_INT32: _INT32,
    _F.TYPE_SINT32: _INT32,
    _F.TYPE_SFIXED32: _INT32,
    _F.TYPE_UINT32: _UINT32,
    _F.TYPE_FIXED32: _UINT32,
    _F.TYPE_INT64: _INT64,
    _F.TYPE_SINT64: _INT64,
    _F.TYPE_SFIXED64: _INT64,
    _F.TYPE_UINT64: _UINT64,
    _F.TYPE_FIXED64: _UINT64,
    _F.TYPE_BOOL: {"type": "boolean"},
    _F.TYPE_STRING: {"type": "string"},
    _F.TYPE_BYTES: _BYTES,
}

_WKT = ".google.protobuf."
# Well-known types with a JSON form of their own, which takes any value
# usable in a query string.
SCALAR_LIKE: dict[str, Schema] = {
    _WKT + "Timestamp": {"type": "string", "format": "date-time"},
    _WKT + "Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    _WKT + "FieldMask": {"type": "string"},
    _WKT + "DoubleValue": SCALARS[_F.TYPE_DOUBLE],
    _WKT + "FloatValue": SCALARS[_F.TYPE_FLOAT],
    _WKT + "Int32Value": _INT32,
    _WKT + "UInt32Value": _UINT32,
    _WKT + "Int64Value": _INT64,
    _WKT + "UInt64Value": _UINT64,
    _WKT + "BoolValue": SCALARS[_F.TYPE_BOOL],
    _WKT + "StringValue": SCALARS[_F.TYPE_STRING],
    _WKT + "BytesValue": _BYTES,
}
WELL_KNOWN: dict[str, Schema] = {
    **SCALAR_LIKE,
    _WKT + "Struct": {"type": "object"},
    _WKT + "ListValue": {"type": "array"},
    # Any JSON value, null included.
    _WKT + "Value": {},
    _WKT + "Empty": {"type": "object", "maxProperties": 0},
    _WKT + "Any": {
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
    },
}
WELL_KNOWN_ENUMS: dict[str, Schema] = {_WKT + "NullValue": {"type": "null"}}


class Direction(enum.Enum):
    """Which way a message travels: parsed from a request or printed."""

    REQUEST = "request"
    RESPONSE = "response"


def clean_comment(text: str) -> str:
    """A proto comment as Markdown: wrapped lines joined, paragraphs kept."""
    paragraphs: list[str] = []
    lines: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.strip():
            lines.append(line.strip())
        elif lines:
            paragraphs.append(" ".join(lines))
            lines = []
    return "\n\n".join(paragraphs)


def has_presence(field: FieldDescriptorProto) -> bool:
    """Whether the JSON printer leaves the field out when it is unset."""
    if field.label == _F.LABEL_REPEATED:
        return False
    return (
        field.type == _F.TYPE_MESSAGE
        or field.proto3_optional
        or field.HasField("oneof_index")
    )


@dataclass
class ProtoIndex:
    """The messages, enums and comments of a descriptor set, by full name.

    Full names start with a dot, as ``type_name`` in a field does; a field's
    name is its message's name, a dot and the field name.
    """

    messages: dict[str, DescriptorProto] = field(default_factory=dict)
    enums: dict[str, EnumDescriptorProto] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Iterable[FileDescriptorProto]) -> ProtoIndex:
        index = cls()
        for file in files:
            comments = {
                tuple(location.path): clean_comment(location.leading_comments)
                for location in file.source_code_info.location
                if location.leading_comments.strip()
            }
            prefix = f".{file.package}" if file.package else ""
            for path, name, element in _elements(file, prefix):
                if isinstance(element, DescriptorProto):
                    index.messages[name] = element
                elif isinstance(element, EnumDescriptorProto):
                    index.enums[name] = element
                if path in comments:
                    index.docs[name] = comments[path]
        return index

    def is_map(self, field: FieldDescriptorProto) -> bool:
        if field.label != _F.LABEL_REPEATED or field.type != _F.TYPE_MESSAGE:
            return False
        return self.messages[field.type_name].options.map_entry


def _oneof_notes(message: DescriptorProto) -> list[str]:
    """A sentence per oneof; the synthetic ones of ``optional`` fields aside."""
    members: dict[int, list[str]] = {}
    for message_field in message.field:
        if message_field.HasField("oneof_index") and not message_field.proto3_optional:
            members.setdefault(message_field.oneof_index, []).append(message_field.name)
    return [
        f"At most one of {', '.join(names)} is set (oneof "
        f"`{message.oneof_decl[index].name}`)."
        for index, names in members.items()
    ]


def _elements(
    file: FileDescriptorProto, prefix: str
) -> Iterator[tuple[tuple[int, ...], str, Any]]:
    """Every named element of a file with its source-info path."""
    # Field numbers of FileDescriptorProto and friends, as source info uses.
    for i, message in enumerate(file.message_type):
        yield from _message_elements(message, (4, i), prefix)
    for i, enum_type in enumerate(file.enum_type):
        yield from _enum_elements(enum_type, (5, i), prefix)
    for i, service in enumerate(file.service):
        name = f"{prefix}.{service.name}"
        yield (6, i), name, service
        for j, method in enumerate(service.method):
            yield (6, i, 2, j), f"{name}.{method.name}", method


def _message_elements(
    message: DescriptorProto, path: tuple[int, ...], prefix: str
) -> Iterator[tuple[tuple[int, ...], str, Any]]:
    name = f"{prefix}.{message.name}"
    yield path, name, message
    for j, message_field in enumerate(message.field):
        yield (*path, 2, j), f"{name}.{message_field.name}", message_field
    for j, nested in enumerate(message.nested_type):
        yield from _message_elements(nested, (*path, 3, j), name)
    for j, enum_type in enumerate(message.enum_type):
        yield from _enum_elements(enum_type, (*path, 4, j), name)


def _enum_elements(
    enum_type: EnumDescriptorProto, path: tuple[int, ...], prefix: str
) -> Iterator[tuple[tuple[int, ...], str, Any]]:
    name = f"{prefix}.{enum_type.name}"
    yield path, name, enum_type
    for j, value in enumerate(enum_type.value):
        yield (*path, 2, j), f"{name}.{value.name}", value


class SchemaBuilder:
    """Builds ``components/schemas`` for the messages a document refers to.

    A message that travels both ways gets two schemas, ``Name`` for responses
    and ``NameInput`` for requests, since only responses require fields.
    """

    def __init__(
        self,
        index: ProtoIndex,
        *,
        request_roots: Iterable[str],
        response_roots: Iterable[str],
    ) -> None:
        self.index = index
        self.components: dict[str, Schema] = {}
        requests = self._reachable(request_roots)
        responses = self._reachable(response_roots)
        self._both_ways = requests & responses
        self._names = self._component_names(
            requests | responses | self._enums_of(requests | responses)
        )

    def ref(self, type_name: str, direction: Direction) -> Schema:
        """The schema of a message or enum type: a $ref or a well-known form."""
        if type_name in WELL_KNOWN:
            return dict(WELL_KNOWN[type_name])
        if type_name in WELL_KNOWN_ENUMS:
            return dict(WELL_KNOWN_ENUMS[type_name])
        name = self._names[type_name]
        if type_name in self.index.enums:
            self.components.setdefault(name, self._enum_schema(type_name))
        else:
            if direction is Direction.REQUEST and type_name in self._both_ways:
                name += "Input"
            if name not in self.components:
                self.components[name] = {}  # a recursive message refers to itself
                self.components[name] = self.message_schema(type_name, direction)
        return {"$ref": f"#/components/schemas/{name}"}

    def message_schema(
        self, type_name: str, direction: Direction, *, exclude: Iterable[str] = ()
    ) -> Schema:
        """An object schema of a message, without the fields in ``exclude``."""
        message = self.index.messages[type_name]
        skipped = set(exclude)
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for message_field in message.field:
            if message_field.name in skipped:
                continue
            properties[message_field.name] = self.field_schema(
                type_name, message_field, direction
            )
            if direction is Direction.RESPONSE and not has_presence(message_field):
                required.append(message_field.name)

        schema: Schema = {"type": "object"}
        description = [self.index.docs.get(type_name, ""), *_oneof_notes(message)]
        if any(description):
            schema["description"] = "\n\n".join(part for part in description if part)
        schema["properties"] = properties
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def field_schema(
        self,
        message_name: str,
        message_field: FieldDescriptorProto,
        direction: Direction,
    ) -> Schema:
        """A field's schema with the field's comment as its description."""
        if self.index.is_map(message_field):
            key, value = self.index.messages[message_field.type_name].field
            schema: Schema = {
                "type": "object",
                "additionalProperties": self._single(value, direction),
            }
            if key.type != _F.TYPE_STRING:
                schema["propertyNames"] = {"pattern": _KEY_PATTERNS[key.type]}
        elif message_field.label == _F.LABEL_REPEATED:
            schema = {"type": "array", "items": self._single(message_field, direction)}
        else:
            schema = self._single(message_field, direction)
        doc = self.index.docs.get(f"{message_name}.{message_field.name}")
        return {"description": doc, **schema} if doc else schema

    def _single(
        self, message_field: FieldDescriptorProto, direction: Direction
    ) -> Schema:
        if message_field.type in (_F.TYPE_MESSAGE, _F.TYPE_ENUM):
            return self.ref(message_field.type_name, direction)
        return dict(SCALARS[message_field.type])

    def _enum_schema(self, type_name: str) -> Schema:
        enum_type = self.index.enums[type_name]
        schema: Schema = {"type": "string"}
        if type_name in self.index.docs:
            schema["description"] = self.index.docs[type_name]
        schema["enum"] = [value.name for value in enum_type.value]
        return schema

    def _reachable(self, roots: Iterable[str]) -> set[str]:
        """Message types reachable from ``roots`` through fields."""
        seen: set[str] = set()
        pending = [name for name in roots if name in self.index.messages]
        while pending:
            name = pending.pop()
            if name in seen or name in WELL_KNOWN:
                continue
            seen.add(name)
            for message_field in self.index.messages[name].field:
                if message_field.type == _F.TYPE_MESSAGE:
                    pending.append(message_field.type_name)
        return seen

    def _enums_of(self, messages: Iterable[str]) -> set[str]:
        return {
            message_field.type_name
            for name in messages
            for message_field in self.index.messages[name].field
            if message_field.type == _F.TYPE_ENUM
        }

    @staticmethod
    def _component_names(type_names: set[str]) -> dict[str, str]:
        """Short names where they are unique, full names otherwise."""
        short = [name.rsplit(".", 1)[-1] for name in type_names]
        return {
            name: (
                name.rsplit(".", 1)[-1]
                if short.count(name.rsplit(".", 1)[-1]) == 1
                else name.lstrip(".").replace(".", "_")
            )
            for name in type_names
        }


_KEY_PATTERNS: dict[int, str] = {
    **{t: "^-?[0-9]+$" for t in (_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32)},
    **{t: "^-?[0-9]+$" for t in (_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64)},
    **{t: "^[0-9]+$" for t in (_F.TYPE_UINT32, _F.TYPE_FIXED32)},
    **{t: "^[0-9]+$" for t in (_F.TYPE_UINT64, _F.TYPE_FIXED64)},
    _F.TYPE_BOOL: "^(true|false)$",
}
