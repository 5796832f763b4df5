"""Passes one and two: each document's structure (JSON Schema) and types
(pydantic), turned into located diagnostics an analyst can act on.

Errors are classified by their structure (jsonschema's `validator` and path,
pydantic's `type` and `loc`), never by parsing message text.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import ValidationError

from ._base import API_VERSION, IDENTIFIER_PATTERN, Document
from .app import SEMVER_PATTERN
from .diagnostics import Diagnostic, did_you_mean, join_pointer
from .kinds import KINDS
from .loader import SourceDocument
from .schema import kind_validator

__all__ = ["check_header", "check_structure", "parse_document", "snake_case"]

_JSON_TYPES = {
    "string": "text",
    "integer": "whole number",
    "number": "number",
    "boolean": "true or false",
    "array": "list",
    "object": "mapping",
    "null": "nothing",
}
_PATTERN_HINTS = {
    IDENTIFIER_PATTERN: "names are snake_case: lower-case letters, digits and `_`",
    SEMVER_PATTERN: "use a semantic version such as `1.0.0`",
    r"^\d{4}-\d{2}-\d{2}$": "write dates as `YYYY-MM-DD`",
}
# Header keys `check_header` always reports itself; the schema pass leaves them alone.
_HEADER_KEYS = frozenset({"apiVersion"})
_RANGE_VALIDATORS = {
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
}


def snake_case(text: str) -> str:
    """`Ticket Type` -> `ticket_type`: the name an analyst most likely meant."""
    out = []
    for index, char in enumerate(text.strip()):
        if char.isupper() and index and out and out[-1] not in "_":
            out.append("_")
        out.append(char.lower() if char.isalnum() else "_")
    result = "".join(out).strip("_")
    while "__" in result:
        result = result.replace("__", "_")
    return result


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    return f"`{text[:60]}`" + ("..." if len(text) > 60 else "")


def check_header(doc: SourceDocument) -> list[Diagnostic]:
    """`apiVersion` and `kind` decide which schema applies, so check them first."""
    data = doc.data
    if not isinstance(data, dict):
        return [
            doc.diagnostic(
                "",
                "not-a-mapping",
                f"a document must be a mapping of keys, not {_describe(data)}",
                "start the document with `apiVersion:`, `kind:` and `name:`",
            )
        ]
    problems = []
    version = data.get("apiVersion")
    if version != API_VERSION:
        message = (
            "missing `apiVersion`"
            if version is None
            else f"unsupported apiVersion {_describe(version)}"
        )
        problems.append(
            doc.diagnostic(
                "/apiVersion", "invalid-api-version", message, f"write `apiVersion: {API_VERSION}`"
            )
        )
    kind = data.get("kind")
    if kind is not None and not isinstance(kind, str):
        problems.append(doc.diagnostic(
            "/kind", "unknown-kind", f"`kind` must be a name, not {_describe(kind)}",
            "one of: " + ", ".join(KINDS)))
    elif kind is None:
        problems.append(
            doc.diagnostic(
                "", "missing-kind", "missing `kind`", "add `kind:` with one of: " + ", ".join(KINDS)
            )
        )
    elif kind not in KINDS:
        problems.append(
            doc.diagnostic(
                "/kind",
                "unknown-kind",
                f"unknown kind {_describe(kind)}",
                did_you_mean(str(kind), KINDS) or "one of: " + ", ".join(KINDS),
            )
        )
    return problems


def check_structure(doc: SourceDocument) -> list[Diagnostic]:
    """Pass one: the kind's JSON Schema, every violation reported."""
    validator = kind_validator(doc.data["kind"])
    found: list[Diagnostic] = []
    for error in validator.iter_errors(doc.data):
        if list(error.absolute_path) == ["apiVersion"]:
            continue  # reported by check_header
        found.extend(_translate(error, doc))
    return found


def _translate(error: SchemaError, doc: SourceDocument) -> list[Diagnostic]:
    pointer = join_pointer(*error.absolute_path)
    kind = error.validator
    if kind in ("anyOf", "oneOf"):
        return _translate_union(error, doc)
    if kind == "required":
        return _missing(error, doc, pointer)
    if kind == "additionalProperties":
        return _unknown_keys(error, doc, pointer)
    if kind == "type":
        expected = error.validator_value
        names = " or ".join(
            _JSON_TYPES.get(t, t) for t in (expected if isinstance(expected, list) else [expected])
        )
        return [
            doc.diagnostic(
                pointer,
                "wrong-type",
                f"expected {names}, found {_describe(error.instance)}",
                _type_hint(error),
            )
        ]
    if kind in ("enum", "const"):
        return [_bad_value(error, doc, pointer)]
    if kind == "pattern":
        return [_bad_pattern(error, doc, pointer)]
    if _is_property_name_error(error):
        return [_bad_property_name(error, doc, pointer)]
    if kind in _RANGE_VALIDATORS:
        return [doc.diagnostic(pointer, "out-of-range", _range_message(error))]
    return [doc.diagnostic(pointer, "invalid-value", error.message)]


def _missing(error: SchemaError, doc: SourceDocument, pointer: str) -> list[Diagnostic]:
    """One diagnostic per missing key (jsonschema repeats the error once per key).

    A missing `apiVersion` is left to `check_header`, which always reports it.
    """
    present = set(error.instance) if isinstance(error.instance, dict) else set()
    missing = [key for key in error.validator_value if key not in present]
    if not pointer:
        missing = [key for key in missing if key not in _HEADER_KEYS]
    return [_missing_key(error, doc, pointer, name) for name in missing]


def _missing_key(error: SchemaError, doc: SourceDocument, pointer: str, name: str) -> Diagnostic:
    help_text = error.schema.get("properties", {}).get(name, {}).get("description")
    return doc.diagnostic(
        pointer,
        "missing-key",
        f"missing required key `{name}`{_where(pointer)}",
        f"add `{name}:`" + (f" ({help_text})" if help_text else ""),
        key=True,
    )


def _where(pointer: str) -> str:
    """` in `states``: the key a problem is inside of; list indexes name their list's key."""
    for token in reversed(pointer.split("/")[1:]):
        if not token.isdigit():
            return f" in `{token.replace('~1', '/').replace('~0', '~')}`"
    return ""


def _unknown_keys(error: SchemaError, doc: SourceDocument, pointer: str) -> list[Diagnostic]:
    schema = error.schema
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))

    found = []
    for key in error.instance:
        if key in known or any(re.search(p, key) for p in patterns):
            continue
        child = pointer + join_pointer(key)
        if patterns and not known:
            found.append(
                doc.diagnostic(
                    child,
                    "invalid-name",
                    f"`{key}` is not a valid name here",
                    _name_hint(key, patterns[0]),
                    key=True,
                )
            )
            continue
        where = _where(pointer)
        if " " in key.strip():
            found.append(doc.diagnostic(
                child, "unknown-key", f"unknown key `{key}`{where}",
                "a comma inside `{...}` starts a new key; put text with commas in quotes",
                key=True))
            continue
        hint = did_you_mean(key, known) or (
            "allowed keys: " + ", ".join(f"`{k}`" for k in known) if known else None
        )
        found.append(
            doc.diagnostic(child, "unknown-key", f"unknown key `{key}`{where}", hint, key=True)
        )
    return found


def _name_hint(key: str, pattern: str) -> str:
    if pattern == IDENTIFIER_PATTERN:
        suggestion = snake_case(key)
        return (
            f"names are snake_case; write `{suggestion}`"
            if suggestion
            else _PATTERN_HINTS[IDENTIFIER_PATTERN]
        )
    return f"names must match `{pattern}`"


def _is_property_name_error(error: SchemaError) -> bool:
    """A `propertyNames` check failed: the offending value is a key, not a value."""
    return "propertyNames" in error.relative_schema_path and isinstance(error.instance, str)


def _bad_property_name(error: SchemaError, doc: SourceDocument, pointer: str) -> Diagnostic:
    """Located at the key itself: jsonschema reports it at the mapping that holds it."""
    key = error.instance
    child = pointer + join_pointer(key)
    if error.validator == "maxLength":
        limit = error.validator_value
        return doc.diagnostic(
            child,
            "out-of-range",
            f"name `{key}` is longer than {limit} characters",
            f"shorten it to at most {limit} characters",
            key=True,
        )
    hint = _name_hint(key, error.validator_value) if error.validator == "pattern" else None
    message = f"`{key}` is not a valid name here"
    return doc.diagnostic(child, "invalid-name", message, hint, key=True)


def _bad_value(error: SchemaError, doc: SourceDocument, pointer: str) -> Diagnostic:
    allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
    names = [str(v) for v in allowed]
    hint = did_you_mean(str(error.instance), names) if isinstance(error.instance, str) else None
    listing = ", ".join(f"`{n}`" for n in names)
    message = f"{_describe(error.instance)} is not allowed here; expected " + (
        f"one of {listing}" if len(names) > 1 else listing
    )
    return doc.diagnostic(pointer, "invalid-value", message, hint)


def _bad_pattern(error: SchemaError, doc: SourceDocument, pointer: str) -> Diagnostic:
    pattern = error.validator_value
    if pattern == IDENTIFIER_PATTERN:
        return doc.diagnostic(
            pointer,
            "invalid-name",
            f"{_describe(error.instance)} is not a valid name",
            _name_hint(str(error.instance), pattern),
        )
    hint = _PATTERN_HINTS.get(pattern) or _described_hint(error)
    return doc.diagnostic(
        pointer,
        "invalid-format",
        f"{_describe(error.instance)} is not in the expected format",
        hint,
    )


def _described_hint(error: SchemaError) -> str | None:
    description = error.schema.get("description")
    return description.split(". ")[0].rstrip(".") if description else None


def _type_hint(error: SchemaError) -> str | None:
    if error.validator_value == "boolean" and isinstance(error.instance, str):
        return "write `true` or `false` (YAML `yes`/`no` are text)"
    if error.validator_value == "array" and not isinstance(error.instance, list):
        return "write a list: `[a, b]` or one `- item` per line"
    return _described_hint(error)


def _range_message(error: SchemaError) -> str:
    limit = error.validator_value
    value = error.instance
    messages = {
        "minimum": f"{_describe(value)} is below the minimum {limit}",
        "maximum": f"{_describe(value)} is above the maximum {limit}",
        "exclusiveMinimum": f"{_describe(value)} must be greater than {limit}",
        "exclusiveMaximum": f"{_describe(value)} must be less than {limit}",
        "minLength": f"text is shorter than {limit} characters",
        "maxLength": f"text is longer than {limit} characters",
        "minItems": f"needs at least {limit} item{'s' if limit != 1 else ''}",
        "maxItems": f"allows at most {limit} items",
        "minProperties": f"needs at least {limit} key{'s' if limit != 1 else ''}",
        "maxProperties": f"allows at most {limit} keys",
    }
    return messages[error.validator]


def _translate_union(error: SchemaError, doc: SourceDocument) -> list[Diagnostic]:
    """Pick the alternative the author meant and report its errors, not all of them."""
    pointer = join_pointer(*error.absolute_path)
    by_branch: dict[int, list[SchemaError]] = defaultdict(list)
    for sub in error.context or ():
        by_branch[int(sub.relative_schema_path[0])].append(sub)
    branches = range(len(error.validator_value))
    shaped = [b for b in branches if not _shape_mismatch(by_branch.get(b, []))]
    if not shaped:
        return [
            doc.diagnostic(
                pointer,
                "wrong-type",
                f"expected {_union_shapes(error)}, found {_describe(error.instance)}",
                _described_hint(error),
            )
        ]
    matching = [b for b in shaped if not _tag_mismatch(by_branch.get(b, []))]
    if not matching:
        return [_unknown_tag(error, doc, pointer, shaped, by_branch)]
    if not any(by_branch.get(b) for b in matching):
        return [
            doc.diagnostic(
                pointer, "ambiguous-value", "this value matches more than one alternative"
            )
        ]
    best = min(matching, key=lambda b: len(by_branch.get(b, [])))
    return [d for sub in by_branch[best] for d in _translate(sub, doc)]


def _shape_mismatch(errors: Iterable[SchemaError]) -> bool:
    """True when a branch fails on the JSON type of the value itself."""
    return any(
        not e.relative_path
        and (
            e.validator == "type"
            or (e.validator in ("const", "enum") and not isinstance(e.instance, dict | list))
        )
        for e in errors
    )


def _tag_mismatch(errors: Iterable[SchemaError]) -> bool:
    """True when a branch fails on the discriminating `type:` (or `kind:`) value."""
    return any(
        list(e.relative_path) in (["type"], ["kind"]) and e.validator in ("const", "enum")
        for e in errors
    )


def _unknown_tag(
    error: SchemaError,
    doc: SourceDocument,
    pointer: str,
    branches: list[int],
    by_branch: dict[int, list[SchemaError]],
) -> Diagnostic:
    allowed: list[str] = []
    for branch in branches:
        for sub in by_branch.get(branch, []):
            if list(sub.relative_path) == ["type"] and sub.validator == "const":
                allowed.append(str(sub.validator_value))
            elif list(sub.relative_path) == ["type"] and sub.validator == "enum":
                allowed.extend(str(v) for v in sub.validator_value)
    written = error.instance.get("type") if isinstance(error.instance, dict) else None
    hint = did_you_mean(str(written), allowed) or "one of: " + ", ".join(allowed)
    return doc.diagnostic(
        pointer + "/type", "invalid-value", f"unknown type {_describe(written)}", hint
    )


def _union_shapes(error: SchemaError) -> str:
    shapes: list[str] = []
    for option in error.validator_value:
        kind = option.get("type") if isinstance(option, dict) else None
        if kind is None and isinstance(option, dict) and "$ref" in option:
            kind = "object"
        if kind is None and isinstance(option, dict) and "const" in option:
            shapes.append(f"`{option['const']}`")
            continue
        name = _JSON_TYPES.get(kind, "value") if isinstance(kind, str) else "value"
        if name not in shapes:
            shapes.append(name)
    return " or ".join(s for s in shapes if s != "nothing") or "a different value"


def parse_document(doc: SourceDocument) -> tuple[Document | None, list[Diagnostic]]:
    """Pass two: the typed model, or the errors pydantic's validators raised."""
    model = KINDS[doc.data["kind"]]
    try:
        return model.model_validate(doc.data, strict=True), []
    except ValidationError as errors:
        return None, _pydantic_diagnostics(doc, errors.errors(include_url=False))


def _pydantic_diagnostics(doc: SourceDocument, errors: list[Any]) -> list[Diagnostic]:
    """pydantic's errors, less those another check already explains.

    `apiVersion` is `check_header`'s. And a value that fails every member of a
    union gets one error per member: when one of them is ours (a kebab-case
    `PydanticCustomError` code), that member is the one the author meant, so
    the others' errors at or below the same place are dropped.
    """
    errors = [e for e in errors if not (e["loc"] and e["loc"][0] in _HEADER_KEYS)]
    pointers = [_data_pointer(doc.data, e["loc"]) for e in errors]
    ours = {p for e, p in zip(errors, pointers, strict=True) if _is_custom(e["type"])}
    return [
        _pydantic_diagnostic(doc, error, pointer)
        for error, pointer in zip(errors, pointers, strict=True)
        if _is_custom(error["type"]) or not any(_within(pointer, p) for p in ours)
    ]


def _is_custom(error_type: str) -> bool:
    """Our own codes are kebab-case; pydantic's built-in types are snake_case."""
    return "-" in error_type


def _within(pointer: str, ancestor: str) -> bool:
    return pointer == ancestor or pointer.startswith(ancestor + "/")


def _pydantic_diagnostic(doc: SourceDocument, error: Any, pointer: str) -> Diagnostic:
    kind = error["type"]
    code = {"missing": "missing-key", "extra_forbidden": "unknown-key"}.get(kind)
    if code is None:
        code = kind if _is_custom(kind) else "invalid-value"
    message = error["msg"].removeprefix("Value error, ")
    return doc.diagnostic(pointer, code, message, key=code == "unknown-key")


def _data_pointer(data: Any, loc: Iterable[Any]) -> str:
    """Follow pydantic's `loc` through the data, skipping union tags and validator names."""
    tokens: list[str | int] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and part < len(current)
        ):
            current = current[part]
            tokens.append(part)
    return join_pointer(*tokens)
