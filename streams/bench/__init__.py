"""``streamrec bench``: throughput and freshness of baseline, ceiling and streamrec."""
