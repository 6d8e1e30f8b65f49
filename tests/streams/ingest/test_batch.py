"""Stage 1 on its own: decode, dead-letter, re-key by user, bundle round trip."""

from __future__ import annotations

import orjson

from schemas.events import DecodeLimits, EventType
from schemas.reasons import RejectReason
from streams.ingest.batch import Pseudonymiser, RawMessage, decode_bundle, encode_bundle, ingest
from streams.kafka.partitioning import user_partition

NOW = 1_767_225_600_000


def message(value: bytes | None, topic: str = "views", offset: int = 0) -> RawMessage:
    return RawMessage(topic=topic, partition=0, offset=offset, timestamp_ms=NOW, key=None,
                      value=value)


def event(user: str, n: int, event_type: str = "view") -> bytes:
    return orjson.dumps({"event_id": f"e-{user}-{n}", "event_type": event_type,
                         "user_id": user, "item_id": f"i{n}", "timestamp": NOW - n})


def test_valid_events_are_grouped_by_owning_partition() -> None:
    users = [f"user-{n}" for n in range(40)]
    batch = ingest([message(event(u, 1)) for u in users], limits=DecodeLimits(),
                   partitions=4, now_ms=NOW)
    assert not batch.dead_letters
    for partition, bundle in batch.bundles.items():
        assert {user_partition(e.user_id, 4) for e in bundle.events} == {partition}
    assert sum(len(v.events) for v in batch.bundles.values()) == len(users)
    assert batch.consumed == {("views", "view"): len(users)}


def test_bad_messages_become_dead_letters_with_their_source() -> None:
    batch = ingest(
        [message(b"{nope", offset=7), message(event("u", 1, "purchase"), offset=8),
         message(None, offset=9)],
        limits=DecodeLimits(), partitions=2, now_ms=NOW,
    )
    reasons = [(d.rejection.reason, d.message.offset) for d in batch.dead_letters]
    assert reasons == [(RejectReason.INVALID_JSON, 7), (RejectReason.WRONG_TOPIC, 8),
                       (RejectReason.EMPTY_PAYLOAD, 9)]
    assert batch.bundles == {}
    assert batch.consumed == {("views", "invalid"): 3}


def test_bundle_round_trip_keeps_every_field() -> None:
    raw = orjson.dumps({"event_id": "e1", "event_type": "add_to_cart", "user_id": "u",
                        "item_id": "i", "timestamp": NOW, "session_id": "s",
                        "properties": {"price": 9.5, "quantity": 2}})
    batch = ingest([message(raw, topic="clicks")], limits=DecodeLimits(), partitions=1,
                   now_ms=NOW)
    (bundle,) = batch.bundles.values()
    assert decode_bundle(encode_bundle(bundle)) == bundle
    assert bundle.events[0].event_type is EventType.ADD_TO_CART


def test_pseudonymisation_replaces_user_ids_before_partitioning() -> None:
    pseudonymise = Pseudonymiser(b"secret")
    batch = ingest([message(event("alice", 1))], limits=DecodeLimits(), partitions=8,
                   now_ms=NOW, pseudonymise=pseudonymise)
    ((partition, bundle),) = batch.bundles.items()
    (decoded,) = bundle.events
    assert decoded.user_id == pseudonymise("alice") != "alice"
    assert len(decoded.user_id) == 64
    assert partition == user_partition(decoded.user_id, 8)
    assert "secret" not in repr(pseudonymise)
    assert Pseudonymiser(b"other")("alice") != decoded.user_id


def test_erasure_requests_are_routed_to_the_users_partition() -> None:
    pseudonymise = Pseudonymiser(b"k")
    batch = ingest(
        [message(b'{"user_id": "alice"}', topic="user_erasure", offset=1),
         message(b'{"user": "bob"}', topic="user_erasure", offset=2)],
        limits=DecodeLimits(), partitions=4, now_ms=NOW, pseudonymise=pseudonymise,
        erasure_topic="user_erasure",
    )
    ((partition, bundle),) = batch.bundles.items()
    assert bundle.erasures == [pseudonymise("alice")]
    assert partition == user_partition(pseudonymise("alice"), 4)
    assert [d.rejection.reason for d in batch.dead_letters] == [RejectReason.MISSING_FIELD]


def test_catalogue_records_are_only_checked_and_bad_ones_dead_lettered() -> None:
    def item(key: bytes | None, value: bytes | None, offset: int) -> RawMessage:
        return RawMessage("items", 0, offset, NOW, key, value)

    batch = ingest(
        [item(b"a", orjson.dumps({"item_id": "a", "title": "pH meter"}), 1),
         item(b"a", None, 2),  # a tombstone is a valid removal
         item(b"b", orjson.dumps({"item_id": "c", "title": "x"}), 3),
         item(b"d", orjson.dumps({"item_id": "d"}), 4)],
        limits=DecodeLimits(), partitions=2, now_ms=NOW, items_topic="items",
    )
    reasons = [(d.rejection.reason, d.message.offset) for d in batch.dead_letters]
    assert reasons == [(RejectReason.KEY_MISMATCH, 3), (RejectReason.MISSING_FIELD, 4)]
    assert batch.bundles == {}
    assert batch.consumed == {("items", "item"): 2, ("items", "invalid"): 2}


def test_a_search_is_rekeyed_by_user_and_keeps_no_item_through_the_bundle() -> None:
    raw = orjson.dumps({"event_id": "s1", "event_type": "search", "user_id": "alice",
                        "timestamp": NOW, "session_id": "s",
                        "properties": {"query": "red shoes"}})
    batch = ingest([message(raw, topic="searches")], limits=DecodeLimits(), partitions=4,
                   now_ms=NOW)
    assert batch.dead_letters == []
    assert batch.consumed == {("searches", "search"): 1}
    ((partition, bundle),) = batch.bundles.items()
    assert partition == user_partition("alice", 4)
    (decoded,) = bundle.events
    assert decoded.item_id is None and decoded.query == "red shoes"
    encoded = encode_bundle(bundle)
    assert b"item_id" not in encoded
    assert decode_bundle(encoded) == bundle
    assert decode_bundle(encoded).events[0].query == "red shoes"


def test_bad_searches_are_dead_lettered_with_their_reason() -> None:
    def search(n: int, **changes: object) -> bytes:
        doc = {"event_id": f"s{n}", "event_type": "search", "user_id": "u", "timestamp": NOW,
               "properties": {"query": "boots"}, **changes}
        return orjson.dumps({k: v for k, v in doc.items() if v is not ...})

    batch = ingest(
        [message(search(1, properties=...), "searches", 1),
         message(search(2, properties={"query": "q" * 513}), "searches", 2),
         message(search(3, item_id="sku-1"), "searches", 3),
         message(search(4), "views", 4),
         message(event("u", 5, "view"), "searches", 5)],
        limits=DecodeLimits(), partitions=2, now_ms=NOW,
    )
    reasons = [(d.rejection.reason, d.message.offset) for d in batch.dead_letters]
    assert reasons == [(RejectReason.MISSING_FIELD, 1), (RejectReason.OVERSIZED_QUERY, 2),
                       (RejectReason.SCHEMA_VIOLATION, 3), (RejectReason.WRONG_TOPIC, 4),
                       (RejectReason.WRONG_TOPIC, 5)]
    assert batch.bundles == {}
