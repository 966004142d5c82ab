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
from types import MappingProxyType
from typing import Any, Final

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
    MUTABLE_FIELDS,
    Agent,
    Constraints,
    Context,
    Intent,
    LedgerEvent,
    LedgerKind,
    LineageEntry,
    Memory,
    MutationClass,
    MutationDescriptor,
    PolicyRef,
    PropagationLimits,
    Value,
)
from protocols.agent.validate import validate_bytes
from protocols.errors import MeshError, PolicyError, SchemaError
from protocols.governance.bundle import ZoneBundle
from protocols.governance.delegation import mutation_refusal
from protocols.governance.pipeline import (
    MAX_ENVELOPE_BYTES,
    AdmitInput,
    Decision,
    Disposition,
    admit,
    encode_envelope,
)
from protocols.governance.quorum import scope_of
from protocols.governance.signing import TAG_OVERRIDE, Authority, Signed, decode_signed
from protocols.governance.view import ZoneView
from protocols.identity import dah
from protocols.identity import ddh as ddh_mod
from protocols.identity.host import HostRecord, LocalHost, VerifiedSignatures
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeTracker
from protocols.types import WireVerdict

log = logging.getLogger(__name__)

TRACKER_CAPACITY = 100_000
VERIFIED_CAPACITY = 16_384  # (key, message, signature) triples, ~250 B each: ~4 MB at most
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


class MutationRefused(MeshError):
    """A mutation this node will not make before admission is asked: ``code`` says why
    (``unknown-agent``, ``wrong-zone``, ``not-host``, ``no-secret``, ``not-mutable``,
    ``bad-mutation``); nothing was committed or published."""

    def __init__(self, code: str, message: str, *, path: str = "") -> None:
        super().__init__(message, path=path)
        self.code = code


MUTATION_TARGETS: Final = (
    "memory.",
    "context.role",
    "context.nest",
    "context.principal",
    "intent.verb",
    "intent.args.",
)
"""What ``Zones.mutate`` can set: ``memory.KEY`` (a mutation-result ledger event carrying
the values), context fields, the intent verb and ``intent.args.KEY``."""
MUTATION_ACCEPTED: Final = frozenset({Disposition.EXECUTE, Disposition.STORE})
"""A mutation is committed and published only when this node's own admission ACCEPTs it
with one of these dispositions (a quarantined or escalated state is refused here)."""


@dataclass(frozen=True)
class Mutated:
    """What :meth:`Zones.mutate` made: the admission outcome here, the envelope to publish
    (empty when refused) and the new head entry."""

    outcome: Outcome
    envelope: bytes
    head: LineageEntry


@dataclass(frozen=True)
class MutationSpec:
    """``path -> value`` assignments of one mutation (see :data:`MUTATION_TARGETS`)."""

    sets: tuple[tuple[str, Value], ...]

    def fields(self) -> tuple[str, ...]:
        """The mutation descriptor's names of the fields this changes (sorted)."""
        out = set()
        for path, _ in self.sets:
            if path.startswith("memory."):
                out.add("memory")
            elif path.startswith("intent."):
                out.add("intent")
            else:
                out.add(path)
        return tuple(sorted(out))

    def change(self, agent: Agent, epoch: int) -> dah.Change:
        """The :class:`~protocols.identity.dah.Change` these assignments make of ``agent``."""
        memory_sets: dict[str, Value] = {}
        context, intent = agent.context, agent.intent
        for path, value in self.sets:
            if path.startswith("memory."):
                memory_sets[path.removeprefix("memory.")] = value
            elif path.startswith("context."):
                if context is None or not isinstance(value, str):
                    raise MutationRefused("bad-mutation", "context fields take text", path=path)
                name = path.removeprefix("context.")
                context = Context(
                    zone=context.zone,
                    nest=value if name == "nest" else context.nest,
                    role=value if name == "role" else context.role,
                    principal=value if name == "principal" else context.principal,
                    constraints=context.constraints,
                )
            elif path == "intent.verb":
                if intent is None or not isinstance(value, str) or not value:
                    raise MutationRefused("bad-mutation", "the verb is non-empty text", path=path)
                intent = replace(intent, verb=value)
            else:
                if intent is None:
                    raise MutationRefused("bad-mutation", "the agent has no intent", path=path)
                args = {**intent.args, path.removeprefix("intent.args."): value}
                intent = replace(intent, args=args)
        memory = agent.memory
        if memory_sets:
            if memory is None:
                raise MutationRefused("bad-mutation", "the agent has no memory", path="memory")
            event = LedgerEvent(epoch, LedgerKind.MUTATION_RESULT, {"set": memory_sets})
            memory = replace(memory, ledger=(*memory.ledger, event))
        return dah.Change(
            cls=MutationClass.STATE_TRANSITION,
            intent=intent if intent is not agent.intent else None,
            context=context if context is not agent.context else None,
            memory=memory if memory is not agent.memory else None,
        )

    @classmethod
    def parse(cls, sets: Mapping[str, Any]) -> MutationSpec:
        """Check the paths and values (JSON-shaped: no floats); MutationRefused names one."""
        if not sets:
            raise MutationRefused("bad-mutation", "nothing to change", path="set")
        out: list[tuple[str, Value]] = []
        for path, value in sets.items():
            ok = any(
                path.startswith(t) and len(path) > len(t) if t.endswith(".") else path == t
                for t in MUTATION_TARGETS
            )
            if not ok:
                raise MutationRefused(
                    "bad-mutation",
                    f"cannot set {path!r}; settable: memory.KEY, context.role, context.nest,"
                    " context.principal, intent.verb, intent.args.KEY (zones change by migrate)",
                    path=f"set.{path}",
                )
            if not _is_value(value):
                raise MutationRefused(
                    "bad-mutation",
                    "values are text, integers, booleans, null, lists or objects of them",
                    path=f"set.{path}",
                )
            out.append((path, value))
        return cls(tuple(out))


def _is_value(value: Any, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, list):
        return all(_is_value(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_value(v, depth + 1) for k, v in value.items())
    return False


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


def record_key(record: HostRecord, zone: str) -> bytes:
    """The store row key of a host record held for ``zone``: the record's name in the first
    zone it lists (as always), a name derived with the zone in the others. One record valid
    in several zones (``zone admit-host A.zone B.zone``) so gets one row per zone, and a node
    in both zones keeps it for both across restarts."""
    if not record.zones or record.zones[0] == zone:
        return record.name
    return hashlib.sha256(b"meshnode/host-record/" + zone.encode() + b"\0" + record.name).digest()


def revocation_key(store: Store, data: bytes, zone: str) -> bytes:
    """The store row key of a revocation held for ``zone``: its hash where that row is free
    or already this zone's (as always), a name derived with the zone where another zone
    holds it. A revocation names no zone, so zones sharing an authority take the same bytes;
    one key for all made the last zone's row replace the others', and after a restart the
    revoked host was admitted again there."""
    key = hashlib.sha256(data).digest()
    held = store.host_record_zone(key)
    if held is None or held == zone:
        return key
    return hashlib.sha256(b"meshnode/revocation/" + zone.encode() + b"\0" + data).digest()


def host_identity(store: Store, epoch: int) -> LocalHost:
    """The node's host identity from its store, created (and persisted) when absent."""
    ident = store.host_identity()
    if ident is None:
        seed = os.urandom(32)
        state = ddh_mod.genesis(local_entropy(), epoch)
        store.set_host_identity(seed, codec.encode(state.to_cbor()))
        log.info("created host identity", extra={"ddh_genesis": state.genesis.hex()})
    else:
        seed, raw = ident
        state = ddh_mod.DdhState.from_cbor(codec.decode(raw, max_bytes=4096))
    return LocalHost(seed, state)


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
        self.verified = VerifiedSignatures(VERIFIED_CAPACITY)
        """Host signatures that verified, shared by this node's zone views (one bound for
        all of them): a successor re-verifies only its new entries; no verdict changes."""
        for section in config.zones:
            authority = Authority.of(list(section.authority_keys), section.authority_threshold)
            view = ZoneView(section.id, authority)
            view.verified = self.verified
            self.zones[section.id] = ZoneState(section, view)
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
        self.host = host_identity(self.store, epoch)
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
                        record_key(record, z.id),
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
                        revocation_key(s, data, z.id), z.id, rev.host_key, rev.epoch, True, data
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

    def override_file(self, zone: str, data: bytes) -> tuple[bytes, tuple[Signed, ...]]:
        """A zone file holding only the overrides of ``data`` (a zone file, e.g. one
        ``meshnode zone override`` added to, or one signed override), for the control topic.
        Shape only: :meth:`apply_control` checks the meta-authority's signatures."""
        z = self.zone(zone)
        try:
            bundle = ZoneBundle.decode(data)
        except MeshError as not_bundle:
            try:
                overrides: tuple[Signed, ...] = (decode_signed(data, TAG_OVERRIDE),)
            except MeshError as not_override:
                raise SchemaError(
                    "neither a zone file nor a signed override: "
                    f"{not_bundle.describe()}; {not_override.describe()}"
                ) from None
        else:
            if bundle.zone != zone:
                raise PolicyError(f"zone file is for {bundle.zone!r}, not {zone!r}", path="zone")
            overrides = tuple(bundle.overrides)
        if not overrides:
            raise SchemaError("the file holds no override", path="overrides")
        wrapped = ZoneBundle(zone, z.view.authority, overrides=list(overrides))
        return wrapped.encode(), overrides

    def override_rows(self, zone: str | None, epoch: int) -> list[dict[str, Any]]:
        """The overrides in force or pending (not revoked, not expired) per joined zone."""
        out = []
        for z in self.zones.values():
            if zone is not None and z.id != zone:
                continue
            for oid, o in z.view.overrides.all():
                if o.expires_epoch <= epoch:
                    continue
                out.append(
                    {
                        "zone": z.id,
                        "id": oid.hex(),
                        "action": o.action.value,
                        "target": o.target.hex(),
                        "from_epoch": o.from_epoch,
                        "expires_epoch": o.expires_epoch,
                        "holds": o.from_epoch <= epoch,
                        "reason": o.reason,
                    }
                )
        return out

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

    @staticmethod
    def _record(z: ZoneState, d: Decision, data: bytes) -> DecisionRow:
        """The audit record of one admission."""
        subject = d.content_id or hashlib.sha256(data).digest()
        return DecisionRow(
            epoch=d.audit.epoch,
            zone=z.id,
            subject=subject,
            verdict=d.wire.value,
            disposition=d.disposition.value,
            reason=f"{d.code}: {d.reason}",
            data=codec.encode(d.audit.to_cbor()),
            at_ns=time.time_ns(),
        )

    def _write(self, z: ZoneState, d: Decision, agent_bytes: bytes, data: bytes) -> AdmissionWrite:
        record = self._record(z, d, data)
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

    # -- mutation ------------------------------------------------------------------------

    def mutate(self, zone: str, genesis: bytes, spec: MutationSpec, epoch: int) -> Mutated:
        """Make the successor of this node's agent ``genesis`` with ``spec`` applied (one
        STATE_TRANSITION entry signed by this host), judge it with this node's own admission
        and, only when that ACCEPTs it with disposition EXECUTE or STORE, commit it with the
        slope secret swap (new secret kept, spent one dropped) in one transaction.

        Returns the outcome and the envelope to publish (empty when refused: then nothing was
        committed but the audit record, and the head's secret is still held). Refusals before
        admission raise :class:`MutationRefused` with a code.
        """
        z = self.zone(zone)
        row = self.store.latest_state(genesis)
        if row is None:
            raise MutationRefused("unknown-agent", f"no agent {genesis.hex()} in this store")
        if row.zone != zone:
            raise MutationRefused("wrong-zone", f"the agent is in zone {row.zone!r}, not {zone!r}")
        agent = validate_bytes(row.data).agent
        if agent is None or agent.lineage is None:
            raise MutationRefused("unknown-agent", "the stored state has no readable lineage")
        head = agent.lineage.entries[-1]
        host = self._signing_host(zone)
        if host is None or head.next_signer != host.key:
            raise MutationRefused("not-host", "this node is not the agent's host")
        secret = self.store.slope_secret(head.commit)
        if secret is None:
            raise MutationRefused("no-secret", "this node holds no secret for the head")
        refusal = mutation_refusal(agent, spec.fields())
        if refusal is not None:
            raise MutationRefused("not-mutable", refusal, path="mutation_descriptor")
        step = dah.mutate(
            agent,
            spec.change(agent, max(epoch, head.epoch)),
            host,
            HostSecrets(MappingProxyType({head.commit: secret})),
            max(epoch, head.epoch),
            random.SystemRandom(),
        )
        data = encode_agent(step.agent)
        envelope = encode_envelope(zone, data)
        mid = hashlib.sha256(envelope).digest()
        decision, agent_bytes = self._admit(z, envelope, epoch, _BatchQuarantine(self.store, z.id))
        self.decisions[decision.code] += 1
        outcome = Outcome(
            mid,
            decision.wire,
            decision.code,
            decision.disposition.value,
            decision.content_id,
            decision.reason,
        )
        if decision.wire is not WireVerdict.ACCEPT or decision.disposition not in MUTATION_ACCEPTED:
            self.store.commit_admissions([AdmissionWrite(self._record(z, decision, envelope))])
            return Mutated(outcome, b"", step.entry)
        new = step.secrets.get(step.entry.commit)
        assert new is not None
        write = replace(
            self._write(z, decision, agent_bytes, envelope),
            secret=(step.entry.commit, genesis, epoch, new),
            spent=head.commit,
        )
        self.store.commit_admissions([write])
        if decision.disposition is Disposition.EXECUTE and decision.agent is not None:
            self.pending_executions.append((0, zone, decision.agent, decision.content_id))
        return Mutated(outcome, envelope, step.entry)

    # -- making agents -------------------------------------------------------------------

    def create_agent(
        self,
        zone: str,
        verb: str,
        args: Mapping[str, Value],
        role: str,
        epoch: int,
        omit: tuple[str, ...] = (),
        mutable: tuple[str, ...] = ("memory",),
    ) -> bytes:
        """A new agent hosted by this node (its slope secret kept in the store).

        ``omit`` names optional fields (``memory``, ``intent``) to leave out: a PARTIAL agent,
        whose signed lineage lets it travel and fall back but never execute.
        """
        wrong = sorted(set(mutable) - MUTABLE_FIELDS)
        if wrong:
            raise SchemaError(f"{wrong} are not field names a descriptor lists", path="mutable")
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
                mutable=tuple(sorted(set(mutable))),
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
