"""The record endpoints over real HTTP: CRUD with ETag / If-Match, lists with filters,
sorts, cursors, search and fields, timelines, problem documents for every error."""

from __future__ import annotations

import httpx

from conftest import Server


def _problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/" + code) and body["status"] == status
    assert body["detail"]
    return body


def test_anonymous_calls_get_401_problem(server: Server) -> None:
    with server.client() as client:
        body = _problem(client.get("/api/v1/service_desk/ticket"), 401, "unauthorized")
    assert "bearer token" in body["detail"]


def test_create_read_update_delete_a_ticket(server: Server) -> None:
    with server.client("agent") as client:
        customer = client.get("/api/v1/service_desk/customer", params={"limit": 1}).json()
        customer_id = customer["items"][0]["id"]
        created = client.post("/api/v1/service_desk/ticket", json={
            "title": "VPN down in Shanghai office", "description": "Nobody can connect",
            "customer": customer_id, "category": "network", "channel": "phone"})
        assert created.status_code == 201, created.text
        ticket = created.json()
        assert created.headers["ETag"] == f'"{ticket["row_version"]}"'
        assert created.headers["Location"].endswith(f"/ticket/{ticket['id']}")
        assert ticket["number"].startswith("TCK-")
        url = f"/api/v1/service_desk/ticket/{ticket['id']}"

        read = client.get(url)
        assert read.status_code == 200 and read.json()["title"] == ticket["title"]
        assert client.get(url, headers={"If-None-Match": read.headers["ETag"]}).status_code == 304

        _problem(client.patch(url, json={"title": "x"}), 428, "if-match-required")
        changed = client.patch(url, json={"title": "VPN down (all sites)"},
                               headers={"If-Match": read.headers["ETag"]})
        assert changed.status_code == 200, changed.text
        assert changed.json()["row_version"] == ticket["row_version"] + 1
        stale = client.patch(url, json={"title": "late edit"},
                             headers={"If-Match": read.headers["ETag"]})
        body = _problem(stale, 412, "version-conflict")
        assert body["current_version"] == ticket["row_version"] + 1

        timeline = client.get(url + "/timeline").json()
        edits = [entry["action"] for entry in timeline if entry["action"] in ("create", "update")]
        assert edits[:2] == ["create", "update"]  # automations may add their own entries

        refused = client.delete(url, headers={"If-Match": changed.headers["ETag"]})
        assert "delete" in _problem(refused, 403, "forbidden")["detail"]
    with server.client("admin") as admin:
        assert admin.delete(url, headers={"If-Match": changed.headers["ETag"]}).status_code == 204
        _problem(admin.get(url), 404, "not-found")


def test_invalid_values_are_reported_per_field(server: Server) -> None:
    with server.client("agent") as client:
        response = client.post("/api/v1/service_desk/ticket",
                               json={"priority": "p9", "no_such_field": 1})
    body = _problem(response, 422, "validation-failed")
    fields = {error["field"] for error in body["errors"]}
    assert {"priority", "no_such_field", "title"} <= fields


def test_lists_filter_sort_page_and_count(server: Server) -> None:
    with server.client("admin") as client:
        first = client.get("/api/v1/service_desk/ticket", params={
            "filter": 'record.priority == "p1" || record.priority == "p2"',
            "sort": "-priority,id", "limit": 3, "count": "true",
            "fields": "title,priority"})
        assert first.status_code == 200, first.text
        page = first.json()
        assert len(page["items"]) == 3 and page["total"] >= 3
        assert set(page["items"][0]) >= {"id", "title", "priority"}
        assert all(item["priority"] in ("p1", "p2") for item in page["items"])
        seen = [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        while cursor:
            more = client.get("/api/v1/service_desk/ticket", params={
                "filter": 'record.priority == "p1" || record.priority == "p2"',
                "sort": "-priority,id", "limit": 3, "cursor": cursor,
                "fields": "title,priority"}).json()
            seen += [item["id"] for item in more["items"]]
            cursor = more["next_cursor"]
        assert len(seen) == len(set(seen)) == page["total"]
        bad = client.get("/api/v1/service_desk/ticket", params={"filter": "record.nope == 1"})
        _problem(bad, 400, "invalid-query")


def test_unknown_app_and_entity_are_404_problems(server: Server) -> None:
    with server.client("admin") as client:
        _problem(client.get("/api/v1/nothing/ticket"), 404, "unknown-app")
        _problem(client.get("/api/v1/service_desk/nothing"), 404, "unknown-entity")
        _problem(client.get("/api/v1/service_desk/forms/nothing"), 404, "unknown-form")
