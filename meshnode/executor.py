"""The executor: runs intent handlers for EXECUTE dispositions, on the agent's host only.

Why here and not in the pipeline: admission decides (pure, identical on every node); only the
host acts, and acting needs the host's private state (signing key, the slope secret its head
committed to) and the store. One execution is one transaction: the execution record, the new
slope secret and the spent one are committed together, and the execution table's primary key
(the executed state's content id) makes "at most once" hold across crashes and restarts.
Handlers are the pure built-ins of ``protocols.governance.execute`` (note, echo, claim,
report); the node may register more by verb.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from meshnode.store import ExecutionRow, Store
from protocols import codec
from protocols.agent.build import encode_agent
from protocols.agent.schema import Agent
from protocols.governance.execute import HANDLERS, Handler, NotExecuted, execute_as_host
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutionResult:
    """What one execution made: its durable record and the agent's next state (bytes)."""

    row: ExecutionRow
    agent: bytes
    claims: tuple[str, ...]


def _plain(value: Any) -> Any:
    """A handler output as a CBOR-encodable tree (tuples to lists, mappings to dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Executor:
    """Runs handlers for one node; every method is synchronous (the store's worker thread)."""

    def __init__(self, store: Store, handlers: Mapping[str, Handler] = HANDLERS) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.executed = 0
        self.skipped: dict[str, int] = {}

    def register(self, verb: str, handler: Handler) -> None:
        self.handlers[verb] = handler

    def _skip(self, reason: str, content_id: bytes) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        log.info("not executed", extra={"content_id": content_id.hex(), "why": reason})

    def run(
        self, zone: str, agent: Agent, content_id: bytes, host: LocalHost, epoch: int
    ) -> ExecutionResult | None:
        """Execute ``agent`` (admitted with disposition EXECUTE) as ``host``; None if not run."""
        assert agent.lineage is not None
        head = agent.lineage.entries[-1]
        if head.next_signer != host.key:
            self._skip("not this agent's host", content_id)
            return None
        if self.store.executed(content_id):
            self._skip("already executed", content_id)
            return None
        secret = self.store.slope_secret(head.commit)
        if secret is None:
            self._skip("no slope secret for the head's commitment", content_id)
            return None
        done = execute_as_host(
            agent,
            zone,
            epoch,
            host,
            HostSecrets(MappingProxyType({head.commit: secret})),
            random.SystemRandom(),
            self.handlers,
        )
        if isinstance(done, NotExecuted):
            self._skip(done.reason, content_id)
            return None
        entry = done.entry
        new_secret = done.secrets.get(entry.commit)
        data = encode_agent(done.agent)
        verb = agent.intent.verb if agent.intent is not None else ""
        row = ExecutionRow(
            content_id=content_id,
            zone=zone,
            genesis=agent.lineage.genesis_dah,
            verb=verb,
            epoch=epoch,
            result_id=hashlib.sha256(data).digest(),
            output=codec.encode(_plain(done.effect.output)),
        )
        secret_row = (
            (entry.commit, agent.lineage.genesis_dah, epoch, new_secret)
            if new_secret is not None
            else None
        )
        if not self.store.record_execution(row, secret_row, head.commit):
            self._skip("already executed", content_id)
            return None
        self.executed += 1
        log.info(
            "executed agent",
            extra={"zone": zone, "verb": verb, "content_id": content_id.hex()},
        )
        return ExecutionResult(row, data, done.effect.claims)
