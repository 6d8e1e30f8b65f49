"""Stage 3: what may be recommended to a user — history to score from and items to exclude."""

from __future__ import annotations

from dataclasses import dataclass

from streams.state.user_state import UserState


@dataclass(frozen=True, slots=True)
class Candidates:
    """The model's input for one user and the items never to show them."""

    history: list[str]
    exclude: frozenset[str]
    search: tuple[str, int] | None = None
    """The user's latest search (query, event time ms), if any: it steers the ranking."""


def candidates_for(state: UserState, *, exclude_recent: bool) -> Candidates:
    """Recent item sequence (oldest first); purchased items are always excluded and, when
    ``exclude_recent`` is set, so is everything the user touched in the current session."""
    history = [item for item, _type, _time in state.recent]
    exclude = set(state.purchased)
    if exclude_recent:
        session_start = state.session_started_ms or 0
        exclude.update(item for item, _type, time_ms in state.recent if time_ms >= session_start)
    return Candidates(history=history, exclude=frozenset(exclude))
