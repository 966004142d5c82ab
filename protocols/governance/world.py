"""A deterministic zone world: authority, meta-authority, validators, hosts, contract, agents.

Tests, conformance vectors, the admission benchmark and the simulator all need the same
thing: a zone whose keys come from names (sha256 of the name is the Ed25519 seed), a signed
descriptor and contract, admitted hosts, and agents made on those hosts with the real
identity code. Nothing here reads entropy: agents take a ``random.Random`` from the caller.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

import nacl.signing

from protocols.agent import lineage as lineage_mod
from protocols.agent.build import encode_agent
from protocols.agent.schema import (
    Agent,
    Constraints,
    Context,
    DelegationPathway,
    Intent,
    Memory,
    MutationClass,
    MutationDescriptor,
    PropagationLimits,
    Value,
)
from protocols.governance.pipeline import certificate_event, encode_envelope, proposal_subject
from protocols.governance.policy import Contract, Rule, make_policy_ref
from protocols.governance.quorum import (
    QuorumCertificate,
    Vote,
    VoteLedger,
    min_k,
    new_proposal,
    validator_set,
)
from protocols.governance.signing import Authority, Signed, public_key, signing_key
from protocols.governance.view import ZoneView
from protocols.governance.zone import QuorumParams, ZoneDescriptor
from protocols.identity import dah
from protocols.identity.ddh import genesis as ddh_genesis
from protocols.identity.host import HostGrant, HostRecord, LocalHost, sign_record
from protocols.identity.host_secrets import HostSecrets
from protocols.types import PolicyVerdict


def named_key(name: str) -> nacl.signing.SigningKey:
    """The signing key of a name: every process derives the same key."""
    return signing_key(hashlib.sha256(name.encode()).digest())


def named_host(name: str, epoch: int = 0) -> LocalHost:
    seed = hashlib.sha256(b"host:" + name.encode()).digest()
    ddh = ddh_genesis(hashlib.sha256(b"ddh:" + name.encode()).digest(), epoch)
    return LocalHost(seed, ddh)


DEFAULT_RULES: Final = (
    Rule(
        "quarantine-suspect",
        PolicyVerdict.QUARANTINE,
        "suspect agents are held",
        (("roles", ("suspect",)),),
    ),
    Rule(
        "escalate-audit",
        PolicyVerdict.ESCALATE,
        "audits go to the meta-authority",
        (("verbs", ("audit",)),),
    ),
    Rule("deny-forbidden", PolicyVerdict.DENY, "forbidden verb", (("verbs", ("wipe",)),)),
    Rule(
        "permit-work",
        PolicyVerdict.PERMIT,
        "ordinary work",
        (("verbs", ("note", "echo", "claim", "report")), ("max_lineage_depth", 10_000)),
    ),
)


@dataclass(frozen=True, slots=True)
class WorldParams:
    """Shape of a world; validated by the types it builds."""

    zone: str = "fleet"
    hosts: int = 3
    validators: int = 5
    authority_keys: int = 1
    meta_keys: int = 1
    activation_epoch: int = 0
    quorum: QuorumParams = field(default_factory=QuorumParams)
    rules: tuple[Rule, ...] = DEFAULT_RULES
    cross_zone: tuple[str, ...] = ()
    migration_depth_cap: int = 4


@dataclass
class World:
    """The keys and signed objects of one zone, and a fresh :class:`ZoneView` factory."""

    params: WorldParams
    authority: list[nacl.signing.SigningKey]
    meta: list[nacl.signing.SigningKey]
    validators: list[LocalHost]
    hosts: list[LocalHost]
    contract: Contract
    descriptor: ZoneDescriptor
    signed: dict[str, Signed]
    records: dict[bytes, HostRecord]
    secrets: dict[bytes, HostSecrets] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return self.params.zone

    @property
    def authority_set(self) -> Authority:
        return Authority.of([public_key(k) for k in self.authority], len(self.authority))

    def view(self) -> ZoneView:
        """A new node's view holding everything this world signed."""
        v = ZoneView(self.zone, self.authority_set)
        v.add_descriptor(self.signed["descriptor"])
        v.add_contract(self.signed["contract"])
        for host in [*self.hosts, *self.validators]:
            v.admit_host(self.record_of(host))
        return v

    def record_of(self, host: LocalHost) -> HostRecord:
        """The host's record, signed by the first authority key (made once)."""
        record = self.records.get(host.key)
        if record is None:
            grant = HostGrant(zones=(self.zone,), valid_from_epoch=0)
            record = sign_record(host.key, host.ddh.genesis, grant, self.authority[0])
            self.records[host.key] = record
        return record

    def host(self, i: int) -> LocalHost:
        return self.hosts[i]

    def body(
        self,
        verb: str = "note",
        args: Mapping[str, Value] = MappingProxyType({"text": "hi"}),
        role: str = "worker",
        mutable: tuple[str, ...] = ("memory",),
        limits: PropagationLimits | None = None,
        delegation: tuple[DelegationPathway, ...] = (),
        zone: str | None = None,
    ) -> Agent:
        """An agent body without lineage, bound to this zone's contract."""
        ref = make_policy_ref(self.zone, self.contract.id, self.authority[0])
        return Agent(
            intent=Intent(verb=verb, args=dict(args)),
            context=Context(
                zone=zone or self.zone,
                nest="default",
                role=role,
                principal="",
                constraints=Constraints(0, 0),
            ),
            memory=Memory(ledger=(), access_log=(), handles=()),
            policy_ref=(ref,),
            mutation_descriptor=MutationDescriptor(
                mutable=mutable,
                delegation=delegation,
                limits=limits
                or PropagationLimits(max_migrations=4, max_zones=4, max_delegation_depth=2),
            ),
            lineage=None,
        )

    def spawn(
        self,
        body: Agent,
        host: int,
        epoch: int,
        rng: random.Random,
        descriptor: bytes | None = None,
        link: bytes = b"",
        delegation: int = 0,
    ) -> Agent:
        """Give ``body`` its genesis on host ``host`` (the host keeps its secret here), made
        under ``descriptor`` (default: this world's version 1)."""
        h = self.hosts[host]
        step = dah.genesis(
            body,
            h.with_record(self.record_of(h).name),
            self.secrets.get(h.key, HostSecrets()),
            epoch,
            rng,
            dah.Origin(link, delegation, descriptor or self.descriptor.id),
        )
        self._keep(h.key, step.secrets)
        return step.agent

    def step(self, agent: Agent, change: dah.Change, epoch: int, rng: random.Random) -> Agent:
        """One more entry by the agent's current host."""
        assert agent.lineage is not None
        signer = agent.lineage.entries[-1].next_signer
        h = next(x for x in [*self.hosts, *self.validators] if x.key == signer)
        out = dah.mutate(
            agent,
            change,
            h.with_record(self.record_of(h).name),
            self.secrets.get(h.key, HostSecrets()),
            epoch,
            rng,
        )
        self._keep(h.key, out.secrets)
        return out.agent

    def _keep(self, key: bytes, secrets: HostSecrets) -> None:
        """Keep spent secrets too, so tests can branch an agent (a host never would)."""
        old = self.secrets.get(key, HostSecrets())
        self.secrets[key] = HostSecrets(MappingProxyType({**old.pending, **secrets.pending}))

    def grow(self, agent: Agent, steps: int, epoch: int, rng: random.Random) -> Agent:
        for _ in range(steps):
            agent = self.step(agent, dah.Change(cls=MutationClass.STATE_TRANSITION), epoch, rng)
        return agent

    def certified(
        self,
        agent: Agent,
        change: dah.Change,
        epoch: int,
        rng: random.Random,
        approvers: int | None = None,
    ) -> Agent:
        """Apply a quorum-class ``change`` with a certificate from the first ``approvers``
        validators of the agent's set (default: the minimum k)."""
        assert agent.lineage is not None
        desc = self.descriptor
        proposed = change.apply(agent)
        subject = proposal_subject(lineage_mod.entry_hash(agent.lineage.entries[-1]), proposed)
        proposal = new_proposal(
            desc, agent.lineage.genesis_dah, agent.lineage.genesis_epoch, subject, epoch
        )
        vset = validator_set(desc, proposal.scope, proposal.g0)
        by_key = {v.key: v for v in self.validators}
        k = min_k(len(vset), desc.quorum) if approvers is None else approvers
        votes = []
        for key in vset[:k]:
            vote = VoteLedger().cast(signing_key(by_key[key].seed), proposal, epoch)
            assert isinstance(vote, Vote)
            votes.append(vote)
        yes = tuple(sorted((v.voter, v.signature) for v in votes))
        cert = QuorumCertificate(proposal, len(vset), min_k(len(vset), desc.quorum), yes)
        assert proposed.memory is not None
        memory = replace(
            proposed.memory, ledger=(*proposed.memory.ledger, certificate_event(cert, epoch))
        )
        return self.step(agent, replace(change, memory=memory), epoch, rng)

    def envelope(self, agent: Agent) -> bytes:
        return encode_envelope(self.zone, encode_agent(agent))


def build_world(params: WorldParams = WorldParams()) -> World:
    """The world of ``params``: every key from a name, every object signed."""
    z = params.zone
    authority = [named_key(f"{z}/authority/{i}") for i in range(params.authority_keys)]
    meta = [named_key(f"{z}/meta/{i}") for i in range(params.meta_keys)]
    validators = [named_host(f"{z}/validator/{i}") for i in range(params.validators)]
    hosts = [named_host(f"{z}/host/{i}") for i in range(params.hosts)]
    contract = Contract(
        zone=z,
        name=f"{z}-basic",
        version=1,
        default=PolicyVerdict.DENY,
        default_reason="no rule permits it",
        rules=params.rules,
    )
    descriptor = ZoneDescriptor(
        zone=z,
        version=1,
        activation_epoch=params.activation_epoch,
        contracts=(contract.id,),
        validators=tuple(sorted(v.key for v in validators)),
        meta_authority=Authority.of([public_key(k) for k in meta], len(meta)),
        quorum=params.quorum,
        cross_zone=params.cross_zone,
        migration_depth_cap=params.migration_depth_cap,
    )
    signed = {"descriptor": descriptor.sign(*authority), "contract": contract.sign(*authority)}
    world = World(params, authority, meta, validators, hosts, contract, descriptor, signed, {})
    return world


__all__ = ["World", "WorldParams", "build_world", "named_host", "named_key"]
