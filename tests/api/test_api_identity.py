"""Signing in over HTTP: the token endpoint's grants and errors, API keys, web sessions
with their CSRF token, lockout and rate limiting, and a credential limited to one app."""

from __future__ import annotations

import httpx
import pytest

from conftest import Server
from flowdesk.security.identity.apikeys import create_api_key, revoke_api_key


def test_password_grant_errors_follow_rfc_6749(server: Server) -> None:
    url = f"{server.url}/api/v1/auth/token"
    wrong = httpx.post(url, data={"grant_type": "password", "username": "agent",
                                  "password": "nope"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    odd = httpx.post(url, data={"grant_type": "implicit"})
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"
    good = httpx.post(url, data={"grant_type": "password", "username": "agent",
                                 "password": "agent"})
    body = good.json()
    assert good.status_code == 200 and body["token_type"].lower() == "bearer"
    assert body["expires_in"] <= 900 and good.headers["cache-control"] == "no-store"


def test_a_tampered_token_is_refused(server: Server) -> None:
    token = server.token("agent")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = httpx.get(f"{server.url}/api/v1/auth/me",
                         headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401 and response.json()["type"].endswith("/invalid-token")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_api_keys_work_until_revoked_and_can_be_limited_to_one_app(server: Server) -> None:
    with server.engine.begin() as connection:
        text, key = create_api_key(connection, server.users["supervisor"], "ci",
                                   app="service_desk")
    headers = {"X-API-Key": text}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        me = client.get("/api/v1/auth/me").json()
        assert me["via"] == "apikey" and set(me["roles"]) == {"service_desk"}
        assert client.get("/api/v1/service_desk/ticket", params={"limit": 1}).status_code == 200
        other = client.get("/api/v1/procurement/purchase_request", params={"limit": 1})
        assert other.status_code == 403 and other.json()["type"].endswith("/app-not-allowed")
    granted = httpx.post(f"{server.url}/api/v1/auth/token", data={
        "grant_type": "client_credentials", "client_id": key.prefix, "client_secret": text})
    assert granted.status_code == 200, granted.text
    with server.engine.begin() as connection:
        assert revoke_api_key(connection, key.prefix)
    fresh = httpx.get(f"{server.url}/api/v1/auth/me", headers={"X-API-Key": text + "x"})
    assert fresh.status_code == 401 and fresh.json()["type"].endswith("/invalid-api-key")


def test_a_session_needs_its_csrf_token_for_writes(server: Server) -> None:
    with httpx.Client(base_url=server.url) as browser:
        login = browser.post("/api/v1/auth/login", json={"username": "agent",
                                                          "password": "agent"})
        assert login.status_code == 200, login.text
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        csrf = login.json()["csrf_token"]
        assert browser.get("/api/v1/service_desk/ticket", params={"limit": 1}).status_code == 200
        body = {"title": "From the browser", "customer": 1, "channel": "web"}
        refused = browser.post("/api/v1/service_desk/ticket", json=body)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/csrf-rejected")
        accepted = browser.post("/api/v1/service_desk/ticket", json=body,
                                headers={"X-CSRF-Token": csrf})
        assert accepted.status_code in (201, 422), accepted.text
        assert browser.post("/api/v1/auth/logout",
                            headers={"X-CSRF-Token": csrf}).status_code == 204
        assert browser.get("/api/v1/auth/me").status_code == 401


@pytest.mark.slow
def test_repeated_failures_lock_the_account_name(server: Server) -> None:
    url = f"{server.url}/api/v1/auth/login"
    name = f"nobody_{server.database_url.split(':')[0]}"  # a fresh name per database run
    statuses = [httpx.post(url, json={"username": name, "password": "x"}).status_code
                for _ in range(5)]
    assert statuses == [401] * 5
    locked = httpx.post(url, json={"username": name, "password": "x"})
    assert locked.status_code in (403, 429)
    assert locked.json()["type"].rsplit("/", 1)[1] in ("account-locked", "too-many-attempts")
