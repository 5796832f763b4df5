"""A real server for the API tests: uvicorn on a loopback port in a thread, over a
database (SQLite file, or a PostgreSQL schema of its own) with the three shipped apps
deployed, the demo organisation and demo records. One server per test module and
database, because deploying and seeding take a second or two."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from flowdesk.api.app import create_app
from flowdesk.model.appmodel import AppModel
from flowdesk.model.sources import read_app
from flowdesk.onboarding.demo import seed_org, seed_records
from flowdesk.security.identity.passwords import set_password
from flowdesk.security.identity.tokens import issue_token
from flowdesk.settings import Settings
from flowdesk.store.deploy import deploy
from flowdesk.store.engine import make_engine
from flowdesk.store.migrate import upgrade
from flowdesk.store.snapshots import load_active
from pg_support import postgres_schema

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("service_desk", "field_service", "procurement")
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def app_texts(name: str) -> dict[str, str]:
    root = ROOT / "apps" / name
    return {str(Path(path).resolve().relative_to(root)): text
            for path, text in read_app(root).texts.items()}


@dataclass
class Server:
    url: str
    engine: sa.Engine
    apps: dict[str, AppModel]
    users: dict[str, int]
    database_url: str

    def client(self, username: str | None = None) -> httpx.Client:
        """A client signed in as `username` with a bearer token (None: anonymous)."""
        client = httpx.Client(base_url=self.url, timeout=30)
        if username is not None:
            client.headers["Authorization"] = f"Bearer {self.token(username)}"
        return client

    def token(self, username: str) -> str:
        """A bearer token signed with the server's key. Not through the password grant:
        logins are rate limited per client address, and every test here is 127.0.0.1
        (the grants have their own tests in test_api_identity.py)."""
        return issue_token(SECRET, self.users[username]).token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('api')}/flowdesk.db"
        return
    with postgres_schema() as url:
        yield url


def prepare(engine: sa.Engine) -> tuple[dict[str, AppModel], dict[str, int]]:
    upgrade(engine)
    for name in SHIPPED:
        deploy(engine, app_texts(name), actor="test")
    apps = {name: load_active(engine, name) for name in SHIPPED}
    with engine.begin() as connection:
        users = seed_org(connection)
        for username, user_id in users.items():
            set_password(connection, user_id, username, policy=False)
    seed_records(engine, apps, users)  # type: ignore[arg-type]
    return apps, users  # type: ignore[return-value]


@pytest.fixture(scope="module")
def server(api_database: str) -> Iterator[Server]:
    engine = make_engine(api_database)
    apps, users = prepare(engine)
    settings = Settings(database_url=api_database, secret=SECRET)
    app = create_app(engine, settings=settings, refresh_every=0.0)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "the test server did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", engine, apps, users, api_database)
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
