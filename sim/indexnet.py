"""The slope-band index on an in-memory network: the protocol objects of protocols.index,
driven message by message with per-message counting.

Direct streams (DESIGN 8) are one hop each whatever the path, so a lookup's hops are its
request rounds. A dead anchor never replies; the resolver's round times out. Used by the index
tests and by bench/index.py; the real node drives the same objects over /meshnode/alias/1.1.0.

Registrations go through the same binding checks as on a real anchor
(:mod:`protocols.index.binding`): the net admits a pool of simulated hosts under one
authority, :meth:`IndexNet.new_agent` makes a real genesis entry signed by one of them and
:meth:`IndexNet.registration` a registration signed by the agent's current host. A refused
registration is counted (``stats.refused``, by reason) and not stored.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocols.agent.build import AgentSpec, new_agent
from protocols.agent.schema import Agent, MutationClass
from protocols.identity import dah
from protocols.identity.host import (
    HostGrant,
    LocalHost,
    MemoryHostDirectory,
    VerifiedSignatures,
    new_host,
    sign_record,
)
from protocols.identity.host_secrets import HostSecrets
from protocols.index.anchors import AnchorDirectory, sign_anchor_record, signing_key_from_seed
from protocols.index.band import BandTable, IndexParams
from protocols.index.binding import BindingReason, RegistrationRefused, proof_of, signed
from protocols.index.resolve import (
    AliasPolicy,
    AnchorStore,
    Registration,
    Resolved,
    Resolver,
    ResolverOutput,
    SendQuery,
    SendRegister,
    registration_phases,
)

if TYPE_CHECKING:
    from nacl.signing import SigningKey


def anchor_signing_key(seed: int, index: int) -> SigningKey:
    """Deterministic anchor host key for simulations."""
    return signing_key_from_seed(hashlib.sha256(f"{seed}/anchor/{index}".encode()).digest())


@dataclass
class IndexNetStats:
    messages: int = 0
    register_messages: int = 0
    lookup_messages: int = 0
    repairs: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Registrations (or repairs) an anchor refused, by binding reason."""


SIM_ZONE = "sim"


@dataclass
class IndexNet:
    """Anchors with their stores, one shared anchor view, and message accounting."""

    params: IndexParams
    anchor_count: int
    seed: int = 1
    epoch: int = 0
    host_count: int = 8
    """Admitted (non-anchor) hosts that make agents and sign registrations."""
    stores: dict[bytes, AnchorStore] = field(default_factory=dict)
    dead: set[bytes] = field(default_factory=set)
    stats: IndexNetStats = field(default_factory=IndexNetStats)

    def __post_init__(self) -> None:
        self.keys = [anchor_signing_key(self.seed, i) for i in range(self.anchor_count)]
        self.anchor_keys = sorted(bytes(k.verify_key) for k in self.keys)
        self.directory = AnchorDirectory(self.params, may_anchor=lambda _key: True)
        for key in self.keys:
            self.directory.hear(
                sign_anchor_record(key, self.epoch, self.params.record_ttl_epochs), self.epoch
            )
        for anchor in self.anchor_keys:
            self.stores[anchor] = AnchorStore(anchor)
        self._next_query = 0
        authority = signing_key_from_seed(
            hashlib.sha256(f"{self.seed}/authority".encode()).digest()
        )
        self.hosts = MemoryHostDirectory([bytes(authority.verify_key)])
        self.rng = random.Random(f"{self.seed}/hosts")
        self.local_hosts: list[LocalHost] = []
        for _ in range(self.host_count):
            host = new_host(self.rng, self.epoch)
            record = sign_record(
                host.key, host.ddh.genesis, HostGrant(zones=(SIM_ZONE,)), authority
            )
            self.hosts.admit(record)
            self.local_hosts.append(host.with_record(record.name))
        self.secrets = {h.key: HostSecrets() for h in self.local_hosts}
        self.verified: dict[bytes, VerifiedSignatures] = {}
        """Each anchor's own cache of verified signatures (a real anchor keeps one too)."""

    def new_agent(self, host: int = 0) -> Agent:
        """A fresh agent whose genesis entry ``local_hosts[host]`` signs."""
        maker = self.local_hosts[host]
        spec = AgentSpec(verb="note", zone=SIM_ZONE, epoch=self.epoch)
        made = new_agent(spec, maker, self.secrets[maker.key], self.rng)
        self.secrets[maker.key] = made.secrets
        return made.agent

    def host_of(self, key: bytes) -> LocalHost:
        return next(h for h in self.local_hosts if h.key == key)

    def step(
        self,
        agent: Agent,
        cls: MutationClass = MutationClass.STATE_TRANSITION,
        handoff: dah.Handoff | None = None,
    ) -> Agent:
        """One honest step of ``agent``, signed by the next signer its head names."""
        assert agent.lineage is not None
        host = self.host_of(agent.lineage.entries[-1].next_signer)
        change = dah.Change(cls, handoff=handoff)
        made = dah.mutate(agent, change, host, self.secrets[host.key], self.epoch, self.rng)
        self.secrets[host.key] = made.secrets
        return made.agent

    def migrate(self, agent: Agent, to: int) -> Agent:
        """Hand ``agent`` to ``local_hosts[to]``: the old host's seal, the new host's step."""
        new = self.local_hosts[to]
        handoff, self.secrets[new.key] = dah.arrival(new, self.secrets[new.key], self.rng)
        sealed = self.step(agent, MutationClass.MIGRATION, handoff)
        return self.step(sealed)

    def registration(
        self, agent: Agent, alias: str, scope: tuple[str, ...] = (), *, by: LocalHost | None = None
    ) -> Registration:
        """``alias`` for ``agent``'s current head, signed by its head signer (or ``by``)."""
        line = agent.lineage
        assert line is not None
        head = line.entries[-1]
        signer = by or self.host_of(head.host)
        reg = Registration(
            line.genesis_dah, alias, head.dah, head.totals.depth, tuple(sorted(set(scope)))
        )
        return signed(reg, proof_of(line.entries, line.pruned), signer.sign)

    @property
    def table(self) -> BandTable:
        return self.directory.table(self.epoch)

    def register(self, reg: Registration, table: BandTable | None = None) -> int:
        """Send a registration to its anchors; return the messages used."""
        first, then = registration_phases(reg, table or self.table)
        bound_before = self.stats.refused.get(BindingReason.ALIAS_BOUND.value, 0)
        stored = [self._deliver_register(send) for send in first]
        sent = len(first)
        bound = self.stats.refused.get(BindingReason.ALIAS_BOUND.value, 0) > bound_before
        if any(stored) and not bound:  # the alias band decides the binding (as the node)
            for send in then:
                self._deliver_register(send)
            sent += len(then)
        self.stats.register_messages += sent
        return sent

    def _deliver_register(self, send: SendRegister) -> bool:
        """Deliver one registration; False when the anchor is dead or refused it."""
        self.stats.messages += 1
        if send.anchor in self.dead:
            return False
        verified = self.verified.setdefault(send.anchor, VerifiedSignatures(4096))
        try:
            self.stores[send.anchor].register(send.registration, self.hosts, self.epoch, verified)
        except RegistrationRefused as exc:
            key = exc.reason.value
            self.stats.refused[key] = self.stats.refused.get(key, 0) + 1
            return False
        return True

    def lookup(
        self,
        alias: str | None = None,
        uid: bytes | None = None,
        *,
        zone: str = "",
        policy: AliasPolicy | None = None,
        table: BandTable | None = None,
        fanout: int = 2,
    ) -> Resolved:
        """Resolve from a node holding ``table`` (default: the shared view)."""
        resolver = Resolver(table or self.table, fanout=fanout, policy=policy, requester_zone=zone)
        self._next_query += 1
        now = 0.0
        if alias is not None:
            pending = resolver.resolve_alias(self._next_query, alias, now)
        else:
            assert uid is not None
            pending = resolver.resolve_uid(self._next_query, uid, now)
        for _round in range(64):  # bounded: each round either finishes or times out
            result, pending = self._run(resolver, pending, now)
            if result is not None:
                self.stats.lookup_messages += result.messages
                return result
            now += resolver.round_timeout_s
            pending = resolver.on_timeout(now)
        raise RuntimeError("lookup did not finish in 64 rounds")

    def _run(
        self, resolver: Resolver, outputs: list[ResolverOutput], now: float
    ) -> tuple[Resolved | None, list[ResolverOutput]]:
        queue = list(outputs)
        while queue:
            out = queue.pop(0)
            if isinstance(out, Resolved):
                return out, []
            if isinstance(out, SendRegister):
                self.stats.repairs += 1
                self._deliver_register(out)
                continue
            assert isinstance(out, SendQuery)
            self.stats.messages += 1
            if out.anchor in self.dead:
                continue
            reply = self.stores[out.anchor].lookup(out.query)
            self.stats.messages += 1
            queue.extend(resolver.on_reply(reply, now))
        return None, []

    def kill(self, anchor: bytes) -> None:
        self.dead.add(anchor)

    def churn(self, fraction: float, rng: random.Random) -> tuple[bytes, ...]:
        """Remove a fraction of anchors from the view and the network; return them."""
        count = round(len(self.anchor_keys) * fraction)
        gone = tuple(rng.sample(self.anchor_keys, count))
        for anchor in gone:
            self.dead.add(anchor)
            self.directory.withdraw(anchor)
        return gone
