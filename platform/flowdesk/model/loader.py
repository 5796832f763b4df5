"""Read YAML files into plain documents plus a side table of source positions.

Validation needs a line and column for every value and key, but the rest of
the pipeline wants plain `dict`/`list`/`str`. So we compose YAML into nodes
(ruamel.yaml's C parser keeps marks on every node, at a fraction of the
round-trip loader's cost), then build plain values ourselves while recording
`{json pointer: (line, column)}`. Scalars follow YAML 1.2 core rules, except
that timestamps stay strings: models hold dates as text and parse them
where their meaning is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Diagnostic, join_pointer
from .positions import line_starts

__all__ = [
    "SourceDocument",
    "SourceFile",
    "encoding_diagnostic",
    "iter_yaml_files",
    "load_file",
    "load_text",
]

_TAG = "tag:yaml.org,2002:"
_MAX_NODES = 2_000_000  # guards against alias bombs ("billion laughs")
Position = tuple[int, int]
_TOO_DEEP = (
    "document nests too deeply, or an alias refers to the anchor it is inside of "
    "(`&a` ... `*a`)"
)


@dataclass(frozen=True)
class SourceFile:
    """A file as read, kept so messages can quote the offending line."""

    path: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass
class SourceDocument:
    """One YAML document of a file: plain data plus where each part was written."""

    file: str
    index: int
    data: Any
    line: int
    positions: dict[str, Position] = field(default_factory=dict)
    key_positions: dict[str, Position] = field(default_factory=dict)
    # Mappings holding a list or mapping as a key (reported as `yaml-complex-key`): the
    # data holds a placeholder key there, so the document must not be validated further.
    complex_keys: list[str] = field(default_factory=list)

    def position(self, pointer: str, *, key: bool = False) -> Position:
        """Position of `pointer`, or of its nearest written ancestor."""
        table = self.key_positions if key else self.positions
        probe = pointer
        while True:
            if probe in table:
                return table[probe]
            if key and probe in self.positions:
                return self.positions[probe]
            if not probe:
                return (self.line, 1)
            probe = probe.rsplit("/", 1)[0]

    def diagnostic(
        self,
        pointer: str,
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: Any = None,
    ) -> Diagnostic:
        line, column = self.position(pointer, key=key)
        extra = {"severity": severity} if severity is not None else {}
        return Diagnostic(self.file, line, column, code, message, pointer, hint, **extra)


class _Builder:
    """Turns a composed node tree into plain values, recording positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[str, Position] = {}
        self.key_positions: dict[str, Position] = {}
        self.diagnostics: list[Diagnostic] = []
        self.complex_keys: list[str] = []
        self._count = 0
        self._active: set[int] = set()

    def build(self, node: Node, pointer: str) -> Any:
        if id(node) in self._active:
            raise RecursionError("alias cycle")
        self._active.add(id(node))
        try:
            return self._build(node, pointer)
        finally:
            self._active.discard(id(node))

    def _build(self, node: Node, pointer: str) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            raise _TooLarge
        self.positions[pointer] = _mark(node)
        if isinstance(node, MappingNode):
            self._check_collection_tag(node, pointer, "map")
            return self._mapping(node, pointer)
        if isinstance(node, SequenceNode):
            self._check_collection_tag(node, pointer, "seq")
            return [self.build(item, f"{pointer}/{i}") for i, item in enumerate(node.value)]
        return self._scalar(node, pointer)

    def _check_collection_tag(self, node: Node, pointer: str, standard: str) -> None:
        """`!!set`, `!!omap`, `!!python/object:...` on a mapping or list: the value is
        built as the plain mapping or list, but the tag asked for something else."""
        tag = str(node.tag)
        if tag not in (_TAG + standard, "!"):
            self._unsupported_tag(node, pointer, tag)

    def _mapping(self, node: MappingNode, pointer: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for source in _merge_sources(node):
            self._check_collection_tag(source, pointer, "map")
        for key_node, value_node in _merged_pairs(node):
            key = self._key(key_node, pointer)
            child = pointer + join_pointer(key)
            if key in result:
                first = self.key_positions.get(child, (0, 0))[0]
                line, column = _mark(key_node)
                self.diagnostics.append(
                    Diagnostic(
                        self.file,
                        line,
                        column,
                        "duplicate-key",
                        f"key `{key}` is written twice in the same mapping (first on line {first})",
                        child,
                        "remove or rename one of them",
                    )
                )
                continue
            self.key_positions[child] = _mark(key_node)
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: Node, pointer: str) -> str:
        if isinstance(node, ScalarNode):
            return str(node.value)
        self.complex_keys.append(pointer)
        line, column = _mark(node)
        self.diagnostics.append(
            Diagnostic(
                self.file,
                line,
                column,
                "yaml-complex-key",
                "a mapping key must be a plain value, not a list or mapping",
                "",
            )
        )
        return f"<complex key at {line}:{column}>"

    def _scalar(self, node: ScalarNode, pointer: str) -> Any:
        tag = str(node.tag)
        value = node.value
        if not tag.startswith(_TAG) and not tag.startswith("!"):
            tag = _TAG + "str"
        kind = tag.removeprefix(_TAG)
        try:
            if kind == "int":
                return (
                    int(value.replace("_", ""), 0)
                    if not value.lstrip("+-").isdigit()
                    else int(value)
                )
            if kind == "float":
                return _float(value)
            if kind == "bool":
                return value.lower() == "true"
            if kind == "null":
                return None
        except ValueError:
            return value
        if kind in ("str", "timestamp", "binary") or tag == "!":
            return value
        self._unsupported_tag(node, pointer, tag)
        return value

    def _unsupported_tag(self, node: Node, pointer: str, tag: str) -> None:
        line, column = _mark(node)
        self.diagnostics.append(
            Diagnostic(
                self.file,
                line,
                column,
                "yaml-unsupported-tag",
                f"YAML tag `{_written_tag(tag)}` is not supported in models",
                pointer,
                "remove the tag; models hold plain strings, numbers, lists and mappings",
            )
        )


class _TooLarge(Exception):
    pass


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered in (".inf", "+.inf"):
        return float("inf")
    if lowered == "-.inf":
        return float("-inf")
    if lowered == ".nan":
        return float("nan")
    return float(text.replace("_", ""))


def _written_tag(tag: str) -> str:
    """`tag:yaml.org,2002:set` -> `!!set`: the tag as the author wrote it."""
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _mark(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _merged_pairs(node: MappingNode) -> Iterator[tuple[Node, Node]]:
    """Mapping pairs with YAML merge keys (`<<: *base`) expanded; explicit keys win."""
    own = [(k, v) for k, v in node.value if str(k.tag) != _TAG + "merge"]
    seen = {k.value for k, _ in own if isinstance(k, ScalarNode)}
    for source in _merge_sources(node):  # the first source to define a key wins
        for key_node, value_node in _merged_pairs(source):
            if isinstance(key_node, ScalarNode):
                if key_node.value in seen:
                    continue
                seen.add(key_node.value)
            yield key_node, value_node
    yield from own


def _merge_sources(node: MappingNode) -> list[MappingNode]:
    """The mappings a mapping merges in with `<<: *base` or `<<: [*a, *b]`."""
    found: list[MappingNode] = []
    for key_node, value_node in node.value:
        if str(key_node.tag) == _TAG + "merge":
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            found.extend(source for source in sources if isinstance(source, MappingNode))
    return found


def _yaml() -> YAML:
    return YAML(typ="safe", pure=False)


def load_text(text: str, file: str) -> tuple[list[SourceDocument], list[Diagnostic]]:
    """Parse every document of `text`; syntax errors come back as diagnostics."""
    documents: list[SourceDocument] = []
    try:
        nodes = list(_yaml().compose_all(text))
    except RecursionError:
        return [], [Diagnostic(file, 1, 1, "yaml-too-large", _TOO_DEEP)]
    except MarkedYAMLError as error:
        return [], [_syntax_diagnostic(error, file)]
    except YAMLError as error:  # unmarked parser errors are rare but possible
        return [], [Diagnostic(file, 1, 1, "yaml-syntax", f"YAML syntax error: {error}")]
    diagnostics: list[Diagnostic] = []
    for index, node in enumerate(nodes):
        if node is None:
            continue
        if isinstance(node, ScalarNode) and str(node.tag) == _TAG + "null":
            continue  # an empty document, e.g. a trailing `---`
        builder = _Builder(file)
        try:
            data = builder.build(node, "")
        except RecursionError:
            line, column = _mark(node)
            diagnostics.append(Diagnostic(file, line, column, "yaml-too-large", _TOO_DEEP))
            continue
        except _TooLarge:
            line, column = _mark(node)
            diagnostics.append(
                Diagnostic(
                    file,
                    line,
                    column,
                    "yaml-too-large",
                    f"document expands to more than {_MAX_NODES:,} values (anchors and aliases?)",
                )
            )
            continue
        diagnostics.extend(builder.diagnostics)
        documents.append(
            SourceDocument(
                file,
                index,
                data,
                _mark(node)[0],
                builder.positions,
                builder.key_positions,
                builder.complex_keys,
            )
        )
    return documents, diagnostics


def _syntax_diagnostic(error: MarkedYAMLError, file: str) -> Diagnostic:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = error.problem or "invalid YAML"
    context = error.context or ""
    if context and error.context_mark is not None:
        context = f"{context} started on line {error.context_mark.line + 1}"
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    return Diagnostic(file, line, column, "yaml-syntax", message, "", _syntax_hint(problem))


def _syntax_hint(problem: str) -> str | None:
    if "cannot start any token" in problem:
        return "YAML does not allow tabs for indentation; indent with spaces"
    if "mapping values are not allowed" in problem:
        return "put a space after each `:` and quote values that contain `: `"
    if "expected ','" in problem or "expected ',' or" in problem:
        return "close the `[` or `{` or separate items with commas"
    if "found unexpected ':'" in problem:
        return 'inside `[...]` or `{...}`, quote values that contain `:`, e.g. `["a:b"]`'
    if "could not find expected ':'" in problem:
        return "each line of a mapping needs `key: value`; check the indentation"
    return None


def load_file(
    path: Path, display: str | None = None
) -> tuple[SourceFile | None, list[SourceDocument], list[Diagnostic]]:
    """Read one file; unreadable or non-UTF-8 files become diagnostics, not exceptions."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return None, [], [encoding_diagnostic(name, error)]
    except OSError as error:
        return (
            None,
            [],
            [Diagnostic(name, 1, 1, "file-unreadable", f"cannot read file: {error.strerror}")],
        )
    documents, diagnostics = load_text(text, name)
    return SourceFile(name, text), documents, diagnostics


def encoding_diagnostic(file: str, error: UnicodeDecodeError) -> Diagnostic:
    """`file-encoding`, located at the first byte that is not UTF-8."""
    before = bytes(error.object[: error.start]).decode("utf-8", "replace")
    starts = line_starts(before)
    line, column = len(starts), len(before) - starts[-1] + 1
    return Diagnostic(
        file,
        line,
        column,
        "file-encoding",
        f"file is not UTF-8 text (byte {error.start})",
        "",
        "save the file as UTF-8",
    )


def iter_yaml_files(folder: Path, *, exclude: Iterable[str] = ()) -> list[Path]:
    """YAML files under `folder` in a stable order, skipping hidden and excluded folders."""
    skipped = set(exclude)
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative) or (relative and relative[0] in skipped):
            continue
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            found.append(path)
    return found
