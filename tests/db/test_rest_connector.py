"""The procurement budget check over real HTTP: a local finance service (OAuth2
client-credentials token endpoint and the budget API) answers the service state
through `RestCaller`, on SQLite and PostgreSQL; its token is fetched once and reused,
a failing service routes the request to `budget_check_failed`."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from test_workflow_apps import procurement, request

from flowdesk.integrations.rest import RestCaller
from flowdesk.jobs.worker import Worker


class FinanceService:
    """Loopback finance system: `/oauth/token` and `/budget/v1/budgets/<code>/remaining`."""

    def __init__(self, remaining: float, *, fail: bool = False) -> None:
        self.remaining, self.fail = remaining, fail
        self.tokens = 0
        self.calls: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                basic = base64.b64decode(self.headers["Authorization"].split()[1]).decode()
                if self.path != "/oauth/token" or basic != "flowdesk-procurement:s3cret" \
                        or form["grant_type"] != ["client_credentials"]:
                    self._send(401, {"error": "invalid_client"})
                    return
                service.tokens += 1
                self._send(200, {"access_token": "tok-1", "token_type": "Bearer",
                                 "expires_in": 3600})

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if self.headers.get("Authorization") != "Bearer tok-1":
                    self._send(401, {"error": "no token"})
                    return
                service.calls.append({"path": url.path, **{k: v[0] for k, v in
                                                          parse_qs(url.query).items()}})
                if service.fail:
                    self._send(503, {"error": "maintenance"})
                    return
                self._send(200, {"data": {"remaining": str(service.remaining),
                                          "currency": "CNY"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def finance() -> Iterator[FinanceService]:
    service = FinanceService(50_000.0)
    yield service
    service.close()


def _caller(app: object, service: FinanceService) -> RestCaller:
    env = {"FINANCE_BASE_URL": service.url, "FLOWDESK_SECRET_FINANCE_CLIENT_SECRET": "s3cret"}
    return RestCaller(app, env=env)  # type: ignore[arg-type]


def test_budget_check_calls_the_finance_service_over_http(engine: sa.Engine,
                                                           finance: FinanceService) -> None:
    flow, people, clock = procurement(engine, None)  # type: ignore[arg-type]
    flow.service_caller = _caller(flow.app, finance)
    first = request(flow, people, "12000")
    second = request(flow, people, "900")
    Worker(engine, "w", clock=lambda: clock.now).drain()
    states = {}
    for record in (first, second):
        after = flow.store.get("purchase_request", record["id"])
        assert after["budget_ok"] is True and float(after["budget_remaining"]) == 50_000.0
        states[record["id"]] = after["state"]
    assert states == {first["id"]: "approval", second["id"]: "ordering"}  # small: no approval
    assert [c["path"] for c in finance.calls] == ["/budget/v1/budgets/SA-2026/remaining"] * 2
    assert {c["amount"] for c in finance.calls} in ({"12000", "900"}, {"12000.0", "900.0"})
    assert all(c["department"] == "sales" for c in finance.calls)
    assert finance.tokens == 1  # the OAuth2 token is cached, not fetched per call


def test_a_failing_finance_service_routes_to_the_error_state(engine: sa.Engine) -> None:
    service = FinanceService(0, fail=True)
    try:
        flow, people, clock = procurement(engine, None)  # type: ignore[arg-type]
        flow.service_caller = _caller(flow.app, service)
        record = request(flow, people, "500")
        for _ in range(5):  # the engine's retries, then the error route
            clock.now += dt.timedelta(hours=1)
            Worker(engine, "w", clock=lambda: clock.now).drain()
        after = flow.store.get("purchase_request", record["id"])
        assert after["state"] == "budget_check_failed"
        assert len(service.calls) >= 2
        timeline = [e for e in flow.store.timeline("purchase_request", record["id"])
                    if e.action == "transition"]
        assert "HTTP 503" in (timeline[-1].comment or "")
    finally:
        service.close()
