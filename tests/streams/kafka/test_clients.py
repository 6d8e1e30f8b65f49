"""TLS and SASL settings reach every Kafka client streamrec builds."""

from __future__ import annotations

import faust
import pytest

from streams.errors import SettingsError
from streams.kafka.clients import aiokafka_auth, faust_credentials, librdkafka_config
from streams.settings import Settings, load_settings


def test_plaintext_by_default() -> None:
    settings = load_settings(broker_url="kafka://a:9092;kafka://b:9093")
    assert librdkafka_config(settings) == {
        "bootstrap.servers": "a:9092,b:9093", "security.protocol": "plaintext"}
    assert faust_credentials(settings) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_reaches_librdkafka_and_faust(mechanism: str) -> None:
    settings = load_settings(
        broker_security_protocol="SASL_PLAINTEXT", broker_sasl_mechanism=mechanism,
        broker_sasl_username="svc", broker_sasl_password="pw",
    )
    config = librdkafka_config(settings)
    assert config["security.protocol"] == "sasl_plaintext"
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
        mechanism, "svc", "pw")
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc"
    assert str(credentials.mechanism.value) == mechanism


def test_sasl_without_credentials_is_refused_with_the_variable_to_set() -> None:
    with pytest.raises(SettingsError, match="STREAMREC_BROKER_SASL_USERNAME"):
        load_settings(broker_security_protocol="SASL_SSL")


def test_tls_files_reach_librdkafka(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(
        broker_security_protocol="SSL", broker_ssl_cafile=tmp_path / "ca.pem",
        broker_ssl_certfile=tmp_path / "client.pem", broker_ssl_keyfile=tmp_path / "key.pem",
    )
    config = librdkafka_config(settings)
    assert config["security.protocol"] == "ssl"
    assert config["ssl.ca.location"].endswith("ca.pem")
    assert config["ssl.certificate.location"].endswith("client.pem")
    assert config["ssl.key.location"].endswith("key.pem")


def test_secrets_are_not_in_the_settings_repr() -> None:
    settings = load_settings(
        broker_security_protocol="SASL_SSL", broker_sasl_username="svc",
        broker_sasl_password="hunter2", pseudonymisation_key="k3y-material",
        users_api_token="t0ken",
    )
    text = repr(settings)
    assert "hunter2" not in text and "k3y-material" not in text and "t0ken" not in text


def test_client_kwargs_carry_sasl_and_tls() -> None:
    plain = aiokafka_auth(Settings())
    assert plain == {"security_protocol": "PLAINTEXT"}
    sasl = aiokafka_auth(Settings(broker_security_protocol="SASL_PLAINTEXT",
                                 broker_sasl_username="u", broker_sasl_password="p"))
    assert sasl["sasl_plain_username"] == "u" and sasl["sasl_plain_password"] == "p"

