"""``streamrec bench``: throughput and freshness of baseline, ceiling and streamrec.

``command`` (CLI) → ``harness`` (one run of one system) → ``systems`` (the processes under
test, ``naive_app`` for baseline and ceiling) · ``workload`` (the event stream) · ``traffic``
(producers and the read-back consumer) · ``procstat`` (CPU and memory from /proc) ·
``measure`` (the arithmetic) · ``report`` (table, JSON, plot). See docs/performance.md.
"""

SYSTEMS = ("ceiling", "baseline", "streamrec")
STREAMREC_IDS_ONLY = "streamrec-ids"
"""Also selectable: streamrec with no catalogue published (ids only: no text neighbours, no
availability filter), to measure what the catalogue and text features cost per event."""
KEY_BY = ("event", "user")
"""What the load generator keys events by (``--key-by``): ``event_id`` (the default, so
figures stay comparable with earlier ones: every system re-keys by user itself) or
``user_id``."""
