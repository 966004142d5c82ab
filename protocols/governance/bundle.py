"""A zone bundle: every signed object of one zone in one canonical CBOR map.

This is the *zone file* the CLI writes (``meshnode zone new`` and friends) and a node loads
or syncs: descriptor versions, contracts, the policy references agents carry, host records,
revocations and overrides, with the zone authority they are checked against. ``view()``
verifies everything into a :class:`~protocols.governance.view.ZoneView`, refusing (with a
MeshError naming the item) anything not signed by the right authority.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from protocols import codec
from protocols.agent.schema import PolicyRef
from protocols.errors import SchemaError
from protocols.governance.signing import (
    TAG_CONTRACT,
    TAG_DESCRIPTOR,
    TAG_OVERRIDE,
    Authority,
    Signed,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_text,
    signed_from_cbor,
)
from protocols.governance.view import ZoneView
from protocols.identity.host import HostRecord, Revocation, record_from_cbor

MAX_BUNDLE_BYTES: Final = 4 * 1024 * 1024
_KEYS: Final = (
    "zone",
    "authority",
    "contracts",
    "overrides",
    "descriptors",
    "policy_refs",
    "revocations",
    "host_records",
)
_REVOCATION_KEYS: Final = ("epoch", "host_key", "authority", "signature")


@dataclass
class ZoneBundle:
    zone: str
    authority: Authority
    descriptors: list[Signed] = field(default_factory=list)
    contracts: list[Signed] = field(default_factory=list)
    policy_refs: list[PolicyRef] = field(default_factory=list)
    host_records: list[HostRecord] = field(default_factory=list)
    revocations: list[Revocation] = field(default_factory=list)
    overrides: list[Signed] = field(default_factory=list)

    def to_cbor(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "authority": self.authority.to_cbor(),
            "contracts": [c.to_cbor() for c in self.contracts],
            "overrides": [o.to_cbor() for o in self.overrides],
            "descriptors": [d.to_cbor() for d in self.descriptors],
            "policy_refs": [r.to_cbor() for r in self.policy_refs],
            "revocations": [r.to_cbor() for r in self.revocations],
            "host_records": [h.to_cbor() for h in self.host_records],
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes) -> ZoneBundle:
        """Parse a bundle's bytes (shape only; ``view()`` checks signatures)."""
        return cls.from_cbor(codec.decode(data, max_bytes=MAX_BUNDLE_BYTES, max_depth=12))

    @classmethod
    def from_cbor(cls, tree: Any) -> ZoneBundle:
        m = expect_map(tree, "$", _KEYS)

        def items(key: str) -> list[Any]:
            return expect_list(m[key], key)

        refs = []
        for i, r in enumerate(items("policy_refs")):
            ref = expect_map(r, f"policy_refs[{i}]", ("signer", "contract", "signature"))
            refs.append(
                PolicyRef(
                    contract=expect_bytes(ref["contract"], f"policy_refs[{i}].contract", 32),
                    signer=expect_bytes(ref["signer"], f"policy_refs[{i}].signer", 32),
                    signature=expect_bytes(ref["signature"], f"policy_refs[{i}].signature", 64),
                )
            )
        revocations = []
        for i, r in enumerate(items("revocations")):
            rev = expect_map(
                r, f"revocations[{i}]", ("epoch", "host_key", "authority", "signature")
            )
            revocations.append(
                Revocation(
                    host_key=expect_bytes(rev["host_key"], f"revocations[{i}].host_key", 32),
                    epoch=expect_int(rev["epoch"], f"revocations[{i}].epoch"),
                    authority=expect_bytes(rev["authority"], f"revocations[{i}].authority", 32),
                    signature=expect_bytes(rev["signature"], f"revocations[{i}].signature", 64),
                )
            )
        return cls(
            zone=expect_text(m["zone"], "zone"),
            authority=Authority.from_cbor(m["authority"], "authority"),
            descriptors=[
                signed_from_cbor(d, TAG_DESCRIPTOR, f"descriptors[{i}]")
                for i, d in enumerate(items("descriptors"))
            ],
            contracts=[
                signed_from_cbor(c, TAG_CONTRACT, f"contracts[{i}]")
                for i, c in enumerate(items("contracts"))
            ],
            policy_refs=refs,
            host_records=[
                record_from_cbor(h, f"host_records[{i}]")
                for i, h in enumerate(items("host_records"))
            ],
            revocations=revocations,
            overrides=[
                signed_from_cbor(o, TAG_OVERRIDE, f"overrides[{i}]")
                for i, o in enumerate(items("overrides"))
            ],
        )

    def view(self, epoch: int, peer_authorities: tuple[bytes, ...] = ()) -> ZoneView:
        """Verify every object into a fresh view (overrides checked at ``epoch``)."""
        v = ZoneView(self.zone, self.authority, peer_authorities=peer_authorities)
        for d in self.descriptors:
            v.add_descriptor(d)
        for c in self.contracts:
            v.add_contract(c)
        for h in self.host_records:
            v.admit_host(h)
        for r in self.revocations:
            v.revoke_host(r)
        for o in self.overrides:
            if not v.add_override(o, epoch):
                raise SchemaError(
                    "override not signed by the zone's meta-authority", path="overrides"
                )
        return v
