"""Linker checks for workflows: every state and transition reference, every
guard, and the graph itself (unreachable states, dead ends, gateways without
a default, loops that nothing can stop)."""

from __future__ import annotations

from collections.abc import Iterator

from flowdesk.expressions import DYN, TIMESTAMP

from ..diagnostics import did_you_mean
from ..entity import Entity
from ..workflow import (
    ApprovalState,
    GatewayState,
    ParallelState,
    ServiceState,
    SubprocessState,
    Workflow,
)
from .actions import check_actions, check_operation, check_party, check_role
from .context import LinkContext, ParsedDocument
from .entity import require_field
from .types import record_scope

__all__ = ["check", "edges"]


def check(ctx: LinkContext) -> None:
    for doc in ctx.of_kind("Workflow").values():
        workflow: Workflow = doc.model
        entity = ctx.resolve(doc, "/entity", "Entity", workflow.entity)
        known = _require_state(ctx, doc, "/initial", workflow, workflow.initial)
        known &= _check_states(ctx, doc, workflow, entity)
        known &= _check_transitions(ctx, doc, workflow, entity)
        if known:  # a misspelt state breaks the graph: its flaws would all be that typo
            _check_graph(ctx, doc, workflow)


def _require_state(
    ctx: LinkContext, doc: ParsedDocument, pointer: str, workflow: Workflow, name: str
) -> bool:
    if name in workflow.states:
        return True
    ctx.error(
        doc,
        pointer,
        "unknown-state",
        f"unknown state `{name}` in workflow `{workflow.name}`",
        did_you_mean(name, workflow.states)
        or "states: " + ", ".join(f"`{s}`" for s in workflow.states),
    )
    return False


def _check_states(
    ctx: LinkContext, doc: ParsedDocument, workflow: Workflow, entity: Entity | None
) -> bool:
    """Check every state; False when one leads to a state that does not exist."""
    scope = record_scope(ctx, workflow.entity)
    known = True
    for name, state in workflow.states.items():
        here = f"/states/{name}"
        check_actions(ctx, doc, here + "/on_enter", state.on_enter, entity, scope)
        check_actions(ctx, doc, here + "/on_exit", state.on_exit, entity, scope)
        for pointer, target in _targets(state, here):
            known &= _require_state(ctx, doc, pointer, workflow, target)
        if isinstance(state, GatewayState):
            for index, branch in enumerate(state.branches):
                ctx.compile(doc, f"{here}/branches/{index}/when", branch.when, scope)
            if state.default is None:
                ctx.error(
                    doc,
                    here,
                    "gateway-no-default",
                    f"gateway `{name}` has no `default` branch",
                    "add `default: <state>` for records no condition matches",
                    key=True,
                )
        elif isinstance(state, ApprovalState):
            _check_approval(ctx, doc, here, state, entity, scope)
        elif isinstance(state, ServiceState):
            _check_service(ctx, doc, here, state, entity, scope)
        elif isinstance(state, SubprocessState):
            if state.workflow == workflow.name:
                ctx.error(
                    doc,
                    here + "/workflow",
                    "recursive-subprocess",
                    "a workflow cannot run itself as a sub-process",
                )
            else:
                ctx.resolve(doc, here + "/workflow", "Workflow", state.workflow)
            if state.entity:
                ctx.resolve(doc, here + "/entity", "Entity", state.entity)
    return known


def _check_approval(
    ctx: LinkContext,
    doc: ParsedDocument,
    here: str,
    state: ApprovalState,
    entity: Entity | None,
    scope: dict,
) -> None:  # type: ignore[type-arg]
    for index, level in enumerate(state.levels):
        pointer = f"{here}/levels/{index}"
        if level.when:
            ctx.compile(doc, pointer + "/when", level.when, scope)
        for j, party in enumerate(level.approvers):
            check_party(ctx, doc, f"{pointer}/approvers/{j}", party, entity, scope)
        if level.escalate_to is not None:
            check_party(ctx, doc, pointer + "/escalate_to", level.escalate_to, entity, scope)
        if (
            level.mode == "n_of_m"
            and level.n
            and _fixed_size(level.approvers) is not None
            and level.n > (_fixed_size(level.approvers) or 0)
        ):
            ctx.error(
                doc,
                pointer + "/n",
                "approval-impossible",
                f"needs {level.n} approvals from {_fixed_size(level.approvers)} approvers",
            )


def _fixed_size(approvers: list) -> int | None:  # type: ignore[type-arg]
    """Number of approvers when all are named users; unknown otherwise."""
    users = [a for a in approvers if not isinstance(a, str) and a.user is not None]
    return len(users) if len(users) == len(approvers) else None


def _check_service(
    ctx: LinkContext,
    doc: ParsedDocument,
    here: str,
    state: ServiceState,
    entity: Entity | None,
    scope: dict,
) -> None:  # type: ignore[type-arg]
    check_operation(ctx, doc, here, state.integration, state.operation)
    response_scope = {**scope, "response": DYN}
    for index, route in enumerate(state.routes):
        ctx.compile(doc, f"{here}/routes/{index}/when", route.when, response_scope)
    for field, expr in state.save.items():
        require_field(ctx, doc, f"{here}/save/{field}", entity, field)
        ctx.compile(doc, f"{here}/save/{field}", expr, response_scope, expect=None)
    for name, value in state.input.items():
        if isinstance(value, str) and value.startswith("="):
            ctx.compile(doc, f"{here}/input/{name}", value, scope, expect=None)


def _targets(state: object, here: str) -> Iterator[tuple[str, str]]:
    """(pointer, state name) of every state a state leads to by itself."""
    if isinstance(state, GatewayState):
        for index, branch in enumerate(state.branches):
            yield f"{here}/branches/{index}/to", branch.to
        if state.default:
            yield f"{here}/default", state.default
    elif isinstance(state, ApprovalState):
        yield f"{here}/approved", state.approved
        yield f"{here}/rejected", state.rejected
        if state.returned:
            yield f"{here}/returned", state.returned
    elif isinstance(state, ServiceState):
        for index, route in enumerate(state.routes):
            yield f"{here}/routes/{index}/to", route.to
        yield f"{here}/success", state.success
        yield f"{here}/error", state.error
    elif isinstance(state, ParallelState):
        for index, branch in enumerate(state.branches):
            yield f"{here}/branches/{index}", branch
        yield f"{here}/join", state.join
    elif isinstance(state, SubprocessState):
        yield f"{here}/done", state.done


def _check_transitions(
    ctx: LinkContext, doc: ParsedDocument, workflow: Workflow, entity: Entity | None
) -> bool:
    """Check every transition; False when one names a state that does not exist."""
    scope = record_scope(ctx, workflow.entity)
    known = True
    for name, transition in workflow.transitions.items():
        here = f"/transitions/{name}"
        sources = transition.sources
        for index, source in enumerate(sources):
            if source != "*":
                pointer = (
                    here + "/from" + (f"/{index}" if isinstance(transition.from_, list) else "")
                )
                known &= _require_state(ctx, doc, pointer, workflow, source)
        known &= _require_state(ctx, doc, here + "/to", workflow, transition.to)
        for index, role in enumerate(transition.roles or []):
            check_role(ctx, doc, f"{here}/roles/{index}", role)
        if transition.when:
            ctx.compile(doc, here + "/when", transition.when, scope)
        if transition.at:
            ctx.compile(doc, here + "/at", transition.at, scope, expect=TIMESTAMP)
        if transition.after and transition.at:
            ctx.error(doc, here + "/at", "timer-conflict", "write `after` or `at`, not both")
        for index, field in enumerate(transition.requires):
            require_field(ctx, doc, f"{here}/requires/{index}", entity, field)
        check_actions(ctx, doc, here + "/actions", transition.actions, entity, scope)
    return known


def edges(workflow: Workflow) -> dict[str, set[str]]:
    """State -> states it can lead to, by transitions or by itself."""
    graph: dict[str, set[str]] = {name: set() for name in workflow.states}
    open_states = [n for n, s in workflow.states.items() if s.category != "done"]
    for transition in workflow.transitions.values():
        sources = open_states if transition.sources == ["*"] else transition.sources
        for source in sources:
            if source in graph and transition.to in graph:
                graph[source].add(transition.to)
    for name, state in workflow.states.items():
        graph[name].update(t for _, t in _targets(state, "") if t in graph)
    return graph


def _check_graph(ctx: LinkContext, doc: ParsedDocument, workflow: Workflow) -> None:
    graph = edges(workflow)
    reached = _reachable(graph, workflow.initial)
    for name, state in workflow.states.items():
        if name not in reached:
            ctx.error(
                doc,
                f"/states/{name}",
                "unreachable-state",
                f"state `{name}` cannot be reached from `{workflow.initial}`",
                "add a transition into it, or remove it",
                key=True,
            )
        elif not graph[name] and state.category != "done":
            ctx.error(
                doc,
                f"/states/{name}",
                "dead-end-state",
                f"state `{name}` has no way out and is not final",
                "add a transition out of it, or set `category: done`",
                key=True,
            )
    for cycle in _unguarded_cycles(workflow):
        first = cycle[0]
        ctx.error(
            doc,
            f"/states/{first}",
            "unguarded-cycle",
            "gateways loop without a condition: " + " -> ".join([*cycle, first]),
            "give one of these gateways a branch that leaves the loop",
            key=True,
        )


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for target in graph.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _unguarded_cycles(workflow: Workflow) -> list[list[str]]:
    """Loops made only of gateways' default branches: a record would spin forever."""
    step = {
        name: state.default
        for name, state in workflow.states.items()
        if isinstance(state, GatewayState)
        and state.default
        and isinstance(workflow.states.get(state.default), GatewayState)
    }
    cycles, seen = [], set()
    for start in step:
        path, node = [], start
        while node in step and node not in path and node not in seen:
            path.append(node)
            node = step[node]  # type: ignore[assignment]
        if node in path:
            cycle = path[path.index(node) :]
            if not seen.intersection(cycle):
                cycles.append(cycle)
        seen.update(path)
    return cycles
