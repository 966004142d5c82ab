"""Cross-zone authorisation (SPEC 2.5): entering a zone from one it does not list needs one.

An agent whose carried lineage enters this zone from zone X (an entry whose zone is this zone
following one in X) is admissible when X is in the governing descriptor's ``cross_zone`` list,
or when the agent carries an authorisation for X signed by this zone's authority: a ledger
event of kind ``policy-outcome`` whose data holds ``xzone`` (the signed object's bytes). The
answer follows from the agent's bytes and the named descriptor, so every node agrees.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Final

import nacl.signing

from protocols.agent.schema import Agent, LedgerEvent, LedgerKind
from protocols.errors import MeshError
from protocols.governance.signing import (
    TAG_XZONE,
    Authority,
    Signed,
    decode_signed,
    expect_bytes,
    expect_int,
    expect_map,
    expect_text,
    make_signed,
)
from protocols.governance.zone import ZoneDescriptor

XZONE_KEY: Final = "xzone"


@dataclass(frozen=True, slots=True)
class CrossZoneAuthorisation:
    """This zone's authority lets agent ``target`` (genesis DAH) enter from ``from_zone``."""

    zone: str
    from_zone: str
    target: bytes
    expires_epoch: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "target": self.target,
            "from_zone": self.from_zone,
            "expires_epoch": self.expires_epoch,
        }

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_XZONE, self.to_cbor(), *keys)

    @classmethod
    def from_cbor(cls, tree: Any) -> CrossZoneAuthorisation:
        m = expect_map(tree, "xzone", ("zone", "target", "from_zone", "expires_epoch"))
        return cls(
            zone=expect_text(m["zone"], "xzone.zone"),
            from_zone=expect_text(m["from_zone"], "xzone.from_zone"),
            target=expect_bytes(m["target"], "xzone.target", 32),
            expires_epoch=expect_int(m["expires_epoch"], "xzone.expires_epoch"),
        )


def ledger_event(signed: Signed, epoch: int) -> LedgerEvent:
    """The ledger event that carries an authorisation inside the agent."""
    return LedgerEvent(
        epoch=epoch, kind=LedgerKind.POLICY_OUTCOME, data={XZONE_KEY: signed.encode()}
    )


def _carried(agent: Agent, authority: Authority) -> list[CrossZoneAuthorisation]:
    out = []
    for event in agent.memory.ledger if agent.memory else ():
        raw = event.data.get(XZONE_KEY) if event.kind is LedgerKind.POLICY_OUTCOME else None
        if not isinstance(raw, bytes):
            continue
        try:
            signed = decode_signed(raw, TAG_XZONE)
            auth = CrossZoneAuthorisation.from_cbor(signed.body)
        except MeshError:
            continue
        if signed.authorised_by(authority):
            out.append(auth)
    return out


def check(agent: Agent, desc: ZoneDescriptor, authority: Authority) -> str | None:
    """None when every carried entry into this zone is allowed, else why not."""
    assert agent.lineage is not None
    entries = agent.lineage.entries
    target = agent.lineage.genesis_dah
    carried: list[CrossZoneAuthorisation] | None = None
    for prev, entry in itertools.pairwise(entries):
        if entry.zone != desc.zone or prev.zone == desc.zone or prev.zone in desc.cross_zone:
            continue
        if carried is None:
            carried = _carried(agent, authority)
        if not any(
            a.zone == desc.zone
            and a.from_zone == prev.zone
            and a.target == target
            and entry.epoch < a.expires_epoch
            for a in carried
        ):
            return f"entered from zone {prev.zone!r} without a cross-zone authorisation"
    return None
