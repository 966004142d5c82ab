"""Worker of the consistency test: ``make CORPUS`` writes the agents, ``judge CORPUS I`` runs
one independent pipeline (its own process, its own order, its own local state) and prints one
JSON line with its verdicts. Not a test module: the test runs it as separate OS processes.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import replace
from pathlib import Path

import cbor2

from protocols import codec
from protocols.agent.build import encode_agent
from protocols.agent.schema import Agent, PropagationLimits
from protocols.governance.migration import Hosted, migrate
from protocols.governance.pipeline import AdmitInput, admit, encode_envelope
from protocols.governance.signing import Signed, public_key
from protocols.governance.view import ZoneView
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity.host import sign_revocation
from protocols.identity.host_secrets import HostSecrets

E = 100
CATEGORIES = (
    "honest",
    "forged-slope",
    "bad-signature",
    "extra-key",
    "partial",
    "cross-zone",
    "self-widening",
    "stale-descriptor",
    "quarantine",
    "revoked-host",
)
LOCAL = frozenset({"stale-descriptor", "revoked-host"})
"""Categories whose verdict depends on what the node knows (process-specific state)."""


def worlds() -> tuple[World, World, Signed]:
    """Zone fleet (v1 from epoch 0, v2 from E - 50) and zone depot agents migrate from."""
    fleet = build_world(WorldParams(zone="fleet", hosts=3))
    depot = build_world(WorldParams(zone="depot", hosts=1))
    v2 = replace(fleet.descriptor, version=2, activation_epoch=E - 50).sign(*fleet.authority)
    return fleet, depot, v2


def _head(agent: Agent, **changes: object) -> Agent:
    assert agent.lineage is not None
    head = replace(agent.lineage.entries[-1], **changes)  # type: ignore[arg-type]
    line = replace(agent.lineage, entries=(*agent.lineage.entries[:-1], head))
    return replace(agent, lineage=line)


def make_one(fleet: World, depot: World, v2: bytes, cat: str, i: int) -> bytes:
    rng = random.Random(i)
    if cat == "cross-zone":
        agent = depot.spawn(depot.body(mutable=("context.zone", "memory")), 0, E - 1, rng)
        h_src, h_dst = depot.hosts[0], fleet.hosts[0]
        _, adm = migrate(
            agent,
            Hosted(h_src.with_record(depot.record_of(h_src).name), depot.secrets[h_src.key]),
            Hosted(
                h_dst.with_record(fleet.record_of(h_dst).name),
                fleet.secrets.get(h_dst.key, HostSecrets()),
            ),
            fleet.zone,
            (E, E),
            rng,
            descriptor=v2,
            policy_ref=fleet.body().policy_ref,
        )
        return fleet.envelope(adm.agent)
    host = 2 if cat == "revoked-host" else i % 2
    kw: dict[str, object] = {"args": {"text": f"agent {i}"}}
    if cat == "self-widening":
        kw["limits"] = PropagationLimits(max_migrations=50, max_zones=4, max_delegation_depth=2)
    if cat == "quarantine":
        kw["role"] = "suspect"
    body = fleet.body(**kw)  # type: ignore[arg-type]
    if cat == "partial":
        body = replace(body, intent=None)
    named = fleet.descriptor.id if cat == "stale-descriptor" else v2
    agent = fleet.spawn(body, host, E, rng, descriptor=named)
    if cat == "forged-slope":
        agent = _head(agent, dah=hashlib.sha256(b"forged").digest())
    elif cat == "bad-signature":
        agent = _head(agent, sig=bytes(64))
    data = encode_agent(agent)
    if cat == "extra-key":
        tree = codec.decode(data, max_bytes=1 << 20)
        tree["extra"] = i
        data = codec.encode(tree)
    return encode_envelope(fleet.zone, data)


def make(path: Path, n: int) -> None:
    fleet, depot, v2 = worlds()
    v2_id = fleet.descriptor.__class__.from_cbor(v2.body).id
    cats = [CATEGORIES[i % len(CATEGORIES)] for i in range(n)]
    corpus = [[c, make_one(fleet, depot, v2_id, c, i)] for i, c in enumerate(cats)]
    path.write_bytes(cbor2.dumps(corpus))


def view_for(index: int) -> ZoneView:
    """Process-specific local state: which revocation and descriptor versions it knows."""
    fleet, depot, v2 = worlds()
    view = ZoneView(
        fleet.zone, fleet.authority_set, peer_authorities=(public_key(depot.authority[0]),)
    )
    view.add_descriptor(fleet.signed["descriptor"])
    view.add_descriptor(v2)
    view.add_contract(fleet.signed["contract"])
    for h in fleet.hosts:
        view.admit_host(fleet.record_of(h))
    for h in depot.hosts:
        view.admit_peer_host(depot.record_of(h))
    if index % 2 == 0:
        view.revoke_host(sign_revocation(fleet.hosts[2].key, E - 5, fleet.authority[0]))
    return view


def judge(path: Path, index: int) -> dict[str, object]:
    corpus = cbor2.loads(path.read_bytes())
    view = view_for(index)
    order = list(range(len(corpus)))
    random.Random(index).shuffle(order)
    verdicts: dict[int, str] = {}
    records = 0
    for i in order:
        d = admit(AdmitInput(corpus[i][1], view, E, bytes(32)))
        verdicts[i] = f"{d.wire.value[0]}{d.disposition.value[:2]}"
        records += 1 if d.audit.code else 0
    line = ",".join(verdicts[i] for i in range(len(corpus)))
    return {
        "index": index,
        "decisions": len(verdicts),
        "records": records,
        "verdicts": line,
        "digest": hashlib.sha256(line.encode()).hexdigest(),
    }


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        print(json.dumps(judge(Path(sys.argv[2]), int(sys.argv[3]))))
