"""The development broker's end offsets, corrected: checked against a real Tansu broker."""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from faust.types import TP

from devtools.broker import EmbeddedBroker
from streams.kafka.end_offsets import exact_end_offsets


def _produce_batches(bootstrap: str, topic: str, counts: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for partition, count in enumerate(counts):
        for n in range(count):
            producer.produce(topic, value=b"x%d" % n, partition=partition)
        producer.flush(10)


async def _end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TP, int]:
    import aiokafka

    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [aiokafka.TopicPartition(topic, p) for p in range(partitions)]
        reported = await consumer.end_offsets(tps)
        return {TP(tp.topic, tp.partition): end for tp, end in reported.items()}
    finally:
        await consumer.stop()


def test_exact_end_offsets_match_records_written(broker: EmbeddedBroker) -> None:
    topic = f"end-offsets-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
    counts = [5, 0, 1200]
    _produce_batches(broker.bootstrap, topic, counts)

    reported = asyncio.run(_end_offsets(broker.bootstrap, topic, len(counts)))
    exact = asyncio.run(exact_end_offsets([broker.bootstrap], reported))

    assert exact == {TP(topic, p): count for p, count in enumerate(counts)}
