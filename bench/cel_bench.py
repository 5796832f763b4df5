"""CEL evaluation: the Rust-backed engine vs cel-python on the shipped expressions.

ARCHITECTURE ("Measured facts"): choose the runtime evaluator by a benchmark. This one
compiles every app in `apps/` and pack in `templates/`, takes each distinct expression
once, builds realistic activations for it (only the fields it reads, as the records
service passes them: UTC timestamps, ints for some double fields, references not read
past as `{"id": ...}`, `--nulls` (15 %) of the fields null, the expression's own string
literals as values half of the time) and measures, per expression, the median over
`--rounds` rounds of:

* **cel-python**: the reference evaluator alone (`evaluate_on(c, "python", ...)`);
* **Rust**: the `common-expression-language` engine alone, including Flowdesk's value
  conversion (`evaluate_on(c, "rust", ...)`; only expressions routed to it);
* **evaluate()**: the public API -- Rust where routed, cel-python otherwise, and
  cel-python again whenever the Rust run fails (a null where a value was needed...).

It also times compiling (`compile_expression` with and without the engine routing) and
counts how often `evaluate()` fell back to cel-python. Nothing is asserted.

Run from the repository root:

    python bench/cel_bench.py                 # 5 rounds, 16 activations per expression
    python bench/cel_bench.py --nulls 0      # every field filled in: no fallbacks
    python bench/cel_bench.py --rounds 3 --activations 8 --top 5   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

from flowdesk.expressions import (  # noqa: E402
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    CompiledExpression,
    EnumType,
    ExpressionEvalError,
    ListType,
    MapType,
    ObjectType,
    compile_expression,
)
from flowdesk.expressions import ast as cel_ast  # noqa: E402
from flowdesk.expressions import compiler as cel_compiler  # noqa: E402
from flowdesk.expressions.compiler import evaluate_on  # noqa: E402
from flowdesk.expressions.native import FALLBACK  # noqa: E402
from flowdesk.expressions.routing import PYTHON, Route  # noqa: E402
from flowdesk.model.compiler import compile_source  # noqa: E402
from flowdesk.model.sources import read_app  # noqa: E402

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
TEXTS = ("Printer on floor 3 is broken", "VPN 断网", "invoice refund", "")


# --------------------------------------------------------------------------- inputs


def shipped() -> dict[str, CompiledExpression]:
    """Every distinct expression of the shipped apps and packs, by app:kind:name:pointer."""
    found: dict[str, CompiledExpression] = {}
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    for folder in [*sorted((ROOT / "apps").iterdir()), *sorted((ROOT / "templates").iterdir())]:
        if not folder.is_dir():
            continue
        result = compile_source(read_app(folder))
        if result.app is None:
            print(f"skipped {folder.name}: it does not compile")
            continue
        for (kind, name, pointer), compiled in result.app.expressions.items():
            key = (compiled.source, tuple(sorted(compiled._scope)), str(compiled.result_type))
            if key not in seen:
                seen.add(key)
                found[f"{folder.name}:{kind}:{name}:{pointer}"] = compiled
    return found


def _read_type(cel_type: CelType, paths: set[tuple[str, ...]], top: bool = True) -> CelType:
    """``cel_type`` as the records service passes it to an expression reading ``paths``.

    A reference read no further is ``{"id": ...}``; one read past its id is loaded with
    the fields read; a record read whole has its references as ``{"id": ...}``.
    """
    deeper = {path for path in paths if path}
    if not isinstance(cel_type, ObjectType) or not deeper:
        return _shallow(cel_type, nested=not top)
    whole = _shallow(cel_type)
    read_whole = top and () in paths and isinstance(whole, ObjectType)
    fields = dict(whole.field_items) if read_whole else {}  # type: ignore[union-attr]
    if cel_type.field_type("id") is not None:
        fields["id"] = cel_type.field_type("id")
    for name in {path[0] for path in deeper}:
        field_type = cel_type.field_type(name)
        if field_type is not None:
            below = {p[1:] for p in deeper if p[0] == name}
            fields[name] = _read_type(field_type, below, top=False)
    return ObjectType(cel_type.name, fields)


def _shallow(cel_type: CelType, nested: bool = False) -> CelType:
    """A value read whole: its references are ``{"id": ...}`` objects, not loaded.

    List elements (lines) keep their own fields.
    """
    if isinstance(cel_type, ListType):
        return ListType(_shallow(cel_type.elem))
    if not isinstance(cel_type, ObjectType):
        return cel_type
    if nested and cel_type.field_type("id") is not None:
        return ObjectType(cel_type.name, {"id": cel_type.field_type("id") or INT})
    return ObjectType(cel_type.name, {n: _shallow(t, True) for n, t in cel_type.field_items})


class Values:
    """Realistic plain values of a declared type (seeded, so runs compare)."""

    def __init__(self, rng: random.Random, words: tuple[str, ...], nulls: float) -> None:
        self.rng = rng
        self.words = words
        self.nulls = nulls

    def of(self, cel_type: CelType, depth: int = 0, nullable: bool = True) -> Any:
        rng = self.rng
        if nullable and rng.random() < self.nulls:
            return None
        if isinstance(cel_type, EnumType):
            return rng.choice(cel_type.values)
        if isinstance(cel_type, ObjectType):
            if depth > 2:
                return None
            return {name: self.of(t, depth + 1) for name, t in cel_type.field_items}
        if isinstance(cel_type, ListType):
            return [self.of(cel_type.elem, depth + 1, False) for _ in range(rng.randint(0, 3))]
        if isinstance(cel_type, MapType):
            return {f"k{i}": self.of(cel_type.value, depth + 1) for i in range(2)}
        return self._scalar(cel_type)

    def _scalar(self, cel_type: CelType) -> Any:
        rng = self.rng
        if cel_type == STRING:
            if self.words and rng.random() < 0.5:
                return rng.choice(self.words)
            return rng.choice(TEXTS)
        if cel_type == INT:
            return rng.randint(0, 5)
        if cel_type == UINT:
            return rng.randint(0, 5)
        if cel_type == DOUBLE:  # JSON and forms send whole amounts as ints
            return rng.choice([rng.randint(0, 99999), round(rng.uniform(0, 99999), 2)])
        if cel_type == BOOL:
            return rng.random() < 0.5
        if cel_type == TIMESTAMP:
            return NOW - dt.timedelta(minutes=rng.randint(0, 20000))
        if cel_type == DURATION:
            return dt.timedelta(minutes=rng.randint(0, 3000))
        if cel_type == BYTES:
            return b"ab"
        return self.json()

    def json(self) -> Any:
        return self.rng.choice([1, 2.5, "x", True, None, [1, 2], {"a": 1}])


def _dyn_value(compiled: CompiledExpression, root: str, values: Values) -> Any:
    """A JSON value with the shape the expression reads (``response.items[0].id``)."""
    value: Any = {}
    for node in cel_ast.walk(compiled.ast):
        steps: list[object] = []
        while isinstance(node, cel_ast.Select | cel_ast.Index):
            if isinstance(node, cel_ast.Select):
                steps.append(node.field)
            elif isinstance(node.index, cel_ast.Literal):
                steps.append(node.index.value)
            else:
                break
            node = node.operand
        if isinstance(node, cel_ast.Ident) and node.name == root and steps:
            value = _plant(value, steps[::-1], values)
    return value


def _plant(tree: Any, steps: list[object], values: Values) -> Any:
    """Add the path ``steps`` to ``tree``; a leaf does not replace what is there."""
    step, rest = steps[0], steps[1:]
    if isinstance(step, int):
        items = tree if isinstance(tree, list) else []
        items.extend(None for _ in range(step + 1 - len(items)))
        target: Any = items
    else:
        target = tree if isinstance(tree, dict) else {}
        if step not in target:
            target[step] = None
    if rest:
        target[step] = _plant(target[step], rest, values)
    elif target[step] is None:
        target[step] = values.json()
    return target


def activations(
    compiled: CompiledExpression, count: int, seed: int, nulls: float = 0.15
) -> list[dict[str, Any]]:
    words = tuple(
        sorted(
            {
                node.value
                for node in cel_ast.walk(compiled.ast)
                if isinstance(node, cel_ast.Literal) and isinstance(node.value, str)
            }
        )
    )
    values = Values(random.Random(f"{seed}:{compiled.source}"), words, nulls)
    roots = sorted({path[0] for path in compiled.names})
    made = []
    for _ in range(count):
        activation: dict[str, Any] = {}
        for root in roots:
            declared = compiled._scope[root]
            if root == "now":
                activation[root] = NOW
            elif declared == DYN:
                activation[root] = _dyn_value(compiled, root, values)
            else:
                paths = {p[1:] for p in compiled.names if p[0] == root}
                activation[root] = values.of(_read_type(declared, paths), nullable=False)
        made.append(activation)
    return made


# --------------------------------------------------------------------------- timing


def per_call(
    evaluate: Callable[[Mapping[str, Any]], object], inputs: list[dict[str, Any]], rounds: int
) -> float:
    """Median over ``rounds`` of the mean seconds per evaluation over ``inputs``."""
    times = []
    repeat = max(1, 64 // len(inputs))
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            for activation in inputs:
                with contextlib.suppress(ExpressionEvalError):
                    evaluate(activation)
        times.append((time.perf_counter() - start) / (repeat * len(inputs)))
    return statistics.median(times)


def compile_cost(sources: list[tuple[str, Mapping[str, CelType]]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for source, scope in sources:
            compile_expression(source, scope)
        times.append((time.perf_counter() - start) / len(sources))
    return statistics.median(times)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--activations", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nulls", type=float, default=0.15, help="share of null fields")
    parser.add_argument("--top", type=int, default=10, help="slowest expressions to list")
    args = parser.parse_args()

    expressions = shipped()
    inputs = {
        k: activations(c, args.activations, args.seed, args.nulls) for k, c in expressions.items()
    }
    engines = Counter(c.engine for c in expressions.values())
    print(f"{len(expressions)} distinct shipped expressions: {dict(engines)}")
    for reason, count in Counter(
        c.engine_reason for c in expressions.values() if c.engine == PYTHON
    ).most_common():
        print(f"  on cel-python ({count}): {reason}")

    python_t: dict[str, float] = {}
    rust_t: dict[str, float] = {}
    public_t: dict[str, float] = {}
    fallbacks = runs = rescued = 0
    for key, compiled in expressions.items():
        acts = inputs[key]
        python_t[key] = per_call(
            lambda a, c=compiled: evaluate_on(c, "python", a), acts, args.rounds
        )
        public_t[key] = per_call(compiled.evaluate, acts, args.rounds)
        if compiled.engine == "rust":
            rust_t[key] = per_call(
                lambda a, c=compiled: evaluate_on(c, "rust", a), acts, args.rounds
            )
            runs += len(acts)
            for activation in acts:
                if compiled._native.run(activation) is FALLBACK:  # type: ignore[union-attr]
                    fallbacks += 1
                    try:
                        evaluate_on(compiled, "python", activation)
                        rescued += 1
                    except ExpressionEvalError:
                        pass

    routed = sorted(rust_t)
    print(f"\nmedian of {args.rounds} rounds, {args.activations} activations per expression")
    print(f"{'set':44} {'cel-python':>12} {'Rust':>12} {'evaluate()':>12} {'speed-up':>9}")

    def row(label: str, keys: list[str]) -> None:
        py = sum(python_t[k] for k in keys)
        pub = sum(public_t[k] for k in keys)
        rs = sum(rust_t[k] for k in keys) if all(k in rust_t for k in keys) else None
        rust_text = f"{len(keys) / rs:>10,.0f}/s" if rs else f"{'-':>12}"
        print(
            f"{label:44} {len(keys) / py:>10,.0f}/s {rust_text} {len(keys) / pub:>10,.0f}/s"
            f" {py / pub:>8.1f}x"
        )

    row(f"all shipped expressions ({len(expressions)})", sorted(expressions))
    row(f"routed to Rust ({len(routed)})", routed)
    row(
        f"kept on cel-python ({len(expressions) - len(routed)})",
        sorted(set(expressions) - set(routed)),
    )
    ticket = sorted(k for k in expressions if k.startswith("service_desk:Entity:ticket:"))
    row(f"service desk ticket, per write ({len(ticket)})", ticket)
    if ticket:
        print(
            f"  ticket write: cel-python {_us(sum(python_t[k] for k in ticket))}, "
            f"evaluate() {_us(sum(public_t[k] for k in ticket))}"
        )
    print(
        f"evaluate() fell back to cel-python in {fallbacks} of {runs} runs of routed "
        f"expressions; cel-python returned a value in {rescued} of them, an error in the rest"
    )

    print("\nsingle expressions (per evaluation)")
    probes = {
        'record.priority == "p1"': {
            "record": ObjectType("t", {"priority": EnumType("p", ("p1", "p2"))})
        },
        'record.priority == "p1" && record.customer.level != "vip" && '
        "record.count > 2 && size(record.title) < 200": {
            "record": ObjectType(
                "t",
                {
                    "priority": EnumType("p", ("p1", "p2")),
                    "customer": ObjectType("c", {"level": STRING}),
                    "count": INT,
                    "title": STRING,
                },
            )
        },
    }
    probe_inputs = [
        {"record": {"priority": "p1", "customer": {"level": "gold"}, "count": 3, "title": "x"}}
    ]
    for source, scope in probes.items():
        compiled = compile_expression(source, scope)
        py = per_call(
            lambda a, c=compiled: evaluate_on(c, "python", a), probe_inputs, args.rounds * 20
        )
        rs = per_call(
            lambda a, c=compiled: evaluate_on(c, "rust", a), probe_inputs, args.rounds * 20
        )
        print(f"  {source[:60]:62} cel-python {_us(py):>10}  Rust {_us(rs):>9}  {py / rs:5.1f}x")

    print(f"\nslowest {args.top} shipped expressions on cel-python")
    for key in sorted(python_t, key=python_t.__getitem__, reverse=True)[: args.top]:
        rs = f"{_us(rust_t[key]):>9}" if key in rust_t else "   (python)"
        print(f"  {_us(python_t[key]):>10} -> {rs}  {expressions[key].source[:70]}")

    sources = [(c.source, c._scope) for c in expressions.values()]
    with_routing = compile_cost(sources, args.rounds)
    original_route = cel_compiler.route
    cel_compiler.route = lambda *_: Route(PYTHON, "benchmark: routing off")  # type: ignore[assignment]
    try:
        without = compile_cost(sources, args.rounds)
    finally:
        cel_compiler.route = original_route  # type: ignore[assignment]
    print(
        f"\ncompile_expression, mean per shipped expression: {_us(with_routing)} "
        f"(cel-python program only: {_us(without)}; routing + Rust compile "
        f"{_us(with_routing - without)})"
    )


if __name__ == "__main__":
    main()
