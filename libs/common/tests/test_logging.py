"""Structured logging: one JSON object per line, with service, request and trace ids, no secrets."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from tessera.common.logging import MASK, configure_logging, get_logger, redact


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    structlog.contextvars.clear_contextvars()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)
        structlog.contextvars.clear_contextvars()


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """Every JSON line written to stderr since the last call."""

    def read() -> list[dict[str, Any]]:
        err = capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.strip()]

    return read


def fresh_logger() -> Any:
    return get_logger(f"test.{uuid.uuid4().hex}")


def test_json_line_carries_service_level_and_timestamp(lines: Callable[[], list[Any]]) -> None:
    configure_logging("probe", level="INFO", fmt="json")
    fresh_logger().info("order_placed", order=42)

    [line] = lines()
    assert line["event"] == "order_placed"
    assert line["order"] == 42
    assert line["service"] == "probe"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_service_is_on_lines_logged_from_a_context_that_did_not_inherit_it(
    lines: Callable[[], list[Any]],
) -> None:
    import contextvars

    configure_logging("probe")
    log = fresh_logger()
    # a server's request tasks start from the server's context, not the lifespan's
    contextvars.Context().run(log.info, "from elsewhere")
    contextvars.Context().run(logging.getLogger("plain.stdlib").warning, "stdlib elsewhere")

    first, second = lines()
    assert first["service"] == "probe"
    assert second["service"] == "probe"


def test_request_id_bound_in_contextvars_is_on_every_line(
    lines: Callable[[], list[Any]],
) -> None:
    configure_logging("probe")
    log = fresh_logger()
    structlog.contextvars.bind_contextvars(request_id="req-77")
    log.info("first")
    logging.getLogger("plain.stdlib").warning("second from %s", "stdlib")
    structlog.contextvars.unbind_contextvars("request_id")
    log.info("third")

    first, second, third = lines()
    assert first["request_id"] == "req-77"
    assert second["request_id"] == "req-77"
    assert second["event"] == "second from stdlib"
    assert second["service"] == "probe"
    assert "request_id" not in third


def test_trace_and_span_ids_are_added_inside_an_active_span(
    lines: Callable[[], list[Any]],
) -> None:
    configure_logging("probe")
    log = fresh_logger()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("outer") as span:
        log.info("inside")
        logging.getLogger("plain.stdlib").info("inside too")
        context = span.get_span_context()
    log.info("outside")

    inside, inside_stdlib, outside = lines()
    for line in (inside, inside_stdlib):
        assert line["trace_id"] == format(context.trace_id, "032x")
        assert line["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside
    assert "span_id" not in outside


def test_level_below_the_configured_one_is_dropped(lines: Callable[[], list[Any]]) -> None:
    configure_logging("probe", level="warning")
    log = fresh_logger()
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in lines()] == ["loud"]


def test_secret_values_never_reach_the_log(lines: Callable[[], list[Any]]) -> None:
    configure_logging("probe")
    fresh_logger().info(
        "login",
        email="ada@example.com",
        password="hunter2-structlog",
        headers={"Authorization": "Bearer eyJ-secret", "Accept": "json"},
        body={"user": {"api_key": "ak-secret", "name": "ada"}, "items": [{"token": "tk-1"}]},
        refresh_token="rt-secret",
    )
    logging.getLogger("plain.stdlib").info(
        "via stdlib", extra={"client_secret": "cs-secret", "Api-Key": "ak2-secret"}
    )

    login, stdlib = lines()
    text = json.dumps([login, stdlib])
    for secret in ("hunter2", "eyJ-secret", "ak-secret", "tk-1", "rt-secret", "cs-secret"):
        assert secret not in text
    assert "ak2-secret" not in text
    assert login["password"] == MASK
    assert login["headers"] == {"Authorization": MASK, "Accept": "json"}
    assert login["body"] == {"user": {"api_key": MASK, "name": "ada"}, "items": [{"token": MASK}]}
    assert login["email"] == "ada@example.com"
    assert stdlib["client_secret"] == MASK


def test_console_format_masks_secrets_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("probe", fmt="console")
    fresh_logger().info("login", password="hunter2-console", user="ada")
    err = capsys.readouterr().err
    assert "login" in err
    assert "ada" in err
    assert "hunter2-console" not in err


def test_redact_masks_secret_keys_recursively() -> None:
    value = {
        "Password": "a",
        "passwd_hint": "b",
        "username": "b",
        "x-api-key": "c",
        "apikey": "d",
        "AUTHORIZATION": "e",
        "session_cookie": "f",
        "private_key": "g",
        "nested": [{"access_token": "h"}, ({"secret": "i"}, "plain")],
        "name": "kept",
        "count": 3,
    }
    assert redact(value) == {
        "Password": MASK,
        "passwd_hint": MASK,
        "username": "b",
        "x-api-key": MASK,
        "apikey": MASK,
        "AUTHORIZATION": MASK,
        "session_cookie": MASK,
        "private_key": MASK,
        "nested": [{"access_token": MASK}, ({"secret": MASK}, "plain")],
        "name": "kept",
        "count": 3,
    }
    assert value["Password"] == "a"  # the input is not modified


def test_redact_never_lets_a_deeply_nested_secret_through() -> None:
    deep: Any = {"password": "deep-secret"}
    for _ in range(12):
        deep = {"level": deep}
    assert "deep-secret" not in json.dumps(redact(deep))
    shallow = {"a": {"b": {"c": [{"d": "kept"}]}}}
    assert redact(shallow) == shallow  # ordinary nesting is left alone
