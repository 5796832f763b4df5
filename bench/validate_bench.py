"""How long does `flowdesk validate` take on a big app, and where does the time go?

Validation gates every edit, plan and deploy, so it must stay interactive even
for the largest apps we expect (the issue's targets: a 200-entity synthetic
app under 3 s, each shipped app under 1 s). This benchmark:

1. generates, in memory, a synthetic but valid app of the requested size
   (entities with mixed field types, workflows with gateways, approvals and
   guards, forms with visibility conditions, ~N CEL expressions) and checks it
   compiles with zero errors, so the timing is of the happy path;
2. times the full `compile_texts` (median of `--repeat` runs) and its stages
   (YAML load with positions, header + JSON Schema, pydantic, link; CEL
   compilation inside link), against a baseline of plain YAML parsing of the
   same text with ruamel's C loader, so the report says "compile = N.Nx parse";
3. times the shipped apps under `apps/` the same way.

It prints a table and exits 0: timings are reported, never asserted, because
they depend on the machine. Run from the repository root:

    python bench/validate_bench.py [--entities 200 --fields 30 --workflows 50
                                    --expressions 1000 --repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))

from ruamel.yaml import YAML  # noqa: E402

from flowdesk.model.compiler import CompileResult, compile_texts  # noqa: E402
from flowdesk.model.diagnostics import DiagnosticSink  # noqa: E402
from flowdesk.model.link import ParsedDocument, link  # noqa: E402
from flowdesk.model.link.context import LinkContext  # noqa: E402
from flowdesk.model.loader import SourceFile, load_text  # noqa: E402
from flowdesk.model.sources import read_app  # noqa: E402
from flowdesk.model.structure import check_header, check_structure, parse_document  # noqa: E402

SHIPPED_APPS = ("service_desk", "field_service", "procurement")
SYNTHETIC_TARGET_S = 3.0
SHIPPED_TARGET_S = 1.0
SHIPPED_REPEAT = 5
API = "flowdesk/v1"

# --------------------------------------------------------------------------- synthetic app

FIELD_TYPES = (
    "string", "text", "integer", "decimal", "boolean", "date", "datetime", "enum", "reference",
    "email",
)
ENUM_VALUES = ["low", "medium", "high", "urgent"]


def entity_name(index: int) -> str:
    return f"ent_{index:03d}"


@dataclass
class EntityPlan:
    """One entity's fields by type, so expressions only use fields that exist."""

    index: int
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    visible: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return entity_name(self.index)

    def of_type(self, kind: str, nth: int = 0) -> str:
        names = [n for n, spec in self.fields.items()
                 if spec["type"] == kind and "computed" not in spec]
        return names[nth % len(names)]


def field_spec(kind: str, entity: int, position: int, entities: int) -> dict[str, Any]:
    """A field of `kind` with the options analysts typically set on it."""
    spec: dict[str, Any] = {"type": kind}
    if position % 4 == 0:
        spec["label"] = {"en": f"Field {position}", "zh": f"字段 {position}"}
    if kind == "string":
        spec["max"] = 120
    elif kind == "integer":
        spec.update(min=0, max=1_000_000)
    elif kind == "decimal":
        spec.update(precision=12, scale=2, unit="CNY")
    elif kind == "boolean":
        spec["default"] = False
    elif kind == "enum":
        spec.update(values=ENUM_VALUES, default="low")
    elif kind == "reference":
        spec["to"] = entity_name((entity + 1 + position) % entities)
    if position % 7 == 3:
        spec["required"] = True
    return spec


def plan_entity(index: int, n_fields: int, entities: int) -> EntityPlan:
    """`title` first, then fields cycling through the types, the last one computed."""
    plan = EntityPlan(index)
    plan.fields["title"] = {"type": "string", "required": True, "max": 200}
    for position in range(1, max(n_fields - 1, len(FIELD_TYPES) + 1)):
        kind = FIELD_TYPES[position % len(FIELD_TYPES)]
        plan.fields[f"f{position:02d}_{kind}"] = field_spec(kind, index, position, entities)
    plan.fields["total"] = {
        "type": "decimal",
        "label": {"en": "Total", "zh": "合计"},
        "computed": f"record.{plan.of_type('decimal')} * 1.13 + "
                    f"double(record.{plan.of_type('integer')})",
    }
    return plan


def condition(plan: EntityPlan, k: int) -> str:
    """The k-th boolean condition over `plan`'s record: varied, like real models."""
    f = plan.of_type
    templates: list[Callable[[], str]] = [
        lambda: f'record.{f("integer")} > {k % 50} && record.{f("enum")} == "high"',
        lambda: f"record.{f('decimal', 1)} >= {k}.5 || record.{f('boolean')}",
        lambda: f'size(record.{f("string")}) > {k % 7} && '
                f'record.{f("email")}.endsWith("@example.com")',
        lambda: f"record.{f('date')} < now && record.{f('datetime', 1)} != null",
        lambda: f'record.{f("reference")} != null && record.{f("reference")}.title != ""',
        lambda: f'record.{f("enum", 1)} in ["high", "urgent"] && !record.{f("boolean", 1)}',
        lambda: f'record.{f("integer")} + record.{f("integer", 1)} > {k} && '
                f'record.{f("text")} != ""',
        lambda: f'record.{f("string", 1)}.startsWith("A") || record.{f("decimal")} * 2.0 > 10.0',
    ]
    return templates[k % len(templates)]()


def entity_document(plan: EntityPlan) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Entity",
        "name": plan.name,
        "label": {"en": f"Entity {plan.index}", "zh": f"实体 {plan.index}"},
        "number": f"E{plan.index:03d}-{{seq:06}}",
        "search": ["title", plan.of_type("string")],
        "fields": plan.fields,
        "rules": [
            {"when": when, "error": {"en": f"Rule {i} failed", "zh": f"规则 {i} 未通过"},
             "field": "title"}
            for i, when in enumerate(plan.rules)
        ],
        "indexes": [{"fields": [plan.of_type("enum"), "created_at"]}],
    }


def form_document(plan: EntityPlan) -> dict[str, Any]:
    """Plain fields first; fields with a visibility condition in a second section."""
    names = list(plan.fields)
    conditional = names[-len(plan.visible):] if plan.visible else []
    plain = [n for n in names if n not in conditional]
    sections: list[dict[str, Any]] = [
        {"name": "main", "label": {"en": "Main", "zh": "基本信息"}, "columns": 2,
         "fields": plain[:1] + [{"field": n, "span": 1} for n in plain[1:3]] + plain[3:]},
    ]
    if conditional:
        sections.append({
            "name": "details", "columns": 2,
            "fields": [{"field": n, "visible": v} for n, v in zip(conditional, plan.visible,
                                                                    strict=True)],
        })
    return {"apiVersion": API, "kind": "Form", "name": f"{plan.name}_edit", "entity": plan.name,
            "sections": sections}


def workflow_document(plan: EntityPlan, index: int) -> tuple[dict[str, Any], int]:
    """A 6-8 state workflow with a gateway, an approval and guarded transitions.

    Returns the document and how many CEL expressions it holds.
    """
    k = index * 10
    extra = index % 3  # 0: 6 states, 1: + waiting, 2: + waiting and escalated
    states: dict[str, Any] = {
        "new": {"label": {"en": "New", "zh": "新建"}},
        "triage": {"type": "gateway",
                   "branches": [{"when": condition(plan, k), "to": "review"}],
                   "default": "in_progress"},
        "in_progress": {"label": {"en": "In progress", "zh": "处理中"},
                        "on_enter": [{"set": {"title": "= record.title"}}]},
        "review": {"type": "approval",
                   "levels": [{"name": "lead", "approvers": [{"role": "approver"}],
                               "when": condition(plan, k + 1), "due": "2d",
                               "escalate_to": "supervisor"}],
                   "approved": "done", "rejected": "in_progress"},
        "done": {"category": "done"},
        "cancelled": {"category": "done"},
    }
    transitions: dict[str, Any] = {
        "submit": {"from": "new", "to": "triage", "when": condition(plan, k + 2),
                   "requires": ["title"], "primary": True},
        "send_to_review": {"from": "in_progress", "to": "review", "when": condition(plan, k + 3),
                           "roles": ["agent"]},
        "cancel": {"from": ["new", "in_progress"], "to": "cancelled",
                   "when": condition(plan, k + 4), "roles": ["supervisor"],
                   "comment": "required"},
        "reopen": {"from": "done", "to": "in_progress", "when": condition(plan, k + 5)},
    }
    expressions = 7  # 6 conditions + the `= record.title` value
    if extra >= 1:
        states["waiting"] = {"category": "waiting"}
        transitions["wait"] = {"from": "in_progress", "to": "waiting",
                               "when": condition(plan, k + 6)}
        transitions["resume"] = {"from": "waiting", "to": "in_progress",
                                 "when": condition(plan, k + 7)}
        transitions["resume_timeout"] = {"from": "waiting", "to": "in_progress", "after": "72h",
                                         "time": "business"}
        expressions += 2
    if extra >= 2:
        states["escalated"] = {}
        transitions["escalate"] = {"from": "in_progress", "to": "escalated",
                                   "when": condition(plan, k + 8)}
        transitions["de_escalate"] = {"from": "escalated", "to": "in_progress",
                                      "when": condition(plan, k + 9)}
        expressions += 2
    document = {"apiVersion": API, "kind": "Workflow", "name": f"{plan.name}_flow",
                "entity": plan.name, "initial": "new", "states": states,
                "transitions": transitions}
    return document, expressions


def dump(document: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 120
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


@dataclass
class Synthetic:
    texts: dict[str, str]
    entities: int
    fields: int
    workflows: int
    forms: int
    expressions: int


def synthetic_app(entities: int, fields: int, workflows: int, expressions: int) -> Synthetic:
    """{file name: YAML} of a valid app of the requested size.

    Each entity has one computed field and each workflow 7-11 expressions; the
    rest of the budget is spread over entity rules and form visibility, round
    robin, so no document is unrealistically large.
    """
    plans = [plan_entity(i, fields, entities) for i in range(entities)]
    workflows = min(workflows, entities)
    flows = [workflow_document(plans[i], i) for i in range(workflows)]
    remaining = max(0, expressions - entities - sum(n for _, n in flows))
    for k in range(remaining):
        plan = plans[k % entities]
        target = plan.rules if (k // entities) % 2 == 0 else plan.visible
        target.append(condition(plan, k + 3))
    texts = {"app.yaml": dump({"apiVersion": API, "kind": "App", "name": "bench",
                               "version": "1.0.0", "title": {"en": "Bench", "zh": "基准"}})}
    for plan in plans:
        texts[f"entities/{plan.name}.yaml"] = dump(entity_document(plan))
    forms = [plan for plan in plans if plan.visible or plan.index % 2 == 0]
    for plan in forms:
        texts[f"forms/{plan.name}_edit.yaml"] = dump(form_document(plan))
    for document, _ in flows:
        texts[f"workflows/{document['name']}.yaml"] = dump(document)
    total = entities + sum(n for _, n in flows) + remaining
    return Synthetic(texts, entities, len(plans[0].fields), workflows, len(forms), total)


# --------------------------------------------------------------------------- timing


def median_time(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def plain_parse(texts: dict[str, str]) -> None:
    """The baseline: what parsing the same YAML costs with nothing else done."""
    for text in texts.values():
        list(YAML(typ="safe", pure=False).load_all(text))


STAGES = ("load", "schema", "pydantic", "link", "cel")


@contextmanager
def timed_cel(totals: dict[str, float]) -> Iterator[None]:
    """Time CEL compilation inside link by wrapping `LinkContext.compile` for a while."""
    original = LinkContext.compile

    def compile_timed(self: LinkContext, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            totals["cel"] += time.perf_counter() - start

    LinkContext.compile = compile_timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        LinkContext.compile = original  # type: ignore[method-assign]


def staged_compile(texts: dict[str, str]) -> dict[str, float]:
    """`compile_texts`, step by step, with the time spent in each stage."""
    totals = dict.fromkeys(STAGES, 0.0)
    sink = DiagnosticSink()
    files = {name: SourceFile(name, text) for name, text in texts.items()}
    parsed: list[ParsedDocument] = []
    for name, text in texts.items():
        start = time.perf_counter()
        documents, problems = load_text(text, name)
        totals["load"] += time.perf_counter() - start
        sink.extend(problems)
        for doc in documents:
            start = time.perf_counter()
            problems = check_header(doc) + check_structure(doc)
            middle = time.perf_counter()
            model, more = parse_document(doc) if not problems else (None, [])
            totals["schema"] += middle - start
            totals["pydantic"] += time.perf_counter() - middle
            sink.extend(problems + more)
            if model is not None:
                parsed.append(ParsedDocument(model, doc))
    start = time.perf_counter()
    with timed_cel(totals):
        link(parsed, files, sink, complete=not sink.has_errors)
    totals["link"] = time.perf_counter() - start
    return totals


def median_stages(texts: dict[str, str], repeat: int) -> dict[str, float]:
    runs = [staged_compile(texts) for _ in range(repeat)]
    return {stage: statistics.median(run[stage] for run in runs) for stage in STAGES}


def require_valid(result: CompileResult, what: str) -> None:
    """A benchmark of a failing compile measures the wrong path: show why and stop."""
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        for d in errors[:15]:
            print(f"  {d.file}:{d.line}:{d.column}: {d.code}: {d.message}", file=sys.stderr)
    assert not errors, f"{what} does not compile: {len(errors)} errors (first ones above)"
    assert result.app is not None


# --------------------------------------------------------------------------- report


def seconds(value: float) -> str:
    return f"{value * 1000:8.1f} ms" if value < 1 else f"{value:8.3f} s "


def verdict(value: float, target: float) -> str:
    return f"target < {target:g} s: {'OK' if value < target else 'OVER'}"


def run_synthetic(args: argparse.Namespace) -> Synthetic:
    app = synthetic_app(args.entities, args.fields, args.workflows, args.expressions)
    size = sum(len(t.encode()) for t in app.texts.values())
    lines = sum(t.count("\n") for t in app.texts.values())
    print(f"Synthetic app: {app.entities} entities x {app.fields} fields, {app.workflows} "
          f"workflows, {app.forms} forms, {app.expressions} CEL expressions planned")
    print(f"  {len(app.texts)} files, {lines:,} lines, {size / 1024:,.0f} KiB of YAML")
    start = time.perf_counter()
    result = compile_texts(app.texts)
    cold = time.perf_counter() - start
    require_valid(result, "the synthetic app")
    assert result.app is not None
    print(f"  compiles with 0 errors; {len(result.app.expressions)} expressions compiled\n")

    baseline = median_time(lambda: plain_parse(app.texts), args.repeat)
    full = median_time(lambda: compile_texts(app.texts), args.repeat)
    stages = median_stages(app.texts, args.repeat)
    print(f"{'stage (median of ' + str(args.repeat) + ')':<40}{'time':>12}{'share':>8}")
    print("-" * 60)
    print(f"{'plain YAML parse (ruamel C, baseline)':<40}{seconds(baseline):>12}")
    rows = [
        ("load: YAML compose + positions", stages["load"]),
        ("header + JSON Schema", stages["schema"]),
        ("pydantic models", stages["pydantic"]),
        ("link (names, graphs, types, CEL)", stages["link"]),
        ("  of which CEL compile", stages["cel"]),
    ]
    staged_total = sum(stages[s] for s in ("load", "schema", "pydantic", "link"))
    for label, value in rows:
        print(f"{label:<40}{seconds(value):>12}{value / staged_total:>8.0%}")
    print("-" * 60)
    print(f"{'full compile_texts':<40}{seconds(full):>12}   = {full / baseline:.1f}x plain YAML "
          f"parse; {verdict(full, SYNTHETIC_TARGET_S)}")
    print(f"{'first compile in process (cold)':<40}{seconds(cold):>12}\n")
    return app


def run_shipped(repeat: int) -> None:
    print(f"Shipped apps (in-process, median of {repeat})")
    print(f"{'app':<16}{'files':>6}{'exprs':>7}{'YAML parse':>13}{'compile':>13}{'ratio':>8}  "
          "verdict")
    print("-" * 80)
    for name in SHIPPED_APPS:
        folder = ROOT / "apps" / name
        if not (folder / "app.yaml").is_file():
            print(f"{name:<16}skipped: {folder.relative_to(ROOT)} not found")
            continue
        source = read_app(folder)
        result = compile_texts(source.texts)
        errors = [d for d in [*source.diagnostics, *result.diagnostics] if d.is_error]
        if errors or result.app is None:
            first = errors[0] if errors else None
            detail = f" (first: {first.file}:{first.line} {first.code})" if first else ""
            print(f"{name:<16}skipped: does not compile, {len(errors)} errors{detail}")
            continue
        baseline = median_time(lambda s=source: plain_parse(s.texts), repeat)
        full = median_time(lambda s=source: compile_texts(s.texts), repeat)
        print(f"{name:<16}{len(source.texts):>6}{len(result.app.expressions):>7}"
              f"{seconds(baseline):>13}{seconds(full):>13}{full / baseline:>7.1f}x  "
              f"{verdict(full, SHIPPED_TARGET_S)}")
    print()


def run_profile(app: Synthetic, top: int) -> None:
    """Where a warm compile of the synthetic app spends its time, by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    compile_texts(app.texts)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    print(f"Profile of one warm compile (top {top} by cumulative time)")
    print(stream.getvalue())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=200)
    parser.add_argument("--fields", type=int, default=30, help="fields per entity (at least 12)")
    parser.add_argument("--workflows", type=int, default=50, help="each on its own entity")
    parser.add_argument(
        "--expressions", type=int, default=1000,
        help="CEL expressions in all (at least one per entity and 7-11 per workflow)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the median is shown")
    parser.add_argument("--profile", action="store_true", help="also profile one compile")
    parser.add_argument("--profile-top", type=int, default=40)
    parser.add_argument("--skip-shipped", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Python {sys.version.split()[0]}, {sys.platform}\n")
    app = run_synthetic(args)
    if not args.skip_shipped:
        run_shipped(SHIPPED_REPEAT)
    if args.profile:
        run_profile(app, args.profile_top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
