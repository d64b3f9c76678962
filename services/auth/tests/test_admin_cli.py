"""``tessera-auth create-user | grant-superadmin | create-organisation`` against real Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tessera.auth.admin import register_admin_commands
from tessera.auth.settings import Settings
from tessera.common.testing import in_thread


@pytest.fixture
def admin_cli(auth_settings: Settings) -> typer.Typer:
    cli = typer.Typer()
    register_admin_commands(cli, settings=lambda: auth_settings)
    return cli


def _run(cli: typer.Typer, *args: str) -> Any:
    # the commands call asyncio.run: keep them off the test's event loop
    return in_thread(CliRunner().invoke, cli, list(args))


async def test_create_a_superadmin_and_an_organisation_from_the_command_line(
    admin_cli: typer.Typer, query: Any
) -> None:
    email = f"cli-{uuid.uuid4().hex[:10]}@example.org"
    created = _run(
        admin_cli,
        "create-user",
        email,
        "--full-name",
        "Root",
        "--password",
        "an admin passphrase 42",
        "--superadmin",
    )
    assert created.exit_code == 0, created.output
    [(is_superadmin, password_hash)] = await query(
        "SELECT is_superadmin, password_hash FROM users WHERE email_normalized = :e", e=email
    )
    assert is_superadmin is True
    assert password_hash.startswith("$argon2id$")

    name = f"CLI Org {uuid.uuid4().hex[:6]}"
    org = _run(admin_cli, "create-organisation", name, "--admin", email)
    assert org.exit_code == 0, org.output
    [(role,)] = await query(
        "SELECT m.role FROM memberships m JOIN organisations o ON o.id = m.organisation_id "
        "JOIN users u ON u.id = m.user_id WHERE o.name = :n AND u.email_normalized = :e",
        n=name,
        e=email,
    )
    assert role == "admin"
    events = await query(
        "SELECT event_type FROM outbox WHERE payload->'data'->>'name' = :n", n=name
    )
    assert [e[0] for e in events] == ["auth.organisation.created"]


async def test_grant_superadmin_to_an_unknown_email_fails_clearly(admin_cli: typer.Typer) -> None:
    result = _run(admin_cli, "grant-superadmin", f"nobody-{uuid.uuid4().hex}@example.org")
    assert result.exit_code != 0
    assert "no user with email" in result.output


async def test_grant_superadmin_is_audited(
    admin_cli: typer.Typer, register: Any, query: Any
) -> None:
    user = await register()
    result = _run(admin_cli, "grant-superadmin", user["email"])
    assert result.exit_code == 0, result.output
    rows = await query(
        "SELECT action, after FROM audit_log WHERE target_id = :id AND action = :a",
        id=user["id"],
        a="user.superadmin_granted",
    )
    assert len(rows) == 1
    assert rows[0][1] == {"is_superadmin": True}
