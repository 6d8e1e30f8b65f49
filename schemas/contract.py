"""The contract files themselves: load and compile ``schemas/<name>.schema.json``, and the
rules several messages share (the schema version, what a valid id is, how a schema failure is
reported).

>>> is_valid_id("sku-9"), is_valid_id(""), is_valid_id("tab\\there")
(True, False, False)
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any, Final

import fastjsonschema
import orjson

from schemas.errors import SchemaViolationError

SCHEMA_VERSION: Final = "1"
"""The ``schema_version`` this code reads and writes."""

ID_PATTERN: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,256}")
"""What every id field (event, user, item, session, order) may hold: 1-256 characters, no
control characters. The schema files say the same (a test checks they agree)."""

CONTROL_CHAR: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a string the contracts accept as an id."""
    return type(value) is str and ID_PATTERN.fullmatch(value) is not None


def load_schema(name: str) -> dict[str, Any]:
    """A fresh parsed copy of ``schemas/<name>.schema.json`` (``event``, ``recommendation``,
    ``dead_letter``, ...), read from the installed package."""
    data = resources.files("schemas").joinpath(f"{name}.schema.json").read_bytes()
    schema: dict[str, Any] = orjson.loads(data)
    return schema


def compile_schema(name: str) -> Any:
    """The fastjsonschema validator of a schema file; raises its JsonSchemaValueException."""
    # use_default=False: validation must never write into the message it checks.
    return fastjsonschema.compile(load_schema(name), use_default=False)


_ANNOTATIONS: Final = frozenset({"description", "title", "$comment", "examples"})


def schema_fingerprint(schema: Any) -> str:
    """sha256 of a schema's validation keywords (annotations like description left out).

    The hand-written fast paths are tied to the fingerprint of the schema they were written
    against, and switch themselves off when it changes."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _ANNOTATIONS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    canonical = orjson.dumps(strip(schema), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def field_name(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """``items[3].score`` for fastjsonschema's ``data.items[3].score``; "" for the top level."""
    name = exc.name or "data"
    return name[5:] if name.startswith("data.") else ""


def check_message(schema: str, validate: Any, data: Any) -> None:
    """Run a compiled validator; raise :class:`SchemaViolationError` naming the field."""
    try:
        validate(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = field_name(exc)
        raise SchemaViolationError(
            f"{schema} message breaks {schema}.schema.json at {path or 'top level'}: "
            f"{exc.message}"[:1000],
            schema=schema, path=path, rule=exc.rule or "",
        ) from exc


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error details."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
