"""What the ``models`` command-line handlers share: exit codes, logging setup, and
``--set KEY=VALUE`` overrides of a frozen config dataclass."""

from __future__ import annotations

import logging
from dataclasses import MISSING, fields
from typing import Any

from models.errors import InvalidInputError

EXIT_OK = 0
EXIT_ERROR = 1
"""Exit code of a command that failed with a ``ModelsError`` (the log says why)."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def ensure_logging() -> None:
    """Log INFO and above to stderr unless the caller configured logging already (stdout
    stays free for results such as ``--json``)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


def _convert(raw: str, kind: str, default: Any) -> Any:
    """``raw`` as the type of a field annotated ``kind`` (a string: annotations are not
    evaluated) whose default is ``default``."""
    if "None" in kind and raw.lower() in ("none", "null"):
        return None
    if isinstance(default, tuple) or kind.startswith("tuple"):
        return tuple(int(v) for v in raw.split(",") if v)
    if isinstance(default, bool) or kind.startswith("bool"):
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(raw)
        return raw.lower() in _TRUE
    for name, cast in (("int", int), ("float", float)):
        if isinstance(default, cast) or kind.startswith(name):
            return cast(raw)
    return raw


def parse_overrides(
    pairs: list[str], config_cls: type, fixed: tuple[str, ...] = ("n_items",)
) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as keyword overrides of ``config_cls``'s fields (none of
    ``fixed``); values take the field's type, ``none`` gives None where the field allows it.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class C:
    ...     k: int = 1
    ...     decay: float | None = 2.0
    ...     levels: tuple[int, ...] = (1,)
    >>> parse_overrides(["k=5", "decay=none", "levels=1,2"], C)
    {'k': 5, 'decay': None, 'levels': (1, 2)}
    """
    known = {f.name: f for f in fields(config_cls) if f.name not in fixed}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known:
            raise InvalidInputError(
                f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(known)}"
            )
        field = known[key]
        default = None if field.default is MISSING else field.default
        try:
            out[key] = _convert(raw, str(field.type), default)
        except ValueError as exc:
            raise InvalidInputError(f"--set {pair!r}: {key} is a {field.type}") from exc
    return out
