"""The settings object: environment under one prefix, frozen, validated."""

from __future__ import annotations

import pydantic
import pytest

from schemas.events import EventType
from streams.errors import SettingsError
from streams.settings import Settings, load_settings


def test_reads_the_streamrec_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_BROKER_URL", "kafka://kafka:29092")
    monkeypatch.setenv("STREAMREC_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("BROKER_URL", "kafka://ignored:1")
    settings = load_settings()
    assert settings.broker_url == "kafka://kafka:29092"
    assert settings.topic_partitions == 8
    assert settings.bootstrap_servers == ["kafka:29092"]


def test_is_frozen() -> None:
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.top_k = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("STREAMREC_TOPIC_PARTITIONS", "0"), ("STREAMREC_BROKER_URL", "localhost:9092"),
     ("STREAMREC_LOG_FORMAT", "xml"), ("STREAMREC_NOT_A_SETTING_AT_ALL", "1")],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("STREAMREC_TOPK", "STREAMREC_TOP_K"), ("STREAMREC_BROKER_URLS", "STREAMREC_BROKER_URL"),
     ("streamrec_model_dirr", "STREAMREC_MODEL_DIR")],
)
def test_an_unknown_variable_is_an_error_naming_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, typo: str, meant: str
) -> None:
    monkeypatch.setenv(typo, "5")
    with pytest.raises(SettingsError, match=f"{typo} is not a setting \\(did you mean {meant}"):
        load_settings()


def test_an_unknown_keyword_is_an_error_too() -> None:
    with pytest.raises(SettingsError, match="NOT_A_SETTING_AT_ALL"):
        load_settings(not_a_setting_at_all=1)


def test_the_retired_broker_flavour_switch_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # It was needed for the embedded broker; the worker now detects that broker itself.
    monkeypatch.setenv("STREAMREC_BROKER_FLAVOUR", "tansu")
    with pytest.raises(SettingsError, match="STREAMREC_BROKER_FLAVOUR is not a setting"):
        load_settings()


def test_topic_routing_covers_every_event_type_once() -> None:
    settings = load_settings(add_to_cart_topic="purchases")
    routes = settings.topic_event_types
    assert sorted(t for types in routes.values() for t in types) == sorted(EventType)
    assert settings.topic_for("add_to_cart") == settings.topic_purchases
    assert routes[settings.topic_purchases] == {EventType.PURCHASE, EventType.ADD_TO_CART}


def test_to_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(top_k=7, model_dir="/tmp/model", exclude_recent=True)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_searches_have_their_own_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.topic_searches == "searches" == settings.topic_for("search")
    assert settings.topic_searches in settings.input_topics
    assert settings.topic_event_types[settings.topic_searches] == {EventType.SEARCH}
    monkeypatch.setenv("STREAMREC_TOPIC_SEARCHES", "shop.searches")
    assert load_settings().topic_for(EventType.SEARCH) == "shop.searches"


def test_search_and_purchase_window_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.max_searches == 5 and settings.exclude_purchased_days is None
    monkeypatch.setenv("STREAMREC_MAX_SEARCHES", "0")
    monkeypatch.setenv("STREAMREC_EXCLUDE_PURCHASED_DAYS", "7.5")
    settings = load_settings()
    assert (settings.max_searches, settings.exclude_purchased_days) == (0, 7.5)
    for variable, value in [("STREAMREC_MAX_SEARCHES", "-1"),
                            ("STREAMREC_EXCLUDE_PURCHASED_DAYS", "0")]:
        monkeypatch.setenv(variable, value)
        with pytest.raises(SettingsError, match=variable):
            load_settings()
        monkeypatch.delenv(variable)
