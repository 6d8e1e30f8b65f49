"""The two reference systems of ``streamrec bench``, each a plain Faust worker process.

``baseline`` — what a competent first Faust version of streamrec looks like, per event:

1. Faust's ``json`` codec decodes the value (the input topics are the same three topics,
   keyed by ``event_id``, that streamrec reads);
2. ``stream.group_by(user_id)`` re-keys it through one repartition topic (named
   explicitly: Faust cannot derive one from three source topics), so each partition owns
   its users (faust ``examples/word_count.py``);
3. one read and one write of the user's entry in a RocksDB-backed Faust table with its
   changelog on: ``{"items": last 50 item ids, "purchased": last 200 purchased ids}`` (the
   same bounds as streamrec's ``max_sequence_len`` and ``max_purchased``);
4. one ONNX call scoring that user with the same model:
   ``load_scorer(model_dir).recommend([items], k=20, exclude=[purchased])``;
5. one recommendation (JSON: user, items, model, trigger event id/type/time, generated_at)
   sent to the output topic keyed by ``user_id``.

One agent, ``concurrency=1``, a plain ``async for event in stream``; Faust's defaults
otherwise (its stock aiokafka transport, no streamrec Tansu work-arounds: a fresh group
never recovers anything here).

``ceiling`` — the same input topics, ``stream.take_events(1000, 0.05)`` and ``json.loads``
of every value; no state, no output. It is the most Faust's stream machinery delivers here.

Both write their progress to ``--progress`` every 0.1 s (atomically): ``{"t": monotonic
seconds, "inputs": events taken from the input topics, "events": events whose last step is
done, "recs": recommendations sent, "cpu_s": utime + stime from /proc/self/stat, "ready":
streamrec's own definition — tables recovered, not rebalancing}``.
``python -m devtools.bench.naive_app --help`` lists the options.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

HISTORY_LEN = 50
PURCHASED_LEN = 200
TOP_K = 20
PROGRESS_INTERVAL_S = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.naive_app")
    parser.add_argument("--mode", choices=("baseline", "ceiling"), required=True)
    parser.add_argument("--broker", required=True, help="Faust broker URL")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--topics", required=True, help="input topics, comma separated")
    parser.add_argument("--output", help="output topic (baseline)")
    parser.add_argument("--model", type=Path, help="model directory (baseline)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--progress", type=Path, required=True)
    parser.add_argument("--session-timeout", type=float, default=6.0)
    parser.add_argument("--rebalance-timeout", type=float, default=4.0)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.mode == "baseline" and (args.output is None or args.model is None):
        parser.error("--mode baseline needs --output and --model")
    return args


class Progress:
    """Counts processed events and writes them out for the harness."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inputs = 0
        self.events = 0
        self.recs = 0

    def write(self, ready: bool) -> None:
        from devtools.bench.procstat import parse_stat

        _ppid, own, waited = parse_stat(Path("/proc/self/stat").read_text())
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"t": time.monotonic(), "inputs": self.inputs,
                                   "events": self.events,
                                   "recs": self.recs, "cpu_s": own + waited,
                                   "ready": ready}))
        os.replace(tmp, self.path)


def build_app(args: argparse.Namespace, progress: Progress) -> Any:
    import faust

    app = faust.App(
        args.app_id,
        broker=args.broker,
        store="rocksdb://",
        datadir=str(args.data_dir),
        topic_partitions=args.partitions,
        broker_session_timeout=args.session_timeout,
        broker_rebalance_timeout=args.rebalance_timeout,
        broker_heartbeat_interval=args.heartbeat,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="json",
        web_enabled=False,
    )
    topics = args.topics.split(",")
    if args.mode == "ceiling":
        _wire_ceiling(app, topics, progress)
    else:
        _wire_baseline(app, args, topics, progress)

    @app.timer(PROGRESS_INTERVAL_S)
    async def report() -> None:
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        ready = recovery.completed.is_set() and not recovery.in_recovery
        progress.write(bool(ready and not app.rebalancing))

    return app


def _wire_ceiling(app: Any, topics: list[str], progress: Progress) -> None:
    source = app.topic(*topics, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(source, name="bench.ceiling")
    async def consume(stream: Any) -> None:
        async for events in stream.take_events(1000, 0.05):
            for event in events:
                json.loads(event.value)
            progress.inputs += len(events)
            progress.events += len(events)


def _wire_baseline(app: Any, args: argparse.Namespace, topics: list[str],
                   progress: Progress) -> None:
    from models.serving import load_scorer
    from schemas.timestamps import format_rfc3339_ms

    scorer = load_scorer(args.model, device="auto", intra_op_threads=1)
    source = app.topic(*topics, key_type=bytes, value_serializer="json")
    output = app.topic(args.output, key_type=bytes, value_type=bytes, value_serializer="raw")
    by_user = app.topic(f"{args.app_id}-by-user-repartition", key_type=bytes,
                        value_serializer="json", partitions=args.partitions, internal=True)
    users = app.Table("users", default=None, partitions=args.partitions)
    model = {"name": scorer.name, "version": scorer.version}

    def user_of(event: dict[str, Any]) -> str:
        progress.inputs += 1  # called once per input event, before re-keying
        return str(event["user_id"])

    @app.agent(source, name="bench.baseline")
    async def recommend(stream: Any) -> None:
        async for event in stream.group_by(user_of, name="by-user", topic=by_user):
            user = event["user_id"]
            entry = users.get(user) or {"items": [], "purchased": []}
            entry["items"] = (entry["items"] + [event["item_id"]])[-HISTORY_LEN:]
            if event["event_type"] == "purchase":
                entry["purchased"] = (entry["purchased"] + [event["item_id"]])[-PURCHASED_LEN:]
            users[user] = entry
            [ranked] = scorer.recommend([entry["items"]], k=TOP_K,
                                        exclude=[entry["purchased"]])
            message = {
                "user_id": user,
                "items": [{"item_id": item, "score": score} for item, score in ranked],
                "model": model,
                "trigger": {"event_id": event["event_id"], "event_type": event["event_type"],
                            "event_time": format_rfc3339_ms(int(event["timestamp"]))},
                "generated_at": format_rfc3339_ms(time.time_ns() // 1_000_000),
            }
            await output.send(key=user.encode(), value=json.dumps(message).encode())
            progress.events += 1
            progress.recs += 1


def main(argv: list[str] | None = None) -> int:
    import faust

    args = parse_args(argv)
    progress = Progress(args.progress)
    progress.write(False)
    app = build_app(args, progress)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
