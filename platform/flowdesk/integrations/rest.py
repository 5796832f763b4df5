"""REST connectors: an Integration document's operations called over HTTP, for workflow
service states (and, later, `call` actions).

`RestCaller(app)` is the engine's `service_caller`: it fills the operation's path,
query and JSON body from the input (values written `= CEL` are evaluated over
`input`), authenticates (none, API key, basic, bearer, OAuth2 client credentials
with the token cached until shortly before it expires), and maps the JSON answer
through the operation's `response` expressions. A failure raises: `TimeoutError`
for a timeout, `IntegrationError` for anything else, so the service state routes
to its `error` state after the engine's retries.

Secrets are referenced by name in the YAML and read from `FLOWDESK_SECRET_<NAME>`
(upper case); base URLs may use `${SETTING}`. An encrypted secret store is still
to come (docs/integrations.md).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from flowdesk.engine._runtime import EXTENSIONS
from flowdesk.expressions import DYN, ExpressionEvalError, compile_expression
from flowdesk.model._base import parse_duration
from flowdesk.model.appmodel import AppModel
from flowdesk.model.integration import Integration, Operation

from .http import expand_settings

__all__ = ["IntegrationError", "RestCaller", "secret"]

_TOKEN_MARGIN = 30.0  # seconds before expiry when a cached OAuth2 token is renewed


class IntegrationError(RuntimeError):
    """A call failed: the message names the integration, the operation and why."""


def secret(name: str, env: Mapping[str, str] | None = None) -> str:
    """The secret called `name` (FLOWDESK_SECRET_<NAME>); never logged."""
    source = os.environ if env is None else env
    variable = f"FLOWDESK_SECRET_{name.upper()}"
    value = source.get(variable)
    if not value:
        raise IntegrationError(f"the secret `{name}` is not set: set {variable}")
    return value


class RestCaller:
    """Calls the operations of one app version's integrations."""

    def __init__(self, app: AppModel, *, env: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.env = env
        self._tokens: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def __call__(
        self,
        integration: Integration,
        operation: str,
        given: Mapping[str, Any],
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        spec = integration.operations.get(operation)
        if spec is None:
            raise IntegrationError(f"{integration.name} has no operation `{operation}`")
        seconds = timeout or parse_duration(spec.timeout or integration.timeout).total_seconds()
        where = f"/operations/{operation}"
        url = self._url(integration, spec, given)
        query = {k: self._value(integration, f"{where}/query/{k}", v, given)
                 for k, v in spec.query.items()}
        body = None if spec.body is None else {
            k: self._value(integration, f"{where}/body/{k}", v, given)
            for k, v in spec.body.items()}
        headers = {"Accept": "application/json"} | self._auth(integration, seconds)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            answer = httpx.request(spec.method, url, params=query, json=body, headers=headers,
                                   timeout=seconds)
        except httpx.TimeoutException:
            raise TimeoutError(f"{integration.name}.{operation}: no answer within "
                               f"{seconds:g}s") from None
        except httpx.HTTPError as error:
            raise IntegrationError(f"{integration.name}.{operation}: {error}") from None
        if answer.status_code >= 400:
            raise IntegrationError(f"{integration.name}.{operation}: HTTP {answer.status_code}"
                                   f" {answer.text[:200]}")
        try:
            data = answer.json() if answer.content else None
        except ValueError:
            raise IntegrationError(f"{integration.name}.{operation}: the answer is not "
                                   "JSON") from None
        return self._response(integration, spec, where, data)

    # ------------------------------------------------------------------ request parts

    def _url(self, integration: Integration, spec: Operation, given: Mapping[str, Any]) -> str:
        base = expand_settings(integration.base_url, self.env)
        path = spec.path
        for key, value in given.items():
            path = path.replace("{" + key + "}", quote(str(value), safe="")
                                if value is not None else "")
        return base.rstrip("/") + "/" + path.lstrip("/")

    def _value(self, integration: Integration, pointer: str, value: Any,
               given: Mapping[str, Any]) -> Any:
        if not (isinstance(value, str) and value.startswith("=")):
            return value
        return self._evaluate(integration, pointer, value[1:], {"input": dict(given)})

    def _evaluate(self, integration: Integration, pointer: str, source: str,
                  activation: dict[str, Any]) -> Any:
        compiled = self.app.expressions.get(("Integration", integration.name, pointer))
        if compiled is None:  # another version's document: compile its text here
            compiled = compile_expression(source.strip(), {"input": DYN, "response": DYN},
                                          expect=None)
        try:
            return _plain(compiled.evaluate(activation))
        except ExpressionEvalError as error:
            raise IntegrationError(f"{integration.name} {pointer}: {error.reason}") from None

    def _response(self, integration: Integration, spec: Operation, where: str,
                  data: Any) -> dict[str, Any]:
        if not spec.response:
            return data if isinstance(data, dict) else {"data": data}
        return {name: self._evaluate(integration, f"{where}/response/{name}", source,
                                     {"response": data})
                for name, source in spec.response.items()}

    # ------------------------------------------------------------------ authentication

    def _auth(self, integration: Integration, timeout: float) -> dict[str, str]:
        auth = integration.auth
        if auth.type == "none":
            return {}
        if auth.type == "oauth2":
            return {"Authorization": f"Bearer {self._oauth_token(integration, timeout)}"}
        key = secret(auth.secret or "", self.env) if auth.secret else ""
        if auth.type == "api_key":
            return {auth.header or "X-API-Key": key}
        if auth.type == "bearer":
            return {"Authorization": f"Bearer {key}"}
        basic = httpx.BasicAuth(auth.username or "", key)
        request = next(basic.auth_flow(httpx.Request("GET", "http://x")))
        return {"Authorization": request.headers["Authorization"]}

    def _oauth_token(self, integration: Integration, timeout: float) -> str:
        """A client-credentials token, cached per integration until it nearly expires."""
        auth = integration.auth
        with self._lock:
            cached = self._tokens.get(integration.name)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            url = expand_settings(auth.token_url or "", self.env)
            form = {"grant_type": "client_credentials", "client_id": auth.client_id or ""}
            if auth.scopes:
                form["scope"] = " ".join(auth.scopes)
            try:
                answer = httpx.post(url, data=form, timeout=timeout,
                                    auth=(auth.client_id or "", secret(auth.secret or "",
                                                                       self.env)))
                answer.raise_for_status()
                token = answer.json()
                value, lifetime = token["access_token"], float(token.get("expires_in", 300))
            except (httpx.HTTPError, ValueError, KeyError) as error:
                raise IntegrationError(f"{integration.name}: no OAuth2 token from {url}: "
                                       f"{error}") from None
            self._tokens[integration.name] = (time.monotonic() + lifetime - _TOKEN_MARGIN, value)
            return value


def _plain(value: Any) -> Any:
    from flowdesk.engine._context import plain

    return plain(value)


def _attach(engine: Any) -> None:
    """Every engine built for an app calls its integrations over HTTP unless a caller
    was given (tests and `flowdesk test` give stubs)."""
    if engine.service_caller is None:
        engine.service_caller = RestCaller(engine.app)


EXTENSIONS.append(_attach)
