"""Prometheus metrics of a service app: RED by route template, exemplars, the service label.

Promises: every request is counted and timed under its route *template* (ids never become
label values), with its status; OpenMetrics output carries the trace id of a sampled
request as the exemplar of its bucket; health probes and the scrape itself are not counted.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families

from tessera.common.http import create_service_app, instrument_app
from tessera.common.problems import Problem
from tessera.common.settings import ServiceSettings

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class MetricsProbe(ServiceSettings):
    service_name = "metricsprobe"


@pytest.fixture
def app() -> FastAPI:
    app = create_service_app(
        settings=MetricsProbe(environment="test"), prefix="/probe", title="probe"
    )

    @app.get("/probe/things/{thing_id}")
    async def thing(thing_id: uuid.UUID) -> dict[str, Any]:
        if thing_id.int % 2:
            raise Problem("odd things are missing", status=404, code="thing_missing")
        return {"id": str(thing_id)}

    instrument_app(app, TracerProvider(), "/probe")
    return app


async def _get(app: FastAPI, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        return await client.get(path, headers=headers)


def _count(text: str, **labels: str) -> float:
    """The request count of the series whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_server_request_duration_seconds_count" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


async def test_requests_are_counted_by_route_template_and_status(app: FastAPI) -> None:
    before = (await _get(app, "/probe/metrics")).text
    even, odd = uuid.UUID(int=2), uuid.UUID(int=3)
    for thing in (even, even, odd):
        await _get(app, f"/probe/things/{thing}")
    await _get(app, "/probe/healthz")
    after = (await _get(app, "/probe/metrics")).text

    route = "/probe/things/{thing_id}"
    labels = {"service": "metricsprobe", "http_route": route, "http_request_method": "GET"}
    ok = _count(after, **labels, http_response_status_code="200")
    missing = _count(after, **labels, http_response_status_code="404")
    assert ok - _count(before, **labels, http_response_status_code="200") == 2
    assert missing - _count(before, **labels, http_response_status_code="404") == 1
    assert str(even) not in after, "a raw path became a label value"
    assert 'http_route="/probe/healthz"' not in after
    assert 'http_route="/probe/metrics"' not in after


async def test_openmetrics_buckets_carry_the_trace_id_of_a_request(app: FastAPI) -> None:
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    await _get(app, f"/probe/things/{uuid.UUID(int=4)}", traceparent=traceparent)
    response = await _get(app, "/probe/metrics", accept=OPENMETRICS)

    assert response.headers["content-type"].startswith("application/openmetrics-text")
    trace_id = traceparent.split("-")[1]
    assert f'trace_id="{trace_id}"' in response.text
