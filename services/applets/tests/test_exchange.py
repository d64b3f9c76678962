"""ReproSchema import and export through the API: the published PHQ-9 becomes an applet,
and an exported applet imports back into an equal one."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from tessera.applets.examples import example_applet

from .conftest import World

LIBRARY = Path(__file__).parent / "data" / "reproschema"


def _zipped(folder: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((LIBRARY / folder).rglob("*")):
            if path.is_file():
                archive.writestr(str(path.relative_to(LIBRARY)), path.read_bytes())
    return buffer.getvalue()


SERVERS = ("id", "activity_ids", "created_at", "updated_at", "version")


def _without_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_ids(v) for k, v in node.items() if k not in SERVERS}
    if isinstance(node, list):
        return [_without_ids(v) for v in node]
    return node


async def test_the_published_phq9_imports_as_an_applet_naming_what_it_could_not_map(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)

    response = await world.client.post(
        "/applets/import/reproschema",
        params={"organisation_id": str(org)},
        content=_zipped("activities/PHQ-9"),
        headers=world.headers(ada) | {"content-type": "application/zip"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    applet = body["applet"]
    assert applet["version"] == "1.0.0"
    [activity] = applet["activities"]
    questions = [i for i in activity["items"] if i["response_type"] == "singleSelect"]
    assert len(questions) == 10
    assert questions[0]["response_values"]["options"][0]["text"] == "Not at all"
    assert {u["field"] for u in body["unsupported"]}  # each one named, with why
    assert all(u["reason"] for u in body["unsupported"])
    await world.bus.one("applets.applet.version_published", applet_id=applet["id"])


async def test_an_exported_applet_imports_back_into_an_equal_applet(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    original = await world.applet(ada, org, example_applet())

    exported = await world.client.get(
        f"/applets/{original['id']}/export/reproschema", headers=world.headers(ada)
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    imported = await world.client.post(
        "/applets/import/reproschema",
        params={"organisation_id": str(org)},
        content=exported.content,
        headers=world.headers(ada) | {"content-type": "application/zip"},
    )

    assert imported.status_code == 201, imported.text
    copy = imported.json()["applet"]
    assert copy["id"] != original["id"]
    assert imported.json()["unsupported"] == []
    assert _without_ids(copy) == _without_ids(original)


async def test_what_is_not_a_bundle_is_refused_naming_why(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)

    garbage = await world.client.post(
        "/applets/import/reproschema",
        params={"organisation_id": str(org)},
        content=b"PK\x03\x04 not really a zip",
        headers=world.headers(ada) | {"content-type": "application/zip"},
    )
    text = await world.client.post(
        "/applets/import/reproschema",
        params={"organisation_id": str(org)},
        content=b"hello",
        headers=world.headers(ada) | {"content-type": "text/plain"},
    )

    assert garbage.status_code == 422
    assert garbage.json()["code"] == "invalid_bundle"
    assert garbage.json()["errors"][0]["field"]
    assert text.status_code == 415
