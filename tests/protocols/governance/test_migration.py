"""Zone migration (SPEC 2.10): seal/admission pairs, depth cap, slope gap, cross-zone rules."""

from __future__ import annotations

import random
from dataclasses import replace

from protocols.agent.schema import Agent, MutationClass
from protocols.governance.migration import Hosted, check, migrate, zone_path
from protocols.governance.pipeline import AdmitInput, Decision, Disposition, admit
from protocols.governance.quarantine import Event, Held, MemoryQuarantine
from protocols.governance.signing import public_key
from protocols.governance.view import ZoneView
from protocols.governance.world import World, WorldParams, build_world
from protocols.governance.xzone import CrossZoneAuthorisation, ledger_event
from protocols.identity import dah
from protocols.identity.host_secrets import HostSecrets
from protocols.types import WireVerdict

E = 30


def worlds(**dest: object) -> tuple[World, World]:
    src = build_world(WorldParams(zone="north", hosts=2))
    dst = build_world(WorldParams(zone="south", hosts=2, **dest))  # type: ignore[arg-type]
    return src, dst


def dest_view(src: World, dst: World) -> ZoneView:
    view = ZoneView(dst.zone, dst.authority_set, peer_authorities=(public_key(src.authority[0]),))
    view.add_descriptor(dst.signed["descriptor"])
    view.add_contract(dst.signed["contract"])
    for h in dst.hosts:
        view.admit_host(dst.record_of(h))
    for h in src.hosts:
        view.admit_peer_host(src.record_of(h))
    return view


def move(
    src: World, dst: World, agent: Agent, epochs: tuple[int, int], rng: random.Random
) -> Agent:
    s_host, d_host = src.hosts[0], dst.hosts[0]
    seal, adm = migrate(
        agent,
        Hosted(s_host.with_record(src.record_of(s_host).name), src.secrets[s_host.key]),
        Hosted(
            d_host.with_record(dst.record_of(d_host).name),
            dst.secrets.get(d_host.key, HostSecrets()),
        ),
        dst.zone,
        epochs,
        rng,
        descriptor=dst.descriptor.id,
        policy_ref=dst.body().policy_ref,
    )
    src.secrets[s_host.key] = seal.secrets
    dst.secrets[d_host.key] = adm.secrets
    return adm.agent


def start(
    src: World, dst: World, rng: random.Random, authorised: bool = True, epoch: int = E - 2
) -> Agent:
    body = src.body(mutable=("memory", "context.zone"))
    agent = src.spawn(body, 0, epoch, rng)
    if authorised:
        assert agent.lineage is not None
        assert agent.memory is not None
        auth = CrossZoneAuthorisation(dst.zone, src.zone, agent.lineage.genesis_dah, E + 100)
        event = ledger_event(auth.sign(*dst.authority), epoch)
        memory = replace(agent.memory, ledger=(*agent.memory.ledger, event))
        agent = src.step(
            agent, dah.Change(cls=MutationClass.STATE_TRANSITION, memory=memory), epoch, rng
        )
    return agent


def judge(view: ZoneView, world: World, agent: Agent, epoch: int = E) -> Decision:
    return admit(AdmitInput(world.envelope(agent), view, epoch, bytes(32)))


def test_migration_leaves_a_seal_admission_pair_and_a_reconstructible_zone_path() -> None:
    src, dst = worlds()
    rng = random.Random(1)
    agent = move(src, dst, start(src, dst, rng), (E - 1, E), rng)
    assert agent.lineage is not None
    types = [e.type for e in agent.lineage.entries]
    assert types[-2] is MutationClass.MIGRATION
    assert agent.lineage.entries[-2].zone == "north"
    assert agent.lineage.entries[-1].zone == "south"
    assert agent.lineage.entries[-1].host == agent.lineage.entries[-2].next_signer
    assert [z for z, _ in zone_path(agent)] == ["north", "south"]
    d = judge(dest_view(src, dst), dst, agent)
    assert (d.wire, d.code) == (WireVerdict.ACCEPT, "permit")


def test_a_sealed_agent_is_in_transit_and_not_executed_by_its_next_host() -> None:
    src, dst = worlds()
    rng = random.Random(9)
    agent = start(src, dst, rng)
    s_host, d_host = src.hosts[0], dst.hosts[0]
    seal, _ = migrate(
        agent,
        Hosted(s_host.with_record(src.record_of(s_host).name), src.secrets[s_host.key]),
        Hosted(d_host, HostSecrets()),
        dst.zone,
        (E - 1, E),
        rng,
    )
    view = src.view()
    d = admit(AdmitInput(src.envelope(seal.agent), view, E, d_host.key))
    assert (d.wire, d.disposition, d.code) == (WireVerdict.ACCEPT, Disposition.STORE, "in-transit")


def test_cross_zone_entry_without_authorisation_is_rejected() -> None:
    src, dst = worlds()
    rng = random.Random(2)
    agent = move(src, dst, start(src, dst, rng, authorised=False), (E - 1, E), rng)
    d = judge(dest_view(src, dst), dst, agent)
    assert (d.wire, d.code) == (WireVerdict.REJECT, "cross-zone-unauthorised")
    listed_src, listed_dst = worlds(cross_zone=("north",))
    agent = move(
        listed_src,
        listed_dst,
        start(listed_src, listed_dst, rng, authorised=False),
        (E - 1, E),
        rng,
    )
    assert judge(dest_view(listed_src, listed_dst), listed_dst, agent).code == "permit"


def test_the_cap_plus_first_migration_is_refused() -> None:
    src, dst = worlds(migration_depth_cap=1)
    rng = random.Random(3)
    agent = move(src, dst, start(src, dst, rng), (E - 2, E - 2), rng)
    assert check(agent, dst.descriptor) is None
    # back to north, then into south again: the second migration passes cap 1
    agent = move(dst, src, agent, (E - 1, E - 1), rng)
    agent = move(src, dst, agent, (E, E), rng)
    problem = check(agent, dst.descriptor)
    assert problem is not None
    assert problem.code == "migration-depth"


def test_slope_gap_beyond_tolerance_is_quarantined_and_resolves_within_budget() -> None:
    src, dst = worlds()
    rng = random.Random(4)
    tol = dst.descriptor.migration_tolerance_epochs
    agent = move(src, dst, start(src, dst, rng, epoch=E - tol - 3), (E - tol - 2, E), rng)
    d = judge(dest_view(src, dst), dst, agent)
    assert (d.wire, d.disposition, d.code) == (
        WireVerdict.ACCEPT,
        Disposition.QUARANTINE,
        "migration-gap",
    )
    store = MemoryQuarantine()
    ttl = dst.descriptor.quarantine_ttl_epochs
    store.hold(
        Held(d.audit.content_id, b"", dst.hosts[0].key, dst.zone, b"", E, E + ttl, d.reason), 8, E
    )
    assert store.expire(E + ttl - 1) == []
    expired = store.expire(E + ttl)
    assert [r.event for r in expired] == [Event.EXPIRED]
    assert store.held_keys() == []


def test_a_successor_that_does_not_derive_from_the_trusted_dah_is_quarantined_on_entry() -> None:
    from protocols.agent.lineage import entry_hash
    from protocols.identity.slope import SlopeTracker

    src, dst = worlds()
    rng = random.Random(5)
    agent = start(src, dst, rng)
    branch = src.step(agent, dah.Change(cls=MutationClass.STATE_TRANSITION), E - 1, rng)
    assert branch.lineage is not None
    trusted = branch.lineage.entries[-1]
    tracker = SlopeTracker(16)
    tracker.remember(branch.lineage.genesis_dah, entry_hash(trusted), trusted.totals.depth)
    entered = move(src, dst, agent, (E - 1, E), rng)
    view = dest_view(src, dst)
    fresh = judge(view, dst, entered)
    assert fresh.code == "permit"
    d = admit(AdmitInput(dst.envelope(entered), view, E, bytes(32), tracker=tracker))
    assert (d.wire, d.disposition, d.code) == (
        WireVerdict.IGNORE,
        Disposition.QUARANTINE,
        "entry-discontinuity",
    )


def test_an_action_the_nest_admits_but_the_zone_forbids_is_denied() -> None:
    from protocols.governance.nest import Instantiated, Nests, instantiate

    _, dst = worlds()
    h = dst.hosts[0]
    made = instantiate(
        Nests(),
        dst.body(verb="wipe"),
        h.with_record(dst.record_of(h).name),
        HostSecrets(),
        E,
        random.Random(6),
        dst.descriptor.id,
    )
    assert isinstance(made, Instantiated)
    view = ZoneView(dst.zone, dst.authority_set)
    view.add_descriptor(dst.signed["descriptor"])
    view.add_contract(dst.signed["contract"])
    view.admit_host(dst.record_of(h))
    d = judge(view, dst, made.agent)
    assert (d.wire, d.code) == (WireVerdict.REJECT, "policy-deny")
