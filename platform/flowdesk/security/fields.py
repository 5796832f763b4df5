"""Field-level permissions: which fields a principal reads, writes, and sees masked.

Decided once per (role set, entity, write action) from the app's grants and kept as a
`FieldAccess`; every path that shows or takes record data -- API responses (also to
POST/PATCH), form definitions, list `fields`, filters, sorts, full-text search, the
timeline, exports, reports, webhook payloads built for a user -- goes through the few
functions here, so they cannot disagree.

**Combination rule.** A principal's grants for an entity are those given to any of
their roles (inherited roles included) on that entity or on `*`:

* *readable*: the system fields, and every field that at least one grant allowing
  `read` does not list as `hidden` -- the most permissive grant wins, so a field is
  hidden only when every read grant hides it;
* *masked*: a readable field with a `mask` pattern is shown masked unless some read
  grant shows it in clear, which a grant does when it does not list the field under
  `masked` *and* the principal may `unmask` the entity (the entity's `mask` applies to
  everyone without `unmask`, as its documentation says; a grant listing the field
  under `masked:` shows it masked even to a principal holding `unmask`, so it is in
  clear only if another read grant shows it so). Masked sub-fields of line
  collections follow the `unmask` permission alone (grants name top-level fields);
* *writable* (for `create` or `update`): every field that at least one grant allowing
  that action lists neither as `hidden` nor `readonly`; computed fields never are.
  Masked fields stay writable (entering a new ID number is allowed; reading it back is
  not): a client must not send an unchanged masked value back.
* `admin` (directly or inherited) reads and writes every field in clear.

Field rules are per principal and entity, not per record: a field a grant shows for
the records of one scope is shown on every record the principal can read.

**No oracle.** Filtering, sorting or searching on a field reveals its value as surely
as reading it, so `check_filterable` refuses hidden *and* masked fields (also through
references), with the same message as for a field that does not exist.

May import `flowdesk.model` and the rest of `flowdesk.security`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flowdesk.expressions import CompiledExpression
from flowdesk.model.appmodel import AppModel
from flowdesk.model.entity import SYSTEM_ENTITIES, LinesField
from flowdesk.model.link.types import SYSTEM_FIELDS
from flowdesk.model.policy import FieldRules

from .decisions import HasRoles, authorizer_for
from .errors import Forbidden
from .policy import ADMIN, AppGrant, app_grants, per_app

__all__ = [
    "FieldAccess",
    "FieldPolicy",
    "apply_mask",
    "check_filterable",
    "check_readable",
    "check_writable",
    "field_access",
    "field_policy_for",
    "filter_paths",
    "redact",
    "redact_audit",
]

_MASK_TOKEN = re.compile(r"\{(first|last):(\d+)\}")
_SYSTEM_USER_FIELDS = ("created_by", "updated_by", "assignee")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_RULES = FieldRules()


@dataclass(frozen=True)
class FieldAccess:
    """What one principal may do with the fields of one entity.

    Attributes:
        readable: Fields shown (system fields included); any other key is removed.
        writable: Fields the principal may set (for the action it was computed for).
        masked: Readable fields shown through their mask pattern: name -> pattern.
        entity: The entity, for messages.
        line_masked: Line collection -> {sub-field: pattern} of masked line fields.
        references: Readable reference fields -> the entity they refer to (`user`,
            `department` ... for the platform's), to check paths such as
            `customer.level`.
    """

    readable: frozenset[str]
    writable: frozenset[str]
    masked: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    entity: str = ""
    line_masked: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    references: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def can_read(self, name: str) -> bool:
        return name in self.readable

    def can_write(self, name: str) -> bool:
        return name in self.writable

    def shows_clear(self, name: str) -> bool:
        """Readable and not masked: the value may serve to filter and sort."""
        return name in self.readable and name not in self.masked


# --------------------------------------------------------------------------- masking


def apply_mask(value: Any, pattern: str) -> Any:
    """Show `value` through a mask pattern: `{first:3}***` shows `110***`.

    `{first:N}` and `{last:N}` are replaced by that many characters of the value's text
    and the rest of the pattern is kept as written; lists are masked item by item and
    `None` stays `None`. A value no longer than the characters the pattern would
    reveal is shown with nothing revealed (`{first:3}***` of `12` is `***`), so a
    short value is never shown whole.
    """
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [apply_mask(item, pattern) for item in value]
    text = value if isinstance(value, str) else str(value)
    revealed = sum(int(count) for _side, count in _MASK_TOKEN.findall(pattern))
    if revealed and revealed >= len(text):
        return _MASK_TOKEN.sub("", pattern)

    def part(match: re.Match[str]) -> str:
        count = int(match.group(2))
        if count == 0:
            return ""
        return text[:count] if match.group(1) == "first" else text[-count:]

    return _MASK_TOKEN.sub(part, pattern)


def _mask_lines(value: Any, masks: Mapping[str, str]) -> Any:
    if not isinstance(value, list):
        return value
    return [
        {k: apply_mask(v, masks[k]) if k in masks else v for k, v in line.items()}
        if isinstance(line, Mapping)
        else line
        for line in value
    ]


def _shown(name: str, value: Any, access: FieldAccess) -> Any:
    pattern = access.masked.get(name)
    if pattern is not None:
        return apply_mask(value, pattern)
    masks = access.line_masked.get(name)
    return _mask_lines(value, masks) if masks else value


def redact(record: Mapping[str, Any], access: FieldAccess) -> dict[str, Any]:
    """The record as the principal may see it: unreadable keys removed (whatever they
    are -- an unknown key is dropped, not passed through), masked values masked,
    masked line fields masked inside every line."""
    return {
        name: _shown(name, value, access)
        for name, value in record.items()
        if name in access.readable
    }


def redact_audit(entries: Iterable[Any], access: FieldAccess) -> list[Any]:
    """Timeline entries as the principal may see them.

    A change of a field the principal cannot read is removed entirely (its old and new
    values, and that it changed at all); old and new values of masked fields are
    masked. Entries are `AuditEntry`-like dataclasses or dicts with `changes`; each is
    returned as a copy of the same kind.
    """
    redacted = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, Mapping) else entry.changes
        kept = {
            name: {key: _shown(name, value, access) for key, value in change.items()}
            for name, change in (changes or {}).items()
            if name in access.readable
        }
        if isinstance(entry, Mapping):
            redacted.append({**entry, "changes": kept})
        else:
            redacted.append(dataclasses.replace(entry, changes=kept))
    return redacted


# --------------------------------------------------------------------------- checks


def check_writable(changes: Mapping[str, Any] | Iterable[str], access: FieldAccess) -> None:
    """Refuse a write that sets any field the principal may not write.

    Raises:
        Forbidden: naming every refused field, in the order given. Unknown keys are
            refused the same way, so a 403 never tells a hidden field from a missing one.
    """
    refused = [name for name in changes if name not in access.writable]
    if refused:
        names = ", ".join(f"`{name}`" for name in refused)
        noun = "field" if len(refused) == 1 else "fields"
        raise Forbidden(
            f"you may not change the {noun} {names} of {access.entity or 'this record'}",
            entity=access.entity,
            action="write",
            fields=refused,
        )


def check_readable(names: Iterable[str], access: FieldAccess) -> None:
    """Refuse a selection (`fields=`) naming a field the principal cannot read.

    Masked fields may be selected (they are shown masked).
    """
    refused = [name for name in names if name not in access.readable]
    if refused:
        shown = ", ".join(f"`{name}`" for name in refused)
        raise Forbidden(
            f"{access.entity or 'this record'} has no field {shown} you may read",
            entity=access.entity,
            action="read",
            fields=refused,
        )


def check_filterable(
    field_paths: Iterable[str | Sequence[str]],
    access: FieldAccess,
    related: Callable[[str], FieldAccess] | None = None,
) -> None:
    """Refuse filtering, sorting or searching on a field that is not readable in clear.

    Args:
        field_paths: `"priority"`, `"customer.level"` or `("customer", "level")`; for a
            CEL filter, `filter_paths(compiled)`; for `q=`, the entity's `search` fields.
        access: The principal's access to the entity filtered.
        related: The principal's access to another entity of the app, to follow paths
            through references; without it such paths are refused. Fields of the
            platform's user, department and position records may be followed.

    Raises:
        Forbidden: for the first path refused; the message is the same for a hidden,
            masked or missing field.
    """
    for path in field_paths:
        parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
        _check_path(parts, access, related, ".".join(parts) or "record", access.entity)


def _check_path(
    parts: tuple[str, ...],
    access: FieldAccess,
    related: Callable[[str], FieldAccess] | None,
    dotted: str,
    entity: str,
) -> None:
    if not parts or not access.shows_clear(parts[0]):
        _refuse_filter(dotted, entity)
    name, rest = parts[0], parts[1:]
    if not rest:
        return
    masks = access.line_masked.get(name)
    if masks is not None and rest[0] in masks:
        _refuse_filter(dotted, entity)
    target = access.references.get(name)
    if target is None or target in SYSTEM_ENTITIES or rest == ("id",):
        return
    if related is None:
        _refuse_filter(dotted, entity)
    _check_path(rest, related(target), related, dotted, entity)


def _refuse_filter(dotted: str, entity: str) -> None:
    raise Forbidden(
        f"cannot filter, sort or search {entity or 'records'} on `{dotted}`: "
        "it is not a field you may read in clear",
        entity=entity,
        action="filter",
        fields=(dotted,),
    )


def filter_paths(expression: CompiledExpression, record: str = "record") -> list[tuple[str, ...]]:
    """The record field paths a compiled filter reads, for `check_filterable`.

    A filter reading the whole record (`record == ...`) yields the empty path, which is
    refused.
    """
    return sorted(path[1:] for path in expression.names if path and path[0] == record)


# --------------------------------------------------------------------------- decisions


class FieldPolicy:
    """Field access of one app version, memoised per (role set, entity, write action)."""

    def __init__(self, app: AppModel) -> None:
        self.app = app
        self.authorizer = authorizer_for(app)
        self._grants: dict[str, list[AppGrant]] = {entity: [] for entity in app.entities}
        for item in app_grants(app):
            targets = app.entities if item.grant.entity == "*" else [item.grant.entity]
            for entity in targets:
                self._grants.setdefault(entity, []).append(item)
        self._cache: dict[tuple[Any, str, str], FieldAccess] = {}

    def access(self, principal: HasRoles, entity: str, action: str = "update") -> FieldAccess:
        """What `principal` may do with the fields of `entity`.

        Args:
            action: The write action the `writable` set is for: `update` (default) or
                `create`. `readable` and `masked` do not depend on it.
        """
        key = (principal.roles, entity, action)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(principal, entity, action)
            if len(self._cache) >= 8192:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _compute(self, principal: HasRoles, entity: str, action: str) -> FieldAccess:
        spec = self.app.entities.get(entity)
        if spec is None:
            return FieldAccess(frozenset(), frozenset(), entity=entity)
        roles = self.authorizer.effective_roles(principal.roles)
        fields = spec.fields
        if ADMIN in roles:
            return _everything(entity, fields)
        unmask = self.authorizer.allowed(principal, entity, "unmask")
        mine = [g for g in self._grants.get(entity, []) if roles.intersection(g.grant.roles)]
        readers = [g for g in mine if g.permits("read")]
        writers = [g for g in mine if g.permits(action)]
        readable: set[str] = set(SYSTEM_FIELDS) if readers else set()
        clear: set[str] = set()
        for item in readers:
            rules = item.grant.fields or _NO_RULES
            for name, field_spec in fields.items():
                if name in rules.hidden:
                    continue
                readable.add(name)
                if name not in rules.masked and (unmask or not field_spec.mask):
                    clear.add(name)
        writable: set[str] = set()
        for item in writers:
            rules = item.grant.fields or _NO_RULES
            blocked = {*rules.hidden, *rules.readonly}
            writable.update(
                name
                for name, field_spec in fields.items()
                if name not in blocked and not field_spec.computed
            )
        masked = {
            name: fields[name].mask
            for name in readable
            if name in fields and name not in clear and fields[name].mask
        }
        line_masked = {} if unmask else _line_masks(fields, readable)
        return FieldAccess(
            frozenset(readable),
            frozenset(writable),
            MappingProxyType(masked),  # type: ignore[arg-type]
            entity,
            MappingProxyType(line_masked),
            MappingProxyType(_references(fields, readable)),
        )


def _line_masks(fields: Mapping[str, Any], readable: set[str]) -> dict[str, Mapping[str, str]]:
    masks: dict[str, Mapping[str, str]] = {}
    for name, spec in fields.items():
        if name in readable and isinstance(spec, LinesField):
            subs = {sub: s.mask for sub, s in spec.fields.items() if getattr(s, "mask", None)}
            if subs:
                masks[name] = MappingProxyType(subs)
    return masks


def _references(fields: Mapping[str, Any], readable: set[str]) -> dict[str, str]:
    found = {name: "user" for name in _SYSTEM_USER_FIELDS if name in readable}
    for name, spec in fields.items():
        if name in readable and spec.type in ("reference", "user"):
            found[name] = "user" if spec.type == "user" else spec.to
    return found


def _everything(entity: str, fields: Mapping[str, Any]) -> FieldAccess:
    """The administrator's access: every field in clear, every non-computed one writable."""
    readable = {*SYSTEM_FIELDS, *fields}
    writable = {name for name, spec in fields.items() if not spec.computed}
    return FieldAccess(
        frozenset(readable),
        frozenset(writable),
        entity=entity,
        references=MappingProxyType(_references(fields, readable)),
    )


def field_policy_for(app: AppModel) -> FieldPolicy:
    """The `FieldPolicy` of this app version, built once and shared."""
    return per_app("fields", app, FieldPolicy)


def field_access(
    principal: HasRoles, entity: str, app: AppModel, *, action: str = "update"
) -> FieldAccess:
    """What `principal` may do with the fields of `entity` (see the module docstring)."""
    return field_policy_for(app).access(principal, entity, action)
