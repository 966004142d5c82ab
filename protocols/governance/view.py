"""Everything signed a node knows about one zone: descriptors, contracts, hosts, overrides.

The node feeds objects from the zone's control topic and from sync into a :class:`ZoneView`;
each ``add_*`` verifies the object against the zone authority (the trust anchor in config)
and raises a :class:`~protocols.errors.MeshError` naming what is wrong otherwise. The
pipeline only reads it. Host records and revocations are identity's
(:mod:`protocols.identity.host`); the view holds a directory trusting the same authority.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.agent.schema import PolicyRef
from protocols.errors import PolicyError
from protocols.governance.meta import OverrideTable
from protocols.governance.policy import Contract, parse_contract, policy_ref_valid
from protocols.governance.signing import TAG_CONTRACT, Authority, Signed, decode_signed
from protocols.governance.zone import DescriptorSet, ZoneDescriptor
from protocols.identity.host import (
    HostRecord,
    MemoryHostDirectory,
    Revocation,
    VerifiedSignatures,
)
from protocols.identity.slope import Equivocation, SlopeParams


@dataclass
class ZoneView:
    """One zone's signed governance data as this node knows it (mutable, fed by the node)."""

    zone: str
    authority: Authority
    peer_authorities: tuple[bytes, ...] = ()
    """Authorities of peer zones whose host records this node also trusts (cross-zone agents
    carry entries signed by hosts admitted there)."""
    descriptors: DescriptorSet = field(init=False)
    contracts: dict[bytes, Contract] = field(default_factory=dict)
    signed_contracts: dict[bytes, Signed] = field(default_factory=dict)
    hosts: MemoryHostDirectory = field(init=False)
    overrides: OverrideTable = field(init=False)
    equivocations: dict[tuple[bytes, bytes], Equivocation] = field(default_factory=dict)
    """Verified equivocation proofs by (host, prev): both branches escalate."""
    _ref_ok: dict[tuple[bytes, bytes, bytes], bool] = field(default_factory=dict, repr=False)
    verified: VerifiedSignatures | None = field(default=None, repr=False)
    """Optional cache of host signatures that verified, so a successor re-verifies only its
    new entries; it changes no verdict (see :class:`~protocols.identity.host.VerifiedSignatures`).
    Off by default: a simulator with thousands of views should share one, not hold one each."""
    _slope_params: dict[bytes, SlopeParams] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.descriptors = DescriptorSet(self.zone, self.authority)
        self.hosts = MemoryHostDirectory((*self.authority.keys, *self.peer_authorities))
        self.overrides = OverrideTable(self.zone)

    def policy_ref_ok(self, ref: PolicyRef) -> bool:
        """Whether an authority key signed this reference (cached by key, message and
        signature, as DESIGN 8 allows: the check is never skipped, only remembered)."""
        key = (ref.signer, ref.contract, ref.signature)
        ok = self._ref_ok.get(key)
        if ok is None:
            ok = ref.signer in self.authority.keys and policy_ref_valid(ref, self.zone)
            if len(self._ref_ok) >= 4096:
                self._ref_ok.clear()
            self._ref_ok[key] = ok
        return ok

    def slope_params(self, desc: ZoneDescriptor) -> SlopeParams:
        """Admission's slope bounds under ``desc``, built once per descriptor version
        (descriptors are immutable and named by their content id)."""
        params = self._slope_params.get(desc.id)
        if params is None:
            params = SlopeParams(window=None, max_ahead=1, recovery=desc.recovery_rule())
            self._slope_params[desc.id] = params
        return params

    def add_descriptor(self, signed: Signed) -> ZoneDescriptor:
        return self.descriptors.add(signed)

    def add_contract(self, signed: Signed) -> Contract:
        """Keep a contract signed by the zone authority for this zone."""
        contract = parse_contract(signed)
        if contract.zone != self.zone:
            raise PolicyError(f"contract for zone {contract.zone!r}, not {self.zone!r}")
        if not signed.authorised_by(self.authority):
            raise PolicyError("contract not signed by the zone authority", path="sigs")
        self.contracts[contract.id] = contract
        self.signed_contracts[contract.id] = signed
        return contract

    def add_contract_bytes(self, data: bytes) -> Contract:
        return self.add_contract(decode_signed(data, TAG_CONTRACT))

    def admit_host(self, record: HostRecord) -> None:
        if self.zone not in record.zones:
            raise PolicyError(f"host record does not admit the host to zone {self.zone!r}")
        self.hosts.admit(record)

    def admit_peer_host(self, record: HostRecord) -> None:
        """A host admitted by a peer zone's authority (signature checked by the directory)."""
        self.hosts.admit(record)

    def revoke_host(self, revocation: Revocation) -> None:
        self.hosts.revoke(revocation)

    def add_equivocation(self, proof: Equivocation) -> bool:
        """Keep a proof from the control topic when it verifies (anyone can check it)."""
        if not proof.valid():
            return False
        self.equivocations[(proof.first.host, proof.first.prev)] = proof
        return True

    def add_override(self, signed: Signed, epoch: int) -> bool:
        """Keep an override checked against the descriptor governing ``epoch``."""
        desc = self.descriptors.governing(epoch)
        if desc is None:
            return False
        return self.overrides.add(signed, desc) is not None
