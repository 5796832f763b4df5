"""`flowdesk serve --demo` as the README runs it: a subprocess on a fresh SQLite file
(the embedded mode the README promises; the PostgreSQL server path is the same
application, exercised by the other API tests on both databases)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_demo_starts_with_users_and_data(tmp_path: Path) -> None:
    port = _port()
    env = {**os.environ, "FLOWDESK_DATABASE_URL": f"sqlite:///{tmp_path}/flowdesk.db"}
    env.pop("FLOWDESK_SECRET_KEY", None)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", "--demo", "--port", str(port),
         "--apps-dir", str(ROOT / "apps")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "flowdesk serve --demo did not start"
            time.sleep(0.3)
        apps = httpx.get(f"{base}/api/v1/apps").json()["apps"]
        assert {a["name"] for a in apps} == {"service_desk", "field_service", "procurement"}
        assert "service_desk" in httpx.get(base + "/").text
        token = httpx.post(f"{base}/api/v1/auth/token", data={
            "grant_type": "password", "username": "agent", "password": "agent"}).json()
        tickets = httpx.get(f"{base}/api/v1/service_desk/ticket",
                            headers={"Authorization": f"Bearer {token['access_token']}"}).json()
        assert len(tickets["items"]) > 0
        assert (tmp_path / ".flowdesk" / "secret_key").exists() or \
            (tmp_path / "secret_key").exists()
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "demo users (password = user name): admin, agent, customer, supervisor" in output
    assert "Traceback" not in output
