"""`flowdesk user ...` and `flowdesk apikey ...` through the real command line
(`python cli.py ...`): outputs, exit codes, one-line errors, and that what they write
works with the library (logins, keys)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_identity_support import relaxed_limiter

from flowdesk.security.identity import (
    ApiKeyRejected,
    InvalidCredentials,
    SessionRejected,
    authenticate,
    create_session,
    load_session,
    verify_api_key,
)
from flowdesk.store.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]


def flowdesk(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def login(url: str, username: str, password: str) -> int:
    engine = make_engine(url)
    try:
        return authenticate(engine, username, password, client="cli-test",
                            limiter=relaxed_limiter()).user_id
    finally:
        engine.dispose()


def test_users_passwords_and_roles(database_url: str) -> None:
    url = database_url
    created = flowdesk("user", "create", "alice", "--name", "Alice Liddell", "--email",
                       "alice@example.com", "--password-stdin", "--role", "service_desk:agent",
                       "--role", "*:monitor", url=url, stdin="s3cret pass\n")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created user alice (id ")
    assert "with *:monitor, service_desk:agent" in created.stdout
    alice = login(url, "alice", "s3cret pass")

    engine = make_engine(url)
    with engine.begin() as connection:
        token, _ = create_session(connection, alice)
    changed = flowdesk("user", "set-password", "alice", "--password-stdin", url=url,
                       stdin="a new s3cret\n")
    assert changed.returncode == 0, changed.stderr
    assert "signed out 1 web session(s)" in changed.stdout
    with engine.begin() as connection, pytest.raises(SessionRejected, match="revoked"):
        load_session(connection, token)
    engine.dispose()
    with pytest.raises(InvalidCredentials):
        login(url, "alice", "s3cret pass")
    assert login(url, "alice", "a new s3cret") == alice

    roles = flowdesk("user", "roles", "alice", "--add", "procurement:approver", "--remove",
                     "*:monitor", url=url)
    assert roles.returncode == 0, roles.stderr
    assert roles.stdout.splitlines() == ["procurement:approver", "service_desk:agent"]
    assert roles.stderr.splitlines() == ["added procurement:approver", "removed *:monitor"]


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/flowdesk.db"
    assert flowdesk("user", "create", "bob", "--password", "bob password", url=url).returncode == 0
    refusals = {
        ("user", "create", "bob", "--password", "another one"):
            "error: a user with username `bob` already exists",
        ("user", "create", "carl", "--password", "short"):
            "error: the password must have at least 8 characters",
        ("user", "create", "dora", "--password", "DORA"):
            "error: the password must have at least 8 characters",
        ("user", "create", "dorothea", "--password", "Dorothea"):
            "error: the password must not be the username",
        ("user", "set-password", "nobody", "--password", "long enough"):
            "error: there is no user `nobody`",
        ("user", "roles", "nobody"): "error: there is no user `nobody`",
        ("user", "create", "bad name", "--no-password"):
            "error: `bad name` is not a valid username: 1 to 120 letters, digits or . _ @ + -, "
            "starting with a letter or digit",
    }
    for args, message in refusals.items():
        result = flowdesk(*args, url=url)
        assert (result.returncode, result.stderr.strip().splitlines()) == (1, [message]), args

    no_password = flowdesk("user", "create", "erin", url=url)  # stdin is not a terminal
    assert no_password.returncode == 2
    assert "no password given: use the prompt (on a terminal), --password-stdin" in (
        no_password.stderr)
    bad_role = flowdesk("user", "create", "erin", "--no-password", "--role", "agent", url=url)
    assert bad_role.returncode == 2
    assert "argument --role: `agent` is not a role: write APP:ROLE" in bad_role.stderr
    assert "Traceback" not in no_password.stderr + bad_role.stderr

    demo = flowdesk("user", "create", "demo", "--password", "demo", "--no-policy", url=url)
    assert demo.returncode == 0, demo.stderr
    assert login(url, "demo", "demo")
    nologin = flowdesk("user", "create", "robot", "--no-password", url=url)
    assert "no password: they cannot log in yet" in nologin.stdout


def test_api_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/flowdesk.db"
    flowdesk("user", "create", "alice", "--password", "alice password", "--role",
             "service_desk:agent", url=url)
    created = flowdesk("apikey", "create", "--user", "alice", "--name", "nightly export",
                       "--role", "service_desk:agent", "--expires-in", "30", url=url)
    assert created.returncode == 0, created.stderr
    text = created.stdout.strip()
    assert len(created.stdout.splitlines()) == 1 and text.startswith("fdk_")
    prefix = text[:10]
    assert f"created API key {prefix} `nightly export` for alice (expires " in created.stderr
    assert "it is not shown again" in created.stderr

    engine = make_engine(url)
    with engine.begin() as connection:
        identity = verify_api_key(connection, text)
    assert identity.username == "alice" and identity.roles == {("service_desk", "agent")}

    listed = flowdesk("apikey", "list", url=url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{prefix}  active   alice  `nightly export`  "
                                    "roles=service_desk:agent  app=all  expires=")
    assert text[11:] not in listed.stdout

    refused = flowdesk("apikey", "create", "--user", "alice", "--name", "x", "--role",
                       "service_desk:admin", url=url)
    assert (refused.returncode, refused.stderr.strip()) == (
        1, "error: user `alice` does not hold role `service_desk:admin`")

    revoked = flowdesk("apikey", "revoke", prefix, url=url)
    assert (revoked.returncode, revoked.stdout.strip()) == (0, f"revoked API key {prefix}")
    with engine.begin() as connection, pytest.raises(ApiKeyRejected, match="revoked"):
        verify_api_key(connection, text)
    engine.dispose()
    assert flowdesk("apikey", "list", url=url).stderr.strip() == "no API keys"
    assert '"status": "revoked"' in flowdesk("apikey", "list", "--all", "--format", "json",
                                             url=url).stdout
    unknown = flowdesk("apikey", "revoke", "fdk_000000", url=url)
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1, "error: there is no API key `fdk_000000`")
    no_days = flowdesk("apikey", "create", "--user", "alice", "--name", "x", "--expires-in",
                       "0", url=url)
    assert no_days.returncode == 2 and "at least 1" in no_days.stderr
