"""Zone descriptors (DESIGN 5) and the set of every version a node knows.

A descriptor is signed by the zone authority (m-of-k keys, the trust anchor in the node's
config). Versions are kept forever: version v governs head epochs from its activation epoch
up to (not including) the activation of version v+1, so any node holding the same versions
finds the same governing descriptor for a head epoch. Head entries name the descriptor they
were made under by id (sha256 of the canonical body).
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

import nacl.signing

from protocols import codec
from protocols.errors import PolicyError, SchemaError
from protocols.governance.signing import (
    KEY_LEN,
    TAG_DESCRIPTOR,
    Authority,
    Signed,
    decode_signed,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_text,
    make_signed,
    signed_from_cbor,
)
from protocols.identity.recovery import RecoveryRule

GLOBAL: Final = "global"
LOCAL: Final = "local"
PUBLISH_LEAD_EPOCHS: Final = 2
"""DESIGN 5: an authority publishes a descriptor version at least 2 epochs before it
activates, so every node holds it before any head can be made under it."""


def _keys(value: Any, path: str, length: int = KEY_LEN) -> tuple[bytes, ...]:
    items = tuple(
        expect_bytes(v, f"{path}[{i}]", length) for i, v in enumerate(expect_list(value, path))
    )
    if list(items) != sorted(set(items)):
        raise SchemaError("must be sorted and distinct", path=path)
    return items


def _texts(value: Any, path: str) -> tuple[str, ...]:
    items = tuple(expect_text(v, f"{path}[{i}]") for i, v in enumerate(expect_list(value, path)))
    if list(items) != sorted(set(items)):
        raise SchemaError("must be sorted and distinct", path=path)
    return items


@dataclass(frozen=True, slots=True)
class QuorumParams:
    """Quorum mode and numbers (SPEC 5 item 10 defaults); validated once."""

    mode: str = GLOBAL
    n: int = 5
    k_min: int = 4
    rotation_epochs: int = 16
    vote_timeout_epochs: int = 2
    health_ceiling: int = 5
    local_min: int = 3

    def __post_init__(self) -> None:
        if self.mode not in (GLOBAL, LOCAL):
            raise SchemaError(f"mode must be 'global' or 'local', not {self.mode!r}", path="mode")
        if not 1 <= self.n <= 64:
            raise SchemaError("n must be in 1..64", path="n")
        if not self.n // 2 < self.k_min <= self.n:
            raise SchemaError(f"k_min must be in {self.n // 2 + 1}..{self.n}", path="k_min")
        if not self.k_min <= self.health_ceiling <= self.n:
            raise SchemaError("health_ceiling must be in k_min..n", path="health_ceiling")
        if self.rotation_epochs < 1 or self.vote_timeout_epochs < 1:
            raise SchemaError("rotation and timeout must be >= 1 epoch", path="rotation_epochs")
        if not 1 <= self.local_min <= self.n:
            raise SchemaError("local_min must be in 1..n", path="local_min")

    def to_cbor(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mode": self.mode,
            "k_min": self.k_min,
            "local_min": self.local_min,
            "health_ceiling": self.health_ceiling,
            "rotation_epochs": self.rotation_epochs,
            "vote_timeout_epochs": self.vote_timeout_epochs,
        }

    @classmethod
    def from_cbor(cls, tree: Any, path: str) -> QuorumParams:
        m = expect_map(tree, path, tuple(cls().to_cbor()))
        return cls(
            mode=expect_text(m["mode"], f"{path}.mode"),
            **{k: expect_int(m[k], f"{path}.{k}") for k in m if k != "mode"},
        )


@dataclass(frozen=True, slots=True)
class Bounds:
    """Ceilings an agent's own descriptor may not exceed (self-widening is escalated)."""

    max_migrations: int = 8
    max_zones: int = 4
    max_delegation_depth: int = 2
    mutable: tuple[str, ...] = ("context.zone", "intent", "memory")

    def to_cbor(self) -> dict[str, Any]:
        return {
            "mutable": list(self.mutable),
            "max_zones": self.max_zones,
            "max_migrations": self.max_migrations,
            "max_delegation_depth": self.max_delegation_depth,
        }

    @classmethod
    def from_cbor(cls, tree: Any, path: str) -> Bounds:
        m = expect_map(tree, path, tuple(cls().to_cbor()))
        return cls(
            max_migrations=expect_int(m["max_migrations"], f"{path}.max_migrations"),
            max_zones=expect_int(m["max_zones"], f"{path}.max_zones"),
            max_delegation_depth=expect_int(
                m["max_delegation_depth"], f"{path}.max_delegation_depth"
            ),
            mutable=_texts(m["mutable"], f"{path}.mutable"),
        )


@dataclass(frozen=True, slots=True)
class ZoneDescriptor:
    """One signed version of a zone's governance (DESIGN 5, issue item 1)."""

    zone: str
    version: int
    activation_epoch: int
    contracts: tuple[bytes, ...]
    validators: tuple[bytes, ...]
    meta_authority: Authority
    quorum: QuorumParams = field(default_factory=QuorumParams)
    bounds: Bounds = field(default_factory=Bounds)
    cross_zone: tuple[str, ...] = ()
    """Zones agents may migrate to or from without a signed cross-zone authorisation."""
    migration_tolerance_epochs: int = 4
    migration_depth_cap: int = 4
    quarantine_ttl_epochs: int = 6
    quarantine_quota: int = 64
    freshness_epochs: int = 1
    _id: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "_id", codec.content_id(codec.encode(self.to_cbor())))

    def _validate(self) -> None:
        if not self.zone:
            raise SchemaError("zone id must not be empty", path="zone")
        if self.version < 1:
            raise SchemaError("version starts at 1", path="version")
        if list(self.contracts) != sorted(set(self.contracts)):
            raise SchemaError("contracts must be sorted and distinct", path="contracts")
        if list(self.validators) != sorted(set(self.validators)):
            raise SchemaError("validators must be sorted and distinct", path="validators")

    def to_cbor(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "bounds": self.bounds.to_cbor(),
            "quorum": self.quorum.to_cbor(),
            "version": self.version,
            "contracts": list(self.contracts),
            "cross_zone": list(self.cross_zone),
            "validators": list(self.validators),
            "meta_authority": self.meta_authority.to_cbor(),
            "activation_epoch": self.activation_epoch,
            "freshness_epochs": self.freshness_epochs,
            "quarantine_quota": self.quarantine_quota,
            "migration_depth_cap": self.migration_depth_cap,
            "quarantine_ttl_epochs": self.quarantine_ttl_epochs,
            "migration_tolerance_epochs": self.migration_tolerance_epochs,
        }

    @property
    def id(self) -> bytes:
        """sha256 of the canonical body: what head entries name (computed once)."""
        return self._id

    @classmethod
    def from_cbor(cls, tree: Any, path: str = "body") -> ZoneDescriptor:
        keys = (
            "zone",
            "bounds",
            "quorum",
            "version",
            "contracts",
            "cross_zone",
            "validators",
            "meta_authority",
            "activation_epoch",
            "freshness_epochs",
            "quarantine_quota",
            "migration_depth_cap",
            "quarantine_ttl_epochs",
            "migration_tolerance_epochs",
        )
        m = expect_map(tree, path, keys)
        ints = {
            k: expect_int(m[k], f"{path}.{k}")
            for k in (
                "version",
                "activation_epoch",
                "freshness_epochs",
                "quarantine_quota",
                "migration_depth_cap",
                "quarantine_ttl_epochs",
                "migration_tolerance_epochs",
            )
        }
        return cls(
            zone=expect_text(m["zone"], f"{path}.zone"),
            contracts=_keys(m["contracts"], f"{path}.contracts", 32),
            validators=_keys(m["validators"], f"{path}.validators"),
            meta_authority=Authority.from_cbor(m["meta_authority"], f"{path}.meta_authority"),
            quorum=QuorumParams.from_cbor(m["quorum"], f"{path}.quorum"),
            bounds=Bounds.from_cbor(m["bounds"], f"{path}.bounds"),
            cross_zone=_texts(m["cross_zone"], f"{path}.cross_zone"),
            **ints,
        )

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_DESCRIPTOR, self.to_cbor(), *keys)

    def recovery_rule(self) -> RecoveryRule:
        """Identity's recovery quorum rule for this zone: same validators, n and minimum."""
        q = self.quorum
        return RecoveryRule(
            zone=self.zone,
            eligible=self.validators,
            n=q.n,
            minimum=q.k_min,
            min_gap=q.rotation_epochs,
            generation_epochs=q.rotation_epochs,
        )


def parse_descriptor(signed: Signed) -> ZoneDescriptor:
    """The descriptor a signed object holds (shape only), SchemaError naming the path."""
    return ZoneDescriptor.from_cbor(signed.body)


class DescriptorSet:
    """Every known version of one zone's descriptor, checked against the zone authority.

    ``add`` refuses unsigned, foreign (other zone or other authority) and conflicting
    versions; ``governing(epoch)`` names the version that governs a head epoch.
    """

    def __init__(self, zone: str, authority: Authority) -> None:
        self.zone = zone
        self.authority = authority
        self._by_version: dict[int, ZoneDescriptor] = {}
        self._by_id: dict[bytes, ZoneDescriptor] = {}
        self._signed: dict[bytes, Signed] = {}
        self._activations: list[tuple[int, int]] = []  # (activation_epoch, version), sorted

    def add(self, signed: Signed) -> ZoneDescriptor:
        """Verify and keep one version; re-adding the same version is a no-op."""
        if signed.tag != TAG_DESCRIPTOR:
            raise PolicyError(f"not a zone descriptor: {signed.tag!r}", path="tag")
        desc = parse_descriptor(signed)
        if desc.zone != self.zone:
            raise PolicyError(f"descriptor for zone {desc.zone!r}, not {self.zone!r}", path="zone")
        if not signed.authorised_by(self.authority):
            raise PolicyError("descriptor not signed by the zone authority", path="sigs")
        known = self._by_version.get(desc.version)
        if known is not None:
            if known.id != desc.id:
                raise PolicyError(
                    f"conflicting descriptor for version {desc.version}", path="version"
                )
            return known
        for act, ver in self._activations:
            if (ver < desc.version) != (act < desc.activation_epoch):
                raise PolicyError(
                    f"version {desc.version} activates at {desc.activation_epoch}, out of order "
                    f"with version {ver} at {act}",
                    path="activation_epoch",
                )
        self._by_version[desc.version] = desc
        self._by_id[desc.id] = desc
        self._signed[desc.id] = signed
        bisect.insort(self._activations, (desc.activation_epoch, desc.version))
        return desc

    def add_bytes(self, data: bytes) -> ZoneDescriptor:
        return self.add(decode_signed(data, TAG_DESCRIPTOR))

    def governing(self, epoch: int) -> ZoneDescriptor | None:
        """The version active at ``epoch`` (latest activation <= epoch), or None."""
        i = bisect.bisect_right(self._activations, (epoch, 1 << 62))
        if i == 0:
            return None
        return self._by_version[self._activations[i - 1][1]]

    def get(self, descriptor_id: bytes) -> ZoneDescriptor | None:
        return self._by_id.get(descriptor_id)

    def signed(self, descriptor_id: bytes) -> Signed | None:
        return self._signed.get(descriptor_id)

    def versions(self) -> tuple[ZoneDescriptor, ...]:
        return tuple(self._by_version[v] for _, v in self._activations)

    def latest(self) -> ZoneDescriptor | None:
        return self._by_version[self._activations[-1][1]] if self._activations else None


# -- publishing a successor version (the authority's side) ---------------------------------


class PublishProblem(enum.Enum):
    """Why an authority must not publish a descriptor version."""

    OTHER_ZONE = "other-zone"
    NOT_NEXT_VERSION = "not-next-version"
    NOT_LATER = "activation-not-later"
    TOO_LATE = "too-late"


class PublicationRefused(PolicyError):
    """A descriptor version refused before signing, naming the problem."""

    def __init__(self, problem: PublishProblem, message: str, *, path: str) -> None:
        self.problem = problem
        super().__init__(f"{problem.value}: {message}", path=path)


def successor(prev: ZoneDescriptor, activation_epoch: int, **changes: Any) -> ZoneDescriptor:
    """Version ``prev.version + 1`` activating at ``activation_epoch``, other fields kept
    unless given in ``changes`` (validated like any descriptor)."""
    return replace(prev, version=prev.version + 1, activation_epoch=activation_epoch, **changes)


def check_publication(
    known: Iterable[ZoneDescriptor],
    new: ZoneDescriptor,
    epoch: int,
    lead: int = PUBLISH_LEAD_EPOCHS,
) -> None:
    """Refuse (PublicationRefused) to publish ``new`` at ``epoch`` after the ``known``
    versions: it must be the next version of the same zone, activate after the latest, and
    (for every successor of version 1) at least ``lead`` epochs after ``epoch``.

    Version 1 has no lead: nothing governs the zone before it, so no node can have judged a
    head under another version. Nodes cannot check the lead themselves (a version synced
    late is legitimate), so this is the authority's rule, applied where it signs.
    """
    versions = sorted(known, key=lambda d: d.version)
    latest = versions[-1] if versions else None
    if latest is not None and new.zone != latest.zone:
        raise PublicationRefused(
            PublishProblem.OTHER_ZONE, f"zone {new.zone!r}, not {latest.zone!r}", path="zone"
        )
    want = latest.version + 1 if latest is not None else 1
    if new.version != want:
        raise PublicationRefused(
            PublishProblem.NOT_NEXT_VERSION,
            f"version {new.version}, next is {want}",
            path="version",
        )
    if latest is not None and new.activation_epoch <= latest.activation_epoch:
        raise PublicationRefused(
            PublishProblem.NOT_LATER,
            f"activation {new.activation_epoch} is not after version {latest.version}'s "
            f"{latest.activation_epoch}",
            path="activation_epoch",
        )
    if new.version > 1 and new.activation_epoch < epoch + lead:
        raise PublicationRefused(
            PublishProblem.TOO_LATE,
            f"published at epoch {epoch}, activates at {new.activation_epoch}: needs at least "
            f"{lead} epochs of lead (activation >= {epoch + lead})",
            path="activation_epoch",
        )


def descriptor_from_signed_cbor(tree: Any) -> Signed:
    return signed_from_cbor(tree, TAG_DESCRIPTOR, "$")
