"""Workflow diagrams: a compiled workflow as Mermaid `stateDiagram-v2` text or SVG.

Pure functions of the `AppModel` (no IO). Mermaid is what the web UI and
Markdown renderers draw; the SVG is drawn here from a simple layered layout
(states in columns by their distance from the initial state), because Graphviz
and mermaid-cli need system binaries and no well-kept pure-Python graph
renderer was available offline.

Conventions, in both: states carry their label; categories are classes
(`open`, `waiting`, `done`); gateways are choice nodes; approval, service,
parallel and sub-process states are marked with their kind; transitions are
labelled with their name, timer transitions with `⏱` and their delay.
"""

from __future__ import annotations

from collections import deque
from html import escape

from flowdesk.model.appmodel import AppModel
from flowdesk.model.workflow import (
    ApprovalState,
    GatewayState,
    ParallelState,
    ServiceState,
    SubprocessState,
    Transition,
    Workflow,
)

__all__ = ["edges", "mermaid", "svg"]

_KIND_MARK = {ApprovalState: "approval", ServiceState: "service", ParallelState: "parallel",
              SubprocessState: "subprocess"}
_FILL = {"open": "#e7f5ff", "waiting": "#fff9db", "done": "#ebfbee"}


def _label(value: object, fallback: str) -> str:
    if value is None:
        return fallback
    return value if isinstance(value, str) else (value.text("en") or fallback)  # type: ignore[attr-defined]


def _transition_label(name: str, transition: Transition) -> str:
    if transition.after:
        return f"{name} ⏱ {transition.after}"
    if transition.at:
        return f"{name} ⏱ at"
    return name


def edges(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(from, to, label) of every arrow: transitions (`*` expanded to every state that is
    not done), gateway branches, and the routes of approval, service, parallel and
    sub-process states."""
    found: list[tuple[str, str, str]] = []
    for name, transition in workflow.transitions.items():
        sources = transition.sources
        if sources == ["*"]:
            sources = [s for s, spec in workflow.states.items() if spec.category != "done"]
        found.extend((s, transition.to, _transition_label(name, transition)) for s in sources)
    for name, state in workflow.states.items():
        found.extend((name, to, label) for to, label in _routes(state))
    return found


def _routes(state: object) -> list[tuple[str, str]]:
    if isinstance(state, GatewayState):
        routes = [(b.to, _label(b.label, b.when)) for b in state.branches]
        return routes + ([(state.default, "default")] if state.default else [])
    if isinstance(state, ApprovalState):
        routes = [(state.approved, "approved"), (state.rejected, "rejected")]
        return routes + ([(state.returned, "returned")] if state.returned else [])
    if isinstance(state, ServiceState):
        routes = [(r.to, r.when) for r in state.routes]
        return [*routes, (state.success, "success"), (state.error, "error")]
    if isinstance(state, ParallelState):
        return [(b, "branch") for b in state.branches] + [(state.join, "join")]
    if isinstance(state, SubprocessState):
        return [(state.done, f"{state.workflow} done")]
    return []


def mermaid(app: AppModel, workflow: str) -> str:
    """The workflow as Mermaid `stateDiagram-v2` text (raises KeyError for an unknown one)."""
    flow = app.workflows[workflow]
    lines = ["stateDiagram-v2", f"    %% {app.name} / {flow.name} (entity {flow.entity})"]
    for name, state in flow.states.items():
        if isinstance(state, GatewayState):
            lines.append(f"    state {name} <<choice>>")
            continue
        kind = next((m for t, m in _KIND_MARK.items() if isinstance(state, t)), None)
        text = _label(state.label, name) + (f" [{kind}]" if kind else "")
        lines.append(f'    state "{_quote(text)}" as {name}')
    lines.append(f"    [*] --> {flow.initial}")
    for source, target, label in edges(flow):
        lines.append(f"    {source} --> {target}: {_quote(label)}")
    for name, state in flow.states.items():
        if state.category == "done" and not isinstance(state, GatewayState):
            lines.append(f"    {name} --> [*]")
    for category, fill in _FILL.items():
        lines.append(f"    classDef {category} fill:{fill}")
        members = [n for n, s in flow.states.items()
                   if s.category == category and not isinstance(s, GatewayState)]
        if members:
            lines.append(f"    class {','.join(members)} {category}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ").replace(":", "∶")


# --------------------------------------------------------------------------- SVG

_W, _H, _GAP_X, _GAP_Y, _MARGIN = 170, 44, 90, 26, 30


def _layers(flow: Workflow) -> dict[str, int]:
    """Column of each state: its distance from the initial state (unreached states last)."""
    column = {flow.initial: 0}
    queue = deque([flow.initial])
    arrows = edges(flow)
    while queue:
        here = queue.popleft()
        for source, target, _ in arrows:
            if source == here and target not in column and target in flow.states:
                column[target] = column[here] + 1
                queue.append(target)
    last = max(column.values(), default=0) + 1
    for name in flow.states:
        column.setdefault(name, last)
    return column


def svg(app: AppModel, workflow: str) -> str:
    """The workflow as a standalone SVG document (raises KeyError for an unknown one)."""
    flow = app.workflows[workflow]
    column = _layers(flow)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for name in flow.states:
        row = rows.get(column[name], 0)
        rows[column[name]] = row + 1
        place[name] = (_MARGIN + column[name] * (_W + _GAP_X), _MARGIN + row * (_H + _GAP_Y))
    width = _MARGIN * 2 + (max(column.values()) + 1) * (_W + _GAP_X)
    height = _MARGIN * 2 + max(rows.values()) * (_H + _GAP_Y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f"<title>{escape(flow.name)}</title>",
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#495057"/></marker></defs>']
    for source, target, label in edges(flow):
        if source in place and target in place:
            parts.append(_arrow(place[source], place[target], label))
    for name, state in flow.states.items():
        parts.append(_node(name, state, place[name], name == flow.initial))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _arrow(start: tuple[int, int], end: tuple[int, int], label: str) -> str:
    x1, y1 = start[0] + _W, start[1] + _H // 2
    x2, y2 = end[0], end[1] + _H // 2
    if end[0] <= start[0]:  # backwards or same column: curve below
        x1, x2 = start[0] + _W // 2, end[0] + _W // 2
        y1, y2 = start[1] + _H, end[1] + _H
        middle = max(y1, y2) + 30
        path = f"M {x1} {y1} C {x1} {middle}, {x2} {middle}, {x2} {y2}"
        lx, ly = (x1 + x2) // 2, middle - 4
    else:
        path = f"M {x1} {y1} L {x2} {y2}"
        lx, ly = (x1 + x2) // 2, (y1 + y2) // 2 - 4
    dash = ' stroke-dasharray="4 3"' if "⏱" in label else ""
    return (f'<g class="transition"><path d="{path}" fill="none" stroke="#495057"{dash} '
            f'marker-end="url(#arrow)"/><text x="{lx}" y="{ly}" text-anchor="middle" '
            f'fill="#343a40">{escape(label)}</text></g>')


def _node(name: str, state: object, at: tuple[int, int], initial: bool) -> str:
    x, y = at
    category = getattr(state, "category", "open")
    text = escape(_label(getattr(state, "label", None), name))
    stroke = ' stroke-width="3"' if initial else ""
    if isinstance(state, GatewayState):
        cx, cy = x + _W // 2, y + _H // 2
        shape = (f'<polygon points="{cx},{y} {x + _W},{cy} {cx},{y + _H} {x},{cy}" '
                 f'fill="#f1f3f5" stroke="#495057"{stroke}/>')
    else:
        radius = 20 if category == "done" else 8
        shape = (f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="{radius}" '
                 f'fill="{_FILL.get(category, "#fff")}" stroke="#495057"{stroke}/>')
    kind = next((m for t, m in _KIND_MARK.items() if isinstance(state, t)), None)
    sub = f'<text x="{x + _W // 2}" y="{y + _H - 6}" text-anchor="middle" font-size="10" ' \
          f'fill="#868e96">[{kind}]</text>' if kind else ""
    return (f'<g class="state {category}" id="state-{escape(name)}">{shape}'
            f'<text x="{x + _W // 2}" y="{y + 20}" text-anchor="middle">{text}</text>{sub}</g>')
