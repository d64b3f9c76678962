"""The superadmin routes: the delivery log, suppressed addresses, retrying a failed email; and
the per-recipient limit. Over real SMTP, RabbitMQ and PostgreSQL, through the mailer's HTTP app."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tessera.common.messaging.rabbit import Topology
from tessera.common.testing import Infra

from .test_account_mails import _envelope
from .test_delivery_states import _settled
from .test_verification_mail import _wait_for_dead_letter

pytestmark = pytest.mark.timeout(60)


async def test_the_delivery_log_is_for_superadmins_only(
    client: httpx.AsyncClient, tokens: Any, superadmin: dict[str, str]
) -> None:
    anonymous = await client.get("/mail/deliveries")
    someone = await client.get("/mail/deliveries", headers=tokens.bearer(uuid.uuid4()))
    admin = await client.get("/mail/deliveries", headers=superadmin)

    assert anonymous.status_code == 401
    assert someone.status_code == 403
    assert someone.headers["content-type"].startswith("application/problem+json")
    assert someone.json()["code"] == "not_superadmin"
    assert admin.status_code == 200
    for path in ("/mail/suppressions", f"/mail/deliveries/{uuid.uuid4()}"):
        assert (await client.get(path, headers=tokens.bearer(uuid.uuid4()))).status_code == 403
    retry = await client.post(
        f"/mail/deliveries/{uuid.uuid4()}/retry", headers=tokens.bearer(uuid.uuid4())
    )
    assert retry.status_code == 403


async def test_the_log_filters_and_pages_and_names_a_bad_filter(
    client: httpx.AsyncClient,
    superadmin: dict[str, str],
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
) -> None:
    events = [new_event() for _ in range(3)]
    reset = _envelope("auth.password.recovery_requested", email=events[0]["data"]["email"])
    for event in [*events, reset]:
        await publish(event)
    for event in [*events, reset]:
        await _settled(query, event, "sent")

    async def get(**params: Any) -> Any:
        response = await client.get("/mail/deliveries", params=params, headers=superadmin)
        assert response.status_code == 200, response.text
        return response.json()

    mine = await get(recipient=events[0]["data"]["email"].upper())
    assert mine["total"] == 2
    assert {d["template"] for d in mine["items"]} == {"verify_email", "password_reset"}
    assert [d["event_id"] for d in mine["items"]] == [reset["id"], events[0]["id"]]  # newest first

    one = await get(event_id=events[1]["id"])
    assert one["total"] == 1
    [item] = one["items"]
    assert item["status"] == "sent"
    assert item["recipient"] == events[1]["data"]["email"]
    assert item["message_id"] == smtp.to(item["recipient"])[0].message["Message-ID"]
    assert "token" not in str(item)

    resets = await get(template="password_reset", recipient=events[0]["data"]["email"])
    assert [d["event_id"] for d in resets["items"]] == [reset["id"]]
    first, second = await get(status="sent", limit=1), await get(status="sent", limit=1, offset=1)
    assert first["total"] == second["total"] >= 4
    assert first["items"][0]["id"] != second["items"][0]["id"]

    detail = await client.get(f"/mail/deliveries/{item['id']}", headers=superadmin)
    assert detail.json() == item

    bad = await client.get("/mail/deliveries", params={"status": "lost"}, headers=superadmin)
    assert bad.status_code == 422
    assert "status" in bad.text
    missing = await client.get(f"/mail/deliveries/{uuid.uuid4()}", headers=superadmin)
    assert (missing.status_code, missing.json()["code"]) == (404, "delivery_not_found")


async def test_a_refused_address_is_suppressed_until_a_superadmin_lifts_it(
    client: httpx.AsyncClient,
    superadmin: dict[str, str],
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
) -> None:
    first = new_event()
    address = first["data"]["email"]
    smtp.refuse_next(1, code=550)
    await publish(first)
    await _settled(query, first, "failed")

    listed = await client.get(
        "/mail/suppressions", params={"address": address.upper()}, headers=superadmin
    )
    [entry] = listed.json()["items"]
    assert entry["address"] == address.lower()
    assert entry["reason"].startswith("550")

    second = _envelope("auth.login_link.requested", email=address)
    await publish(second)
    row = await _settled(query, second, "suppressed")
    assert row.attempts == 0
    assert smtp.to(address) == []

    lifted = await client.delete(f"/mail/suppressions/{address}", headers=superadmin)
    assert lifted.status_code == 204
    again = await client.delete(f"/mail/suppressions/{address}", headers=superadmin)
    assert (again.status_code, again.json()["code"]) == (404, "address_not_suppressed")

    third = _envelope("auth.login_link.requested", email=address)
    await publish(third)
    await _settled(query, third, "sent")
    assert len(smtp.to(address)) == 1


async def _refused_for_good(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    smtp: Any,
    publish: Any,
    event: dict[str, Any],
    query: Any,
    infra: Infra,
    topology: Topology,
) -> dict[str, Any]:
    """Publish ``event``, have its email refused with a 550, and return its delivery as the
    log shows it once the event is in the DLQ."""
    smtp.refuse_next(1, code=550)
    await publish(event)
    await _settled(query, event, "failed")
    await _wait_for_dead_letter(infra, topology, event["id"])
    listed = await client.get("/mail/deliveries", params={"event_id": event["id"]}, headers=headers)
    [delivery] = listed.json()["items"]
    return dict(delivery)


async def test_a_failed_email_is_sent_again_from_the_dlq_on_request(
    client: httpx.AsyncClient,
    superadmin: dict[str, str],
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
    infra: Infra,
    topology: Topology,
) -> None:
    event = new_event()
    address = event["data"]["email"]
    delivery = await _refused_for_good(
        client, superadmin, smtp=smtp, publish=publish, event=event, query=query, infra=infra,
        topology=topology,
    )  # fmt: skip

    # the address is suppressed by the refusal: retrying first would only suppress it
    await client.delete(f"/mail/suppressions/{address}", headers=superadmin)
    retried = await client.post(f"/mail/deliveries/{delivery['id']}/retry", headers=superadmin)
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "queued"

    received = await smtp.wait_for(address)
    row = await _settled(query, event, "sent")
    assert received.message["Message-ID"] == delivery["message_id"]
    assert row.attempts == 1

    twice = await client.post(f"/mail/deliveries/{delivery['id']}/retry", headers=superadmin)
    assert (twice.status_code, twice.json()["code"]) == (409, "delivery_not_failed")
    await asyncio.sleep(0.3)
    assert len(smtp.to(address)) == 1


async def test_a_failed_email_whose_event_left_the_dlq_cannot_be_retried(
    client: httpx.AsyncClient,
    superadmin: dict[str, str],
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
    infra: Infra,
    topology: Topology,
) -> None:
    from tessera.common.testing.broker import take

    event = new_event()
    delivery = await _refused_for_good(
        client, superadmin, smtp=smtp, publish=publish, event=event, query=query, infra=infra,
        topology=topology,
    )  # fmt: skip
    await take(infra.rabbitmq, topology.dlq, expect=1)  # an operator purged it

    retried = await client.post(f"/mail/deliveries/{delivery['id']}/retry", headers=superadmin)

    assert (retried.status_code, retried.json()["code"]) == (409, "event_not_in_dlq")
    after = (await client.get(f"/mail/deliveries/{delivery['id']}", headers=superadmin)).json()
    assert (after["status"], after["attempts"]) == ("failed", 1)


@pytest.mark.mailer_settings(recipient_limit={"limit": 2, "window_s": 3600})
async def test_past_the_recipient_limit_an_email_is_recorded_as_limited_not_sent(
    smtp: Any, publish: Any, query: Any
) -> None:
    address = f"target-{uuid.uuid4().hex[:10]}@example.com"
    requests = [_envelope("auth.login_link.requested", email=address) for _ in range(3)]
    for request in requests[:2]:
        await publish(request)
        await _settled(query, request, "sent")

    await publish(requests[2])
    row = await _settled(query, requests[2], "limited")

    assert "2 emails" in row.last_error
    assert row.attempts == 0
    await asyncio.sleep(0.3)
    assert len(smtp.to(address)) == 2
