"""A running server picks up what is deployed: a new app is served, and a new version
with a changed policy applies from the next request, without a restart."""

from __future__ import annotations

import time

import httpx

from conftest import Server
from flowdesk.security.identity.users import create_user
from flowdesk.store.deploy import deploy

APP = "apiVersion: flowdesk/v1\nkind: App\nname: lab\nversion: {version}\ntitle: Lab\n"
ENTITY = """\
apiVersion: flowdesk/v1
kind: Entity
name: note
fields:
  title: {type: string, required: true}
  secret: {type: string}
"""
POLICY = """\
apiVersion: flowdesk/v1
kind: Policy
name: lab_access
grants:
  - roles: [agent]
    entity: note
    actions: [read, create]
    fields: {{hidden: [{hidden}]}}
"""


def _texts(version: str, hidden: str) -> dict[str, str]:
    return {"app.yaml": APP.format(version=version), "entities/note.yaml": ENTITY,
            "policies/access.yaml": POLICY.format(hidden=hidden)}


def _eventually(check, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server did not pick up the deploy"
        time.sleep(0.1)


def test_deploys_apply_without_a_restart(server: Server) -> None:
    with server.engine.begin() as connection:
        create_user(connection, "lab_agent", name="Lab agent", password="lab-agent-pass",
                    roles=["lab:agent"])
    token = httpx.post(f"{server.url}/api/v1/auth/token", data={
        "grant_type": "password", "username": "lab_agent", "password": "lab-agent-pass"})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        assert client.get("/api/v1/lab/note").json()["type"].endswith("/unknown-app")

        deploy(server.engine, _texts("1.0.0", "secret"), actor="test")
        _eventually(lambda: client.get("/api/v1/lab/note").status_code == 200)
        created = client.post("/api/v1/lab/note", json={"title": "hello"})
        assert created.status_code == 201, created.text
        assert "secret" not in created.json()
        refused = client.post("/api/v1/lab/note", json={"title": "x", "secret": "s"})
        assert refused.status_code == 403 and refused.json()["fields"] == ["secret"]

        deploy(server.engine, _texts("1.1.0", ""), actor="test")
        _eventually(lambda: "secret" in client.get("/api/v1/lab/note").json()["items"][0])
        allowed = client.post("/api/v1/lab/note", json={"title": "y", "secret": "s"})
        assert allowed.status_code == 201 and allowed.json()["secret"] == "s"
        assert "/api/v1/lab/openapi.json" in httpx.get(f"{server.url}/api/v1/apps").text
