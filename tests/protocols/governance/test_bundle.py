"""Zone bundles (the zone file): round trip, verified view, refusal of foreign objects."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.errors import MeshError
from protocols.governance.bundle import ZoneBundle
from protocols.governance.meta import Action, Override
from protocols.governance.pipeline import AdmitInput, admit
from protocols.governance.policy import make_policy_ref
from protocols.governance.world import build_world, named_key
from protocols.identity.host import sign_revocation
from protocols.types import WireVerdict

W = build_world()


def bundle() -> ZoneBundle:
    return ZoneBundle(
        zone=W.zone,
        authority=W.authority_set,
        descriptors=[W.signed["descriptor"]],
        contracts=[W.signed["contract"]],
        policy_refs=[make_policy_ref(W.zone, W.contract.id, W.authority[0])],
        host_records=[W.record_of(h) for h in W.hosts],
        revocations=[sign_revocation(W.hosts[2].key, 3, W.authority[0])],
        overrides=[Override(W.zone, b"", Action.SUSPEND, 0, 5, "drill").sign(*W.meta)],
    )


def test_bundle_round_trips_and_its_view_admits_agents() -> None:
    b = bundle()
    again = ZoneBundle.decode(b.encode())
    assert again.encode() == b.encode()
    view = again.view(epoch=10)
    agent = W.spawn(W.body(), 0, 10, random.Random(1))
    d = admit(AdmitInput(W.envelope(agent), view, 10, bytes(32)))
    assert d.wire is WireVerdict.ACCEPT
    assert view.hosts.is_revoked(W.hosts[2].key)


def test_objects_not_signed_by_the_authority_are_refused() -> None:
    b = bundle()
    forged = replace(b, contracts=[W.contract.sign(named_key("stranger"))])
    with pytest.raises(MeshError):
        forged.view(epoch=10)
    foreign_override = replace(
        b, overrides=[Override(W.zone, b"", Action.SUSPEND, 0, 5, "x").sign(named_key("x"))]
    )
    with pytest.raises(MeshError):
        foreign_override.view(epoch=1)
    with pytest.raises(MeshError):
        ZoneBundle.decode(b"\xa0")
