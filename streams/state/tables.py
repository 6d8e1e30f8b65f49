"""Names of the worker's two state tables (also their changelog topics' and metrics' label)."""

from __future__ import annotations

USERS_TABLE = "users"
"""Per user: the bounded state and the last recommendation sent (``UserRecord``)."""

TRENDING_TABLE = "trending"
"""Per partition: the trending board (``TrendingBoard``)."""

STATE_TABLES = (USERS_TABLE, TRENDING_TABLE)
