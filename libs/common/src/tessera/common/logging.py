"""Structured logging: JSON lines in production, console in development.

Every line carries ``service``, ``trace_id``, ``span_id`` and ``request_id`` when they are
known. Values under keys that look secret are masked before they are written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

__all__ = ["configure_logging", "get_logger", "redact"]

_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|api[_-]?key|cookie|private", re.IGNORECASE
)
MASK = "***"


def redact(value: Any, _depth: int = 0) -> Any:
    """Mask every value whose key looks like a secret, recursively."""
    if _depth > 6:  # too deep to inspect: never let an unchecked secret through
        return MASK if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v, _depth + 1) for v in value)
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    return redact(dict(event_dict))


def _add_trace(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (a test, or a server, may swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _with_service(service: str) -> Any:
    def add_service(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the standard library through one renderer; idempotent.

    ``service`` is on every line (a processor, not a context variable: request tasks do not
    inherit the context the lifespan bound it in), the same label the metrics carry.
    """
    shared: list[Any] = [
        _with_service(service),
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace,
        _redact_processor,
    ]
    # tracebacks as plain text: the rich console default prints every frame's locals
    # (passwords, tokens) and takes seconds; JSON lines need the text rendered explicitly
    renderer: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    # our own lines go straight from structlog to stderr (no LogRecord, no handler chain:
    # a fraction of the cost per request); the standard library's (uvicorn, SQLAlchemy,
    # aio-pika) go through the same processors and renderer by the root handler below
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, *renderer],
        logger_factory=structlog.WriteLoggerFactory(_Stderr()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(
            numeric if isinstance(numeric, int) else logging.INFO
        ),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)
