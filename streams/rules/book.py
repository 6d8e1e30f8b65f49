"""The rules in force on this worker: the settings' rules, overridden by the topic's.

The rules task (:mod:`streams.rules.follow`) writes, on the event loop; the scoring thread
reads :meth:`RuleBook.current` once per micro-batch and gets an immutable
:class:`~streams.ranking.rules.RuleSet`, so a change takes effect on the next micro-batch and
never half-way through one.

A topic rule replaces the settings rule with the same rule_id; a tombstone removes the topic's
rule and so brings the settings rule back (publish it with ``"enabled": false`` to switch a
settings rule off). Per-user rules name users as producers do: when ids are pseudonymised at
ingestion, the book pseudonymises the rules' user ids the same way.

>>> from schemas.rules import ExcludePurchased
>>> book = RuleBook([ExcludePurchased(rule_id="fresh", days=30.0)])
>>> book.current().exclude_purchased_days(None)
30.0
>>> _ = book.apply({"fresh": ExcludePurchased(rule_id="fresh", days=7.0)})
>>> book.current().exclude_purchased_days(None)
7.0
>>> _ = book.apply({"fresh": None})
>>> book.current().exclude_purchased_days(None)
30.0
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from schemas.rules import ExcludeItems, Rule
from streams.ranking.rules import RuleSet

log = logging.getLogger(__name__)

LOGGED_IDS = 20
"""Changed rule ids named in the log line of one change (rule ids are never personal)."""


class RuleBook:
    """Holds the current :class:`RuleSet`; thread-safe."""

    def __init__(self, settings_rules: Iterable[Rule] = (), *,
                 pseudonymise: Callable[[str], str] | None = None) -> None:
        self._lock = threading.Lock()
        self._pseudonymise = pseudonymise
        self._settings: dict[str, Rule] = {r.rule_id: r for r in settings_rules}
        self._topic: dict[str, Rule] = {}
        self._current = self._build()
        self.loaded = False
        """True once the whole rules topic has been read (since this worker started)."""
        self.version = 0
        """Counts the changes applied (0: the settings' rules only)."""

    def current(self) -> RuleSet:
        """The rules in force now: an immutable snapshot (a plain attribute read)."""
        return self._current

    @property
    def settings_rules(self) -> Mapping[str, Rule]:
        return MappingProxyType(dict(self._settings))

    @property
    def topic_rules(self) -> Mapping[str, Rule]:
        with self._lock:
            return MappingProxyType(dict(self._topic))

    def apply(self, changes: Mapping[str, Rule | None]) -> RuleSet:
        """Topic records in order, by rule_id (None: a tombstone). Returns the new set."""
        if not changes:
            return self._current
        with self._lock:
            for rule_id, rule in changes.items():
                if rule is None:
                    self._topic.pop(rule_id, None)
                else:
                    self._topic[rule_id] = rule
            return self._publish(sorted(changes))

    def reset_topic(self, rules: Mapping[str, Rule]) -> RuleSet:
        """Everything the topic holds, read from its beginning to its end: replaces what the
        book had from the topic (a rule deleted while this worker was away is gone too)."""
        with self._lock:
            changed = sorted(set(self._topic).symmetric_difference(rules) | {
                rule_id for rule_id, rule in rules.items() if self._topic.get(rule_id) != rule})
            self._topic = dict(rules)
            self.loaded = True
            return self._publish(changed)

    def _publish(self, changed: list[str]) -> RuleSet:
        self._current = self._build()
        self.version += 1
        active = len(self._current.active)
        shown = ", ".join(changed[:LOGGED_IDS]) + (" ..." if len(changed) > LOGGED_IDS else "")
        log.info("rules: %d in force (%d from settings, %d from the topic, %d disabled); "
                 "changed: %s", active, len(self._settings), len(self._topic),
                 len(self._current) - active, shown or "none")
        return self._current

    def _build(self) -> RuleSet:
        return RuleSet.of(self._own_ids(rule) for rule in
                          [*self._settings.values(), *self._topic.values()])

    def _own_ids(self, rule: Rule) -> Rule:
        if (self._pseudonymise is not None and isinstance(rule, ExcludeItems)
                and rule.user_id is not None):
            return dataclasses.replace(rule, user_id=self._pseudonymise(rule.user_id))
        return rule
