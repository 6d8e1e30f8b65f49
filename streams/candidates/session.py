"""Stage 3: what may be recommended to a user — history to score from and items to exclude."""

from __future__ import annotations

from dataclasses import dataclass

from streams.state.user_state import UserState

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Candidates:
    """The model's input for one user and the items never to show them."""

    history: list[str]
    exclude: frozenset[str]
    search: tuple[str, int] | None = None
    """The user's latest search (query, event time ms), if any: it steers the ranking."""


def candidates_for(
    state: UserState,
    *,
    exclude_recent: bool,
    exclude_purchased_days: float | None = None,
    now_ms: int | None = None,
) -> Candidates:
    """Recent item sequence (oldest first) and the items to exclude.

    Purchased items are excluded: with ``exclude_purchased_days`` None, every purchase the
    state keeps (``max_purchased``, most recent); with N, only those whose latest purchase is
    at most N days before ``now_ms`` (default: the user's newest event time, so the answer
    depends on event time only, like the state). When ``exclude_recent`` is set, everything
    the user touched in the current session is excluded too. ``search`` is the newest of
    ``state.searches`` (a search names no item: it is never part of ``history``).

    >>> from schemas.events import Event
    >>> from streams.state import StateBounds, apply_events
    >>> events = [Event("e1", "purchase", "u1", "old", 0),
    ...           Event("e2", "purchase", "u1", "new", 9 * DAY_MS)]
    >>> state = apply_events(None, events, StateBounds()).state
    >>> sorted(candidates_for(state, exclude_recent=False).exclude)
    ['new', 'old']
    >>> sorted(candidates_for(state, exclude_recent=False, exclude_purchased_days=7).exclude)
    ['new']
    """
    history = [item for item, _type, _time in state.recent]
    if exclude_purchased_days is None:
        exclude = set(state.purchased)
    else:
        now = state.last_event_ms if now_ms is None else now_ms
        exclude = set(state.purchased_since(now - int(exclude_purchased_days * DAY_MS)))
    if exclude_recent:
        session_start = state.session_started_ms or 0
        exclude.update(item for item, _type, time_ms in state.recent if time_ms >= session_start)
    searches = state.searches
    return Candidates(history=history, exclude=frozenset(exclude),
                      search=searches[-1] if searches else None)
