"""A user registers through the gateway, gets the verification email, logs in, and the
whole path — auth's HTTP span, the outbox publish, mailer's consumer, SMTP — is one trace."""

from __future__ import annotations

import re
import secrets
import uuid

import httpx
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from tessera_e2e_harness import SERVICES, OtlpReceiver, Suite, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]


def test_register_mail_login_me_is_one_trace(suite: Suite) -> None:
    email = f"e2e-{uuid.uuid4().hex[:12]}@Example.org"
    trace_id = secrets.token_hex(16)
    request_id = f"e2e-{uuid.uuid4().hex}"
    parent_span = secrets.token_hex(8)
    headers = {"traceparent": f"00-{trace_id}-{parent_span}-01", "X-Request-ID": request_id}
    # the client's own trace: sent as a header, and current too, because another test in
    # this process may have instrumented httpx, which would otherwise start a new trace
    client_span = NonRecordingSpan(
        SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(parent_span, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    token = otel_context.attach(trace.set_span_in_context(client_span))
    try:
        _register_mail_login_me(suite, email, headers, request_id)
    finally:
        otel_context.detach(token)
    _assert_one_trace(suite, trace_id)


def _register_mail_login_me(
    suite: Suite, email: str, headers: dict[str, str], request_id: str
) -> None:
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        created = client.post(
            "/auth/register",
            json={"email": email, "password": "a long enough passphrase", "full_name": "Ada E2E"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == request_id
        user = created.json()
        assert user["email_verified"] is False
        assert "password" not in created.text

        again = client.post(
            "/auth/register",
            json={"email": email.upper(), "password": "a long enough passphrase", "full_name": "X"},
        )
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")

        mails = wait_for(lambda: suite.smtp.to(email), timeout=30, what=f"the email to {email}")
        assert len(mails) == 1
        mail = mails[0].message
        assert "Confirm" in mail["Subject"]
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        link = re.search(r"(http://\S+/verify-email#token=[\w\-%]+)", text)
        assert link is not None, text
        assert link.group(1) in html
        assert link.group(1).startswith(suite.gateway)

        tokens = client.post(
            "/auth/login", json={"email": email, "password": "a long enough passphrase"}
        )
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] > 0
        assert body["refresh_token"]

        me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["id"] == user["id"]

        assert client.get("/auth/me").status_code == 401
        jwks = client.get("/auth/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert "max-age" in jwks.headers["cache-control"]


def _assert_one_trace(suite: Suite, trace_id: str) -> None:
    def whole_path_traced() -> bool:
        spans = suite.otlp.trace(trace_id)
        kinds = {(s.service, s.kind) for s in spans}
        return {
            ("auth", OtlpReceiver.SERVER),
            ("auth", OtlpReceiver.PRODUCER),
            ("mailer", OtlpReceiver.CONSUMER),
        } <= kinds and any(s.service == "mailer" and s.name == "smtp send" for s in spans)

    try:
        wait_for(whole_path_traced, timeout=20, what="auth, producer, consumer and smtp spans")
    except TimeoutError:
        seen = sorted({(s.service, s.kind, s.name) for s in suite.otlp.trace(trace_id)})
        pytest.fail(f"incomplete trace {trace_id}: {seen}\n{suite.diagnostics()}")

    spans = {s.span_id: s for s in suite.otlp.trace(trace_id)}
    server = next(
        s
        for s in spans.values()
        if s.service == "auth" and s.kind == OtlpReceiver.SERVER and "register" in s.name
    )
    producer = next(
        s for s in spans.values() if s.service == "auth" and s.kind == OtlpReceiver.PRODUCER
    )
    consumer = next(
        s for s in spans.values() if s.service == "mailer" and s.kind == OtlpReceiver.CONSUMER
    )
    smtp = next(s for s in spans.values() if s.name == "smtp send")

    def ancestors(span_id: str) -> list[str]:
        chain = []
        while span_id in spans:
            chain.append(span_id)
            span_id = spans[span_id].parent_span_id
        return chain

    assert server.span_id in ancestors(producer.span_id), "publish continues the request's span"
    assert producer.span_id in ancestors(consumer.span_id), "consumer continues the publish span"
    assert consumer.span_id in ancestors(smtp.span_id), "smtp send happens inside the consumer"
    assert producer.attributes.get("messaging.system") == "rabbitmq"
    assert consumer.attributes.get("messaging.system") == "rabbitmq"


@pytest.mark.parametrize("prefix", sorted(SERVICES.values()))
def test_every_service_answers_behind_the_gateway(suite: Suite, prefix: str) -> None:
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        assert client.get(f"/{prefix}/healthz").json() == {"status": "ok"}
        ready = client.get(f"/{prefix}/readyz")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert {k: checks[k] for k in ("database", "broker", "redis")} == {
            "database": "ok",
            "broker": "ok",
            "redis": "ok",
        }
        assert checks["outbox"]["parked"] == 0
        assert set(checks["outbox"]) == {"pending", "parked", "oldest_pending_age_s"}
        openapi = client.get(f"/{prefix}/openapi.json")
        assert openapi.status_code == 200
        assert any(path.startswith(f"/{prefix}/") for path in openapi.json()["paths"])
        asyncapi = client.get(f"/{prefix}/asyncapi.json")
        assert asyncapi.status_code == 200
        assert asyncapi.json()["asyncapi"].startswith("3.")


def test_gateway_answers_unknown_paths_with_problem_json(suite: Suite) -> None:
    response = httpx.get(f"{suite.gateway}/nowhere", timeout=5)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers.get("x-request-id")
