"""Prometheus metrics of every service, served at ``/<prefix>/metrics``.

Names follow the OpenTelemetry semantic conventions where they exist, in their Prometheus
form (``http.server.request.duration`` → ``http_server_request_duration_seconds``); the
rest are ``tessera_*``. Every series carries ``service``, the label the log lines carry too.

* RED per route: ``http_server_request_duration_seconds`` (histogram; ``http_route`` is the
  route template, never the raw path; ``http_response_status_code``), and
  ``http_server_active_requests``. With ``Accept: application/openmetrics-text`` the buckets
  carry exemplars: the ``trace_id`` of a request that fell in them, linking a slow bucket to
  its trace.
* Events: ``tessera_events_published_total`` (and ``..._publish_failures_total``) by type;
  ``tessera_events_consumed_total`` by type and outcome (``handled``, ``duplicate``,
  ``retried``, ``dead_lettered``, ``quarantined``); ``messaging_process_duration_seconds``.
* Read at scrape time: ``tessera_outbox_rows`` (``state`` pending or parked) and
  ``tessera_outbox_oldest_pending_age_seconds``; ``tessera_queue_messages`` (messages
  waiting in each of the service's queues: its consumer lag, retries and dead letters);
  ``db_client_connection_count`` (``state`` used or idle) and ``db_client_connection_max``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "EVENTS_CONSUMED",
    "EVENTS_PUBLISHED",
    "PUBLISH_FAILURES",
    "REGISTRY",
    "MetricsMiddleware",
    "metrics_response",
    "observe_processing",
]

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

HTTP_DURATION = Histogram(
    "http_server_request_duration",
    "Duration of HTTP server requests (OTel http.server.request.duration)",
    ["service", "http_request_method", "http_route", "http_response_status_code"],
    unit="seconds",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_ACTIVE = Gauge(
    "http_server_active_requests",
    "HTTP server requests being handled (OTel http.server.active_requests)",
    ["service", "http_request_method"],
    registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "tessera_events_published",
    "Events the outbox relay published with a broker confirm",
    ["service", "event_type"],
    registry=REGISTRY,
)
PUBLISH_FAILURES = Counter(
    "tessera_events_publish_failures",
    "Publishes of outbox rows that failed (kind: row, or broker_unavailable)",
    ["service", "event_type", "kind"],
    registry=REGISTRY,
)
EVENTS_CONSUMED = Counter(
    "tessera_events_consumed",
    "Events delivered to this service's consumer, by outcome",
    ["service", "event_type", "outcome"],
    registry=REGISTRY,
)
PROCESS_DURATION = Histogram(
    "messaging_process_duration",
    "Duration of handling one event (OTel messaging.process.duration)",
    ["service", "event_type"],
    unit="seconds",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
OUTBOX_ROWS = Gauge(
    "tessera_outbox_rows",
    "Outbox rows not sent yet (state: pending, parked)",
    ["service", "state"],
    registry=REGISTRY,
)
OUTBOX_OLDEST = Gauge(
    "tessera_outbox_oldest_pending_age",
    "Age of the oldest pending outbox row (0 when none)",
    ["service"],
    unit="seconds",
    registry=REGISTRY,
)
QUEUE_MESSAGES = Gauge(
    "tessera_queue_messages",
    "Messages ready in one of the service's queues (main: consumer lag)",
    ["service", "queue", "role"],
    registry=REGISTRY,
)
DB_CONNECTIONS = Gauge(
    "db_client_connection_count",
    "Connections of the pool (OTel db.client.connection.count; state: used, idle)",
    ["service", "state"],
    registry=REGISTRY,
)
DB_CONNECTIONS_MAX = Gauge(
    "db_client_connection_max",
    "Most connections the pool opens (OTel db.client.connection.max)",
    ["service"],
    registry=REGISTRY,
)


def _trace_exemplar() -> dict[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}


def observe_processing(service: str, event_type: str, seconds: float) -> None:
    PROCESS_DURATION.labels(service, event_type).observe(seconds, exemplar=_trace_exemplar())


class MetricsMiddleware:
    """RED metrics of every HTTP request, by route template (unmatched: ``<unmatched>``).

    Placed inside the tracing middleware, so a request's exemplar is its own trace.
    """

    def __init__(self, app: ASGIApp, *, service: str, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.service = service
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").endswith(self.skip):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        active = HTTP_ACTIVE.labels(self.service, method)
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        active.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            active.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            HTTP_DURATION.labels(self.service, method, template, str(status)).observe(
                time.perf_counter() - started, exemplar=_trace_exemplar()
            )


async def metrics_response(
    request: Request, refresh: Callable[[], Awaitable[Any]] | None = None
) -> Response:
    """The registry in the format the scraper asks for (OpenMetrics carries exemplars),
    after ``refresh`` updated what is read at scrape time."""
    if refresh is not None:
        await refresh()
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), media_type=content_type)
