"""A node's trust zones: signed governance state, admission, durable commit, host identity.

Why it is shaped so:
- Everything here is synchronous and runs in the store's one worker thread (``MeshNode.db``):
  the ZoneViews, the slope tracker, admission, the SQLite commit and execution are touched by
  that thread only, so they need no locks, and an fsync never stalls the event loop.
- The router's validator for a zone topic only enqueues and answers PENDING; the node's
  admission task hands a *batch* of queued messages to :meth:`Zones.process`, which admits
  each (``governance.admit``, pure), commits all of the batch's rows in one transaction
  (group commit: one fsync per batch) and only then returns the wire verdicts that the task
  feeds back as ``ValidationCompleted``. So an ACCEPTed (forwarded) agent is on disk first
  and kill -9 loses nothing the node accepted (DESIGN 7).
- The ZoneView is rebuilt from the store on start; new signed objects arrive on the zone's
  control topic (a zone file, :class:`~protocols.governance.bundle.ZoneBundle`, with any
  subset of descriptors, contracts, policy references, host records, revocations and
  overrides), are verified against the authority keys in the node's config, persisted, and
  applied.
- The node's host identity (signing key seed and DDH slope) lives in the store; the DDH
  advances one step per epoch the node sees, with fresh local entropy, and a restart
  continues the stored slope.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from meshnode.config import NodeConfig, ZoneSection
from meshnode.executor import ExecutionResult, Executor
from meshnode.store import (
    AdmissionWrite,
    AgentRow,
    DecisionRow,
    DescriptorRow,
    EscalationRow,
    HostRecordRow,
    LineageRow,
    QuarantineRow,
    Store,
)
from protocols import codec
from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import (
    Agent,
    Constraints,
    Context,
    Intent,
    Memory,
    MutationDescriptor,
    PolicyRef,
    PropagationLimits,
    Value,
)
from protocols.agent.validate import validate_bytes
from protocols.errors import MeshError, PolicyError, SchemaError
from protocols.governance.bundle import ZoneBundle
from protocols.governance.pipeline import (
    MAX_ENVELOPE_BYTES,
    AdmitInput,
    Decision,
    Disposition,
    admit,
    encode_envelope,
)
from protocols.governance.quorum import scope_of
from protocols.governance.signing import Authority
from protocols.governance.view import ZoneView
from protocols.identity import dah
from protocols.identity import ddh as ddh_mod
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeTracker
from protocols.types import WireVerdict

log = logging.getLogger(__name__)

TRACKER_CAPACITY = 100_000
RECENT_STATES = 4096
MAX_STORED_OBJECT = 1 << 20
OMITTABLE = frozenset({"memory", "intent"})
STORED = frozenset({Disposition.EXECUTE, Disposition.STORE, Disposition.FALLBACK})


def _dec(data: bytes) -> Any:
    """A stored signed object's CBOR tree (the store only holds what was verified)."""
    return codec.decode(data, max_bytes=MAX_STORED_OBJECT)


def _peek(data: bytes) -> tuple[bytes, bytes | None]:
    """(agent bytes, genesis DAH) of an envelope by a bare CBOR decode, before admission
    judges it; empty / None where the bytes do not have that shape (admission says why)."""
    try:
        tree = codec.decode(data, max_bytes=MAX_ENVELOPE_BYTES, max_depth=2)
        agent = tree["agent"] if isinstance(tree, dict) else None
        if not isinstance(agent, bytes):
            return b"", None
        inner = codec.decode(agent, max_bytes=MAX_ENVELOPE_BYTES, max_depth=16)
        genesis = inner.get("lineage", {}).get("genesis_dah") if isinstance(inner, dict) else None
    except (MeshError, AttributeError):
        return b"", None
    return agent, genesis if isinstance(genesis, bytes) else None


def _peek_depth(agent: bytes) -> int | None:
    """The head entry's lineage depth by a bare CBOR decode (None if not of that shape)."""
    try:
        inner = codec.decode(agent, max_bytes=MAX_ENVELOPE_BYTES, max_depth=16)
        depth = inner["lineage"]["entries"][-1]["totals"]["depth"]
    except (MeshError, LookupError, TypeError):
        return None
    return depth if type(depth) is int else None


class ZoneUnknown(MeshError):
    """A request named a zone this node has not joined."""


def agents_topic(zone: str) -> str:
    return f"/meshnode/zone/{zone}/agents/1"


def control_topic(zone: str) -> str:
    return f"/meshnode/zone/{zone}/control/1"


def local_entropy() -> bytes:
    """os.urandom plus timing jitter (DESIGN 6: DDH from local entropy, never the libp2p key)."""
    jitter = bytearray()
    for _ in range(8):
        t0 = time.perf_counter_ns()
        hashlib.sha256(os.urandom(16)).digest()
        jitter += (time.perf_counter_ns() - t0).to_bytes(8, "big")
    return os.urandom(32) + bytes(jitter)


@dataclass(frozen=True)
class Queued:
    """One zone message awaiting admission: ``kind`` is ``agents`` or ``control``."""

    kind: str
    zone: str
    msg_id: bytes
    data: bytes
    local: bool = False  # our own publish (no router validation is pending)
    via_sync: bool = False  # anti-entropy sync: slope continuity, not freshness, decides


@dataclass(frozen=True)
class Outcome:
    """The result of admitting one queued message, for the router and the API."""

    msg_id: bytes
    wire: WireVerdict
    code: str
    disposition: str
    content_id: bytes
    reason: str
    follow_ups: tuple[tuple[str, bytes], ...] = ()
    """(topic, data) the node publishes after the verdict: an execution's new state."""

    def to_json(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id.hex(),
            "wire": self.wire.value,
            "code": self.code,
            "disposition": self.disposition,
            "content_id": self.content_id.hex(),
            "reason": self.reason,
        }


@dataclass
class ZoneState:
    """One joined zone: the verified view and the policy references agents may carry."""

    section: ZoneSection
    view: ZoneView
    policy_refs: list[PolicyRef] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.section.id


@dataclass
class _BatchQuarantine:
    """Quarantine counts as the batch will leave them (store rows + this batch's adds)."""

    store: Store
    zone: str
    added: Counter[bytes] = field(default_factory=Counter)

    def count(self, host: bytes) -> int:
        return self.store.quarantine_count(self.zone, host) + self.added[host]


class Zones:
    """All zones of one node; see the module docstring (worker-thread only)."""

    def __init__(self, config: NodeConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.zones: dict[str, ZoneState] = {}
        for section in config.zones:
            authority = Authority.of(list(section.authority_keys), section.authority_threshold)
            self.zones[section.id] = ZoneState(section, ZoneView(section.id, authority))
        self.tracker = SlopeTracker(TRACKER_CAPACITY)
        self.executor = Executor(store)
        self.host: LocalHost | None = None
        self.decisions: Counter[str] = Counter()
        self.pending_executions: list[tuple[int, str, Agent, bytes]] = []
        self._recent: OrderedDict[bytes, Agent] = OrderedDict()
        """Last trusted state per slope, most recent last (saves a store read and a decode
        when the successor arrives, e.g. the state an execution made)."""

    # -- start-up ------------------------------------------------------------------------

    def load(self, epoch: int) -> None:
        """Host identity, zone views and trusted slope heads from the store."""
        ident = self.store.host_identity()
        if ident is None:
            seed = os.urandom(32)
            state = ddh_mod.genesis(local_entropy(), epoch)
            self.store.set_host_identity(seed, codec.encode(state.to_cbor()))
            log.info("created host identity", extra={"ddh_genesis": state.genesis.hex()})
        else:
            seed, raw = ident
            state = ddh_mod.DdhState.from_cbor(codec.decode(raw, max_bytes=4096))
        self.host = LocalHost(seed, state)
        self.advance_ddh(epoch)
        for z in self.zones.values():
            self._load_zone(z, epoch)
        for genesis, head, depth in self.store.trusted_heads():
            self.tracker.remember(genesis, head, depth)

    def _load_zone(self, z: ZoneState, epoch: int) -> None:
        s = self.store
        tree: dict[str, Any] = {
            "zone": z.id,
            "authority": z.view.authority.to_cbor(),
            "contracts": [_dec(d) for d in s.contracts(z.id)],
            "overrides": [_dec(d) for _, _, d in s.overrides(z.id)],
            "descriptors": [_dec(r.data) for r in s.descriptors(z.id)],
            "policy_refs": [_dec(d) for d in s.policy_refs(z.id)],
            "revocations": [],
            "host_records": [],
        }
        for row in s.host_records(z.id):
            (tree["revocations"] if row.revoked else tree["host_records"]).append(_dec(row.data))
        bundle = ZoneBundle.from_cbor(tree)
        self._apply(z, bundle, epoch, persist=False)

    # -- host identity -------------------------------------------------------------------

    def advance_ddh(self, epoch: int) -> bool:
        """One DDH step when the epoch moved on (persisted first); True if it stepped."""
        assert self.host is not None
        if epoch <= self.host.ddh.epoch:
            return False
        state = ddh_mod.advance(self.host.ddh, local_entropy(), epoch)
        self.store.set_host_identity(self.host.seed, codec.encode(state.to_cbor()))
        self.host = self.host.with_ddh(state)
        return True

    def identity(self) -> dict[str, Any]:
        assert self.host is not None
        d = self.host.ddh
        return {
            "host_key": self.host.key.hex(),
            "ddh": {
                "genesis": d.genesis.hex(),
                "value": d.value.hex(),
                "prev": d.prev.hex(),
                "epoch": d.epoch,
            },
        }

    # -- control objects -----------------------------------------------------------------

    def zone(self, zone: str) -> ZoneState:
        z = self.zones.get(zone)
        if z is None:
            raise ZoneUnknown(f"this node has not joined zone {zone!r}", path="zone")
        return z

    def apply_control(self, zone: str, data: bytes, epoch: int) -> dict[str, int]:
        """Verify, persist and apply a zone file's objects; MeshError names the bad one."""
        z = self.zone(zone)
        bundle = ZoneBundle.decode(data)
        if bundle.zone != zone:
            raise PolicyError(f"zone file is for {bundle.zone!r}, not {zone!r}", path="zone")
        return self._apply(z, bundle, epoch, persist=True)

    def _apply(self, z: ZoneState, b: ZoneBundle, epoch: int, *, persist: bool) -> dict[str, int]:
        view, s, new = z.view, self.store, Counter[str]()
        for signed in b.descriptors:
            desc = view.add_descriptor(signed)
            row = DescriptorRow(
                z.id, desc.version, desc.activation_epoch, signed.id, signed.encode()
            )
            if persist and s.put_descriptor(row):
                new["descriptors"] += 1
        for signed in b.contracts:
            contract = view.add_contract(signed)
            if persist and s.get_contract(contract.id) is None:
                s.put_contract(contract.id, z.id, signed.encode())
                new["contracts"] += 1
        for ref in b.policy_refs:
            if not view.policy_ref_ok(ref):
                raise PolicyError("policy reference not signed by the zone authority", path="ref")
            if ref not in z.policy_refs:
                z.policy_refs.append(ref)
                if persist:
                    data = codec.encode(ref.to_cbor())
                    s.put_policy_ref(hashlib.sha256(data).digest(), z.id, data)
                    new["policy_refs"] += 1
        for record in b.host_records:
            view.admit_host(record)
            if persist:
                s.put_host_record(
                    HostRecordRow(
                        record.name,
                        z.id,
                        record.host_key,
                        record.valid_from_epoch,
                        False,
                        record.encode(),
                    )
                )
                new["host_records"] += 1
        for rev in b.revocations:
            view.revoke_host(rev)
            if persist:
                data = codec.encode(rev.to_cbor())
                s.put_host_record(
                    HostRecordRow(
                        hashlib.sha256(data).digest(), z.id, rev.host_key, rev.epoch, True, data
                    )
                )
                new["revocations"] += 1
        for signed in b.overrides:
            if not view.add_override(signed, epoch):
                if persist:
                    raise PolicyError("override not valid under the active descriptor")
                continue
            if persist:
                s.put_override(signed.id, z.id, epoch, signed.encode())
                new["overrides"] += 1
        return dict(new)

    # -- admission -----------------------------------------------------------------------

    def process(self, items: Sequence[Queued], epoch: int) -> list[Outcome]:
        """Admit a batch, commit its rows at once, then run executions (see module doc)."""
        assert self.host is not None
        outcomes: list[Outcome] = []
        writes: list[AdmissionWrite] = []
        executes: list[tuple[int, str, Agent, bytes]] = []
        counters: dict[str, _BatchQuarantine] = {}
        for item in items:
            if item.kind == "control":
                outcomes.append(self._control(item, epoch))
                continue
            z = self.zones.get(item.zone)
            if z is None:
                outcomes.append(
                    Outcome(item.msg_id, WireVerdict.IGNORE, "zone-unknown", "DROP", b"", "")
                )
                continue
            if item.via_sync and self._already_held(item.data):
                self.decisions["sync-known"] += 1
                outcomes.append(
                    Outcome(item.msg_id, WireVerdict.IGNORE, "sync-known", "DROP", b"", "")
                )
                continue
            quarantine = counters.setdefault(z.id, _BatchQuarantine(self.store, z.id))
            decision, agent_bytes = self._admit(z, item.data, epoch, quarantine, item.via_sync)
            write = self._write(z, decision, agent_bytes, item.data)
            writes.append(write)
            if write.quarantine is not None:
                quarantine.added[write.quarantine.host_key] += 1
            self.decisions[decision.code] += 1
            if decision.disposition is Disposition.EXECUTE and decision.agent is not None:
                executes.append((len(outcomes), z.id, decision.agent, decision.content_id))
            outcomes.append(
                Outcome(
                    item.msg_id,
                    decision.wire,
                    decision.code,
                    decision.disposition.value,
                    decision.content_id,
                    decision.reason,
                )
            )
        self.store.commit_admissions(writes)
        self.pending_executions.extend(executes)
        return outcomes

    def run_executions(self, epoch: int) -> tuple[tuple[str, bytes], ...]:
        """Run the executions admitted since the last call (after their verdicts went out,
        so a handler never delays the agent's own forwarding); returns what to publish."""
        out: list[tuple[str, bytes]] = []
        while self.pending_executions:
            _, zone, agent, content_id = self.pending_executions.pop(0)
            out.extend(self._execute(zone, agent, content_id, epoch))
        return tuple(out)

    def _admit(
        self,
        z: ZoneState,
        data: bytes,
        epoch: int,
        quarantine: _BatchQuarantine,
        via_sync: bool = False,
    ) -> tuple[Decision, bytes]:
        """One admission, with the last trusted state of the agent's slope when this node
        has one (so a successor that widens its own governance fields escalates)."""
        assert self.host is not None
        agent_bytes, genesis = _peek(data)
        previous = None
        if genesis is not None and self.tracker.trusted(genesis) is not None:
            previous = self._recent.get(genesis) or self._previous(genesis)
        decision = admit(
            AdmitInput(
                data,
                z.view,
                epoch,
                self.host.key,
                tracker=self.tracker,
                via_sync=via_sync,
                quarantine=quarantine,
                previous=previous,
            )
        )
        return decision, agent_bytes

    def _already_held(self, data: bytes) -> bool:
        """A state sync offers that this node already stores, or one older than the head it
        trusts for that slope: gossip delivered it (or its successor) meanwhile, so admitting
        it again could only end in IGNORE (replay) at the cost of a full admission."""
        agent_bytes, genesis = _peek(data)
        if not agent_bytes or genesis is None:
            return False
        if self.store.has_agent(hashlib.sha256(agent_bytes).digest()):
            return True
        trusted = self.tracker.trusted(genesis)
        depth = _peek_depth(agent_bytes)
        return trusted is not None and depth is not None and trusted[1] > depth

    def _previous(self, genesis: bytes) -> Agent | None:
        row = self.store.latest_state(genesis)
        if row is None:
            return None
        return validate_bytes(row.data).agent

    def _write(self, z: ZoneState, d: Decision, agent_bytes: bytes, data: bytes) -> AdmissionWrite:
        subject = d.content_id or hashlib.sha256(data).digest()
        record = DecisionRow(
            epoch=d.audit.epoch,
            zone=z.id,
            subject=subject,
            verdict=d.wire.value,
            disposition=d.disposition.value,
            reason=f"{d.code}: {d.reason}",
            data=codec.encode(d.audit.to_cbor()),
            at_ns=time.time_ns(),
        )
        agent = d.agent
        if agent is None or agent.lineage is None or d.wire is not WireVerdict.ACCEPT:
            return AdmissionWrite(record)
        line = agent.lineage
        head = line.entries[-1]
        if d.disposition in STORED:
            self.tracker.remember(line.genesis_dah, entry_hash(head), head.totals.depth)
            self._recent[line.genesis_dah] = agent
            self._recent.move_to_end(line.genesis_dah)
            while len(self._recent) > RECENT_STATES:
                self._recent.popitem(last=False)
            rows = tuple(
                LineageRow(
                    entry_hash(e),
                    line.genesis_dah,
                    e.totals.depth,
                    codec.encode_ordered(e.to_cbor()),
                )
                for e in line.entries
            )
            row = AgentRow(
                d.content_id,
                z.id,
                line.genesis_dah,
                head.dah,
                d.disposition.value,
                d.audit.epoch,
                agent_bytes,
                head.totals.depth,
            )
            return AdmissionWrite(record, agent=row, lineage=rows)
        if d.disposition is Disposition.QUARANTINE and d.descriptor is not None:
            held = d.held(agent_bytes)
            q = QuarantineRow(held.key, z.id, held.host, held.expires_epoch, agent_bytes)
            return AdmissionWrite(record, quarantine=q)
        if d.disposition is Disposition.ESCALATE:
            scope = scope_of(z.id, line.genesis_dah)
            return AdmissionWrite(
                record, escalation=EscalationRow(scope, z.id, d.audit.epoch, "open", agent_bytes)
            )
        return AdmissionWrite(record)

    def _control(self, item: Queued, epoch: int) -> Outcome:
        subject = hashlib.sha256(item.data).digest()
        try:
            new = self.apply_control(item.zone, item.data, epoch)
        except MeshError as exc:
            wire = WireVerdict.IGNORE if isinstance(exc, ZoneUnknown) else WireVerdict.REJECT
            self.decisions["control-refused"] += 1
            self.store.record_decision(
                DecisionRow(
                    epoch,
                    item.zone,
                    subject,
                    wire.value,
                    "DROP",
                    exc.describe(),
                    at_ns=time.time_ns(),
                )
            )
            return Outcome(item.msg_id, wire, "control-refused", "DROP", subject, exc.describe())
        self.decisions["control-applied"] += 1
        summary = ", ".join(f"{k}={v}" for k, v in sorted(new.items())) or "nothing new"
        return Outcome(
            item.msg_id, WireVerdict.ACCEPT, "control-applied", "STORE", subject, summary
        )

    # -- execution -----------------------------------------------------------------------

    def _execute(
        self, zone: str, agent: Agent, content_id: bytes, epoch: int
    ) -> tuple[tuple[str, bytes], ...]:
        """Run the handler, admit the new state here, and return it for publishing."""
        host = self._signing_host(zone)
        if host is None:
            return ()
        result: ExecutionResult | None = self.executor.run(zone, agent, content_id, host, epoch)
        if result is None:
            return ()
        envelope = encode_envelope(zone, result.agent)
        mid = hashlib.sha256(envelope).digest()
        (outcome,) = self.process([Queued("agents", zone, mid, envelope, local=True)], epoch)
        if outcome.wire is not WireVerdict.ACCEPT:
            log.warning(
                "own execution result not admitted",
                extra={"code": outcome.code, "reason": outcome.reason},
            )
            return ()
        return ((agents_topic(zone), envelope),)

    def resume_executions(self, epoch: int) -> list[tuple[str, bytes]]:
        """Run EXECUTE states stored without an execution record (a crash came between)."""
        out: list[tuple[str, bytes]] = []
        for row in self.store.unexecuted():
            agent = validate_bytes(row.data).agent
            if agent is not None and row.zone in self.zones:
                out.extend(self._execute(row.zone, agent, row.content_id, epoch))
        return out

    def _signing_host(self, zone: str) -> LocalHost | None:
        """This node's host with the name of its record in ``zone`` (None if not admitted)."""
        assert self.host is not None
        record = self.zone(zone).view.hosts.by_key(self.host.key)
        if record is None:
            return None
        return self.host.with_record(record.name)

    # -- making agents -------------------------------------------------------------------

    def create_agent(
        self,
        zone: str,
        verb: str,
        args: Mapping[str, Value],
        role: str,
        epoch: int,
        omit: tuple[str, ...] = (),
    ) -> bytes:
        """A new agent hosted by this node (its slope secret kept in the store).

        ``omit`` names optional fields (``memory``, ``intent``) to leave out: a PARTIAL agent,
        whose signed lineage lets it travel and fall back but never execute.
        """
        unknown = set(omit) - OMITTABLE
        if unknown:
            raise SchemaError(
                f"cannot omit {sorted(unknown)}; only {sorted(OMITTABLE)}", path="omit"
            )
        z = self.zone(zone)
        host = self._signing_host(zone)
        if host is None:
            raise PolicyError(f"this node's host is not admitted to zone {zone!r}", path="host")
        desc = z.view.descriptors.governing(epoch)
        if desc is None:
            raise PolicyError(f"no descriptor of zone {zone!r} is active", path="descriptor")
        refs = [r for r in z.policy_refs if r.contract in desc.contracts]
        if not refs:
            raise PolicyError(f"no policy reference known for zone {zone!r}", path="policy_ref")
        if not verb:
            raise SchemaError("intent verb must not be empty", path="intent.verb")
        body = Agent(
            intent=Intent(verb=verb, args=dict(args)),
            context=Context(zone, "default", role, "", Constraints(0, 0)),
            memory=Memory(ledger=(), access_log=(), handles=()),
            policy_ref=(refs[0],),
            mutation_descriptor=MutationDescriptor(
                mutable=("memory",),
                delegation=(),
                limits=PropagationLimits(max_migrations=4, max_zones=4, max_delegation_depth=2),
            ),
            lineage=None,
        )
        if "memory" in omit:
            body = replace(body, memory=None)
        if "intent" in omit:
            body = replace(body, intent=None)
        step = dah.genesis(
            body, host, HostSecrets(), epoch, random.SystemRandom(), dah.Origin(descriptor=desc.id)
        )
        assert step.agent.lineage is not None
        entry = step.agent.lineage.entries[-1]
        secret = step.secrets.get(entry.commit)
        assert secret is not None
        self.store.put_slope_secret(entry.commit, step.agent.lineage.genesis_dah, epoch, secret)
        return encode_agent(step.agent)

    # -- reporting -----------------------------------------------------------------------

    def summary(self, epoch: int) -> list[dict[str, Any]]:
        out = []
        assert self.host is not None
        for z in self.zones.values():
            v = z.view
            active = v.descriptors.governing(epoch)
            out.append(
                {
                    "zone": z.id,
                    "topic": agents_topic(z.id),
                    "control_topic": control_topic(z.id),
                    "descriptors": [d.version for d in v.descriptors.versions()],
                    "active_descriptor": active.version if active is not None else None,
                    "contracts": len(v.contracts),
                    "policy_refs": len(z.policy_refs),
                    "hosts": len(self.store.host_records(z.id)),
                    "host_admitted": v.hosts.by_key(self.host.key) is not None,
                    "overrides": len(self.store.overrides(z.id)),
                }
            )
        return out

    def decision_counts(self) -> Mapping[str, int]:
        return dict(self.decisions)
