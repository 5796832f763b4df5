"""Settings from `FLOWDESK_*` environment variables; no setting is needed to start.

The default database is a SQLite file in `.flowdesk/` of the working
directory, so `flowdesk serve` works on a fresh machine with nothing set up.

The secret key (signing bearer tokens) is `FLOWDESK_SECRET_KEY`; when unset, one is
generated on first use and kept in a `secret_key` file (mode 0600) next to the SQLite
database, or in `.flowdesk/` for PostgreSQL, so a restart keeps issued tokens valid.
API processes on several machines must share one key: set FLOWDESK_SECRET_KEY for them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "load_settings", "normalise_database_url"]

DEFAULT_DATABASE_URL = "sqlite:///.flowdesk/flowdesk.db"


def normalise_database_url(url: str) -> str:
    """`postgresql://...` means psycopg 3 here; SQLAlchemy would pick psycopg2."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    echo_sql: bool = False
    secret: str | None = field(default=None, repr=False)  # FLOWDESK_SECRET_KEY, if set
    # Outgoing e-mail (flowdesk.integrations.email); no host: the e-mail channel is off.
    smtp_host: str | None = None  # FLOWDESK_SMTP_HOST
    smtp_port: int = 25  # FLOWDESK_SMTP_PORT
    smtp_user: str | None = None  # FLOWDESK_SMTP_USER (log in only when set)
    smtp_password: str | None = field(default=None, repr=False)  # FLOWDESK_SMTP_PASSWORD
    smtp_from: str = "flowdesk@localhost"  # FLOWDESK_SMTP_FROM
    smtp_starttls: bool = False  # FLOWDESK_SMTP_STARTTLS
    # Webhooks (flowdesk.integrations.webhooks): the HMAC key of X-Flowdesk-Signature.
    webhook_secret: str | None = field(default=None, repr=False)  # FLOWDESK_WEBHOOK_SECRET
    public_url: str | None = None  # FLOWDESK_PUBLIC_URL: base of links in notifications

    @property
    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None

    @property
    def secret_key_path(self) -> Path:
        """Where a generated secret key is kept: next to the SQLite file, else `.flowdesk/`."""
        path = self.sqlite_path
        folder = path.parent if path is not None and path.name not in ("", ":memory:") else None
        return (folder or Path(".flowdesk")) / "secret_key"

    @property
    def secret_key(self) -> str:
        """`FLOWDESK_SECRET_KEY`, or the generated key of `secret_key_path` (made on first
        use, so commands that sign nothing never create it)."""
        if self.secret:
            return self.secret
        return _persisted_secret(str(self.secret_key_path.resolve()))


def load_settings(env: dict[str, str] | None = None) -> Settings:
    source = os.environ if env is None else env
    url = source.get("FLOWDESK_DATABASE_URL", DEFAULT_DATABASE_URL)
    return Settings(
        database_url=normalise_database_url(url),
        echo_sql=source.get("FLOWDESK_ECHO_SQL", "") in ("1", "true", "yes"),
        secret=source.get("FLOWDESK_SECRET_KEY") or None,
        smtp_host=source.get("FLOWDESK_SMTP_HOST") or None,
        smtp_port=_port(source.get("FLOWDESK_SMTP_PORT", "25")),
        smtp_user=source.get("FLOWDESK_SMTP_USER") or None,
        smtp_password=source.get("FLOWDESK_SMTP_PASSWORD") or None,
        smtp_from=source.get("FLOWDESK_SMTP_FROM") or "flowdesk@localhost",
        smtp_starttls=source.get("FLOWDESK_SMTP_STARTTLS", "") in ("1", "true", "yes"),
        webhook_secret=source.get("FLOWDESK_WEBHOOK_SECRET") or None,
        public_url=(source.get("FLOWDESK_PUBLIC_URL") or "").rstrip("/") or None,
    )


def _port(text: str) -> int:
    """A TCP port from a setting, with a message naming the setting when it is not one."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError(f"FLOWDESK_SMTP_PORT must be a port number (1-65535), got {text!r}")
    return port


@cache
def _persisted_secret(path_text: str) -> str:
    """Read the key file, creating it (0600) if missing. Creation is atomic (a complete
    temporary file hard-linked into place), so processes starting together agree."""
    path = Path(path_text)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            temporary.unlink(missing_ok=True)
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise ValueError(
            f"the secret key file {path} is empty: delete it or set FLOWDESK_SECRET_KEY"
        )
    return key
