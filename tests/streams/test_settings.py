"""The settings object: environment under one prefix, frozen, validated."""

from __future__ import annotations

import pydantic
import pytest

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
    if variable == "STREAMREC_NOT_A_SETTING_AT_ALL":
        # pydantic-settings ignores unknown env vars; extra="forbid" guards kwargs only.
        load_settings()
        with pytest.raises(SettingsError, match="NOT_A_SETTING_AT_ALL"):
            load_settings(not_a_setting_at_all=1)
        return
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []
