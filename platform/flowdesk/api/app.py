"""The Litestar application: one per server process, built from a database.

`create_app(engine)` wires the registry of deployed apps, authentication, the record
endpoints, the identity endpoints and the per-app OpenAPI documents. Litestar's own
OpenAPI generator is off: it would describe records as `object`; each app's document
is generated from its entities instead (`openapi.py`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.config.app import AppConfig
from litestar.params import FromPath

from flowdesk.settings import Settings, load_settings
from flowdesk.store.engine import make_engine

from ._threads import threaded
from .auth import AUTH_HANDLERS, Authenticator
from .openapi import app_openapi
from .problems import problem_handlers
from .processes import PROCESS_HANDLERS
from .records import RECORD_HANDLERS
from .registry import AppRegistry, RuntimeHook

__all__ = ["create_app"]


@get("/api/v1/apps")
@threaded
def list_apps(request: Request) -> dict[str, Any]:
    """The deployed apps (name, version, title, entities) — no authentication needed to
    discover them, nothing about records."""
    registry: AppRegistry = request.app.state.registry
    return {"apps": [
        {"name": r.app.name, "version": r.app.version, "entities": sorted(r.app.entities),
         "openapi": f"/api/v1/{r.app.name}/openapi.json", "docs": f"/api/v1/{r.app.name}/docs"}
        for r in registry.runtimes()
    ]}


@get("/api/v1/{app:str}/openapi.json")
@threaded
def openapi_document(request: Request, app: FromPath[str]) -> Response[bytes]:
    registry: AppRegistry = request.app.state.registry
    return Response(msgspec.json.encode(app_openapi(registry.get(app).app)),
                    media_type="application/json")


_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<noscript>The interactive reference needs JavaScript; the OpenAPI document is at
<a href="{spec}">{spec}</a>.</noscript>
<script id="api-reference" data-url="{spec}"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
</body></html>"""


@get("/api/v1/{app:str}/docs", media_type="text/html")
@threaded
def openapi_docs(request: Request, app: FromPath[str]) -> str:
    """An interactive reference (Scalar, loaded by the browser from its CDN; the page
    links the plain document for offline readers)."""
    registry: AppRegistry = request.app.state.registry
    runtime = registry.get(app)
    return _DOCS.format(title=html.escape(runtime.app.name),
                        spec=f"/api/v1/{html.escape(runtime.app.name)}/openapi.json")


_HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flowdesk</title></head>
<body><h1>Flowdesk</h1><p>Deployed apps (the agent web UI is not built yet; use the API):</p>
<ul>{items}</ul><p>Sign in for the API: <code>POST /api/v1/auth/token</code>
(<code>grant_type=password</code>) or <code>POST /api/v1/auth/login</code>.</p></body></html>"""


@get("/", media_type="text/html")
@threaded
def home(request: Request) -> str:
    """A start page listing the apps with links to their API reference."""
    registry: AppRegistry = request.app.state.registry
    items = "".join(
        f'<li>{html.escape(r.app.name)} {html.escape(r.app.version)}: '
        f'<a href="/api/v1/{html.escape(r.app.name)}/docs">API reference</a>, '
        f'<a href="/api/v1/{html.escape(r.app.name)}/openapi.json">OpenAPI</a></li>'
        for r in registry.runtimes())
    return _HOME.format(items=items or "<li>none yet: deploy one with flowdesk deploy</li>")


@get("/healthz")
@threaded
def health(request: Request) -> dict[str, Any]:
    registry: AppRegistry = request.app.state.registry
    return {"status": "ok", "apps": registry.names()}


def create_app(
    engine: Any = None,
    *,
    settings: Settings | None = None,
    on_build: RuntimeHook | None = None,
    refresh_every: float = 1.0,
    extra_handlers: Sequence[Any] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
) -> Litestar:
    """The server for every app deployed in the database of `engine` (default: settings')."""
    settings = settings or load_settings()
    engine = engine or make_engine(settings.database_url)
    registry = AppRegistry(engine, refresh_every=refresh_every, on_build=on_build)
    authenticator = Authenticator(engine, settings)

    def keep_state(app_config: AppConfig) -> AppConfig:
        app_config.state.update(registry=registry, authenticator=authenticator, engine=engine,
                                settings=settings)
        return app_config

    return Litestar(
        route_handlers=[home, list_apps, health, openapi_document, openapi_docs,
                        *AUTH_HANDLERS, *PROCESS_HANDLERS, *RECORD_HANDLERS, *extra_handlers],
        exception_handlers=problem_handlers(),
        on_app_init=[keep_state],
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        openapi_config=None,
        request_max_body_size=10 * 1024 * 1024,
    )
