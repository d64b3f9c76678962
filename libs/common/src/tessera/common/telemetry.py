"""OpenTelemetry setup honouring the standard ``OTEL_*`` variables.

Spans are exported over OTLP/HTTP (protobuf) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, and ``OTEL_SDK_DISABLED=true`` turns tracing
off. FastAPI's own built-in tracing is disabled by the app factory; the contrib
instrumentation is used instead (see STACK.md).
"""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["configure_telemetry", "current_trace_headers", "shutdown_telemetry"]

_configured: TracerProvider | None = None


def _exporting() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_telemetry(service_name: str) -> TracerProvider:
    """Install one tracer provider per process and instrument the libraries we use."""
    global _configured
    if _configured is not None:
        return _configured
    resource = Resource.create({"service.name": service_name, "service.namespace": "tessera"})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true" and _exporting():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    _configured = provider
    return provider


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
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
