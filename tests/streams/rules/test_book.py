"""The rule book: settings rules, topic rules over them, removal, immutable snapshots."""

from __future__ import annotations

import doctest
import threading

import orjson
import pytest

import streams.rules.book
from schemas.rules import Boost, ExcludeItems, ExcludePurchased
from streams.errors import SettingsError
from streams.ingest.batch import Pseudonymiser
from streams.ranking.candidate import Candidate, Reason
from streams.ranking.rules import apply_rules
from streams.rules.book import RuleBook
from streams.settings import Settings, load_settings

PROMO = Boost(rule_id="promo", brands=("Apera",), factor=2)
FRESH = ExcludePurchased(rule_id="fresh", days=30)
RECALL = ExcludeItems(rule_id="recall", items=("sku-1",))


def test_settings_rules_are_in_force_from_the_start() -> None:
    book = RuleBook([PROMO, FRESH])
    assert book.current().rules == (FRESH, PROMO)
    assert not book.loaded and book.version == 0
    assert RuleBook().current().rules == ()


def test_a_topic_rule_overrides_the_settings_rule_with_its_id() -> None:
    book = RuleBook([PROMO, FRESH])
    stronger = Boost(rule_id="promo", brands=("Apera",), factor=5)
    book.apply({"promo": stronger, "recall": RECALL})
    assert book.current().rules == (FRESH, stronger, RECALL)
    assert dict(book.topic_rules) == {"promo": stronger, "recall": RECALL}
    assert dict(book.settings_rules) == {"promo": PROMO, "fresh": FRESH}
    assert book.version == 1


def test_a_tombstone_removes_a_topic_rule_and_brings_back_the_settings_one() -> None:
    book = RuleBook([PROMO])
    book.apply({"promo": Boost(rule_id="promo", brands=("X",), factor=3), "recall": RECALL})
    book.apply({"promo": None, "recall": None, "never-seen": None})
    assert book.current().rules == (PROMO,)


def test_a_topic_rule_can_switch_a_settings_rule_off() -> None:
    book = RuleBook([FRESH])
    book.apply({"fresh": ExcludePurchased(rule_id="fresh", days=30, enabled=False)})
    assert book.current().exclude_purchased_days(7.0) == 7.0


def test_reading_the_topic_again_replaces_what_it_gave() -> None:
    book = RuleBook([PROMO])
    book.apply({"recall": RECALL, "fresh": FRESH})
    book.reset_topic({"fresh": FRESH})  # recall was deleted while the worker was away
    assert book.loaded
    assert book.current().rules == (FRESH, PROMO)


def test_a_snapshot_never_changes() -> None:
    book = RuleBook([PROMO])
    before = book.current()
    book.apply({"recall": RECALL})
    book.apply({"promo": None})
    assert before.rules == (PROMO,)
    assert book.current().rules == (PROMO, RECALL)
    assert book.current() is book.current()
    assert book.apply({}) is book.current()  # nothing to do: the same snapshot


def test_per_user_rules_name_users_as_the_stream_does() -> None:
    pseudonymise = Pseudonymiser(b"secret")
    rule = ExcludeItems(rule_id="mine", items=("sku-1",), user_id="alice")
    book = RuleBook([rule], pseudonymise=pseudonymise)
    candidates = [Candidate("sku-1", 1.0, Reason.sequence())]
    ruleset = book.current()
    assert apply_rules(ruleset, candidates, pseudonymise("alice"), lambda _: None).candidates == []
    assert apply_rules(ruleset, candidates, "alice", lambda _: None).candidates == candidates
    assert book.settings_rules["mine"].user_id == "alice"  # kept as written


def test_readers_always_see_a_whole_rule_set() -> None:
    book = RuleBook()
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            rules = book.current().rules
            seen.append(len(rules))
            assert len({type(r) for r in rules}) <= 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(300):
            book.apply({f"r{n}": ExcludeItems(rule_id=f"r{n}", items=("x",))})
            book.apply({f"r{n}": None} if n % 2 else {})
    finally:
        stop.set()
        reader.join()
    assert seen and len(book.current()) == 150


def test_the_setting_holds_a_json_list_of_rules() -> None:
    text = orjson.dumps([PROMO.to_json_dict(), FRESH.to_json_dict()]).decode()
    settings = Settings(rules=text)
    assert settings.rule_list == (PROMO, FRESH)
    assert Settings().rule_list == () and Settings().topic_rules == "rules"
    assert RuleBook(settings.rule_list).current().rules == (FRESH, PROMO)


def test_a_bad_rule_in_the_setting_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_RULES", '[{"rule_id": "promo", "kind": "boost", '
                                          '"brands": ["Apera"], "factor": 50}]')
    with pytest.raises(SettingsError, match=r"STREAMREC_RULES: .*rule 0 \('promo'\).*factor"):
        load_settings()
    monkeypatch.setenv("STREAMREC_RULES", "not json")
    with pytest.raises(SettingsError, match="STREAMREC_RULES"):
        load_settings()


def test_the_setting_survives_the_trip_to_a_worker_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(rules=orjson.dumps([FRESH.to_json_dict()]).decode())
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert load_settings().rule_list == (FRESH,)


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(streams.rules.book)
    assert result.attempted > 0 and result.failed == 0
