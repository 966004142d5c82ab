"""Write the admission conformance vectors (tests/vectors/governance/*.json) from a table.

Each case builds an input (an envelope and the zone knowledge a node holds: descriptors,
contracts, host records, revocations, overrides, its epoch and host key) and states by hand
the wire verdict, disposition and outcome code it must get (DESIGN 5). Expected values are
never taken from the implementation: this script only builds inputs.

Run after a schema change: ``.venv/bin/python tests/vectors/make_governance_vectors.py``
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from protocols import codec  # noqa: E402
from protocols.agent.build import encode_agent  # noqa: E402
from protocols.agent.schema import SCHEMA_VERSION, Agent, MutationClass, PropagationLimits  # noqa: E402
from protocols.governance.meta import Action, Override  # noqa: E402
from protocols.governance.migration import Hosted, migrate  # noqa: E402
from protocols.governance.pipeline import encode_envelope  # noqa: E402
from protocols.governance.quorum import scope_of  # noqa: E402
from protocols.governance.signing import public_key  # noqa: E402
from protocols.governance.world import World, WorldParams, build_world  # noqa: E402
from protocols.identity import dah  # noqa: E402
from protocols.identity.host import sign_revocation  # noqa: E402
from protocols.identity.host_secrets import HostSecrets  # noqa: E402

OUT = Path(__file__).resolve().parent / "governance"
E = 500
NOBODY = bytes(32)


@dataclass
class Input:
    """One admission input: the envelope and what the judging node knows."""

    envelope: bytes
    epoch: int = E
    local_host: bytes = NOBODY
    via_sync: bool = False
    quarantine_load: int = 0
    drop_contracts: bool = False
    drop_hosts: bool = False
    extra_descriptors: list[bytes] = field(default_factory=list)
    revocations: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[bytes] = field(default_factory=list)
    peer: World | None = None
    previous: Agent | None = None
    """The state of the agent's slope the node holds (its last trusted state), if any."""


FLEET = build_world(WorldParams(zone="fleet", hosts=3, validators=5))
DEPOT = build_world(WorldParams(zone="depot", hosts=1))


def agent(seed: int, steps: int = 1, **body: Any) -> Agent:
    rng = random.Random(seed)
    a = FLEET.spawn(FLEET.body(**body), 0, E - 1, rng)
    return FLEET.grow(a, steps, E, rng)


def env(a: Agent) -> bytes:
    return FLEET.envelope(a)


def head(a: Agent, **changes: Any) -> Agent:
    assert a.lineage is not None
    h = replace(a.lineage.entries[-1], **changes)
    return replace(a, lineage=replace(a.lineage, entries=(*a.lineage.entries[:-1], h)))


def target(a: Agent) -> bytes:
    assert a.lineage is not None
    return scope_of(FLEET.zone, a.lineage.genesis_dah)


def override(a: Agent | None, action: Action, until: int = E + 10) -> bytes:
    o = Override(FLEET.zone, target(a) if a else b"", action, 0, until, "vector")
    return o.sign(*FLEET.meta).encode()


def extra_key(seed: int) -> bytes:
    tree = codec.decode(encode_agent(agent(seed)), max_bytes=1 << 20)
    tree["extra"] = 1
    return encode_envelope(FLEET.zone, codec.encode(tree))


def partial(seed: int, field_name: str) -> Agent:
    return FLEET.spawn(replace(FLEET.body(), **{field_name: None}), 0, E, random.Random(seed))


def role_change(a: Agent, role: str = "scout") -> dah.Change:
    assert a.context is not None
    return dah.Change(cls=MutationClass.ROLE_CHANGE, context=replace(a.context, role=role))


def certified(seed: int, approvers: int | None = None) -> Agent:
    a = agent(seed, steps=0)
    return FLEET.certified(a, role_change(a), E, random.Random(seed + 1), approvers)


def executed(seed: int) -> Agent:
    a = agent(seed, steps=0)
    assert a.memory is not None
    return FLEET.step(
        a, dah.Change(cls=MutationClass.EXECUTION, memory=a.memory), E, random.Random(seed)
    )


def moved(seed: int, gap: int = 0) -> Agent:
    rng = random.Random(seed)
    a = DEPOT.spawn(DEPOT.body(mutable=("context.zone", "memory")), 0, E - gap - 1, rng)
    src, dst = DEPOT.hosts[0], FLEET.hosts[0]
    _, adm = migrate(
        a,
        Hosted(src.with_record(DEPOT.record_of(src).name), DEPOT.secrets[src.key]),
        Hosted(
            dst.with_record(FLEET.record_of(dst).name), FLEET.secrets.get(dst.key, HostSecrets())
        ),
        FLEET.zone,
        (E - gap - 1, E),
        rng,
        descriptor=FLEET.descriptor.id,
        policy_ref=FLEET.body().policy_ref,
    )
    return adm.agent


def authorised_move(seed: int, gap: int) -> Agent:
    """Moved from depot with a cross-zone authorisation carried in memory."""
    from protocols.governance.xzone import CrossZoneAuthorisation, ledger_event

    rng = random.Random(seed)
    a = DEPOT.spawn(DEPOT.body(mutable=("context.zone", "memory")), 0, E - gap - 2, rng)
    assert a.lineage is not None
    assert a.memory is not None
    auth = CrossZoneAuthorisation(FLEET.zone, DEPOT.zone, a.lineage.genesis_dah, E + 100)
    memory = replace(a.memory, ledger=(ledger_event(auth.sign(*FLEET.authority), E - gap - 2),))
    a = DEPOT.step(
        a, dah.Change(cls=MutationClass.STATE_TRANSITION, memory=memory), E - gap - 2, rng
    )
    src, dst = DEPOT.hosts[0], FLEET.hosts[0]
    _, adm = migrate(
        a,
        Hosted(src.with_record(DEPOT.record_of(src).name), DEPOT.secrets[src.key]),
        Hosted(
            dst.with_record(FLEET.record_of(dst).name), FLEET.secrets.get(dst.key, HostSecrets())
        ),
        FLEET.zone,
        (E - gap - 1, E),
        rng,
        descriptor=FLEET.descriptor.id,
        policy_ref=FLEET.body().policy_ref,
    )
    return adm.agent


def sealed(seed: int) -> Agent:
    rng = random.Random(seed)
    a = agent(seed, steps=0)
    src, dst = FLEET.hosts[0], DEPOT.hosts[0]
    seal, _ = migrate(
        a,
        Hosted(src.with_record(FLEET.record_of(src).name), FLEET.secrets[src.key]),
        Hosted(dst, HostSecrets()),
        DEPOT.zone,
        (E, E),
        rng,
    )
    return seal.agent


def delegated(seed: int, wider: bool) -> Agent:
    from protocols.agent.lineage import entry_hash
    from protocols.agent.schema import DelegationPathway
    from protocols.governance.delegation import grant_event, make_grant
    from protocols.governance.signing import Signed

    rng = random.Random(seed)
    limits = PropagationLimits(max_migrations=3, max_zones=3, max_delegation_depth=2)
    pathway = DelegationPathway(role="scout", verbs=("note",), max_depth=1)
    parent = FLEET.spawn(FLEET.body(limits=limits, delegation=(pathway,)), 0, E, rng)
    h = FLEET.hosts[0]
    grant = make_grant(
        parent, "scout", ("note",), ("memory",), h.with_record(FLEET.record_of(h).name)
    )
    assert isinstance(grant, Signed)
    child_limits = replace(limits, max_migrations=9) if wider else limits
    body = FLEET.body(role="scout", limits=child_limits)
    assert body.memory is not None
    body = replace(body, memory=replace(body.memory, ledger=(grant_event(grant, E),)))
    assert parent.lineage is not None
    link = entry_hash(parent.lineage.entries[-1])
    return FLEET.spawn(body, 1, E, rng, link=link, delegation=1)


def successor(seed: int, mutable: tuple[str, ...], **change: Any) -> Input:
    """A STATE_TRANSITION successor judged by a node holding its predecessor."""
    rng = random.Random(seed)
    before = FLEET.spawn(FLEET.body(mutable=mutable), 0, E - 1, rng)
    after = FLEET.step(before, dah.Change(cls=MutationClass.STATE_TRANSITION, **change), E, rng)
    return Input(env(after), previous=before)


def memory_changed(seed: int) -> Input:
    from protocols.agent.schema import LedgerEvent, LedgerKind

    body = FLEET.body()
    assert body.memory is not None
    event = LedgerEvent(epoch=E, kind=LedgerKind.MUTATION_RESULT, data={"set": {"k": "v"}})
    return successor(seed, ("memory",), memory=replace(body.memory, ledger=(event,)))


def intent_changed(seed: int) -> Input:
    body = FLEET.body()
    assert body.intent is not None
    return successor(seed, ("memory",), intent=replace(body.intent, args={"text": "changed"}))


def descriptor_widened(seed: int) -> Input:
    md = FLEET.body().mutation_descriptor
    assert md is not None
    return successor(
        seed, ("memory",), mutation_descriptor=replace(md, mutable=("intent", "memory"))
    )


def revoke(host: int) -> dict[str, Any]:
    return sign_revocation(FLEET.hosts[host].key, E - 5, FLEET.authority[0]).to_cbor()


V2 = replace(FLEET.descriptor, version=2, activation_epoch=E - 1).sign(*FLEET.authority).encode()
WIDE = PropagationLimits(max_migrations=99, max_zones=4, max_delegation_depth=2)
A, R, IG = "ACCEPT", "REJECT", "IGNORE"


@dataclass(frozen=True)
class Case:
    name: str
    wire: str
    disposition: str
    code: str
    build: Callable[[], Input]
    note: str = ""


CASES = [
    Case("honest_store", A, "STORE", "permit", lambda: Input(env(agent(1)))),
    Case(
        "honest_execute_on_host",
        A,
        "EXECUTE",
        "permit-host",
        lambda: Input(env(agent(2)), local_host=FLEET.hosts[0].key),
    ),
    Case("honest_genesis_only", A, "STORE", "permit", lambda: Input(env(agent(3, steps=0)))),
    Case(
        "bad_signature",
        R,
        "DROP",
        "bad-signature",
        lambda: Input(env(head(agent(4), sig=bytes(64)))),
    ),
    Case("forged_dah", R, "DROP", "bad-step", lambda: Input(env(head(agent(5), dah=bytes(32))))),
    Case(
        "bad_reveal", R, "DROP", "bad-reveal", lambda: Input(env(head(agent(6), reveal=bytes(32))))
    ),
    Case(
        "edited_state",
        R,
        "DROP",
        "bad-state",
        lambda: Input(env(replace(agent(7), intent=replace(agent(7).intent, verb="echo")))),
    ),  # type: ignore[arg-type]
    Case(
        "dropped_intent",
        R,
        "DROP",
        "bad-state",
        lambda: Input(env(replace(agent(8), intent=None))),
        "a forger gains nothing by dropping a signed field",
    ),
    Case(
        "wrong_signer",
        R,
        "DROP",
        "wrong-signer",
        lambda: Input(env(head(agent(9), host=FLEET.hosts[1].key))),
    ),
    Case(
        "honest_partial_no_intent",
        A,
        "FALLBACK",
        "partial",
        lambda: Input(env(partial(10, "intent"))),
    ),
    Case(
        "honest_partial_no_descriptor",
        A,
        "FALLBACK",
        "partial",
        lambda: Input(env(partial(11, "mutation_descriptor"))),
    ),
    Case("extra_top_level_key", R, "DROP", "invalid", lambda: Input(extra_key(12))),
    Case("undecodable", R, "DROP", "undecodable", lambda: Input(b"\xa1\xff")),
    Case(
        "bad_envelope",
        R,
        "DROP",
        "bad-envelope",
        lambda: Input(codec.encode({"v": 1, "zone": "fleet"})),
    ),
    Case(
        "wrong_topic",
        R,
        "DROP",
        "wrong-topic",
        lambda: Input(encode_envelope("depot", encode_agent(agent(13)))),
    ),
    Case("policy_deny_rule", R, "DROP", "policy-deny", lambda: Input(env(agent(14, verb="wipe")))),
    Case(
        "policy_default_deny", R, "DROP", "policy-deny", lambda: Input(env(agent(15, verb="dance")))
    ),
    Case(
        "policy_quarantine",
        A,
        "QUARANTINE",
        "policy-quarantine",
        lambda: Input(env(agent(16, role="suspect"))),
    ),
    Case(
        "policy_escalate",
        A,
        "ESCALATE",
        "policy-escalate",
        lambda: Input(env(agent(17, verb="audit"))),
    ),
    Case(
        "self_widening", A, "ESCALATE", "self-widening", lambda: Input(env(agent(18, limits=WIDE)))
    ),
    Case(
        "widening_authorised_by_override",
        A,
        "STORE",
        "permit",
        lambda: Input(
            env(agent(18, limits=WIDE)),
            overrides=[override(agent(18, limits=WIDE), Action.AUTHORISE_WIDENING)],
        ),
    ),
    Case(
        "quarantine_released_by_override",
        A,
        "STORE",
        "permit",
        lambda: Input(
            env(agent(19, role="suspect")),
            overrides=[override(agent(19, role="suspect"), Action.RELEASE)],
        ),
    ),
    Case(
        "release_override_expired",
        A,
        "QUARANTINE",
        "policy-quarantine",
        lambda: Input(
            env(agent(19, role="suspect")),
            overrides=[override(agent(19, role="suspect"), Action.RELEASE, until=E)],
        ),
    ),
    Case(
        "suspended_zone_wide",
        A,
        "QUARANTINE",
        "suspended",
        lambda: Input(env(agent(20)), overrides=[override(None, Action.SUSPEND)]),
    ),
    Case("stale_head", IG, "DROP", "stale-head", lambda: Input(env(agent(21)), epoch=E + 3)),
    Case("future_head", IG, "DROP", "future-head", lambda: Input(env(agent(22)), epoch=E - 2)),
    Case(
        "stale_head_via_sync",
        A,
        "STORE",
        "permit",
        lambda: Input(env(agent(23)), epoch=E + 3, via_sync=True),
    ),
    Case(
        "descriptor_unknown",
        IG,
        "DROP",
        "descriptor-unknown",
        lambda: Input(env(head(agent(24), descriptor=bytes(32)))),
    ),
    Case(
        "descriptor_superseded",
        IG,
        "DROP",
        "descriptor-not-active",
        lambda: Input(env(agent(25)), extra_descriptors=[V2]),
    ),
    Case(
        "contract_unknown",
        IG,
        "DROP",
        "contract-unknown",
        lambda: Input(env(agent(26)), drop_contracts=True),
    ),
    Case(
        "host_unknown", IG, "DROP", "unknown-host", lambda: Input(env(agent(27)), drop_hosts=True)
    ),
    Case(
        "host_revoked",
        IG,
        "DROP",
        "revoked-host",
        lambda: Input(env(agent(28)), revocations=[revoke(0)]),
    ),
    Case(
        "other_host_revoked",
        A,
        "STORE",
        "permit",
        lambda: Input(env(agent(29)), revocations=[revoke(1)]),
    ),
    Case("quorum_certified_role_change", A, "STORE", "permit", lambda: Input(env(certified(30)))),
    Case("quorum_k_minus_one", R, "DROP", "quorum-invalid", lambda: Input(env(certified(31, 3)))),
    Case(
        "quorum_missing",
        R,
        "DROP",
        "quorum-missing",
        lambda: Input(
            env(FLEET.step(agent(32, 0), role_change(agent(32, 0)), E, random.Random(1)))
        ),
    ),
    Case(
        "already_executed_on_host",
        A,
        "STORE",
        "already-executed",
        lambda: Input(env(executed(33)), local_host=FLEET.hosts[0].key),
    ),
    Case(
        "cross_zone_unauthorised",
        R,
        "DROP",
        "cross-zone-unauthorised",
        lambda: Input(env(moved(34)), peer=DEPOT),
    ),
    Case(
        "cross_zone_authorised",
        A,
        "STORE",
        "permit",
        lambda: Input(env(authorised_move(35, 0)), peer=DEPOT),
    ),
    Case(
        "migration_gap_beyond_tolerance",
        A,
        "QUARANTINE",
        "migration-gap",
        lambda: Input(env(authorised_move(36, 6)), peer=DEPOT),
    ),
    Case(
        "sealed_in_transit_on_next_host",
        A,
        "STORE",
        "in-transit",
        lambda: Input(env(sealed(38)), local_host=DEPOT.hosts[0].key),
    ),
    Case(
        "delegated_child_within_grant",
        A,
        "STORE",
        "permit",
        lambda: Input(env(delegated(39, wider=False))),
    ),
    Case(
        "delegated_child_wider_than_parent",
        R,
        "DROP",
        "delegation-wider",
        lambda: Input(env(delegated(40, wider=True))),
    ),
    Case(
        "successor_memory_change_permitted",
        A,
        "STORE",
        "permit",
        lambda: memory_changed(41),
        "memory is mutable; the node holds the predecessor",
    ),
    Case(
        "successor_intent_not_mutable",
        IG,
        "DROP",
        "mutation-not-permitted",
        lambda: intent_changed(42),
        "intent changed although the predecessor's descriptor lists only memory",
    ),
    Case(
        "successor_descriptor_widened",
        IG,
        "DROP",
        "mutation-not-permitted",
        lambda: descriptor_widened(43),
        "the successor adds intent to its own mutable fields",
    ),
    Case(
        "quarantine_quota_full",
        IG,
        "DROP",
        "quota-exceeded",
        lambda: Input(env(agent(37, role="suspect")), quarantine_load=64),
    ),
]


def knowledge(inp: Input) -> dict[str, Any]:
    """The judging node's zone knowledge, as hex of canonical signed objects."""
    hosts = (
        []
        if inp.drop_hosts
        else [FLEET.record_of(h).encode().hex() for h in [*FLEET.hosts, *FLEET.validators]]
    )
    return {
        "zone": FLEET.zone,
        "authority": {"keys": [k.hex() for k in FLEET.authority_set.keys], "threshold": 1},
        "peer_authorities": [public_key(inp.peer.authority[0]).hex()] if inp.peer else [],
        "descriptors": [
            FLEET.signed["descriptor"].encode().hex(),
            *(d.hex() for d in inp.extra_descriptors),
        ],
        "contracts": [] if inp.drop_contracts else [FLEET.signed["contract"].encode().hex()],
        "host_records": hosts,
        "peer_host_records": [inp.peer.record_of(h).encode().hex() for h in inp.peer.hosts]
        if inp.peer
        else [],
        "revocations": [codec.encode(r).hex() for r in inp.revocations],
        "overrides": [o.hex() for o in inp.overrides],
        **({"previous": encode_agent(inp.previous).hex()} if inp.previous is not None else {}),
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for case in CASES:
        inp = case.build()
        vector = {
            "name": case.name,
            "schema_version": SCHEMA_VERSION,
            "note": case.note,
            "envelope_hex": inp.envelope.hex(),
            "envelope_sha256": hashlib.sha256(inp.envelope).hexdigest(),
            "epoch": inp.epoch,
            "local_host": inp.local_host.hex(),
            "via_sync": inp.via_sync,
            "quarantine_load": inp.quarantine_load,
            "knowledge": knowledge(inp),
            "expected": {"wire": case.wire, "disposition": case.disposition, "code": case.code},
        }
        (OUT / f"{case.name}.json").write_text(json.dumps(vector, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(CASES)} vectors to {OUT}")


if __name__ == "__main__":
    main()
