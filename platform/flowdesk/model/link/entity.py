"""Linker checks for entities: names safe for SQL, references, defaults,
computed fields and rules."""

from __future__ import annotations

from flowdesk.expressions import BOOL, DOUBLE, INT, STRING, CelType

from ..diagnostics import did_you_mean, join_pointer
from ..entity import SYSTEM_ENTITIES, Entity, EnumField, LinesField
from .context import LinkContext, ParsedDocument
from .names import MAX_SQL_NAME, reserved
from .types import SYSTEM_FIELDS, field_type, record_scope

__all__ = ["check", "field_names", "require_field"]

_TEXT_TYPES = ("string", "text", "email", "phone", "url")
_NO_UNIQUE = ("lines", "json", "attachment", "references", "text")


def check(ctx: LinkContext) -> None:
    app_name = _app_name(ctx)
    for doc in ctx.of_kind("Entity").values():
        entity: Entity = doc.model
        _check_name(ctx, doc, "/name", entity.name, "entity")
        if len(f"{app_name}__{entity.name}") > MAX_SQL_NAME - 10:
            ctx.error(
                doc,
                "/name",
                "name-too-long",
                f"table name `{app_name}__{entity.name}` is too long for the database",
                "shorten the app or entity name",
            )
        _check_fields(ctx, doc, entity)
        _check_lists(ctx, doc, entity)
        _check_rules(ctx, doc, entity)


def _app_name(ctx: LinkContext, default: str = "app") -> str:
    for kind in ("App", "Pack"):
        for doc in ctx.of_kind(kind).values():
            return doc.name
    return default


def _check_name(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, name: str, what: str
) -> None:
    if reserved(name):
        ctx.error(
            doc,
            pointer,
            "reserved-name",
            f"`{name}` is a reserved word in SQL and cannot name this {what}",
            f"choose another name, e.g. `{_alternative(ctx, doc, name, what)}`",
            key=what == "field",
        )


def _alternative(ctx: LinkContext, doc: ParsedDocument, name: str, what: str) -> str:
    """A suggestion that reads naturally: a field takes its entity's name as a prefix,
    an entity its app's (`order` -> `sales_order`), not its own (`order_order`)."""
    if what == "field":
        return f"{doc.name}_{name}"
    app = _app_name(ctx, default="")
    return f"{app}_{name}" if app and app != name else f"{name}_record"


def _check_fields(
    ctx: LinkContext, doc: ParsedDocument, entity: Entity, prefix: tuple[str, ...] = ("fields",)
) -> None:
    for name, spec in (entity.fields if prefix == ("fields",) else {}).items():
        _check_field(ctx, doc, entity, name, spec, prefix)


def _check_field(
    ctx: LinkContext,
    doc: ParsedDocument,
    entity: Entity,
    name: str,
    spec: object,
    prefix: tuple[str, ...],
) -> None:
    pointer = join_pointer(*prefix, name)
    _check_name(ctx, doc, pointer, name, "field")
    if name in SYSTEM_FIELDS and len(prefix) == 1:
        ctx.error(
            doc,
            pointer,
            "reserved-field",
            f"`{name}` is a system field every record already has",
            "choose another name",
            key=True,
        )
    kind = spec.type  # type: ignore[attr-defined]
    if kind in ("reference", "references"):
        target = spec.to  # type: ignore[attr-defined]
        ctx.resolve(doc, pointer + "/to", "Entity", target, extra=SYSTEM_ENTITIES)
    if getattr(spec, "unique", False) and kind in _NO_UNIQUE:
        ctx.error(
            doc, pointer + "/unique", "unique-not-supported", f"a `{kind}` field cannot be unique"
        )
    if getattr(spec, "mask", None) and kind not in _TEXT_TYPES:
        ctx.error(doc, pointer + "/mask", "mask-not-text", "only text fields can be masked")
    if isinstance(spec, EnumField):
        _check_enum_default(ctx, doc, pointer, spec)
    if getattr(spec, "computed", None):
        _check_computed(ctx, doc, entity, pointer, spec, prefix)
    if isinstance(spec, LinesField):
        for sub_name, sub in spec.fields.items():
            _check_field(ctx, doc, entity, sub_name, sub, (*prefix, name, "fields"))


def _check_enum_default(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, spec: EnumField
) -> None:
    if spec.default is not None and spec.default not in spec.value_names:
        ctx.error(
            doc,
            pointer + "/default",
            "invalid-default",
            f"default `{spec.default}` is not one of the values",
            did_you_mean(spec.default, spec.value_names)
            or "values: " + ", ".join(spec.value_names),
        )


def _check_computed(
    ctx: LinkContext,
    doc: ParsedDocument,
    entity: Entity,
    pointer: str,
    spec: object,
    prefix: tuple[str, ...],
) -> None:
    entities = {n: d.model for n, d in ctx.of_kind("Entity").items()}
    expected: CelType = field_type(spec, entities, 0, {}, pointer.rsplit("/", 1)[-1])
    scope = record_scope(ctx, entity.name)
    if len(prefix) > 1:  # a field of a line: `line` is the line, `record` its parent
        lines = entity.fields[prefix[1]]
        line_type = field_type(lines, entities, 0, {}, prefix[1])
        scope["line"] = getattr(line_type, "elem", line_type)
    if expected in (INT, DOUBLE, STRING, BOOL):
        ctx.compile(doc, pointer + "/computed", spec.computed, scope, expect=expected)  # type: ignore[attr-defined]
    else:
        ctx.compile(doc, pointer + "/computed", spec.computed, scope, expect=None)  # type: ignore[attr-defined]


def _check_lists(ctx: LinkContext, doc: ParsedDocument, entity: Entity) -> None:
    names = field_names(entity)
    if entity.title is not None:
        require_field(ctx, doc, "/title", entity, entity.title)
    for index, name in enumerate(entity.search):
        spec = require_field(ctx, doc, f"/search/{index}", entity, name)
        if spec is not None and spec.type not in _TEXT_TYPES:
            ctx.error(
                doc,
                f"/search/{index}",
                "not-searchable",
                f"field `{name}` is {_article(spec.type)} `{spec.type}`; "
                "only text fields can be searched",
            )
    for index, name in enumerate(entity.natural_key):
        require_field(ctx, doc, f"/natural_key/{index}", entity, name)
    for i, index_spec in enumerate(entity.indexes):
        for j, name in enumerate(index_spec.fields):
            if name not in SYSTEM_FIELDS or name not in names:
                require_field(ctx, doc, f"/indexes/{i}/fields/{j}", entity, name, allow_system=True)


def _check_rules(ctx: LinkContext, doc: ParsedDocument, entity: Entity) -> None:
    scope = record_scope(ctx, entity.name)
    for index, rule in enumerate(entity.rules):
        ctx.compile(doc, f"/rules/{index}/when", rule.when, scope, expect=BOOL)
        if rule.field is not None:
            require_field(ctx, doc, f"/rules/{index}/field", entity, rule.field)


def field_names(entity: Entity) -> list[str]:
    return list(entity.fields)


def require_field(
    ctx: LinkContext,
    doc: ParsedDocument,
    pointer: str,
    entity: Entity | None,
    name: str,
    *,
    allow_system: bool = False,
) -> object | None:
    """The field `name` of `entity`, or None after reporting `unknown-field`."""
    if entity is None:
        return None
    if name in entity.fields:
        return entity.fields[name]
    if allow_system and name in SYSTEM_FIELDS:
        return None
    hint = did_you_mean(name, [*entity.fields, *(SYSTEM_FIELDS if allow_system else ())])
    ctx.error(
        doc,
        pointer,
        "unknown-field",
        f"unknown field `{name}` of entity `{entity.name}`",
        hint or "fields: " + ", ".join(f"`{f}`" for f in entity.fields),
    )
    return None


def _article(word: str) -> str:
    return "an" if word and word[0] in "aeiou" else "a"
