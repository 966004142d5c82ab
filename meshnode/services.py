"""Request/response services on their own libp2p streams, beside gossip.

Quorum votes, migration handoff, descriptor/head sync and alias resolution are point-to-point
exchanges, not broadcasts, so each is a :class:`NodeService` with its own protocol id
(``/meshnode/<name>/1.0.0``). The node builds them with :func:`build_services`, lets each
register its stream handlers before the host listens (so identify advertises them), merges
their control-API routes, and starts each one in its nursery.

:class:`HostTrust` and :func:`local_signer` are what every service needs of the node's
governance state: which host records this node trusts (signed by an authority its config
names for the record's zone, not revoked) and its own host signing key. Both read the node
store, so they work whoever filled it (zone control topic, sync, or an operator's tool).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import nacl.signing
from libp2p.peer.id import ID

from meshnode.api import Handler
from protocols.errors import MeshError
from protocols.governance.signing import Authority
from protocols.governance.zone import DescriptorSet
from protocols.identity.host import HostRecord, LocalHost, decode_record

if TYPE_CHECKING:
    from meshnode.config import NodeConfig
    from meshnode.node import MeshNode
    from meshnode.store import Store

EPOCH_S: Final = 10
"""DESIGN 5: the protocol's epoch length (same constant as ``meshnode.node.EPOCH_S``)."""


def current_epoch() -> int:
    """floor(unix time / EPOCH_S) from the wall clock, as the node computes it."""
    return int(time.time() // EPOCH_S)


class NodeService(Protocol):
    """One service: stream handlers, API routes and a background task."""

    name: str

    def install(self) -> None:
        """Register stream handlers on the node's host (called before the host listens)."""
        ...

    def routes(self) -> dict[tuple[str, str], Handler]:
        """Control-API routes this service adds."""
        ...

    async def run(self, *, task_status: Any = ...) -> None:
        """Background work; call ``task_status.started()`` once ready."""
        ...


@dataclass(frozen=True)
class HostTrust:
    """The host records this node trusts, indexed by key and by libp2p peer id."""

    authorities: dict[str, frozenset[bytes]]
    """zone id -> authority keys, from the node's config."""
    records: tuple[HostRecord, ...] = ()
    revoked: frozenset[bytes] = frozenset()

    @staticmethod
    def from_config(config: NodeConfig) -> HostTrust:
        return HostTrust({z.id: frozenset(z.authority_keys) for z in config.zones})

    def trusts(self, record: HostRecord) -> bool:
        """Signed by an authority our config names for one of the record's zones."""
        if record.host_key in self.revoked or not record.signature_ok():
            return False
        return any(record.authority in self.authorities.get(z, ()) for z in record.zones)

    def trusted_zones(self, record: HostRecord) -> tuple[str, ...]:
        """The record's zones whose authority we trust (empty if none or revoked)."""
        if record.host_key in self.revoked or not record.signature_ok():
            return ()
        return tuple(z for z in record.zones if record.authority in self.authorities.get(z, ()))

    def by_key(self, key: bytes) -> tuple[HostRecord, ...]:
        return tuple(r for r in self.records if r.host_key == key)

    def by_peer(self, peer_id: bytes) -> tuple[HostRecord, ...]:
        return tuple(r for r in self.records if r.peer_id == peer_id)

    def with_records(self, records: Iterable[HostRecord]) -> HostTrust:
        kept = tuple(r for r in records if self.trusts(r))
        return HostTrust(self.authorities, kept, self.revoked)


def load_trust(store: Store, config: NodeConfig) -> HostTrust:
    """Trusted host records from the node store (run in the store's worker thread)."""
    base = HostTrust.from_config(config)
    records: list[HostRecord] = []
    revoked: set[bytes] = set()
    for zone in config.zones:
        for row in store.host_records(zone.id):
            if row.revoked:
                revoked.add(row.host_key)
                continue
            try:
                records.append(decode_record(row.data))
            except MeshError:
                continue  # a bad row is skipped, never trusted
    base = HostTrust(base.authorities, (), frozenset(revoked))
    return base.with_records(records)


def load_descriptors(store: Store, config: NodeConfig) -> dict[str, DescriptorSet]:
    """Every stored descriptor version the zone authority signed, per configured zone.

    Versions that fail verification are skipped: the store may hold what a peer sent.
    """
    out: dict[str, DescriptorSet] = {}
    for zone in config.zones:
        threshold = int(getattr(zone, "authority_threshold", 1))
        descriptors = DescriptorSet(zone.id, Authority.of(list(zone.authority_keys), threshold))
        for row in sorted(store.descriptors(zone.id), key=lambda r: r.version):
            try:
                descriptors.add_bytes(row.data)
            except MeshError:
                continue
        out[zone.id] = descriptors
    return out


def local_signer(node: MeshNode, store: Store) -> nacl.signing.SigningKey | None:
    """This node's host signing key, or None when it has no host identity yet.

    Prefers ``node.local_host`` (a :class:`LocalHost`, if the node keeps one) and otherwise
    reads the seed the store's ``host_identity`` row holds.
    """
    local = getattr(node, "local_host", None)
    if isinstance(local, LocalHost):
        return nacl.signing.SigningKey(local.seed)
    identity = store.host_identity()
    if identity is None or len(identity[0]) != 32:
        return None
    return nacl.signing.SigningKey(identity[0])


def record_peer_id(record: HostRecord) -> ID | None:
    """A host record's libp2p peer id: its field, else the ``/p2p/`` part of an address."""
    if record.peer_id:
        return ID(record.peer_id)
    for text in record.addrs:
        if "/p2p/" in text:
            return ID.from_base58(text.split("/p2p/")[1].split("/")[0])
    return None


def build_services(node: MeshNode) -> list[NodeService]:
    """The services a node runs, in start order."""
    from meshnode.svc_alias import AliasService
    from meshnode.svc_handoff import HandoffService
    from meshnode.svc_quorum import QuorumService
    from meshnode.svc_sync import SyncService

    return [AliasService(node), QuorumService(node), HandoffService(node), SyncService(node)]
