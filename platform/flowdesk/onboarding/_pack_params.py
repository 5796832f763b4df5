"""Pack parameters: checking the values given with `--set` and `${name}` substitution.

A pack declares its parameters in its manifest (`parameters:` with a type and a
default). Its documents may refer to them as `${name}` inside string values only --
never in keys, never in comments -- so a pack stays plain YAML and nothing in it is
evaluated:

* a value that is exactly `${name}` becomes the parameter's value with its type
  (`${page_on_call}` -> `true`, `${max_level}` -> `3`);
* `${name}` inside a longer string is replaced by the value's text
  (`"Holidays of ${country}"` -> `"Holidays of US"`);
* `$${` writes a literal `${`.

Unknown names are errors naming the file and the path inside the document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flowdesk.model._base import DURATION_PATTERN
from flowdesk.model.app import PackParameter

__all__ = ["PLACEHOLDER", "ParameterError", "resolve_parameters", "substitute", "uses"]

PLACEHOLDER = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(DURATION_PATTERN)
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


class ParameterError(ValueError):
    """A `--set` value that names no parameter or does not fit its type."""


def resolve_parameters(
    declared: Mapping[str, PackParameter], given: Mapping[str, str]
) -> dict[str, Any]:
    """Defaults overridden by the given texts, each converted to its declared type.

    Raises:
        ParameterError: every unknown name and bad value, in one message.
    """
    problems = [f"`{name}` is not a parameter of this pack (it has: "
                f"{', '.join(sorted(declared)) or 'none'})"
                for name in given if name not in declared]  # fmt: skip
    values: dict[str, Any] = {name: spec.default for name, spec in declared.items()}
    for name, text in given.items():
        if name in declared:
            try:
                values[name] = _convert(declared[name], text)
            except ValueError as error:
                problems.append(f"--set {name}={text}: {error}")
    if problems:
        raise ParameterError("; ".join(problems))
    return values


def _convert(spec: PackParameter, text: str) -> Any:
    if spec.type == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if spec.type == "boolean":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError("expected true or false")
    if spec.type == "duration" and not _DURATION.match(text):
        raise ValueError("expected a duration such as 30m, 4h or 1d 4h")
    return text


def uses(value: Any) -> set[str]:
    """The parameter names a document refers to (in string values, recursively)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.group(1) for m in PLACEHOLDER.finditer(value) if m.group(1))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= uses(item)
    elif isinstance(value, list):
        for item in value:
            found |= uses(item)
    return found


def substitute(value: str, parameters: Mapping[str, Any]) -> Any:
    """One string value with its placeholders replaced (see the module docstring).

    Raises:
        KeyError: a placeholder names no parameter (the name is the error's argument).
    """
    whole = _WHOLE.fullmatch(value)
    if whole:
        return _value(whole.group(1), parameters)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        found = _value(match.group(1), parameters)
        return str(found).lower() if isinstance(found, bool) else str(found)

    return PLACEHOLDER.sub(replace, value)


def _value(name: str, parameters: Mapping[str, Any]) -> Any:
    if name not in parameters:
        raise KeyError(name)
    return parameters[name]
