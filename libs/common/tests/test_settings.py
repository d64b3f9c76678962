"""Typed settings: nested env under a service prefix, shared TESSERA__ values, safe defaults."""

from __future__ import annotations

import json
import os
from typing import ClassVar

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from tessera.common.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"
    model_config = SettingsConfigDict(env_prefix="PROBE__", env_nested_delimiter="__")


REAL_DB = "postgresql+asyncpg://tessera_probe:s3cr3t-Pa55@db.internal:5432/tessera"
REAL_BROKER = "amqp://probe:br0ker-Pa55@mq.internal:5672/"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    """No variable from the machine, and no .env file, leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith(("TESSERA__", "PROBE__")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_service_prefixed_variable_wins_over_the_shared_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA__BROKER__URL", "amqp://shared:x@shared-mq:5672/")
    monkeypatch.setenv("PROBE__BROKER__URL", "amqp://own:x@own-mq:5672/")
    settings = ProbeSettings()
    assert settings.broker.url.get_secret_value() == "amqp://own:x@own-mq:5672/"


def test_shared_variable_is_used_when_no_prefixed_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA__BROKER__URL", "amqp://shared:x@shared-mq:5672/")
    monkeypatch.setenv("TESSERA__LOG_LEVEL", "DEBUG")
    settings = ProbeSettings()
    assert settings.broker.url.get_secret_value() == "amqp://shared:x@shared-mq:5672/"
    assert settings.log_level == "DEBUG"


def test_nested_values_from_both_prefixes_are_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA__BROKER__URL", "amqp://shared:x@shared-mq:5672/")
    monkeypatch.setenv("TESSERA__BROKER__PREFETCH", "5")
    monkeypatch.setenv("PROBE__BROKER__EXCHANGE", "probe.events")
    monkeypatch.setenv("PROBE__BROKER__PREFETCH", "7")
    monkeypatch.setenv("PROBE__BROKER__RETRY_DELAYS_MS", "[100, 200]")
    broker = ProbeSettings().broker
    assert broker.url.get_secret_value() == "amqp://shared:x@shared-mq:5672/"
    assert broker.exchange == "probe.events"
    assert broker.prefetch == 7
    assert broker.retry_delays_ms == [100, 200]


def test_another_services_prefix_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTHER__BROKER__EXCHANGE", "other.events")
    assert ProbeSettings().broker.exchange == "tessera.events"


def test_invalid_nested_value_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROBE__BROKER__PREFETCH", "0")
    with pytest.raises(ValidationError) as caught:
        ProbeSettings()
    assert caught.value.errors()[0]["loc"] == ("broker", "prefetch")


def test_default_database_url_is_derived_from_the_service_name() -> None:
    url = ProbeSettings().database.url.get_secret_value()
    assert url == "postgresql+asyncpg://tessera_probe:tessera_probe_dev@127.0.0.1:5432/tessera"
    settings = ProbeSettings()
    assert settings.schema_name == "probe"
    assert settings.role_name == "tessera_probe"


def test_database_url_given_in_env_is_kept_and_made_async(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROBE__DATABASE__URL", "postgresql://u:p@h:5433/d")
    database = ProbeSettings().database
    assert database.url.get_secret_value() == "postgresql://u:p@h:5433/d"
    assert database.async_url() == "postgresql+asyncpg://u:p@h:5433/d"


def test_production_with_the_dev_database_password_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ProbeSettings(environment="production", broker={"url": REAL_BROKER})
    assert "database.url" in str(caught.value)


def test_production_without_a_database_password_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ProbeSettings(
            environment="production",
            database={"url": "postgresql://tessera_probe@db.internal/tessera"},
            broker={"url": REAL_BROKER},
        )
    assert "database.url" in str(caught.value)


def test_production_with_the_guest_broker_account_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROBE__ENVIRONMENT", "production")
    monkeypatch.setenv("PROBE__DATABASE__URL", REAL_DB)
    with pytest.raises(ValidationError) as caught:
        ProbeSettings()  # broker left at its guest:guest default
    assert "broker.url" in str(caught.value)
    assert "database.url" not in str(caught.value)


def test_production_with_real_secrets_is_accepted() -> None:
    settings = ProbeSettings(
        environment="production", database={"url": REAL_DB}, broker={"url": REAL_BROKER}
    )
    assert settings.environment == "production"


def test_development_accepts_the_dev_defaults() -> None:
    broker_url = ProbeSettings(environment="development").broker.url.get_secret_value()
    assert broker_url.startswith("amqp://guest:guest@")


def test_secrets_are_masked_when_dumped() -> None:
    settings = ProbeSettings(
        database={"url": REAL_DB},
        broker={"url": REAL_BROKER},
        redis={"url": "redis://:r3dis-Pa55@cache:6379/0"},
        admin_database_url="postgresql://postgres:adm1n-Pa55@db.internal/postgres",
    )
    for dumped in (
        json.dumps(settings.public_dump()),
        settings.model_dump_json(),
        repr(settings),
    ):
        for secret in ("s3cr3t-Pa55", "br0ker-Pa55", "r3dis-Pa55", "adm1n-Pa55"):
            assert secret not in dumped
    assert settings.public_dump()["database"]["url"] == "**********"
    assert settings.public_dump()["broker"]["exchange"] == "tessera.events"
