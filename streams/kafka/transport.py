"""Faust's aiokafka transport with two changes: the consumer's fetch wait under streamrec's
control, and table-recovery end offsets read from a fetch's high watermark.

Faust hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer. A fetch that finds
nothing new is parked by the broker for up to that long, and streamrec reads twice per event
(input topics, then ``events-by-user``): on a broker that holds a parked fetch for its whole
wait even when data arrives meanwhile (Tansu does), every hop that runs dry costs up to
1.5 s of freshness. :class:`StreamrecTransport` sets the wait from
``STREAMREC_BROKER_FETCH_MAX_WAIT_S`` instead; Apache Kafka answers a parked fetch as soon as
data arrives, so there a short wait only means a few more idle requests per second.

Recovery end offsets: see :mod:`streams.kafka.end_offsets` (exact on every broker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.kafka.end_offsets import PROBE_TIMEOUT_S, exact_end_offsets


class StreamrecConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread; its aiokafka consumer uses the app's fetch wait, and its
    end offsets come from a fetch's high watermark."""

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return reported
        transport = cast(faust_aiokafka.Transport, self.transport)
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)
        auth = faust_aiokafka.credentials_to_aiokafka_auth(
            self.app.conf.broker_credentials, self.app.conf.ssl_context
        )
        return await asyncio.wait_for(
            exact_end_offsets(servers, reported, auth), PROBE_TIMEOUT_S * 2
        )

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher, so set it before.
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms", 1500))
        return consumer


class StreamrecConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return StreamrecConsumerThread(self, loop=self.loop, beacon=self.beacon)


class StreamrecTransport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`StreamrecConsumer`."""

    Consumer = StreamrecConsumer
