"""The leak matrix: for every shipped app, every role x entity x field x action,
through the real HTTP API, what the policies forbid is refused and what they allow
works.

The expectations are generated from the policy documents by the security library
(`Authorizer`, whose agreement with Casbin's own `enforce` is proven in
tests/unit/security; `field_access`); the requests are what any client sends. Writes
are probed with a stale `If-Match`, so an allowed change gets 412 (or 404 outside the
caller's scope) and a forbidden one 403 naming the field: the matrix changes no data.
One user per (app, role) holds that role only, in the demo agent's department.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from conftest import SECRET, Server
from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import LinesField
from flowdesk.model.policy import STANDARD_ROLES
from flowdesk.security import authorizer_for, field_access
from flowdesk.security.fields import FieldAccess, apply_mask
from flowdesk.security.identity.tokens import issue_token
from flowdesk.security.identity.users import create_user
from flowdesk.security.principal import principal_from_roles
from flowdesk.store import platform_tables as pt
from flowdesk.store.audit import PROCESS_KEYS

pytestmark = pytest.mark.slow


def app_roles(app: AppModel) -> list[str]:
    custom = {name for policy in app.policies.values() for name in policy.roles}
    return sorted(set(STANDARD_ROLES) | custom)


@dataclass
class Probe:
    """One role of one app, signed in as a user holding only that role."""

    app: AppModel
    role: str
    client: httpx.Client

    def allowed(self, entity: str, action: str) -> bool:
        principal = principal_from_roles(0, self.app.name, [self.role])
        return authorizer_for(self.app).allowed(principal, entity, action)

    def access(self, entity: str, action: str) -> FieldAccess:
        principal = principal_from_roles(0, self.app.name, [self.role])
        return field_access(principal, entity, self.app, action=action)


@pytest.fixture(scope="module")
def probes(server: Server) -> Iterator[list[Probe]]:
    with server.engine.begin() as connection:
        department = connection.execute(
            sa.select(pt.users.c.department_id).where(pt.users.c.username == "agent")
        ).scalar_one()
        made = []
        for app in server.apps.values():
            for role in app_roles(app):
                user_id = create_user(connection, f"lm_{app.name}_{role}", name=role,
                                      roles=[f"{app.name}:{role}"], policy=False)
                connection.execute(sa.update(pt.users).where(pt.users.c.id == user_id)
                                   .values(department_id=department))
                made.append((app, role, user_id))
    result = []
    for app, role, user_id in made:
        token = issue_token(SECRET, user_id).token
        client = httpx.Client(base_url=server.url, timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        result.append(Probe(app, role, client))
    yield result
    for probe in result:
        probe.client.close()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("admin") as client:
        yield client


def _scalar_fields(app: AppModel, entity: str) -> list[str]:
    return [name for name, spec in app.entities[entity].fields.items()
            if not isinstance(spec, LinesField)
            and spec.type not in ("references", "json", "attachment")
            and not getattr(spec, "multiple", False)]


def _sample_ids(admin: httpx.Client, app: str, entity: str) -> list[int]:
    page = admin.get(f"/api/v1/{app}/{entity}", params={"limit": 5, "fields": "id"})
    assert page.status_code == 200, page.text
    return [item["id"] for item in page.json()["items"]]


def _refused(response: httpx.Response, field: str | None = None) -> bool:
    if response.status_code != 403:
        return False
    body = response.json()
    return field is None or field in body.get("fields", []) or f"`{field}`" in body["detail"]


def test_reads_show_exactly_the_readable_fields_in_scope(
    probes: list[Probe], admin: httpx.Client
) -> None:
    checked = 0
    for probe in probes:
        app = probe.app.name
        for entity in probe.app.entities:
            response = probe.client.get(f"/api/v1/{app}/{entity}", params={"limit": 50})
            if not probe.allowed(entity, "read"):
                assert _refused(response), (app, probe.role, entity, response.text)
                continue
            assert response.status_code == 200, (app, probe.role, entity, response.text)
            access = probe.access(entity, "read")
            for item in response.json()["items"]:
                hidden = set(item) - access.readable
                assert not hidden, f"{app}.{entity} leaks {hidden} to {probe.role}"
                if access.masked:
                    clear = admin.get(f"/api/v1/{app}/{entity}/{item['id']}").json()
                    for name, pattern in access.masked.items():
                        if name in item and clear.get(name) is not None:
                            assert item[name] == apply_mask(clear[name], pattern), name
                            assert item[name] != clear[name] or clear[name] == "", name
                checked += 1
    assert checked > 100  # the demo data makes the read checks meaningful


def test_sorting_and_filtering_is_refused_on_fields_not_readable_in_clear(
    probes: list[Probe]
) -> None:
    refused = 0
    for probe in probes:
        app = probe.app.name
        for entity in probe.app.entities:
            if not probe.allowed(entity, "read"):
                continue
            access = probe.access(entity, "read")
            for name in _scalar_fields(probe.app, entity):
                sort = probe.client.get(f"/api/v1/{app}/{entity}",
                                        params={"limit": 1, "sort": name})
                where = probe.client.get(f"/api/v1/{app}/{entity}",
                                         params={"limit": 1, "filter": f"record.{name} == null"})
                if access.shows_clear(name):
                    assert sort.status_code == 200, (app, probe.role, entity, name, sort.text)
                    assert where.status_code in (200, 400), (app, probe.role, name, where.text)
                else:
                    assert _refused(sort, name), (app, probe.role, entity, name, sort.text)
                    assert _refused(where, name), (app, probe.role, entity, name, where.text)
                    refused += 1
    assert refused > 0  # the shipped policies hide or mask something


def test_writes_are_refused_exactly_where_the_policies_refuse_them(
    probes: list[Probe], admin: httpx.Client
) -> None:
    stale = {"If-Match": '"0"'}
    outcomes = {"refused": 0, "allowed": 0}
    for probe in probes:
        app = probe.app.name
        for entity, spec in probe.app.entities.items():
            ids = _sample_ids(admin, app, entity)
            may_create = probe.allowed(entity, "create")
            created = probe.client.post(f"/api/v1/{app}/{entity}", json={"_probe": 1})
            assert (created.status_code == 403) != may_create, (app, probe.role, entity,
                                                                created.text)
            may_update = probe.allowed(entity, "update")
            writable = probe.access(entity, "update").writable if may_update else frozenset()
            for name, field in spec.fields.items():
                if not ids:
                    break
                patch = probe.client.patch(f"/api/v1/{app}/{entity}/{ids[0]}",
                                           json={name: None}, headers=stale)
                if name in writable and field.computed is None:
                    assert patch.status_code in (404, 412), (app, probe.role, entity, name,
                                                             patch.text)
                    outcomes["allowed"] += 1
                else:
                    assert _refused(patch, name if may_update else None), (
                        app, probe.role, entity, name, patch.text)
                    outcomes["refused"] += 1
            if ids:
                removed = probe.client.delete(f"/api/v1/{app}/{entity}/{ids[0]}", headers=stale)
                if probe.allowed(entity, "delete"):
                    assert removed.status_code in (404, 412), (app, probe.role, entity,
                                                               removed.text)
                else:
                    assert _refused(removed), (app, probe.role, entity, removed.text)
    assert outcomes["refused"] > 0 and outcomes["allowed"] > 0


def test_forms_and_timelines_show_only_readable_fields(
    probes: list[Probe], admin: httpx.Client
) -> None:
    for probe in probes:
        app = probe.app.name
        for name, form in probe.app.forms.items():
            response = probe.client.get(f"/api/v1/{app}/forms/{name}")
            if not probe.allowed(form.entity, "read"):
                assert response.status_code in (403,), (app, probe.role, name, response.text)
                continue
            assert response.status_code == 200, (app, probe.role, name, response.text)
            readable = probe.access(form.entity, "read").readable
            shown = {f["field"] for s in response.json()["sections"] for f in s["fields"]}
            assert shown <= readable, f"form {name} shows {shown - readable} to {probe.role}"
        for entity in probe.app.entities:
            if not probe.allowed(entity, "read"):
                continue
            page = probe.client.get(f"/api/v1/{app}/{entity}", params={"limit": 1}).json()
            if not page["items"]:
                continue
            record_id = page["items"][0]["id"]
            timeline = probe.client.get(f"/api/v1/{app}/{entity}/{record_id}/timeline")
            assert timeline.status_code == 200, timeline.text
            readable = probe.access(entity, "read").readable
            for entry in timeline.json():
                leaked = set(entry["changes"] or {}) - readable - PROCESS_KEYS
                assert not leaked, f"{app}.{entity} timeline leaks {leaked} to {probe.role}"
