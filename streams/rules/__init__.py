"""The business rules every worker applies: from the ``STREAMREC_RULES`` setting and the
log-compacted ``rules`` topic, live.

:mod:`~streams.rules.book` the rules in force, one immutable snapshot at a time ·
:mod:`~streams.rules.follow` the task that reads the ``rules`` topic into the book.

What the rules do to a recommendation is :mod:`streams.ranking.rules`; their contract is
``schemas/rule.schema.json`` (:mod:`schemas.rules`). Bad rule records are dead-lettered once,
by the ingest agent of the worker whose group owns their partition; every worker's reader
skips them.
"""
