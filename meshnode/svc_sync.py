"""``/meshnode/sync/1.0.0``: zone objects on join and anti-entropy of agent heads.

Why: gossip carries only what is published while a node listens (and briefly re-offers it
in IHAVE), so a node that joins late or was cut off misses descriptors, host records and
agent states. Sync is a pull, run with every connected peer on each new connection and every
``interval_s``:

- ``digests``: one exchange opens every round: the sha256 of our heads list and, per zone,
  of the peer's zone file as we last pulled it; the peer answers whether its heads are the
  same and which zone files changed. A converged round is one stream per peer (opening a
  stream costs a multistream negotiation, the bulk of an idle round's CPU).
- ``zone``: the peer's whole zone file (descriptors, contracts, policy references, host
  records, revocations, overrides) rebuilt from its store; applied through the node's normal
  control path, which verifies every signature against the zone authority in our config.
  Asked every round the digest says it changed, not only once per connection, so a lost zone
  object (a revocation) comes back without a reconnect.
- ``heads``: we send ``[genesis, depth]`` of the newest state we hold of every agent in the
  zone; the peer answers the newest state of each agent where it holds a deeper one (or one
  we lack), bounded in count and bytes. Each state goes through the node's admission
  pipeline like a gossiped one (same verdicts, same durable commit), so sync can never
  smuggle in what gossip would refuse.

Each node pulls, so n nodes in a line converge in at most (diameter x interval).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import trio
from libp2p.abc import INetConn, INetwork
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from meshnode.api import Handler, Request, Response, json_response
from meshnode.notify import ConnectionNotifee
from meshnode.services import current_epoch
from meshnode.svc_wire import (
    BAD_REQUEST,
    NOT_SERVED,
    PeerFilter,
    ServeCounters,
    ServiceError,
    WireParams,
    call,
    field_bytes,
    field_list,
    field_text,
    ok,
    stream_handler,
)
from meshnode.zones import Queued
from protocols import codec
from protocols.agent.schema import MAX_AGENT_BYTES
from protocols.errors import MeshError
from protocols.governance.bundle import MAX_BUNDLE_BYTES, ZoneBundle
from protocols.governance.pipeline import encode_envelope
from protocols.types import WireVerdict

if TYPE_CHECKING:
    from meshnode.node import MeshNode

log = logging.getLogger(__name__)

PROTOCOL: Final = "/meshnode/sync/1.0.0"


@dataclass(frozen=True)
class SyncParams:
    """Bounds and timing of anti-entropy."""

    wire: WireParams = field(default_factory=lambda: WireParams(max_bytes=8 << 20, timeout_s=10.0))
    interval_s: float = 2.0
    min_gap_s: float = 0.2
    # a state accepted less than this long ago is not offered: gossip is still delivering it
    # (IHAVE re-offers 3 heartbeats), and offering it too sent each state again to every
    # peer (1,825 sync states for 19 accepted in bench/mesh.py's zone trials)
    settle_s: float = 3.5
    max_deferred: int = 5  # rounds in a row the heads pull may yield to an admission backlog
    max_heads: int = 8192
    max_states: int = 64
    max_answer_bytes: int = 6 << 20


@dataclass
class SyncCounters:
    zone_pulls: int = 0
    zone_pulls_same: int = 0
    zone_objects_new: int = 0
    head_pulls: int = 0
    head_pulls_same: int = 0
    head_pulls_deferred: int = 0
    states_received: int = 0
    states_accepted: int = 0
    states_sent: int = 0
    failures: int = 0


class _Wake(ConnectionNotifee):
    """New connection: pull zone objects and heads from it soon (never blocks the swarm)."""

    def __init__(self, service: SyncService) -> None:
        self.service = service

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self.service.wake()


def _queued(zone: str, agent: bytes) -> Queued:
    """A zone message as if received, marked as arriving by sync: ``AdmitInput.via_sync``
    lets slope continuity rather than freshness decide (DESIGN 5 "Time")."""
    envelope = encode_envelope(zone, agent)
    mid = hashlib.sha256(envelope).digest()
    return Queued("agents", zone, mid, envelope, local=True, via_sync=True)


def heads_digest(heads: list[list[Any]]) -> bytes:
    """sha256 of the canonical ``[[genesis, depth], ...]`` list (sorted by genesis)."""
    return hashlib.sha256(codec.encode(heads)).digest()


class SyncService:
    """Pulls zone files and newer agent states from connected peers; serves its own."""

    name = "sync"

    def __init__(self, node: MeshNode, params: SyncParams | None = None) -> None:
        self.node = node
        self.params = params or SyncParams()
        self.counters = SyncCounters()
        self.serve_counters = ServeCounters()
        self._wake = trio.Event()
        # (peer, zone) -> sha256 of the zone file last pulled from that peer: each round asks
        # again with it, and the peer answers "same" unless its file changed since. Pulling
        # only once per connection lost a file published while the link was coming up.
        self._zone_seen: dict[tuple[bytes, str], bytes] = {}
        self.last_round_s = 0.0
        self._peers = PeerFilter(PROTOCOL)
        self._heads_cache: tuple[float, list[list[Any]]] | None = None
        # zone -> (built at, file, sha256): every peer asks every round, so the file is
        # rebuilt from the store at most once per ``min_gap_s`` however many peers ask
        self._bundle_cache: dict[str, tuple[float, bytes, bytes]] = {}
        self._deferred = 0  # consecutive rounds whose heads pull yielded to admission

    def install(self) -> None:
        host = self.node.mesh.host
        handler = stream_handler(self.name, self._handle, self.params.wire, self.serve_counters)
        host.set_stream_handler(TProtocol(PROTOCOL), handler)
        host.get_network().register_notifee(_Wake(self))

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("GET", "/sync/status"): self._api_status}

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            with trio.move_on_after(self.params.interval_s):
                await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep(self.params.min_gap_s)
            await self.sync_round()

    async def sync_round(self) -> None:
        """Pull from every connected peer, one zone at a time."""
        started = time.monotonic()
        connected = set(self.node.mesh.connected_peers())
        self._zone_seen = {k: d for k, d in self._zone_seen.items() if ID(k[0]) in connected}
        zones = sorted(self.node.zones.zones)
        host, now = self.node.mesh.host, trio.current_time()
        # Gossip delivering faster than this node admits: the states we lack are most likely
        # in our own admission queue, and pulling them again only adds work (bench/mesh.py, 16
        # nodes at 10 agents/s: 2,794 states sent by sync, none accepted). Deferred for at most
        # max_deferred_rounds in a row, so losses are still recovered under sustained load.
        defer = self.node.admission_backlog() > 0 and self._deferred < self.params.max_deferred
        self._deferred = self._deferred + 1 if defer else 0
        async with trio.open_nursery() as nursery:
            for peer in sorted(connected, key=lambda p: p.to_bytes()):
                if peer != self.node.mesh.peer_id and self._peers.wanted(host, peer, now):
                    nursery.start_soon(self._sync_peer, peer, zones, defer)
        self.last_round_s = time.monotonic() - started

    async def _sync_peer(self, peer: ID, zones: list[str], defer_heads: bool) -> None:
        try:
            heads = await self._head_list()
            changed, heads_same = await self.compare(peer, zones, heads)
            for zone in changed:
                await self.pull_zone(peer, zone)
            if heads_same:
                self.counters.head_pulls_same += 1
            elif defer_heads:
                self.counters.head_pulls_deferred += 1
            else:
                await self.pull_heads(peer, zones, heads)
        except MeshError as exc:
            self.counters.failures += 1
            if isinstance(exc, ServiceError):
                self._peers.failed(peer, exc, trio.current_time())
            log.debug("sync failed", extra={"peer": peer.to_base58(), "error": str(exc)})

    async def compare(
        self, peer: ID, zones: list[str], heads: list[list[Any]]
    ) -> tuple[list[str], bool]:
        """One ``digests`` exchange: (zones whose file changed since we last pulled it from
        this peer, whether the peer holds exactly our heads)."""
        key = peer.to_bytes()
        files = [[z, self._zone_seen.get((key, z), b"")] for z in zones]
        request = {"t": "digests", "zones": zones, "heads": heads_digest(heads), "files": files}
        answer = await call(self.node.mesh.host, peer, (), PROTOCOL, request, self.params.wire)
        changed = field_list(answer, "changed", len(zones))
        if any(z not in zones for z in changed):
            raise ServiceError(BAD_REQUEST, "a changed zone we did not ask about", path="changed")
        self.counters.zone_pulls_same += len(zones) - len(changed)
        return sorted(changed), answer.get("same") is True

    async def pull_zone(self, peer: ID, zone: str) -> int:
        """Fetch and apply the peer's zone file; returns the number of new objects."""
        request: dict[str, Any] = {"t": "zone", "zone": zone}
        answer = await call(self.node.mesh.host, peer, (), PROTOCOL, request, self.params.wire)
        bundle = field_bytes(answer, "bundle", cap=MAX_BUNDLE_BYTES)
        self.counters.zone_pulls += 1
        try:
            new = await self.node.db(self.node.zones.apply_control, zone, bundle, current_epoch())
        except MeshError as exc:
            log.info("peer's zone file refused", extra={"peer": peer.to_base58(), "e": str(exc)})
            raise
        added = sum(new.values())
        self.counters.zone_objects_new += added
        self._zone_seen[(peer.to_bytes(), zone)] = hashlib.sha256(bundle).digest()
        return added

    async def pull_heads(self, peer: ID, zones: list[str], heads: list[list[Any]]) -> int:
        """Send our heads, admit the newer states the peer returns; returns how many ACCEPTed
        (called when the ``digests`` exchange said the peer's heads differ)."""
        host, wire = self.node.mesh.host, self.params.wire
        request: dict[str, Any] = {"t": "heads", "zones": zones, "heads": heads}
        answer = await call(host, peer, (), PROTOCOL, request, wire)
        self.counters.head_pulls += 1
        by_zone: dict[str, list[Queued]] = {}
        for i, item in enumerate(field_list(answer, "states", self.params.max_states)):
            if (
                type(item) is not list
                or len(item) != 2
                or item[0] not in zones
                or type(item[1]) is not bytes
                or len(item[1]) > MAX_AGENT_BYTES
            ):
                raise ServiceError(BAD_REQUEST, "expected [zone, agent bytes]", path=f"states[{i}]")
            by_zone.setdefault(item[0], []).append(_queued(item[0], item[1]))
        accepted = 0
        for zone, items in sorted(by_zone.items()):
            self.counters.states_received += len(items)
            outcomes = await self.node.db(self.node.zones.process, items, current_epoch())
            ok_here = sum(1 for o in outcomes if o.wire is WireVerdict.ACCEPT)
            accepted += ok_here
            log.info(
                "sync admitted states",
                extra={"zone": zone, "received": len(items), "accepted": ok_here},
            )
        self.counters.states_accepted += accepted
        await self.node.run_executions()  # states this node hosts, as after gossip admission
        if accepted:
            self._heads_cache = None
        return accepted

    async def _head_list(self) -> list[list[Any]]:
        """``[[genesis, depth]]`` of every slope we hold, sorted, cached for ``min_gap_s``.

        From the store's lineage index (no agent bytes read), once per round, not per peer.
        """
        now = trio.current_time()
        if self._heads_cache is None or now - self._heads_cache[0] > self.params.min_gap_s:
            rows = await self.node.db(self.node.store.trusted_heads)
            heads = sorted([g, d] for g, _entry, d in rows)[: self.params.max_heads]
            self._heads_cache = (now, heads)
        return self._heads_cache[1]

    # -- serving ---------------------------------------------------------------------------

    def _newer_states(
        self, mine: list[list[Any]], theirs: dict[bytes, int], zones: set[str]
    ) -> list[list[Any]]:
        """``[zone, bytes]`` of our newest states deeper than the requester's and accepted at
        least ``settle_s`` ago (store thread)."""
        out: list[list[Any]] = []
        size = 0
        settled_before = time.time_ns() - int(self.params.settle_s * 1e9)
        for genesis, depth in mine:
            if depth <= theirs.get(genesis, -1):
                continue
            row = self.node.store.latest_state(genesis)
            if row is None or row.zone not in zones:
                continue
            if self.node.store.accepted_at_ns(row.content_id) > settled_before:
                continue  # young: gossip is still carrying it
            full = size + len(row.data) > self.params.max_answer_bytes
            if len(out) >= self.params.max_states or full:
                break
            out.append([row.zone, row.data])
            size += len(row.data)
        return out

    def _bundle(self, zone: str) -> bytes:
        """Everything signed we hold for the zone, as a zone file (store thread)."""
        s = self.node.store
        z = self.node.zones.zone(zone)

        def dec(data: bytes) -> Any:
            return codec.decode(data, max_bytes=MAX_BUNDLE_BYTES)

        tree: dict[str, Any] = {
            "zone": zone,
            "authority": z.view.authority.to_cbor(),
            "contracts": [dec(d) for d in s.contracts(zone)],
            "overrides": [dec(d) for _, _, d in s.overrides(zone)],
            "descriptors": [dec(r.data) for r in s.descriptors(zone)],
            "policy_refs": [dec(d) for d in s.policy_refs(zone)],
            "revocations": [],
            "host_records": [],
        }
        for row in s.host_records(zone):
            (tree["revocations"] if row.revoked else tree["host_records"]).append(dec(row.data))
        return ZoneBundle.from_cbor(tree).encode()

    async def _compare_digests(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer ``digests``: are our heads the requester's, and which of our zone files
        differ from the digests it holds of them."""
        asked = field_list(request, "zones", 64)
        if not any(type(z) is str and z in self.node.zones.zones for z in asked):
            raise ServiceError(NOT_SERVED, "this node has joined none of these zones")
        changed: list[str] = []
        for i, item in enumerate(field_list(request, "files", 64)):
            if (
                type(item) is not list
                or len(item) != 2
                or type(item[0]) is not str
                or type(item[1]) is not bytes
                or len(item[1]) not in (0, 32)
            ):
                raise ServiceError(BAD_REQUEST, "expected [zone, digest]", path=f"files[{i}]")
            if item[0] in self.node.zones.zones:
                _, digest = await self._zone_file(item[0])
                if item[1] != digest:
                    changed.append(item[0])
        heads = field_bytes(request, "heads", 32)
        return ok(same=heads == heads_digest(await self._head_list()), changed=changed)

    async def _zone_file(self, zone: str) -> tuple[bytes, bytes]:
        """Our zone file and its sha256, rebuilt at most once per ``min_gap_s``."""
        now = trio.current_time()
        cached = self._bundle_cache.get(zone)
        if cached is None or now - cached[0] > self.params.min_gap_s:
            bundle = await self.node.db(self._bundle, zone)
            cached = (now, bundle, hashlib.sha256(bundle).digest())
            self._bundle_cache[zone] = cached
        return cached[1], cached[2]

    async def _handle(self, peer: ID, request: dict[str, Any]) -> dict[str, Any]:
        kind = field_text(request, "t", 16)
        if kind == "zone":
            zone = field_text(request, "zone", 64)
            if zone not in self.node.zones.zones:
                raise ServiceError(NOT_SERVED, f"this node has not joined zone {zone!r}")
            bundle, _ = await self._zone_file(zone)
            return ok(bundle=bundle)
        if kind == "digests":
            return await self._compare_digests(request)
        if kind != "heads":
            raise ServiceError(BAD_REQUEST, f"unknown request type {kind!r}", path="t")
        asked = field_list(request, "zones", 64)
        zones = {z for z in asked if type(z) is str and z in self.node.zones.zones}
        if not zones:
            raise ServiceError(NOT_SERVED, "this node has joined none of these zones")
        mine = await self._head_list()
        theirs: dict[bytes, int] = {}
        for i, item in enumerate(field_list(request, "heads", self.params.max_heads)):
            if (
                type(item) is not list
                or len(item) != 2
                or type(item[0]) is not bytes
                or len(item[0]) != 32
                or type(item[1]) is not int
                or item[1] < 0
            ):
                raise ServiceError(BAD_REQUEST, "expected [genesis, depth]", path=f"heads[{i}]")
            theirs[item[0]] = item[1]
        states = await self.node.db(self._newer_states, mine, theirs, zones)
        self.counters.states_sent += len(states)
        return ok(states=states)

    async def _api_status(self, request: Request) -> Response:
        return json_response(
            {
                "counters": dict(vars(self.counters)),
                "served": dict(vars(self.serve_counters)),
                "last_round_s": round(self.last_round_s, 4),
            }
        )
