"""Schemas as this package meets them: generated modules, ``contracts.yaml`` paths, and the
canonical description both reduce to.

The C library creates a runtime from schema YAML, while a generated module carries only the
canonical description (``SCHEMA_CANONICAL``). The description holds everything the digest
covers (names, ids, field names and types), so it converts back into an equivalent YAML schema
with the same digest; only the schema version, docs and comments are lost, and they do not
enter the digest.
"""

from __future__ import annotations

import hashlib
import os
import re
import types
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple, Union

CANONICAL_HEADER = "mycelium-schema/1"

_NESTED_REF = re.compile(r"([A-Z][A-Za-z0-9]*)#[0-9a-f]{64}")


@dataclass(frozen=True)
class CanonicalMessage:
    """One message of a canonical description."""

    name: str
    type_id: int
    fields: Tuple[Tuple[str, str], ...]
    text: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def parse_canonical(description: str) -> List[CanonicalMessage]:
    """Splits a canonical description into its messages; raises ValueError naming the bad line."""
    lines = description.split("\n")
    if not lines or lines[0] != CANONICAL_HEADER:
        raise ValueError(f"not a canonical schema description: it must start with {CANONICAL_HEADER!r}")
    messages: List[CanonicalMessage] = []
    current: Optional[Tuple[str, int, List[Tuple[str, str]], List[str]]] = None

    def finish() -> None:
        if current is not None:
            name, type_id, fields, text = current
            messages.append(CanonicalMessage(name, type_id, tuple(fields), "".join(text)))

    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        parts = line.split(" ")
        if parts[0] == "message" and len(parts) == 3 and parts[2].isdigit():
            finish()
            current = (parts[1], int(parts[2]), [], [line + "\n"])
        elif parts[0] == "field" and len(parts) == 3 and current is not None:
            current[2].append((parts[1], parts[2]))
            current[3].append(line + "\n")
        elif parts[0] == "service" and len(parts) == 4:
            # Services follow the messages; parse_canonical_services reads them.
            finish()
            current = None
        else:
            raise ValueError(f"canonical schema description, line {number}: cannot read {line!r}")
    finish()
    return messages


def parse_canonical_services(description: str) -> List[Tuple[str, str, str]]:
    """The request/reply services of a canonical description: (name, request, reply) each."""
    services = []
    for line in description.split("\n")[1:]:
        parts = line.split(" ")
        if parts[0] == "service" and len(parts) == 4:
            services.append((parts[1], parts[2], parts[3]))
    return services


def _yaml_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def canonical_to_yaml(description: str, schema_name: str = "schema") -> str:
    """An equivalent ``contracts.yaml`` text (same digest) for a canonical description."""
    out = [f"schema: {_yaml_quote(schema_name)}", "version: 1", "messages:"]
    messages = parse_canonical(description)
    if not messages:
        out[-1] = "messages: {}"
    for m in messages:
        out.append(f"  {m.name}:")
        out.append(f"    id: {m.type_id}")
        if not m.fields:
            out.append("    fields: []")
            continue
        out.append("    fields:")
        for field_name, canonical_type in m.fields:
            yaml_type = _NESTED_REF.sub(r"\1", canonical_type)
            out.append(f"      - {field_name}: {_yaml_quote(yaml_type)}")
    services = parse_canonical_services(description)
    if services:
        out.append("services:")
        for name, request, reply in services:
            out.append(f"  {name}: {{request: {request}, reply: {reply}}}")
    return "\n".join(out) + "\n"


SchemaSource = Union[str, "os.PathLike[str]", types.ModuleType]
"""A generated module (or any object with its SCHEMA_* attributes) or a path to contracts.yaml."""


@dataclass(frozen=True)
class ResolvedSchema:
    """What a Runtime needs from its ``schema`` argument."""

    yaml: str
    """YAML text to create a runtime from."""
    canonical: Optional[str]
    """The generated module's canonical description, to verify the runtime against."""
    messages: Mapping[int, type]
    """The generated module's classes by type id (empty for a YAML path)."""
    origin: str


def resolve_schema(schema: SchemaSource) -> ResolvedSchema:
    """Reads a schema argument: a generated module, or a path to a contracts.yaml file."""
    if isinstance(schema, (str, os.PathLike)):
        path = os.fspath(schema)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise FileNotFoundError(f"cannot read the schema file {path!r}: {e.strerror}") from e
        return ResolvedSchema(yaml=text, canonical=None, messages={}, origin=path)
    canonical = getattr(schema, "SCHEMA_CANONICAL", None)
    if not isinstance(canonical, str):
        raise TypeError(
            "schema must be a module generated by `mycelium codegen --lang python` "
            f"(with SCHEMA_CANONICAL) or a path to contracts.yaml, not {type(schema).__name__}"
        )
    name = getattr(schema, "SCHEMA_NAME", None) or "schema"
    raw_messages = getattr(schema, "MESSAGES", None) or {}
    messages: Dict[int, type] = {int(k): v for k, v in dict(raw_messages).items()}
    origin = getattr(schema, "__name__", type(schema).__name__)
    return ResolvedSchema(
        yaml=canonical_to_yaml(canonical, str(name)),
        canonical=canonical,
        messages=messages,
        origin=str(origin),
    )
