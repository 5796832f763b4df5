"""Property-based tests: whatever text an analyst saves, compiling it yields located
diagnostics and never raises.

(a) feeds YAML-ish text built from a small grammar (keys, colons, dashes,
indentation, tabs, quotes, brackets, anchors and aliases, tags, unicode) and
plain random text as a single file; (b) mutates the scaffolded sample app
(deleted / duplicated lines, swapped characters, values of another type,
renamed or deleted keys, tabs, truncation); (c) checks that positions inside
scalars (quoted, escaped, folded, block) map back to the written characters.
"""

from __future__ import annotations

import functools
import io
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from flowdesk.cli.scaffold import scaffold_app
from flowdesk.model.compiler import compile_texts
from flowdesk.model.diagnostics import Diagnostic
from flowdesk.model.kinds import KINDS, schema_file_name
from flowdesk.model.loader import load_text
from flowdesk.model.positions import ScalarText, line_starts
from flowdesk.model.schema import generate_schemas

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- (a) YAML-ish text --------------------------------------------------------------------

# fmt: off
KEYS = [
    "apiVersion", "kind", "name", "version", "title", "fields", "type", "values", "label",
    "entity", "initial", "states", "transitions", "from", "to", "when", "on_enter", "set",
    "a", "b", "<<", "Ключ", "名字", "x y", "'quoted key'", '"k:v"', "1", "true", "~",
]
SCALARS = [
    "flowdesk/v1", "flowdesk/v2", "App", "Entity", "Workflow", "Form", "ticket", "string",
    "enum", "1.0.0", "true", "false", "yes", "null", "~", "0", "-7", "0x1F", "0o17",
    "1_000", "3.14", "-2.5e3", ".inf", "-.inf", ".nan", "2024-02-30", "12:30:00",
    "record.a == 1", "= record.b + 1", "{{ record.x }}", "工单", "é", "😀", "\u200b", "a: b",
    "x # not a comment", "'single ''quoted'''", '"double \\" \\n \\u00e9"',
    '"unterminated', "'unterminated", "%", "@at", "`tick`", "a,b", "?", "-", ":",
]
TAGS = [
    "!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:print",
    "!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!!set",
    "!!omap", "!!map", "!!seq", "!Ref", "!", "!<tag:yaml.org,2002:str>", "!local",
]
ANCHORS = ["&a", "&b", "&anchor"]
ALIASES = ["*a", "*b", "*anchor", "*missing"]
JUNK = [
    "---", "...", "%YAML 1.2", "%TAG ! tag:x,2002:", "? ", ": ", "- ", "[", "]", "{", "}",
    ",", "'", '"', "\t", "|", ">", "|-", ">+", "#", "&", "*", "!", "\\", "\r", "\ufeff",
]
# fmt: on

scalars = st.sampled_from(SCALARS) | st.text(min_size=0, max_size=8)


def _flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(children, max_size=3).map(
        lambda items: "[" + ", ".join(items) + "]"
    ) | st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=3).map(
        lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    )


values = st.recursive(
    scalars
    | st.sampled_from(ALIASES)
    | st.tuples(st.sampled_from(TAGS), scalars).map(" ".join)
    | st.tuples(st.sampled_from(ANCHORS), scalars).map(" ".join),
    _flow,
    max_leaves=6,
)

line = st.tuples(
    st.sampled_from(["", "  ", "    ", "      ", "\t", " \t", "   "]),
    st.sampled_from(["", "- ", "- - ", "? "]),
    st.one_of(st.none(), st.sampled_from(KEYS)),
    st.sampled_from([": ", ":", " : ", ":\t"]),
    st.one_of(st.just(""), values, st.sampled_from(ANCHORS + TAGS + ["|", ">", "|-"])),
    st.sampled_from(["", "", " # comment", "  #", " \t"]),
).map(lambda p: p[0] + p[1] + (p[2] + p[3] if p[2] is not None else "") + p[4] + p[5])

yamlish = st.lists(line | st.sampled_from(JUNK), min_size=1, max_size=25).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n"]).map(lambda nl: nl.join(lines))
)


def _vocabulary() -> tuple[dict[str, list[str]], list[str], list[object]]:
    """Top-level keys per kind, every property name, and every const / enum value of
    the kinds' JSON Schemas, so generated documents get past the header checks."""
    schemas = generate_schemas()
    names: set[str] = set()
    literals: list[object] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            names.update(k for k in node.get("properties", {}) if isinstance(k, str))
            if "const" in node:
                literals.append(node["const"])
            literals.extend(node.get("enum", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas)
    top = {
        kind: sorted(
            k
            for k in schemas[schema_file_name(kind)].get("properties", {})
            if k not in ("apiVersion", "kind", "name")
        )
        for kind in KINDS
    }
    unique = list({repr(v): v for v in literals}.values())
    return top, sorted(names), sorted(unique, key=repr)


TOP_KEYS, SCHEMA_KEYS, SCHEMA_LITERALS = _vocabulary()
NAMES = ["ticket", "open", "done", "agent", "requester", "subject", "mon-fri", "main"]
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.floats(allow_infinity=True)
    | st.sampled_from(SCHEMA_LITERALS)
    | st.sampled_from(SCALARS)
    | st.sampled_from(NAMES)
    | st.sampled_from(
        [
            "record.subject == 'x'",
            "= record.a + 1",
            "4h",
            "09:00-17:00",
            "2025-01-01",
            "TCK-{seq:05}",
            "{first:3}***",
            "0 8 * * *",
        ]
    )
)
data_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(SCHEMA_KEYS) | st.sampled_from(NAMES), children, max_size=4
        )
    ),
    max_leaves=12,
)


def _document(kind: str) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "apiVersion": st.sampled_from(["flowdesk/v1", "flowdesk/v1", "flowdesk/v1", "v1"]),
            "kind": st.just(kind),
            "name": st.sampled_from([*NAMES, "Bad Name", "x" * 45]),
        },
        optional={key: data_values for key in TOP_KEYS[kind]},
    )


documents = st.sampled_from(list(KINDS)).flatmap(_document)


def _dump(docs: list[dict[str, object]]) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump_all(docs, stream)
    return stream.getvalue()


structured = st.lists(documents, min_size=1, max_size=3).map(_dump)

texts = (
    yamlish
    | structured
    | st.text(max_size=200)
    | st.binary(max_size=80).map(lambda b: b.decode("utf-8", "replace"))
)


def check_diagnostics(diagnostics: list[Diagnostic], files: dict[str, str]) -> None:
    for d in diagnostics:
        assert d.file in files, d
        assert isinstance(d.line, int) and d.line >= 1, d
        assert isinstance(d.column, int) and d.column >= 1, d
        assert isinstance(d.code, str) and d.code, d
        assert isinstance(d.message, str) and d.message, d


@FUZZ
@given(texts, st.sampled_from(["app.yaml", "entities/ticket.yaml"]))
def test_any_text_gives_diagnostics_never_an_exception(text: str, name: str) -> None:
    result = compile_texts({name: text})
    check_diagnostics(result.diagnostics, {name: text})


# -- (b) mutations of a valid app ---------------------------------------------------------


@functools.cache
def sample_app() -> tuple[tuple[str, str], ...]:
    """The texts of `flowdesk new app sample`, by path inside the app."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "sample"
        scaffold_app("sample", Path(folder))
        return tuple(
            sorted(
                (p.relative_to(root).as_posix(), p.read_text(encoding="utf-8"))
                for p in root.rglob("*.yaml")
            )
        )


# fmt: off
OTHER_VALUES = [
    "123", "-1.5", "true", "null", "~", "[]", "{}", "[a, b]", "{x: 1}", '""', "'text'",
    "2024-13-45", "工单", "record.nope ==", "{{", "*a", "!!int x", "-",
]
# fmt: on


def _lines(text: str) -> list[str]:
    return text.split("\n")


def delete_line(text: str, data: st.DataObject) -> str:
    lines = _lines(text)
    del lines[data.draw(st.integers(0, len(lines) - 1))]
    return "\n".join(lines)


def duplicate_line(text: str, data: st.DataObject) -> str:
    lines = _lines(text)
    index = data.draw(st.integers(0, len(lines) - 1))
    lines.insert(index, lines[index])
    return "\n".join(lines)


def swap_characters(text: str, data: st.DataObject) -> str:
    if len(text) < 2:
        return text
    i = data.draw(st.integers(0, len(text) - 1))
    j = data.draw(st.integers(0, len(text) - 1))
    chars = list(text)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _keyed(lines: list[str]) -> list[int]:
    return [i for i, s in enumerate(lines) if ":" in s and not s.lstrip().startswith("#")]


def replace_value(text: str, data: st.DataObject) -> str:
    lines = _lines(text)
    keyed = _keyed(lines)
    if not keyed:
        return text
    index = data.draw(st.sampled_from(keyed))
    key, _, _ = lines[index].partition(":")
    lines[index] = f"{key}: {data.draw(st.sampled_from(OTHER_VALUES))}"
    return "\n".join(lines)


def rename_key(text: str, data: st.DataObject) -> str:
    lines = _lines(text)
    keyed = _keyed(lines)
    if not keyed:
        return text
    index = data.draw(st.sampled_from(keyed))
    key, colon, rest = lines[index].partition(":")
    stripped = key.lstrip(" -")
    prefix = key[: len(key) - len(stripped)]
    new = data.draw(
        st.sampled_from(
            [
                stripped[:-1],
                stripped + "s",
                stripped.upper(),
                stripped.title(),
                "x" + stripped,
                stripped.replace("_", " "),
                stripped[::-1],
                "名字",
                "",
            ]
        )
    )
    lines[index] = prefix + new + colon + rest
    return "\n".join(lines)


def delete_key(text: str, data: st.DataObject) -> str:
    """Delete a `key:` line and the lines indented under it."""
    lines = _lines(text)
    keyed = _keyed(lines)
    if not keyed:
        return text
    index = data.draw(st.sampled_from(keyed))
    indent = len(lines[index]) - len(lines[index].lstrip(" "))
    end = index + 1
    while (
        end < len(lines)
        and lines[end].strip()
        and len(lines[end]) - len(lines[end].lstrip(" ")) > indent
    ):
        end += 1
    del lines[index:end]
    return "\n".join(lines)


def insert_tab(text: str, data: st.DataObject) -> str:
    at = data.draw(st.integers(0, len(text)))
    return text[:at] + "\t" + text[at:]


def truncate(text: str, data: st.DataObject) -> str:
    return text[: data.draw(st.integers(0, len(text)))]


MUTATIONS = [
    delete_line,
    duplicate_line,
    swap_characters,
    replace_value,
    rename_key,
    delete_key,
    insert_tab,
    truncate,
]


@FUZZ
@given(st.data())
def test_mutated_sample_app_gives_located_diagnostics(data: st.DataObject) -> None:
    files = dict(sample_app())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        name = data.draw(st.sampled_from(sorted(files)), label="file")
        mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
        files[name] = mutation(files[name], data)
    result = compile_texts(files)
    check_diagnostics(result.diagnostics, files)
    for d in result.diagnostics:
        assert d.line <= len(files[d.file].splitlines()) + 1, d


def test_sample_app_is_valid() -> None:
    """The mutations start from an app without diagnostics."""
    assert compile_texts(dict(sample_app())).diagnostics == []


# -- (c) positions inside scalars ---------------------------------------------------------

SCALAR_STYLES = [
    str,
    FoldedScalarString,
    LiteralScalarString,
    DoubleQuotedScalarString,
    SingleQuotedScalarString,
]
scalar_texts = st.text(
    st.sampled_from([*"abc xyz.\"'\\=&|>#:-{}[],\t\n", "é", "工"]), min_size=1, max_size=60
)


@FUZZ
@given(scalar_texts, st.sampled_from(SCALAR_STYLES), st.integers(4, 40))
def test_scalar_positions_point_at_the_written_character(
    value: str, style: type, width: int
) -> None:
    """Each character of a value, however YAML wrote it (quoted, escaped, folded, in a
    block), maps back to where it is written: the CEL and template error positions."""
    yaml = YAML(typ="rt")
    yaml.width = width
    stream = io.StringIO()
    yaml.dump({"rule": {"when": style(value)}}, stream)
    text = stream.getvalue()
    documents, _ = load_text(text, "x.yaml")
    assume(len(documents) == 1)  # the round-trip dumper can write YAML it cannot read
    document = documents[0]
    loaded = document.data["rule"]["when"]
    assume(isinstance(loaded, str))
    scalar = ScalarText(text, document.positions["/rule/when"], loaded)
    starts = line_starts(text)
    for offset, char in enumerate(loaded):
        if not char.isspace():
            line, column = scalar.position(offset)
            written = text[starts[line - 1] + column - 1]
            assert written in (char, "\\"), (text, loaded, offset)  # `\\` starts an escape


# -- crashes these properties found, now diagnostics -------------------------------------


@pytest.mark.parametrize("kind", ["[Entity]", "{name: Entity}"])
def test_non_scalar_kind_is_a_diagnostic(kind: str) -> None:
    text = f"apiVersion: flowdesk/v1\nkind: {kind}\nname: ticket\nfields: {{a: {{type: text}}}}\n"
    result = compile_texts({"entities/ticket.yaml": text})
    assert any(d.line == 2 and d.column == 7 for d in result.diagnostics)


def test_recursive_alias_is_a_diagnostic() -> None:
    text = "apiVersion: flowdesk/v1\nkind: Entity\nname: ticket\nfields: &f\n  self: *f\n"
    result = compile_texts({"entities/ticket.yaml": text})
    assert result.diagnostics and all(d.line >= 1 for d in result.diagnostics)


def test_deep_nesting_is_a_diagnostic() -> None:
    depth = max(2000, sys.getrecursionlimit())
    result = compile_texts({"app.yaml": "[" * depth + "]" * depth})
    assert result.diagnostics and all(d.line >= 1 for d in result.diagnostics)
