"""Every route under every role: the expected answer of each cell is written in the table
below, not derived from the code's own permission matrix.

Columns: the applet's owner, a manager, a coordinator, an editor, a reviewer, a respondent,
an admin of the applet's organisation (acts as a manager), someone with a role on another
applet only, and someone with no role at all (who is told the applet does not exist).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tessera.applets.examples import example_applet

from .conftest import Person, World

WHO = ("owner", "manager", "coordinator", "editor", "reviewer", "respondent", "org_admin",
       "other", "nobody")  # fmt: skip

Request = tuple[str, str, dict[str, Any] | None]


@dataclass
class Stage:
    """The applet and its people; what a case needs to prepare its request."""

    world: World
    applet: dict[str, Any]
    people: dict[str, Person]

    @property
    def path(self) -> str:
        return f"/applets/{self.applet['id']}"

    async def invitation(self, role: str) -> str:
        invitation, _ = await self.world.invite(
            self.applet["id"], self.people["owner"], f"x-{uuid.uuid4().hex[:10]}@example.org", role
        )
        return str(invitation["id"])

    async def throwaway(self, role: str) -> Person:
        someone = await self.world.person("Temp")
        await self.world.grant(self.applet["id"], self.people["owner"], someone, role)
        return someone


Prepare = Callable[[Stage], Awaitable[Request]]


def fixed(method: str, suffix: str, body: dict[str, Any] | None = None) -> Prepare:
    async def prepare(stage: Stage) -> Request:
        return method, stage.path + suffix, body

    return prepare


def content_edit(stage: Stage) -> Awaitable[Request]:
    async def prepare() -> Request:
        body = example_applet() | {"display_name": f"Edited {uuid.uuid4().hex[:6]}"}
        return "PUT", stage.path, body

    return prepare()


async def resend(stage: Stage, role: str) -> Request:
    return "POST", f"{stage.path}/invitations/{await stage.invitation(role)}/resend", None


async def revoke(stage: Stage) -> Request:
    return "DELETE", f"{stage.path}/invitations/{await stage.invitation('respondent')}", None


async def remove(stage: Stage, role: str) -> Request:
    someone = await stage.throwaway(role)
    return "DELETE", f"{stage.path}/roles/{someone.id}/{role}", None


async def assign(stage: Stage) -> Request:
    reviewer, respondent = stage.people["reviewer"], stage.people["respondent"]
    return (
        "PUT",
        f"{stage.path}/reviewers/{reviewer.id}/respondents",
        {"respondents": [str(respondent.id)]},
    )


def invite(role: str) -> Prepare:
    async def prepare(stage: Stage) -> Request:
        email = f"new-{uuid.uuid4().hex[:10]}@example.org"
        return "POST", f"{stage.path}/invitations", {"email": email, "role": role}

    return prepare


# fmt: off
#            owner manager coord editor review respond orgadm other nobody
TABLE: list[tuple[str, Prepare, tuple[int, ...]]] = [
    ("read the applet", fixed("GET", ""),
                (200, 200, 200, 200, 200, 200, 200, 404, 404)),
    ("replace the content", content_edit,
                (200, 200, 403, 200, 403, 403, 200, 404, 404)),
    ("patch the applet", fixed("PATCH", "", {"about": {"en": "x"}}),
                (200, 200, 403, 200, 403, 403, 200, 404, 404)),
    ("duplicate", fixed("POST", "/duplicate", {}),
                (201, 201, 403, 201, 403, 403, 201, 404, 404)),
    ("publish", fixed("POST", "/publish"),
                (200, 200, 403, 403, 403, 403, 200, 404, 404)),
    ("make a public link", fixed("POST", "/public-link"),
                (201, 201, 403, 403, 403, 403, 201, 404, 404)),
    ("stop the public link", fixed("DELETE", "/public-link"),
                (204, 204, 403, 403, 403, 403, 204, 404, 404)),
    ("list versions", fixed("GET", "/versions"),
                (200, 200, 200, 200, 200, 403, 200, 404, 404)),
    ("read a version", fixed("GET", "/versions/1.0.0"),
                (200, 200, 200, 200, 200, 403, 200, 404, 404)),
    ("read a version's changes", fixed("GET", "/versions/1.0.0/changes"),
                (200, 200, 200, 200, 200, 403, 200, 404, 404)),
    ("export as ReproSchema", fixed("GET", "/export/reproschema"),
                (200, 200, 403, 200, 403, 403, 200, 404, 404)),
    ("list roles", fixed("GET", "/roles"),
                (200, 200, 200, 403, 403, 403, 200, 404, 404)),
    ("invite an editor", invite("editor"),
                (201, 201, 403, 403, 403, 403, 201, 404, 404)),
    ("invite a manager", invite("manager"),
                (201, 201, 403, 403, 403, 403, 201, 404, 404)),
    ("invite a respondent", invite("respondent"),
                (201, 201, 201, 403, 403, 403, 201, 404, 404)),
    ("invite a reviewer", invite("reviewer"),
                (201, 201, 201, 403, 403, 403, 201, 404, 404)),
    ("list invitations", fixed("GET", "/invitations"),
                (200, 200, 200, 403, 403, 403, 200, 404, 404)),
    ("resend a respondent's invitation", lambda s: resend(s, "respondent"),
                (200, 200, 200, 403, 403, 403, 200, 404, 404)),
    ("resend an editor's invitation", lambda s: resend(s, "editor"),
                (200, 200, 403, 403, 403, 403, 200, 404, 404)),
    ("revoke an invitation", revoke,
                (204, 204, 204, 403, 403, 403, 204, 404, 404)),
    ("remove a respondent", lambda s: remove(s, "respondent"),
                (204, 204, 204, 403, 403, 403, 204, 404, 404)),
    ("remove an editor", lambda s: remove(s, "editor"),
                (204, 204, 403, 403, 403, 403, 204, 404, 404)),
    ("remove the owner", lambda s: fixed(
        "DELETE", f"/roles/{s.people['owner'].id}/owner")(s),
                (409, 409, 409, 409, 409, 409, 409, 404, 404)),
    ("assign a reviewer's respondents", assign,
                (200, 200, 200, 403, 403, 403, 200, 404, 404)),
    ("offer the ownership", fixed("POST", "/transfer", {"email": "heir@example.org"}),
                (201, 403, 403, 403, 403, 403, 403, 404, 404)),
]
# fmt: on
#                                owner manager coord editor review respond orgadm other nobody
DELETE_EXPECTED = (204, 204, 403, 403, 403, 403, 204, 404, 404)
LISTED_EXPECTED = (True, True, True, True, True, True, True, False, False)


async def _stage(world: World) -> Stage:
    owner = await world.person("Owner")
    org_admin = await world.person("Admin")
    org = await world.organisation(org_admin)
    await world.member(org, owner, "member")
    people = {"owner": owner, "org_admin": org_admin}
    applet = await world.applet(owner, org)
    for role in ("manager", "coordinator", "editor", "reviewer", "respondent"):
        people[role] = await world.person(role.title())
        await world.grant(applet["id"], owner, people[role], role)
    people["other"] = await world.person("Other")
    elsewhere = await world.organisation(people["other"])
    await world.applet(people["other"], elsewhere)
    people["nobody"] = await world.person("Nobody")
    published = await world.client.post(
        f"/applets/{applet['id']}/publish", headers=world.headers(owner)
    )
    assert published.status_code == 200
    return Stage(world, applet, people)


async def test_every_route_under_every_role_answers_as_the_table_says(world: World) -> None:
    stage = await _stage(world)
    mismatches = []
    for name, prepare, expected in TABLE:
        for who, status in zip(WHO, expected, strict=True):
            method, path, body = await prepare(stage)
            response = await world.client.request(
                method, path, json=body, headers=world.headers(stage.people[who])
            )
            if response.status_code != status:
                mismatches.append(f"{name} as {who}: {response.status_code}, expected {status} "
                                  f"({response.text[:120]})")  # fmt: skip
            if response.status_code >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert not mismatches, "\n".join(mismatches)


async def test_deleting_under_every_role_answers_as_the_table_says(world: World) -> None:
    """Deleting runs against an applet of its own wherever the table says it succeeds."""
    shared = await _stage(world)
    mismatches = []
    for who, status in zip(WHO, DELETE_EXPECTED, strict=True):
        stage = await _stage(world) if status == 204 else shared
        response = await world.client.delete(stage.path, headers=world.headers(stage.people[who]))
        if response.status_code != status:
            mismatches.append(f"delete as {who}: {response.status_code}, expected {status}")
    assert not mismatches, "\n".join(mismatches)


async def test_the_list_shows_the_applet_to_exactly_those_with_a_role(world: World) -> None:
    stage = await _stage(world)
    for who, listed in zip(WHO, LISTED_EXPECTED, strict=True):
        response = await world.client.get(
            "/applets", params={"limit": 200}, headers=world.headers(stage.people[who])
        )
        ids = {a["id"] for a in response.json()["items"]}
        assert (stage.applet["id"] in ids) is listed, who


async def test_a_respondent_sees_no_people_and_no_hidden_parts(world: World) -> None:
    owner = await world.person("Owner")
    org = await world.organisation(owner)
    document = example_applet()
    document["activities"][0]["items"][5]["is_hidden"] = True
    applet = await world.applet(owner, org, document)
    respondent = await world.person("Resp")
    await world.grant(applet["id"], owner, respondent, "respondent", nickname="R1")
    path = f"/applets/{applet['id']}"

    concealed = await world.client.get(path, headers=world.headers(respondent))
    await world.client.post(f"{path}/publish", headers=world.headers(owner))
    shown = await world.client.get(path, headers=world.headers(respondent))
    roles = await world.client.get(f"{path}/roles", headers=world.headers(respondent))

    assert concealed.status_code == 403
    assert concealed.json()["code"] == "applet_concealed"
    assert shown.status_code == 200
    assert shown.json()["my_roles"] == ["respondent"]
    assert "diary" not in [i["name"] for i in shown.json()["activities"][0]["items"]]
    assert roles.status_code == 403
    left = await world.client.delete(
        f"{path}/roles/{respondent.id}/respondent", headers=world.headers(respondent)
    )
    assert left.status_code == 204  # anyone may leave a role of their own
    gone = await world.client.get(path, headers=world.headers(respondent))
    assert gone.status_code == 404
