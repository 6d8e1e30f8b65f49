"""Send events to streamrec with the producer client (:class:`streams.client.EventProducer`).

    streamrec topics create                      # once, against the same broker
    python examples/produce_events.py --users 3 --events 12

The broker and topic names come from the ``STREAMREC_*`` environment, as for the workers
(default ``kafka://127.0.0.1:9092``). Each event is validated before it is sent (an invalid
one raises ``InvalidEventError`` and is not sent), goes to its type's topic, and is keyed by
its user id. Exit code 0 when every event was acknowledged, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from streams.client import EventProducer
from streams.errors import InvalidEventError, StreamrecError

EVENT_TYPES = ("view", "view", "click", "add_to_cart", "purchase")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--events", type=int, default=12)
    args = parser.parse_args()
    try:
        with EventProducer() as producer:  # leaving the block waits for every acknowledgement
            for n in range(args.events):
                user = f"example-user-{n % args.users}"
                producer.send({
                    "event_id": str(uuid.uuid4()),  # unique: the worker deduplicates by it
                    "event_type": EVENT_TYPES[n % len(EVENT_TYPES)],
                    "user_id": user,
                    "item_id": f"sku-{(n * 7) % 20}",
                    "timestamp": int(time.time() * 1000),  # ms since the epoch, or RFC 3339
                    "session_id": f"{user}-session",
                })
            try:
                producer.send({"event_type": "view", "user_id": "someone"})
            except InvalidEventError as exc:  # caught here, not dead-lettered by the worker
                print(f"rejected before sending: {exc.reason}: {exc.detail}")
    except StreamrecError as exc:  # no broker, missing topics, unacknowledged events
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"sent {args.events} events for {args.users} users")
    return 0


if __name__ == "__main__":
    sys.exit(main())
