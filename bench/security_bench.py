"""Per-request authorization cost: precomputed decisions vs asking Casbin every time.

ARCHITECTURE's measured facts: pycasbin `enforce()` with an RBAC-with-domains model
(960 policy lines, 1,000 users) took 0.7-1.0 ms per call because it scans the policy,
more than a whole get-by-id request. `flowdesk.security` keeps Casbin as the engine of
record but asks it once per app version (`Authorizer.from_app`) and answers requests
with set lookups. This script measures, on the same requests:

* `casbin enforce`: `enforcer.enforce("user:<id>", app, entity, action)`, the user's
  roles given as `g` lines, as an API would call it per request;
* `Authorizer.allowed`: the same question answered from the derived sets, for a
  `Principal` holding the same roles;
* and, for scale, the other per-request security work: `field_access` (memoised),
  `redact` of one ticket, `scope_clause` (reused clause, and first build).

Two policies: the shipped service desk (59 `p` lines), and the service desk plus a
generated Policy document of `--roles` custom roles bringing it to about 960 lines
(inheriting in chains of `--chain` roles ending at `agent`; 0: no inheritance),
with `--users` users holding 1-3 random roles (the measured set-up above). Every
answer of `Authorizer.allowed` is compared with `enforce()` while measuring.

Run from the repository root:

    python bench/security_bench.py                 # ~1 minute
    python bench/security_bench.py --calls 2000 --roles 60 --users 1000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

import sqlalchemy as sa  # noqa: E402

from flowdesk.model.appmodel import AppModel  # noqa: E402
from flowdesk.model.compiler import compile_texts  # noqa: E402
from flowdesk.model.policy import ACTIONS  # noqa: E402
from flowdesk.model.sources import read_app  # noqa: E402
from flowdesk.security import (  # noqa: E402
    Authorizer,
    action_space,
    field_access,
    new_enforcer,
    policy_lines,
    redact,
    scope_clause,
)
from flowdesk.security.policy import roles_of, user_subject  # noqa: E402
from flowdesk.security.principal import principal_from_roles  # noqa: E402
from flowdesk.security.scopes import ScopePolicy  # noqa: E402
from flowdesk.store.filters import TableColumns  # noqa: E402
from flowdesk.store.tables import build_tables  # noqa: E402

ENTITIES = ("ticket", "customer", "team", "knowledge_article", "satisfaction_survey")


def service_desk(extra_roles: int, chain: int = 5) -> AppModel:
    """The shipped service desk, plus `extra_roles` generated roles with 15 policy lines each,
    inheriting in chains of `chain` roles ending at `agent` (0: no inheritance)."""
    texts = dict(read_app(ROOT / "apps" / "service_desk").texts)
    if extra_roles:
        rng = random.Random(1)
        lines = ["apiVersion: flowdesk/v1", "kind: Policy", "name: generated_access", "roles:"]
        for index in range(extra_roles):
            parent = f"[generated_{index - 1}]" if chain and index % chain else "[agent]"
            lines.append(f"  generated_{index}: {{inherits: {parent if chain else '[]'}}}")
        lines.append("grants:")
        for index in range(extra_roles):
            for entity in ENTITIES:
                actions = rng.sample([a for a in ACTIONS if a != "transition"], 3)
                lines += [
                    f"  - roles: [generated_{index}]",
                    f"    entity: {entity}",
                    f"    actions: [{', '.join(actions)}]",
                ]
        texts["policies/generated.yaml"] = "\n".join(lines) + "\n"
    result = compile_texts(texts)
    assert result.app is not None, [str(d) for d in result.diagnostics[:5]]
    return result.app


def per_call(function: Callable[[], Any], calls: int, repeat: int) -> float:
    """Median over `repeat` runs of the time of one call, in microseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def measure(app: AppModel, users: int, calls: int, repeat: int) -> dict[str, float]:
    rng = random.Random(7)
    roles = [r for r in roles_of(app) if r != "admin"]
    held = {user: tuple(rng.sample(roles, rng.randint(1, 3))) for user in range(1, users + 1)}
    user_lines = [(user_subject(u), r, app.name) for u, rs in held.items() for r in rs]
    lines = policy_lines(app)
    started = time.perf_counter()
    enforcer = new_enforcer(lines, user_lines)
    load_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    authorizer = Authorizer.from_app(app, new_enforcer(lines))
    derive_ms = (time.perf_counter() - started) * 1e3
    principals = {u: principal_from_roles(u, app.name, rs) for u, rs in held.items()}
    requests = [
        (u, entity, rng.choice(action_space(app, entity)))
        for u in rng.choices(list(held), k=calls)
        for entity in [rng.choice(ENTITIES)]
    ]
    for user, entity, action in requests:  # the answers agree (and caches are warm)
        expected = enforcer.enforce(user_subject(user), app.name, entity, action)
        assert authorizer.allowed(principals[user], entity, action) == expected

    def cycle(function: Callable[[int, str, str], Any]) -> Callable[[], Any]:
        position = 0

        def call() -> Any:
            nonlocal position
            user, entity, action = requests[position]
            position = (position + 1) % len(requests)
            return function(user, entity, action)

        return call

    enforce = per_call(
        cycle(lambda u, e, a: enforcer.enforce(user_subject(u), app.name, e, a)),
        calls,
        repeat,
    )
    allowed = per_call(
        cycle(lambda u, e, a: authorizer.allowed(principals[u], e, a)), calls * 20, repeat
    )
    return {
        "p lines": len(lines.p),
        "g lines": len(lines.g) + len(user_lines),
        "load ms": load_ms,
        "derive ms": derive_ms,
        "enforce us": enforce,
        "allowed us": allowed,
    }


def other_work(app: AppModel, calls: int, repeat: int) -> dict[str, float]:
    agent = principal_from_roles(3, app.name, ["agent"])
    supervisor = principal_from_roles(5, app.name, ["supervisor"], department_ids={2, 3})
    regional = principal_from_roles(
        4, app.name, ["regional_manager"], region="north", department_id=2, department_ids={2, 3}
    )
    table = build_tables(app)["ticket"].main
    customer_table = build_tables(app)["customer"].main
    resolver = TableColumns(customer_table)
    ticket = {f: "x" * 20 for f in app.entities["ticket"].fields} | {"id": 1, "row_version": 1}
    customer = {"id": 1, "name": "ACME", "id_card": "110101199003077777", "region": "north"}
    access = field_access(agent, "customer", app)
    ticket_access = field_access(agent, "ticket", app)
    policy = ScopePolicy(app)

    def fresh_scope() -> Any:  # a new table each time: nothing reused
        fresh = sa.Table("c", sa.MetaData(), *(sa.Column(c.name, c.type) for c in customer_table.c))
        return policy.clause(regional, "customer", fresh, TableColumns(fresh))

    return {
        "field_access us": per_call(lambda: field_access(agent, "ticket", app), calls, repeat),
        "redact ticket us": per_call(lambda: redact(ticket, ticket_access), calls, repeat),
        "redact+mask customer us": per_call(lambda: redact(customer, access), calls, repeat),
        "scope_clause tree reused us": per_call(
            lambda: scope_clause(supervisor, "ticket", table, TableColumns(table), app),
            calls,
            repeat,
        ),
        "scope_clause CEL reused us": per_call(
            lambda: scope_clause(regional, "customer", customer_table, resolver, app),
            calls,
            repeat,
        ),
        "scope_clause CEL first us": per_call(fresh_scope, max(calls // 20, 10), repeat),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="enforce() calls per run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--roles", type=int, default=60, help="generated roles (15 policy lines each)"
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--chain", type=int, default=5, help="inheritance chain length of generated roles (0: none)"
    )
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, casbin {_casbin_version()}")
    header = "| policy | p lines | g lines | Casbin load | derive | enforce | allowed | speed-up |"
    print(header)
    print("| --- " * 8 + "|")
    chained = f"chains of {args.chain}" if args.chain else "no inheritance"
    for label, extra in (("service desk", 0), (f"+{args.roles} roles, {chained}", args.roles)):
        app = service_desk(extra, args.chain)
        r = measure(app, args.users, args.calls, args.repeat)
        print(
            f"| {label} | {r['p lines']} | {r['g lines']} | {r['load ms']:.0f} ms "
            f"| {r['derive ms']:.0f} ms | {r['enforce us']:.0f} us | {r['allowed us']:.2f} us "
            f"| {r['enforce us'] / r['allowed us']:,.0f}x |"
        )
    print()
    print("| other per-request work (service desk) | per call |")
    print("| --- | ---: |")
    for name, value in other_work(service_desk(0), args.calls, args.repeat).items():
        print(f"| {name.rsplit(' ', 1)[0]} | {value:.2f} us |")
    return 0


def _casbin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in ("pycasbin", "casbin"):
        try:
            return f"{version(name)} ({name})"
        except PackageNotFoundError:
            continue
    return "?"


if __name__ == "__main__":
    raise SystemExit(main())
