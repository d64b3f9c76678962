"""Every service's Prometheus metrics, read on its own port the way Prometheus scrapes them.

Promises: after a registration and a login through the gateway, auth's ``/auth/metrics``
shows their requests by route template and status with a latency histogram, the events it
published, its outbox rows and its connection pool; the mailer's shows the event it handled
and its queues' depths; both carry ``service``; the gateway does not serve them.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tessera_e2e_harness import Suite, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]

PASSWORD = "a long enough passphrase"


def _samples(suite: Suite, service: str, prefix: str) -> list[Any]:
    url = f"http://127.0.0.1:{suite.ports[service]}/{prefix}/metrics"
    text = httpx.get(url, timeout=5).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: list[Any], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_auth_and_mailer_metrics_after_a_registration_and_a_login(suite: Suite) -> None:
    email = f"metrics-{uuid.uuid4().hex[:10]}@example.org"
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        body = {"email": email, "password": PASSWORD, "full_name": "M"}
        assert client.post("/auth/register", json=body).status_code == 201
        assert client.post("/auth/login", json={"email": email, "password": PASSWORD}).is_success
        assert client.get("/auth/metrics").status_code == 404, "metrics through the gateway"
    wait_for(lambda: suite.smtp.to(email), timeout=30, what="the verification email")

    auth = _samples(suite, "auth", "auth")
    count = "http_server_request_duration_seconds_count"
    assert _value(auth, count, service="auth", http_route="/auth/register",
                  http_response_status_code="201") >= 1  # fmt: skip
    assert _value(auth, count, service="auth", http_route="/auth/login",
                  http_response_status_code="200") >= 1  # fmt: skip
    assert _value(auth, "http_server_request_duration_seconds_bucket", service="auth",
                  http_route="/auth/login", le="+Inf") >= 1  # fmt: skip
    assert _value(auth, "tessera_events_published_total", service="auth",
                  event_type="auth.user.registered") >= 1  # fmt: skip
    assert {s.labels["state"] for s in auth if s.name == "tessera_outbox_rows"} == {
        "pending",
        "parked",
    }
    assert any(s.name == "tessera_outbox_oldest_pending_age_seconds" for s in auth)
    assert _value(auth, "db_client_connection_max", service="auth") > 0
    assert {s.labels["state"] for s in auth if s.name == "db_client_connection_count"} == {
        "used",
        "idle",
    }

    def handled() -> float:
        mailer = _samples(suite, "mailer", "mail")
        return _value(mailer, "tessera_events_consumed_total", service="mailer",
                      event_type="auth.user.registered", outcome="handled")  # fmt: skip

    assert wait_for(handled, timeout=10, what="the mailer counted the event it handled") >= 1
    mailer = _samples(suite, "mailer", "mail")
    roles = {s.labels["role"] for s in mailer if s.name == "tessera_queue_messages"}
    assert roles == {"main", "quarantine", "retry", "dead_letter"}
    assert _value(mailer, "messaging_process_duration_seconds_count", service="mailer") >= 1
