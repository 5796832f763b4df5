"""The baseline of `api_bench.py`: the ticket endpoints written by hand.

A minimal Litestar + SQLAlchemy Core app over the same database and the same
`service_desk__ticket` table the generated API serves, with what a developer
would write for three endpoints and nothing more:

- `GET /tickets/{id}`: one prebuilt `SELECT ... WHERE id = ?`, the row as JSON;
- `GET /tickets?priority=p2&limit=20`: `WHERE priority = ? AND deleted_at IS NULL
  ORDER BY id DESC LIMIT ?`;
- `POST /tickets`: a msgspec-validated body, the human number from the same
  `fd_sequences` upsert, one `INSERT` (no workflow, SLA clock, audit row or rules).

No authentication, field policy or data scope: the generated API pays for those.
Handlers are synchronous (run in Litestar's thread pool); the engine is
`flowdesk.store.engine.make_engine`, so both sides get the same SQLite pragmas
(WAL, `BEGIN IMMEDIATE` for writes, deferred reads) and the same PostgreSQL
driver; SQLite writes queue on one in-process lock, as ARCHITECTURE advises.

Served with `uvicorn --factory _handwritten_api:create_app --app-dir bench`
(the database from `FLOWDESK_DATABASE_URL`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
from litestar import Controller, Litestar, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import Parameter

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

from flowdesk.store.engine import make_engine, read_only  # noqa: E402

__all__ = ["TicketController", "TicketIn", "create_app"]

TABLE = "service_desk__ticket"
Priority = Literal["p1", "p2", "p3", "p4"]
_encoder = msgspec.json.Encoder(decimal_format="string")


class TicketIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST /tickets`."""

    title: Annotated[str, msgspec.Meta(min_length=4, max_length=200)]
    customer: int | None = None
    description: Annotated[str, msgspec.Meta(max_length=10000)] | None = None
    priority: Priority = "p3"
    category: Literal["hardware", "software", "network", "account", "billing", "other"] = "other"
    channel: Literal["web", "email", "phone", "chat", "api"] = "web"
    contact_email: Annotated[str, msgspec.Meta(max_length=255)] | None = None


class _Tickets:
    """Prebuilt statements over the reflected ticket table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reader = read_only(engine)
        metadata = sa.MetaData()
        table = sa.Table(TABLE, metadata, autoload_with=engine)
        sequences = sa.Table("fd_sequences", metadata, autoload_with=engine)
        self.get_one = sa.select(table).where(table.c.id == sa.bindparam("id"))
        self.list_page = (
            sa.select(table)
            .where(table.c.priority == sa.bindparam("priority"), table.c.deleted_at.is_(None))
            .order_by(table.c.id.desc())
            .limit(sa.bindparam("limit"))
        )
        self.insert = table.insert().returning(table)
        self.next_number = sa.text(
            "INSERT INTO fd_sequences (app, entity, period, value) "
            "VALUES ('service_desk', 'ticket', '', 1) "
            "ON CONFLICT (app, entity, period) DO UPDATE SET value = fd_sequences.value + 1 "
            "RETURNING value"
        )
        del sequences  # reflected only to fail early when the platform tables are missing
        self._writer = threading.Lock() if engine.dialect.name == "sqlite" else None

    @contextlib.contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        lock = self._writer or contextlib.nullcontext()
        with lock, self.engine.begin() as connection:
            yield connection


def _json(value: Any, status: int = 200) -> Response[bytes]:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


def _tickets(request: Request) -> _Tickets:
    return request.app.state.tickets


class TicketController(Controller):
    """The three endpoints. A controller, because Litestar 2.25 wraps a module-level sync
    handler returning `Response` twice when another method shares its path (the GET
    then returns an un-awaited coroutine: a 500)."""

    path = "/tickets"

    @get("/{ticket_id:int}", sync_to_thread=True)
    def get_ticket(self, request: Request, ticket_id: int) -> Response[bytes]:
        tickets = _tickets(request)
        with tickets.reader.connect() as connection:
            row = connection.execute(tickets.get_one, {"id": ticket_id}).mappings().first()
        if row is None:
            raise NotFoundException(f"no ticket {ticket_id}")
        return _json(dict(row))

    @get(sync_to_thread=True)
    def list_tickets(
        self,
        request: Request,
        priority: Priority,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> Response[bytes]:
        tickets = _tickets(request)
        with tickets.reader.connect() as connection:
            rows = connection.execute(tickets.list_page, {"priority": priority, "limit": limit})
            items = [dict(row) for row in rows.mappings()]
        return _json({"items": items})

    @post(sync_to_thread=True)
    def create_ticket(self, request: Request, data: TicketIn) -> Response[bytes]:
        tickets = _tickets(request)
        now = dt.datetime.now(dt.UTC)
        row = msgspec.structs.asdict(data) | {
            "state": "new", "created_at": now, "updated_at": now, "row_version": 1,
            "sla_status": "green", "escalated": False, "first_contact_resolved": False,
            "reopen_count": 0,
        }  # fmt: skip
        with tickets.writing() as connection:
            number = connection.execute(tickets.next_number).scalar_one()
            row["number"] = f"TCK-{number:06d}"
            created = connection.execute(tickets.insert, row).mappings().one()
        return _json(dict(created), 201)


@get("/healthz", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    """The baseline app on `FLOWDESK_DATABASE_URL`."""
    url = os.environ.get("FLOWDESK_DATABASE_URL")
    if not url:
        raise SystemExit("set FLOWDESK_DATABASE_URL to the benchmark's database")
    app = Litestar(route_handlers=[TicketController, health],
                   openapi_config=None)  # fmt: skip
    app.state.tickets = _Tickets(make_engine(url))
    return app
