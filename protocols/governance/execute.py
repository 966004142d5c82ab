"""Intent handlers (DESIGN 5 "Execution"): pure functions the node and the simulator share.

Only the agent's host runs a handler, and only for a decision whose disposition is EXECUTE
(FULL + PERMIT, head not already an execution entry). A handler returns an :class:`Effect`:
ledger events to append to the agent's memory, claims to put to quorum, and an output for the
caller. :func:`execute` applies the effect to the agent's fields; the host then appends exactly
one EXECUTION lineage entry for the new state (``protocols.identity`` signs it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from protocols.agent.schema import (
    Agent,
    LedgerEvent,
    LedgerKind,
    LineageEntry,
    MutationClass,
    Value,
)
from protocols.errors import MeshError
from protocols.identity import dah
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets


@dataclass(frozen=True, slots=True)
class ExecContext:
    """What a handler may know besides the agent: the epoch, the host key, the zone."""

    epoch: int
    host: bytes
    zone: str


@dataclass(frozen=True, slots=True)
class Effect:
    events: tuple[LedgerEvent, ...]
    claims: tuple[str, ...] = ()
    """Resources to claim: each becomes a quorum proposal in the agent's scope."""
    output: Mapping[str, Value] = field(default_factory=dict)


Handler = Callable[[Agent, ExecContext], Effect]


def _event(ctx: ExecContext, data: Mapping[str, Value]) -> LedgerEvent:
    return LedgerEvent(epoch=ctx.epoch, kind=LedgerKind.EXECUTION, data=dict(data))


def note(agent: Agent, ctx: ExecContext) -> Effect:
    """Record the note's text in the agent's ledger."""
    args = agent.intent.args if agent.intent else {}
    text = args.get("text", "")
    return Effect((_event(ctx, {"verb": "note", "text": text}),), output={"noted": text})


def echo(agent: Agent, ctx: ExecContext) -> Effect:
    """Return the arguments unchanged (liveness and round-trip checks)."""
    args = dict(agent.intent.args) if agent.intent else {}
    return Effect((_event(ctx, {"verb": "echo"}),), output=args)


def claim(agent: Agent, ctx: ExecContext) -> Effect:
    """Propose a quorum-certified claim of ``args.resource`` (nothing is claimed here)."""
    args = agent.intent.args if agent.intent else {}
    resource = args.get("resource")
    if not isinstance(resource, str) or not resource:
        return Effect((_event(ctx, {"verb": "claim", "status": "refused-no-resource"}),))
    status: dict[str, Value] = {"verb": "claim", "resource": resource, "status": "proposed"}
    return Effect((_event(ctx, status),), claims=(resource,), output={"proposed": resource})


def report(agent: Agent, ctx: ExecContext) -> Effect:
    """Summarise the agent's ledger: events per kind."""
    counts: dict[str, int] = {}
    for event in agent.memory.ledger if agent.memory else ():
        counts[event.kind.value] = counts.get(event.kind.value, 0) + 1
    summary: dict[str, Value] = {k: counts[k] for k in sorted(counts)}
    return Effect((_event(ctx, {"verb": "report", "counts": summary}),), output=summary)


HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {"note": note, "echo": echo, "claim": claim, "report": report}
)
"""The built-in intent handlers by verb."""


@dataclass(frozen=True, slots=True)
class Execution:
    """The agent's fields after its handler ran (lineage not yet extended) and the effect."""

    agent: Agent
    effect: Effect


@dataclass(frozen=True, slots=True)
class NotExecuted:
    reason: str


def already_executed(agent: Agent) -> bool:
    """True when the head is an execution entry: it is never executed again (no loops)."""
    if agent.lineage is None or not agent.lineage.entries:
        return False
    return agent.lineage.entries[-1].type is MutationClass.EXECUTION


def execute(
    agent: Agent,
    ctx: ExecContext,
    may_execute: bool,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> Execution | NotExecuted:
    """Run the handler for the agent's verb when ``may_execute`` (decision was EXECUTE)."""
    if not may_execute:
        return NotExecuted("decision is not EXECUTE")
    if agent.intent is None or agent.memory is None:
        return NotExecuted("partial agents never execute")
    if already_executed(agent):
        return NotExecuted("head is already an execution entry")
    handler = handlers.get(agent.intent.verb)
    if handler is None:
        return NotExecuted(f"no handler for verb {agent.intent.verb!r}")
    effect = handler(agent, ctx)
    memory = replace(agent.memory, ledger=(*agent.memory.ledger, *effect.events))
    return Execution(replace(agent, memory=memory), effect)


@dataclass(frozen=True, slots=True)
class Executed:
    """One execution by the agent's host: the new state (EXECUTION entry appended), the
    handler's effect, the entry and the host's secrets after the step (the spent one taken,
    the new commitment's secret held)."""

    agent: Agent
    effect: Effect
    entry: LineageEntry
    secrets: HostSecrets


def execute_as_host(
    agent: Agent,
    zone: str,
    epoch: int,
    host: LocalHost,
    secrets: HostSecrets,
    rng: random.Random,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> Executed | NotExecuted:
    """Run the handler as ``host`` (decision was EXECUTE) and append exactly one EXECUTION
    entry, signed by ``host`` with the secret ``secrets`` holds for the head's commitment.

    The real node's executor and the simulator both call this; each keeps its own "at most
    once" record and its own secrets (the node in its store, the simulator in memory).
    """
    assert agent.lineage is not None
    head = agent.lineage.entries[-1]
    done = execute(agent, ExecContext(epoch, host.key, zone), True, handlers)
    if isinstance(done, NotExecuted):
        return done
    try:
        step = dah.mutate(
            done.agent,
            dah.Change(cls=MutationClass.EXECUTION, memory=done.agent.memory),
            host,
            secrets,
            max(epoch, head.epoch),
            rng,
        )
    except MeshError as exc:
        return NotExecuted(f"cannot extend the slope: {exc.describe()}")
    return Executed(step.agent, done.effect, step.entry, step.secrets)
