"""Print recommendations as streamrec emits them (:class:`streams.client.RecommendationConsumer`).

    python examples/consume_recommendations.py --group example-printer
    python examples/consume_recommendations.py --idle-timeout 10   # stop after 10 s of quiet

The broker and topic names come from the ``STREAMREC_*`` environment, as for the workers.
A new group starts from the beginning of the topic: every user's latest recommendation, then
new ones as they come. A tombstone (null value) means the user was erased: a real consumer
deletes what it keeps for that user.
"""

from __future__ import annotations

import argparse
import sys

from streams.client import RecommendationConsumer
from streams.errors import StreamrecError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="example-printer", help="consumer group id")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="stop after this many seconds without a message")
    args = parser.parse_args()
    try:
        with RecommendationConsumer(group_id=args.group) as consumer:
            for message in consumer.messages(idle_timeout_s=args.idle_timeout):
                if message.erased:
                    print(f"{message.user_id}: erased")
                else:
                    print(f"{message.user_id}: {' '.join(message.item_ids[:5])}", flush=True)
    except StreamrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
