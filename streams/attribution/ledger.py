"""Per user, the recent recommendations sent and what has already been attributed to them.

The ledger lives in the user's record (:class:`streams.state.batch.UserRecord`), so it is
written with the user's state in the same RocksDB write and changelog record: after a crash
it comes back exactly as far as the state does, and an interaction replayed after a crash
finds its credit already in :attr:`Shown.credited`: it is not counted twice, and its record
is announced again in case the crash lost it (:func:`streams.attribution.match.replay`).

Bounded: :meth:`Ledger.record` keeps the newest ``capacity`` recommendations
(``STREAMREC_ATTRIBUTION_LEDGER_SIZE``), and ``credited`` holds at most three keys per shown
item (click, add_to_cart, purchase).

Cost: a ledger is read and written for every touched user, on the hot path. Bytes are JSON
lines, one orjson array per recommendation with its items stored once (credits name an item
by its index, an event type by its code). A ledger read from bytes remembers each entry's
line and writes it back unchanged, so :meth:`Ledger.to_bytes` after :meth:`Ledger.record`
encodes only the new recommendation (about 2 µs); decoding is the larger part, about 2.5 µs
per recommendation of 20 items (8 of them: 20 µs). An empty ledger is no bytes at all.

>>> shown = Shown("r1", 1_000, None, None, "gru4rec", "3", ("sku-1", "sku-2"))
>>> ledger = Ledger().record(shown, capacity=8)
>>> ledger.latest().recommendation_id, ledger.find("r1") is shown, ledger.find("r0")
('r1', True, None)
>>> ledger.to_bytes()
b'1\\n["r1",1000,null,null,"gru4rec","3",["sku-1","sku-2"],[]]'
>>> Ledger.from_bytes(ledger.to_bytes()) == ledger
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from schemas.events import EventType
from streams.state.bounds import (
    EVENT_TYPES,
    InvalidBoundsError,
    StateDecodeError,
    StateError,
)

LEDGER_FORMAT_VERSION: Final = 1
"""The format (first line) :meth:`Ledger.to_bytes` writes and the only one
:meth:`Ledger.from_bytes` reads."""

ATTRIBUTED_EVENT_TYPES: Final = frozenset(
    {EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE}
)
"""The interactions that are credited to a recommendation."""

_TYPE_CODES: Final[Mapping[str, int]] = {
    name: code for code, name in enumerate(EVENT_TYPES) if name in ATTRIBUTED_EVENT_TYPES
}
_TYPE_NAMES: Final[Mapping[int, str]] = {code: name for name, code in _TYPE_CODES.items()}
_VERSION_LINE: Final = str(LEDGER_FORMAT_VERSION).encode()
_FIELDS: Final = 8  # values of one encoded Shown
_STR: Final = frozenset({str})
_new: Final = object.__new__
_set: Final = object.__setattr__
_OPTIONAL_STR: Final = (str, type(None))


class InvalidLedgerError(StateError, ValueError):
    """A :class:`Shown` credits an item it did not show or an event type that is never
    attributed (only click, add_to_cart and purchase are): a bug in the caller, which should
    leave crediting to :func:`streams.attribution.match.attribute`."""


@dataclass(frozen=True, slots=True)
class Shown:
    """One recommendation as it was sent: enough to attribute interactions to it."""

    recommendation_id: str
    generated_at_ms: int
    """When it was generated (ms since the epoch): where its attribution windows start."""
    experiment: str | None
    variant: str | None
    model_name: str
    model_version: str
    items: tuple[str, ...]
    """Item ids in rank order (position = index + 1)."""
    credited: frozenset[tuple[str, str]] = frozenset()
    """``(item_id, event_type)`` keys already attributed to this recommendation: each item
    one of :attr:`items`, each type one of :data:`ATTRIBUTED_EVENT_TYPES` (as a plain str)."""

    def __post_init__(self) -> None:
        if not self.credited:
            return
        items = set(self.items)
        for item_id, event_type in self.credited:
            if item_id not in items or event_type not in _TYPE_CODES:
                raise InvalidLedgerError(
                    f"recommendation {self.recommendation_id!r} cannot credit "
                    f"{event_type!r} on {item_id!r}: only click, add_to_cart and purchase "
                    "on an item it showed"
                )

    def position(self, item_id: str) -> int | None:
        """1-based rank of ``item_id`` in this recommendation (its first), or None."""
        try:
            return self.items.index(item_id) + 1
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Ledger:
    """The user's recent recommendations, oldest first; ``shown[-1]`` is the latest."""

    shown: tuple[Shown, ...] = ()
    _lines: tuple[bytes | None, ...] = field(
        default=(), init=False, repr=False, compare=False
    )
    """Per entry, its encoding when known (read from bytes and unchanged since), so
    :meth:`to_bytes` encodes only new and changed entries; ``()`` when none is known."""

    def record(self, shown: Shown, capacity: int) -> Ledger:
        """A ledger with ``shown`` appended as the latest, keeping the newest ``capacity``.

        Recommendation ids are meant to be unique; should ``shown`` reuse the id of one
        already recorded, that one is replaced and its credits carried over (for the items
        ``shown`` also has), so no credit can be given twice. Raises
        :class:`~streams.state.bounds.InvalidBoundsError` unless ``capacity`` is an int >= 1.
        """
        if type(capacity) is not int or capacity < 1:
            raise InvalidBoundsError(
                "attribution ledger capacity must be an int >= 1 "
                f"(STREAMREC_ATTRIBUTION_LEDGER_SIZE): {capacity!r}"
            )
        kept, lines = self.shown, self._known_lines()
        for index, old in enumerate(kept):
            if old.recommendation_id == shown.recommendation_id:
                kept, lines = kept[:index] + kept[index + 1:], lines[:index] + lines[index + 1:]
                if old.credited:
                    items = set(shown.items)
                    carried = {key for key in old.credited if key[0] in items}
                    shown = _with_credited(shown, shown.credited | carried)
                break
        cut = max(0, len(kept) + 1 - capacity)
        return Ledger._with_lines((*kept[cut:], shown), (*lines[cut:], None))

    def with_credited(self, added: Mapping[str, Iterable[tuple[str, str]]]) -> Ledger:
        """A ledger whose recommendations also have the ``(item_id, event_type)`` keys that
        ``added`` lists under their id in ``credited``; ids not in the ledger are ignored.
        Raises :class:`InvalidLedgerError` for a key of an item not shown or a type never
        attributed."""
        shown, lines = list(self.shown), list(self._known_lines())
        for index, old in enumerate(shown):
            keys = added.get(old.recommendation_id)
            if keys:
                credited = old.credited.union(keys)
                if credited != old.credited:
                    shown[index], lines[index] = _with_credited(old, credited), None
        return Ledger._with_lines(tuple(shown), tuple(lines))

    def latest(self) -> Shown | None:
        """The latest recommendation recorded (the one the window rule looks at)."""
        return self.shown[-1] if self.shown else None

    def find(self, recommendation_id: str) -> Shown | None:
        """The recommendation with this id, if it is still in the ledger."""
        for shown in reversed(self.shown):
            if shown.recommendation_id == recommendation_id:
                return shown
        return None

    def to_bytes(self) -> bytes:
        """Versioned JSON lines; ``b""`` for an empty ledger. The first line is the format
        (:data:`LEDGER_FORMAT_VERSION`), then one line per recommendation, oldest first::

            [recommendation_id, generated_at_ms, experiment, variant, model_name,
             model_version, [item_id, ...], [[item_index, event_type_code], ...]]

        ``item_index`` is an item's first index in the list, ``event_type_code`` its type's
        index in :data:`streams.state.bounds.EVENT_TYPES`; credits are sorted. orjson never
        writes a raw newline (it escapes one in a string), so newlines only separate lines.
        """
        if not self.shown:
            return b""
        return b"\n".join((
            _VERSION_LINE,
            *(line if line is not None else orjson.dumps(_encode(shown))
              for shown, line in zip(self.shown, self._known_lines(), strict=True)),
        ))

    @classmethod
    def from_bytes(cls, data: bytes) -> Ledger:
        """Inverse of :meth:`to_bytes`; raises
        :class:`~streams.state.bounds.StateDecodeError` for anything it did not write (or a
        format a newer streamrec wrote)."""
        if not data:
            return cls()
        version, *lines = bytes(data).split(b"\n")
        if version != _VERSION_LINE:
            raise StateDecodeError(
                f"attribution ledger format {_short(version[:16])}; this streamrec reads "
                f"{LEDGER_FORMAT_VERSION} (a corrupt ledger, or one a newer streamrec wrote)"
            )
        if not lines:
            raise StateDecodeError("corrupt attribution ledger: no recommendations")
        try:
            entries = [orjson.loads(line) for line in lines]
        except orjson.JSONDecodeError as exc:
            raise StateDecodeError(f"corrupt attribution ledger: {exc}") from exc
        return cls._with_lines(tuple(map(_decode, entries)), tuple(lines))

    def _known_lines(self) -> tuple[bytes | None, ...]:
        return self._lines or (None,) * len(self.shown)

    @classmethod
    def _with_lines(cls, shown: tuple[Shown, ...], lines: tuple[bytes | None, ...]) -> Ledger:
        ledger = cls(shown)
        if any(line is not None for line in lines):
            object.__setattr__(ledger, "_lines", lines)
        return ledger


def _with_credited(shown: Shown, credited: frozenset[tuple[str, str]]) -> Shown:
    return Shown(shown.recommendation_id, shown.generated_at_ms, shown.experiment,
                 shown.variant, shown.model_name, shown.model_version, shown.items, credited)


def _encode(shown: Shown) -> list[Any]:
    items = shown.items
    credited = sorted(
        [items.index(item), _TYPE_CODES[kind]] for item, kind in shown.credited
    ) if shown.credited else []
    return [shown.recommendation_id, shown.generated_at_ms, shown.experiment, shown.variant,
            shown.model_name, shown.model_version, items, credited]


def _decode(entry: Any) -> Shown:
    if type(entry) is not list or len(entry) != _FIELDS:
        raise StateDecodeError(f"corrupt attribution ledger entry: {_short(entry)}")
    rec_id, generated, experiment, variant, name, version, items, credited = entry
    if not (
        type(rec_id) is str
        and type(generated) is int
        and type(experiment) in _OPTIONAL_STR
        and type(variant) in _OPTIONAL_STR
        and type(name) is str
        and type(version) is str
        and type(items) is list
        and (not items or set(map(type, items)) <= _STR)
        and type(credited) is list
    ):
        raise StateDecodeError(f"corrupt attribution ledger entry: {_short(entry)}")
    keys: frozenset[tuple[str, str]] = frozenset()
    if credited:
        pairs: set[tuple[str, str]] = set()
        for pair in credited:
            if not (
                type(pair) is list
                and len(pair) == 2
                and type(pair[0]) is int
                and 0 <= pair[0] < len(items)
                and type(pair[1]) is int
                and pair[1] in _TYPE_NAMES
            ):
                raise StateDecodeError(f"corrupt attribution ledger credit: {_short(pair)}")
            pairs.add((items[pair[0]], _TYPE_NAMES[pair[1]]))
        keys = frozenset(pairs)
    # Checked above, so Shown.__post_init__ is skipped: half the cost of building one.
    shown = _new(Shown)
    _set(shown, "recommendation_id", rec_id)
    _set(shown, "generated_at_ms", generated)
    _set(shown, "experiment", experiment)
    _set(shown, "variant", variant)
    _set(shown, "model_name", name)
    _set(shown, "model_version", version)
    _set(shown, "items", tuple(items))
    _set(shown, "credited", keys)
    return shown


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
