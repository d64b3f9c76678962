"""Schema-driven API tests: schemathesis fuzzes the OpenAPI of every service, in-process.

Each service's real app runs with its lifespan on this run's PostgreSQL, RabbitMQ and Redis
(schemathesis starts the lifespan on the event loop that then serves the requests). Every
documented operation gets its examples, coverage cases and ``MAX_EXAMPLES`` generated
requests, valid and invalid, and every answer must be no 5xx, a documented status code, a
documented content type, and match the documented schema. A service joins by being listed in
``SERVICES``.

Operations whose OpenAPI lists ``security`` get a real access token: a user registered and
logged in through auth's API. Operations that end the caller's session get a new user for
each request, so they cannot log the shared user out. Other services verify auth's tokens
with auth's JWKS, handed to them in-process instead of fetched over HTTP.

Generation is deterministic (fixed seed, no example database): a failure reproduces with the
same command. Go deeper or elsewhere with ``TESSERA_FUZZ_EXAMPLES=100 TESSERA_FUZZ_SEED=7``.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tessera.common import suite
from tessera.common.security import StaticKeySource
from tessera.common.testing import Infra, make_settings, prepare_database

# Every service; one that lands later joins the fuzzing by being listed here.
SERVICES = list(suite.specs())  # a service that lands joins by being installed

# Generated requests per operation in the fuzzing phase (the examples and coverage phases add
# a bounded, deterministic set of their own). The whole test stays within ~2 min on 2 cores.
MAX_EXAMPLES = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("TESSERA_FUZZ_SEED", "20260101"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

PASSWORD = "correct horse battery staple"
# Per-service settings. The outbox relay is off everywhere: this is about HTTP, and events on
# this run's exchange would reach the consumers of other tests in this process.
SETTINGS: dict[str, dict[str, Any]] = {
    # cheap hashing; limits and lockout would answer most generated logins with 429
    "auth": {
        "argon2": {"time_cost": 1, "memory_cost_kib": 8192, "parallelism": 1},
        "rate_limits": {"enabled": False},
    },
    # the console driver writes mail to the log instead of sending it
    "mailer": {"driver": "console"},
}

# Operations that end the caller's session, or every session: a new user for each request.
SESSION_ENDING = {
    ("POST", "/auth/logout"),
    ("DELETE", "/auth/me"),
    ("POST", "/auth/password/change"),
    ("DELETE", "/auth/sessions/{session_id}"),
}


def build_app(service: str, infra: Infra) -> FastAPI:
    """``tessera.<service>.app:create_app(settings)``, its schema migrated in this run's
    database."""
    app_module = importlib.import_module(f"tessera.{service}.app")
    settings_cls = importlib.import_module(f"tessera.{service}.settings").Settings
    overrides = {"broker": {"outbox_relay": False}, **SETTINGS.get(service, {})}
    settings = make_settings(settings_cls, infra, **overrides)
    prepare_database(settings, app_module.MIGRATIONS)
    app: FastAPI = app_module.create_app(settings)
    return app


def fuzz_config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # requests go to a real database: slower than Hypothesis expects of a test
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # the report already shows each failing request as a curl command; shrinking
                # it through the real database made one failing run take minutes
                "no-shrink": True,
            },
        }
    )


@dataclass
class Accounts:
    """Auth, running: the shared user's token, auth's JWKS, and ids that really exist."""

    client: asgi.ASGIClient
    token: str = ""
    jwks: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.request(method, path, json=body, headers=headers)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json()

    def new_user(self) -> tuple[str, str]:
        """Register and log in a new user through the API: (user id, access token)."""
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": PASSWORD, "full_name": "Fuzz"}
        user = self.call("POST", "/auth/register", body)
        tokens = self.call("POST", "/auth/login", {"email": email, "password": PASSWORD})
        return user["id"], tokens["access_token"]


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, FastAPI]]:
    """The apps started in this module, by service; their lifespans end with the module."""
    started: dict[str, FastAPI] = {}
    try:
        yield started
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def accounts(infra: Infra, apps: dict[str, FastAPI]) -> Iterator[Accounts]:
    apps["auth"] = build_app("auth", infra)
    with asgi.get_client(apps["auth"]) as client:  # starts the lifespan; ``apps`` ends it
        accounts = Accounts(client)
        user_id, accounts.token = accounts.new_user()
        org = accounts.call(
            "POST", "/auth/organisations", {"name": f"fuzz {user_id}"}, accounts.token
        )
        key = accounts.call("POST", "/auth/api-keys", {"name": "fuzz"}, accounts.token)
        accounts.ids = {"user_id": user_id, "organisation_id": org["id"], "key_id": key["id"]}
        accounts.jwks = accounts.call("GET", "/auth/.well-known/jwks.json")
        yield accounts


def _register_auth(schema: Any, accounts: Accounts) -> None:
    def secured(ctx: schemathesis.AuthContext) -> bool:
        return bool(ctx.operation.definition.raw.get("security"))

    def ends_session(ctx: schemathesis.AuthContext) -> bool:
        return (ctx.operation.method.upper(), ctx.operation.path) in SESSION_ENDING

    def bearer(case: schemathesis.Case, token: str) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    @schema.auth(refresh_interval=None).apply_to(ends_session)
    class NewUser:
        def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
            return accounts.new_user()[1]

        def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
            bearer(case, data)

    # a 401 is never a stale token here (it lives 15 min): no re-login and replay
    @schema.auth(retry_on=[]).apply_to(secured).skip_for(ends_session)
    class SharedUser:
        def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
            return accounts.token

        def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
            bearer(case, data)


@pytest.fixture(params=SERVICES)
def api_schema(
    request: pytest.FixtureRequest, infra: Infra, apps: dict[str, FastAPI], accounts: Accounts
) -> Any:
    """One service's OpenAPI, loaded from its running app, with auth providers."""
    service: str = request.param
    if service not in apps:
        apps[service] = build_app(service, infra)
    app = apps[service]
    schema = schemathesis.openapi.from_asgi(app.openapi_url or "", app, config=fuzz_config())
    if service != "auth":  # started by ``from_asgi``: verify auth's tokens with auth's keys
        app.state.runtime.verifier.keys = StaticKeySource(accounts.jwks)
    _register_auth(schema, accounts)
    return schema


@pytest.fixture(autouse=True)
def _operation_node_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """schemathesis 4.32 names each operation's report by assigning ``item._nodeid``, which
    pytest 9.2 replaced with a structured ``_id``: map the one onto the other."""
    if hasattr(pytest.Function, "_nodeid"):
        return
    from _pytest.nodeid import coerce_node_id

    def get(item: pytest.Function) -> str:
        return item.nodeid

    def set_(item: pytest.Function, value: str) -> None:
        item._id = coerce_node_id(value)

    monkeypatch.setattr(pytest.Function, "_nodeid", property(get, set_), raising=False)


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.xdist_group("openapi_fuzz")
@pytest.mark.timeout(600)
# schemathesis's own strategies draw from `random` (seeded by Hypothesis: still deterministic)
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@fuzzed.parametrize()
def test_every_answer_is_documented(case: schemathesis.Case, accounts: Accounts) -> None:
    # half of the well-formed ids become ids that exist (decided by the generated id itself,
    # so deterministic): lookups then also find, rename, remove and revoke something
    for name, value in list((case.path_parameters or {}).items()):
        real = accounts.ids.get(name)
        if real and isinstance(value, str) and len(value) == 36 and value[-1] in "01234567":
            case.path_parameters[name] = real
    case.call_and_validate(checks=CHECKS)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_an_id_of_its_own(service: str, infra: Infra) -> None:
    """Client generators name their methods by ``operationId``: two operations sharing one
    (FastAPI gives a route of several methods one id) become one method, or none."""
    operations = build_app(service, infra).openapi()["paths"].values()
    ids = [operation["operationId"] for methods in operations for operation in methods.values()]

    assert sorted({i for i in ids if ids.count(i) > 1}) == []
