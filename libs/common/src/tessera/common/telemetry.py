"""OpenTelemetry setup honouring the standard ``OTEL_*`` variables.

Spans are exported over OTLP/HTTP (protobuf) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, and ``OTEL_SDK_DISABLED=true`` turns tracing
off. FastAPI's own built-in tracing is disabled by the app factory; the contrib
instrumentation is used instead (see STACK.md).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = [
    "configure_telemetry",
    "current_trace_headers",
    "shutdown_telemetry",
    "tracing_disabled",
]

_configured: TracerProvider | None = None


def _exporting() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracing_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: no spans, and no instrumentation wrapping every call."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure_telemetry(service_name: str) -> TracerProvider:
    """Install one tracer provider per process and instrument the libraries we use.

    With tracing disabled the libraries are left alone: a wrapper that makes no-op spans
    still costs every query, Redis command and HTTP call its bookkeeping.
    """
    global _configured
    if _configured is not None:
        return _configured
    resource = Resource.create({"service.name": service_name, "service.namespace": "tessera"})
    provider = TracerProvider(resource=resource)
    if not tracing_disabled() and _exporting():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if not tracing_disabled():
        _instrument_libraries(provider)
    _configured = provider
    return provider


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START")


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    class StatementsOnly(AsyncPGInstrumentor):
        """A span per statement, none for BEGIN/COMMIT/ROLLBACK: they say nothing the
        statements' spans and the surrounding span do not, and doubled a unit of work's
        spans (the biggest part of what tracing costs an event)."""

        async def _do_execute(self, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            query = args[0] if args else None
            if isinstance(query, str) and query.lstrip().upper().startswith(_TRANSACTION_CONTROL):
                return await func(*args, **kwargs)
            return await super()._do_execute(func, instance, args, kwargs)

    StatementsOnly().instrument(tracer_provider=provider, skip_dep_check=True)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    RedisInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)


def shutdown_telemetry() -> None:
    """Flush spans still buffered (called on shutdown)."""
    if _configured is not None:
        _configured.force_flush(timeout_millis=5_000)


def current_trace_headers() -> dict[str, str]:
    """The W3C trace context (``traceparent``/``tracestate``) of the current span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
