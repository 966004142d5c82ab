"""``/meshnode/alias/1.1.0``: the slope-band alias index on real hosts (SPEC 2.17, DESIGN 6).

Drives the sans-I/O objects of ``protocols.index`` over libp2p streams:

- **Membership.** A node whose trusted host record grants the ``anchor`` role signs an
  :class:`~protocols.index.anchors.AnchorRecord` with its host key and wraps it in an
  :class:`~protocols.index.wire.Announcement` (host record + signed contact). Announcements
  spread by push-pull exchange with every connected peer (``t: anchors``): on each new
  connection, whenever the view changes, and every ``exchange_interval_s``. Every node
  checks each announcement offline and keeps what it heard in an AnchorDirectory, so nodes
  that heard the same announcements compute the same band groups.
- **Anchors** keep an :class:`AnchorStore`, persisted in ``<data_dir>/alias.sqlite3``
  (a registration is acknowledged only after its row is committed), and answer ``register``
  and ``query`` requests. A requester's zone counts only when the requester proves it with a
  trusted host record bound to its (Noise-authenticated) peer id; otherwise it is anonymous
  and scoped registrations are REFUSED to it.
- **Registrations are bound to their slope** (:mod:`protocols.index.binding`): each carries
  the lineage entries ending at its head and the head signer's signature; an anchor checks
  them against the host records it trusts before anything is written, and answers a refusal
  with ``refused`` and the binding reason (``not-descendant``, ``bad-signature``,
  ``alias-bound``, ...). A node registers only agents whose head it signed itself. The
  protocol id moved from 1.0.0 to 1.1.0 with this incompatible change (see
  :mod:`protocols.index.wire`).
- **Resolution** runs a :class:`Resolver`: queries the band group (fanout first), then the
  rest, then adjacent bands; read-repairs stale anchors in the background.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import nacl.signing
import trio
from libp2p.abc import INetConn, INetwork
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from meshnode.alias_store import AliasStore, AliasStoreError
from meshnode.api import ApiError, Handler, Request, Response, hex32_field, json_body, json_response
from meshnode.notify import ConnectionNotifee
from meshnode.services import HostTrust, current_epoch, load_trust, local_signer
from meshnode.svc_wire import (
    BAD_REQUEST,
    NOT_SERVED,
    REFUSED,
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
from protocols import codec
from protocols.agent import validate_bytes
from protocols.agent.schema import Lineage
from protocols.errors import MeshError
from protocols.identity.host import HostRecord, VerifiedSignatures, record_from_cbor
from protocols.index.anchors import AnchorDirectory, sign_anchor_record
from protocols.index.band import IndexParams
from protocols.index.binding import BindingReason, RegistrationRefused, proof_of, signed
from protocols.index.resolve import (
    AliasPolicy,
    AnchorStore,
    Outcome,
    Query,
    Registration,
    Reply,
    Resolved,
    Resolver,
    SendQuery,
    SendRegister,
    registration_phases,
)
from protocols.index.wire import (
    ANCHOR_ROLE,
    Announcement,
    announcement_from_cbor,
    make_announcement,
    query_from_cbor,
    query_to_cbor,
    registration_from_cbor,
    registration_to_cbor,
    reply_from_cbor,
    reply_to_cbor,
    verify_announcement,
)

if TYPE_CHECKING:
    from meshnode.node import MeshNode

log = logging.getLogger(__name__)

PROTOCOL: Final = "/meshnode/alias/1.1.0"
MAX_ROUNDS: Final = 32


@dataclass(frozen=True)
class AliasParams:
    """Bounds and timings of the alias service."""

    index: IndexParams = field(default_factory=IndexParams)
    wire: WireParams = field(default_factory=lambda: WireParams(max_bytes=1 << 20, timeout_s=3.0))
    exchange_interval_s: float = 5.0
    min_round_gap_s: float = 0.2
    reload_interval_s: float = 5.0
    fanout: int = 2
    round_timeout_s: float = 2.0
    max_announcements: int = 256
    exchange_parallel: int = 8


@dataclass
class AliasCounters:
    exchanges: int = 0
    exchanges_same: int = 0
    exchange_failures: int = 0
    announcements_heard: int = 0
    announcements_refused: int = 0
    registrations_stored: int = 0
    registrations_refused: int = 0
    queries_answered: int = 0
    lookups: int = 0
    repairs_sent: int = 0


@dataclass(frozen=True)
class Contact:
    peer: ID
    addrs: tuple[str, ...]


class TrustedHosts:
    """The node's trusted host records as a :class:`~protocols.identity.host.HostDirectory`
    (what the binding checks of a registration's proof look hosts up in)."""

    def __init__(self, trust: HostTrust) -> None:
        self.trust = trust

    def by_key(self, key: bytes) -> HostRecord | None:
        records = self.trust.by_key(key)
        return records[0] if records else None

    def by_name(self, name: bytes) -> HostRecord | None:
        return next((r for r in self.trust.records if r.name == name), None)

    def is_revoked(self, key: bytes) -> bool:
        return key in self.trust.revoked


class _Wake(ConnectionNotifee):
    """Wakes the exchange loop on every new connection (never blocks the swarm)."""

    def __init__(self, service: AliasService) -> None:
        self.service = service

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self.service.wake()


class AliasService:
    """One node's part in the alias index: announcer, anchor (if granted) and resolver."""

    name = "alias"

    def __init__(self, node: MeshNode, params: AliasParams | None = None) -> None:
        self.node = node
        self.params = params or AliasParams()
        self.directory = AnchorDirectory(self.params.index, may_anchor=lambda _key: True)
        self.trust = HostTrust.from_config(node.config)
        self.announcements: dict[bytes, Announcement] = {}
        self.counters = AliasCounters()
        self.serve_counters = ServeCounters()
        self.signer: nacl.signing.SigningKey | None = None
        self.own_records: tuple[HostRecord, ...] = ()
        self.anchor: AnchorStore | None = None
        self._persist: AliasStore | None = None
        self._wake = trio.Event()
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._last_reload = -math.inf
        self._peers = PeerFilter(PROTOCOL)
        self._file_limiter = trio.CapacityLimiter(1)  # one thread at a time on alias.sqlite3
        self._register_lock = trio.Lock()  # check, commit and apply one registration at a time
        self._verified = VerifiedSignatures(4096)

    # -- NodeService -----------------------------------------------------------------------

    def install(self) -> None:
        host = self.node.mesh.host
        handler = stream_handler(self.name, self._handle, self.params.wire, self.serve_counters)
        host.set_stream_handler(TProtocol(PROTOCOL), handler)
        host.get_network().register_notifee(_Wake(self))

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("POST", "/alias/register"): self._api_register,
            ("GET", "/alias/resolve"): self._api_resolve,
            ("GET", "/alias/anchors"): self._api_anchors,
        }

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._reload()
                task_status.started()
                await self._exchange_loop()
        finally:
            if self._persist is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._persist.close, limiter=self._file_limiter)

    def wake(self) -> None:
        self._wake.set()

    @property
    def my_key(self) -> bytes | None:
        return None if self.signer is None else bytes(self.signer.verify_key)

    # -- identity, role and own announcement ------------------------------------------------

    async def _reload(self) -> None:
        """Re-read trusted host records and the host key from the store; take up the role."""
        self._last_reload = trio.current_time()
        node = self.node
        self.trust = await node.db(load_trust, node.store, node.config)
        self.signer = await node.db(local_signer, node, node.store)
        key = self.my_key
        self.own_records = self.trust.by_key(key) if key is not None else ()
        is_anchor = any(ANCHOR_ROLE in r.roles for r in self.own_records)
        if is_anchor and self.anchor is None and key is not None:
            await self._become_anchor(key)
        if self.anchor is not None:
            self._announce_self()

    async def _become_anchor(self, key: bytes) -> None:
        path = self.node.config.node.data_dir / "alias.sqlite3"
        persist = await trio.to_thread.run_sync(AliasStore.open, path, limiter=self._file_limiter)
        regs = await trio.to_thread.run_sync(persist.all, limiter=self._file_limiter)
        store = AnchorStore(key)
        for reg in regs:
            store.restore(reg)  # checked before it was committed
        self._persist, self.anchor = persist, store
        log.info("alias anchor role taken", extra={"registrations": len(regs)})

    def _announce_self(self) -> None:
        """Sign (or renew at half-life) our own announcement and hear it."""
        key = self.my_key
        assert self.signer is not None
        assert key is not None
        epoch = current_epoch()
        ttl = self.params.index.record_ttl_epochs
        mine = self.announcements.get(key)
        addrs = tuple(a.split("/p2p/")[0] for a in self.node.mesh.listen_addrs())
        if mine is not None and epoch < mine.record.issued_epoch + ttl // 2 and mine.addrs == addrs:
            return
        record = sign_anchor_record(self.signer, epoch, ttl)
        granting = next(r for r in self.own_records if ANCHOR_ROLE in r.roles)
        signer = self.signer
        ann = make_announcement(
            record,
            granting,
            self.node.mesh.peer_id.to_bytes(),
            addrs,
            lambda msg: signer.sign(msg).signature,
        )
        self.hear(ann)

    def hear(self, ann: Announcement) -> bool:
        """Take in an announcement; True when the view changed. Bad ones raise MeshError."""
        verify_announcement(ann, self.trust.trusts)
        epoch = current_epoch()
        old = self.announcements.get(ann.anchor_key)
        if old is not None and old.record.expires_epoch >= ann.record.expires_epoch:
            return False
        if len(self.announcements) >= self.params.max_announcements and old is None:
            return False
        self.directory.hear(ann.record, epoch)
        if ann.anchor_key not in self.directory.live(epoch):
            return False
        self.announcements[ann.anchor_key] = ann
        self.counters.announcements_heard += 1
        self.wake()
        return True

    def _live_announcements(self) -> list[Announcement]:
        live = set(self.directory.live(current_epoch()))
        return [self.announcements[k] for k in sorted(self.announcements) if k in live]

    def contact(self, anchor: bytes) -> Contact | None:
        ann = self.announcements.get(anchor)
        if ann is None:
            return None
        return Contact(ID(ann.peer_id), ann.addrs)

    # -- announcement exchange -------------------------------------------------------------

    async def _exchange_loop(self) -> None:
        while True:
            with trio.move_on_after(self.params.exchange_interval_s):
                await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep(self.params.min_round_gap_s)
            if trio.current_time() - self._last_reload >= self.params.reload_interval_s:
                await self._reload()
            await self._exchange_round()

    async def _exchange_round(self) -> None:
        host, now = self.node.mesh.host, trio.current_time()
        peers = [
            p
            for p in self.node.mesh.connected_peers()
            if p != self.node.mesh.peer_id and self._peers.wanted(host, p, now)
        ]
        limiter = trio.CapacityLimiter(self.params.exchange_parallel)
        async with trio.open_nursery() as nursery:
            for peer in sorted(peers, key=lambda p: p.to_bytes()):
                nursery.start_soon(self._exchange_with, peer, limiter)

    def view_digest(self) -> bytes:
        """sha256 of (key, expiry) of every live announcement: equal views, equal digests."""
        items = [[a.anchor_key, a.record.expires_epoch] for a in self._live_announcements()]
        return hashlib.sha256(codec.encode(items)).digest()

    async def _exchange_with(self, peer: ID, limiter: trio.CapacityLimiter) -> None:
        """Digest first; the full push-pull only when the views differ."""
        async with limiter:
            host, wire = self.node.mesh.host, self.params.wire
            try:
                probe = {"t": "anchors", "digest": self.view_digest()}
                answer = await call(host, peer, (), PROTOCOL, probe, wire)
                if answer.get("same") is True:
                    self.counters.exchanges_same += 1
                    return
                have = [a.to_cbor() for a in self._live_announcements()]
                answer = await call(host, peer, (), PROTOCOL, {"t": "anchors", "have": have}, wire)
            except MeshError as exc:
                self.counters.exchange_failures += 1
                if isinstance(exc, ServiceError):
                    self._peers.failed(peer, exc, trio.current_time())
                log.debug("anchor exchange failed", extra={"peer": peer.to_base58(), "e": str(exc)})
                return
            self.counters.exchanges += 1
            try:
                self._hear_all(field_list(answer, "anchors", self.params.max_announcements))
            except ServiceError as exc:
                self.counters.exchange_failures += 1
                log.info("bad anchor list", extra={"peer": peer.to_base58(), "e": str(exc)})

    def _hear_all(self, items: Sequence[Any]) -> int:
        changed = 0
        for i, item in enumerate(items):
            try:
                changed += self.hear(announcement_from_cbor(item, f"anchors[{i}]"))
            except MeshError as exc:
                self.counters.announcements_refused += 1
                log.info("announcement refused", extra={"error": exc.describe()})
        return changed

    # -- serving ---------------------------------------------------------------------------

    async def _handle(self, peer: ID, request: dict[str, Any]) -> dict[str, Any]:
        kind = field_text(request, "t", 16)
        if kind == "anchors":
            if "digest" in request:
                digest = field_bytes(request, "digest", 32)
                return ok(same=digest == self.view_digest(), anchors=[])
            self._hear_all(field_list(request, "have", self.params.max_announcements))
            return ok(anchors=[a.to_cbor() for a in self._live_announcements()])
        if kind == "register":
            reg = registration_from_cbor(request.get("reg"))
            zones = self._requester_zones(peer, request.get("host_record"))
            if not zones:
                raise ServiceError(REFUSED, "only admitted hosts register aliases")
            return ok(changed=await self._store(reg))
        if kind == "query":
            query = query_from_cbor(request.get("q"))
            zones = self._requester_zones(peer, request.get("host_record"))
            return ok(reply=reply_to_cbor(self._lookup(query, zones)))
        raise ServiceError(BAD_REQUEST, f"unknown request type {kind!r}", path="t")

    def _requester_zones(self, peer: ID, presented: Any) -> tuple[str, ...]:
        """Zones the requester proves with a trusted host record bound to its peer id."""
        records = list(self.trust.by_peer(peer.to_bytes()))
        if presented is not None:
            try:
                records.append(record_from_cbor(presented, "host_record"))
            except MeshError as exc:
                raise ServiceError(BAD_REQUEST, exc.message, path=exc.where) from exc
        zones: set[str] = set()
        for record in records:
            if record.peer_id == peer.to_bytes():
                zones.update(self.trust.trusted_zones(record))
        return tuple(sorted(zones))

    async def _store(self, reg: Registration) -> bool:
        """Check the registration's binding, commit it, then hold it; refusals store nothing."""
        if self.anchor is None or self._persist is None:
            raise ServiceError(NOT_SERVED, "this node is not an anchor")
        anchor, persist = self.anchor, self._persist
        async with self._register_lock:
            try:
                anchor.check(reg, TrustedHosts(self.trust), current_epoch(), self._verified)
            except RegistrationRefused as exc:
                self.counters.registrations_refused += 1
                log.info("registration refused", extra={"error": exc.describe()})
                raise ServiceError(REFUSED, exc.message, path=exc.where) from exc
            try:
                # durable before acknowledged
                await trio.to_thread.run_sync(persist.put, reg, limiter=self._file_limiter)
            except AliasStoreError as exc:
                raise ServiceError(REFUSED, exc.message) from exc
            changed = anchor.restore(reg)
        self.counters.registrations_stored += int(changed)
        return changed

    def _lookup(self, query: Query, zones: tuple[str, ...]) -> Reply:
        if self.anchor is None:
            raise ServiceError(NOT_SERVED, "this node is not an anchor")
        if query.requester_zone and query.requester_zone not in zones:
            query = Query(query.query_id, query.alias, query.uid, "")  # unproven: anonymous
        self.counters.queries_answered += 1
        return self.anchor.lookup(query)

    def _own_zones(self) -> tuple[str, ...]:
        zones: set[str] = set()
        for record in self.own_records:
            zones.update(self.trust.trusted_zones(record))
        return tuple(sorted(zones))

    # -- client side -----------------------------------------------------------------------

    def _host_record_field(self) -> Any:
        peer = self.node.mesh.peer_id.to_bytes()
        for record in self.own_records:
            if record.peer_id == peer:
                return record.to_cbor()
        return None

    async def register(self, reg: Registration) -> list[tuple[bytes, str]]:
        """Store ``reg`` at its anchors; (anchor, "" or the error) for each."""
        table = self.directory.table(current_epoch())
        first, then = registration_phases(reg, table)
        results: list[tuple[bytes, str]] = []

        async def one(anchor: bytes) -> None:
            try:
                await self._send_register(anchor, reg)
                results.append((anchor, ""))
            except MeshError as exc:
                results.append((anchor, exc.describe()))

        async with trio.open_nursery() as nursery:
            for send in first:
                nursery.start_soon(one, send.anchor)
        # the alias band decides the binding: a refusal there (alias-bound) or no copy
        # stored stops the registration before the UID band's anchors see it
        refused = any(BindingReason.ALIAS_BOUND.value in err for _, err in results)
        if refused or not any(not err for _, err in results):
            return sorted(results)
        async with trio.open_nursery() as nursery:
            for send in then:
                nursery.start_soon(one, send.anchor)
        return sorted(results)

    async def _send_register(self, anchor: bytes, reg: Registration) -> None:
        if anchor == self.my_key:
            if not self._own_zones():
                raise ServiceError(REFUSED, "only admitted hosts register aliases")
            await self._store(reg)
            return
        contact = self.contact(anchor)
        if contact is None:
            raise ServiceError(NOT_SERVED, "no contact for this anchor")
        request = {
            "t": "register",
            "reg": registration_to_cbor(reg),
            "host_record": self._host_record_field(),
        }
        await call(
            self.node.mesh.host, contact.peer, contact.addrs, PROTOCOL, request, self.params.wire
        )

    async def _ask(self, anchor: bytes, query: Query) -> Reply:
        if anchor == self.my_key:
            return self._lookup(query, self._own_zones())
        contact = self.contact(anchor)
        if contact is None:
            raise ServiceError(NOT_SERVED, "no contact for this anchor")
        request = {
            "t": "query",
            "q": query_to_cbor(query),
            "host_record": self._host_record_field(),
        }
        answer = await call(
            self.node.mesh.host, contact.peer, contact.addrs, PROTOCOL, request, self.params.wire
        )
        return reply_from_cbor(answer.get("reply"), query.query_id, anchor)

    async def resolve(
        self, *, alias: str | None = None, uid: bytes | None = None, zone: str = ""
    ) -> tuple[Resolved, tuple[bytes, ...]]:
        """Run one lookup to its end; returns the result and the anchors asked."""
        self.counters.lookups += 1
        resolver = Resolver(
            self.directory.table(current_epoch()),
            fanout=self.params.fanout,
            round_timeout_s=self.params.round_timeout_s,
            policy=AliasPolicy(),
            requester_zone=zone,
        )
        qid = next(self._ids)
        now = trio.current_time()
        if alias is not None:
            outputs = resolver.resolve_alias(qid, alias, now)
        else:
            assert uid is not None
            outputs = resolver.resolve_uid(qid, uid, now)
        send, recv = trio.open_memory_channel[Reply](256)
        asked: list[bytes] = []
        async with trio.open_nursery() as nursery:
            for _round in range(MAX_ROUNDS * 8):
                for out in outputs:
                    if isinstance(out, Resolved):
                        nursery.cancel_scope.cancel()
                        return out, tuple(asked)
                    if isinstance(out, SendQuery):
                        asked.append(out.anchor)
                        nursery.start_soon(self._ask_into, out, send)
                    elif isinstance(out, SendRegister):
                        self._repair(out)
                deadline = resolver.next_deadline()
                reply: Reply | None = None
                with trio.move_on_at(deadline if deadline is not None else trio.current_time()):
                    reply = await recv.receive()
                now = trio.current_time()
                outputs = resolver.on_reply(reply, now) if reply else resolver.on_timeout(now)
            nursery.cancel_scope.cancel()
        raise ServiceError("internal", "lookup did not finish within its round bound")

    async def _ask_into(self, out: SendQuery, send: trio.MemorySendChannel[Reply]) -> None:
        try:
            reply = await self._ask(out.anchor, out.query)
        except MeshError as exc:
            # An unreachable or refusing anchor counts as not found (the round goes on).
            reply = Reply(out.query.query_id, out.anchor, Outcome.NOT_FOUND, reason=str(exc))
        send.send_nowait(reply)

    def _repair(self, out: SendRegister) -> None:
        """Read repair in the background: a stale anchor gets the freshest registration."""
        self.counters.repairs_sent += 1
        if self._nursery is None:
            return

        async def repair() -> None:
            try:
                await self._send_register(out.anchor, out.registration)
            except MeshError as exc:
                log.info("read repair failed", extra={"error": exc.describe()})

        self._nursery.start_soon(repair)

    # -- control API -----------------------------------------------------------------------

    def _default_zone(self) -> str:
        zones = self._own_zones()
        if zones:
            return zones[0]
        return self.node.config.zones[0].id if self.node.config.zones else ""

    async def _api_register(self, request: Request) -> Response:
        try:
            body = json_body(request)
            uid = hex32_field(body.get("uid"), "uid")
            alias = body.get("alias")
            if not isinstance(alias, str) or not 0 < len(alias) <= 256:
                raise ApiError(400, "'alias' must be text of 1..256 characters")
            scope = body.get("scope", [])
            if not isinstance(scope, list) or not all(isinstance(z, str) and z for z in scope):
                raise ApiError(400, "'scope' must be a list of zone ids")
            line = await self._local_lineage(uid)
            head_entry = line.entries[-1]
            head, depth = head_entry.dah, head_entry.totals.depth
            if body.get("head") is not None and hex32_field(body.get("head"), "head") != head:
                raise ApiError(409, "'head' is not the head of the agent in this node's store")
            if body.get("depth") is not None and body.get("depth") != depth:
                raise ApiError(409, "'depth' is not the depth of the agent's head")
            signer = self.signer
            if signer is None or bytes(signer.verify_key) != head_entry.host:
                raise ApiError(
                    409, "this node did not sign the agent's head: its current host registers it"
                )
            unsigned = Registration(uid, alias, head, depth, tuple(sorted(set(scope))))
            proof = proof_of(line.entries, line.pruned)
            reg = signed(unsigned, proof, lambda msg: signer.sign(msg).signature)
        except MeshError as exc:
            raise ApiError(400, exc.describe()) from exc
        if not self.directory.live(current_epoch()):
            raise ApiError(503, "no anchors known yet")
        results = await self.register(reg)
        stored = sum(1 for _, err in results if not err)
        if stored == 0:
            raise ApiError(503, "no anchor stored the registration: " + results[0][1])
        return json_response(
            {
                "uid": uid.hex(),
                "alias": alias,
                "head": head.hex(),
                "depth": depth,
                "scope": list(reg.scope),
                "stored": stored,
                "anchors": [{"anchor": a.hex(), "error": e} for a, e in results],
            }
        )

    async def _local_lineage(self, uid: bytes) -> Lineage:
        """Lineage of the newest state of agent ``uid`` in our store (head last)."""
        rows = await self.node.db(self.node.store.agents_by_genesis, uid)
        if not rows:
            raise ApiError(404, f"no agent with genesis {uid.hex()} in this node's store")
        row = max(rows, key=lambda r: (r.epoch, r.head))
        check = validate_bytes(row.data)
        if check.agent is None or check.agent.lineage is None:
            raise ApiError(409, "the stored agent has no readable lineage")
        return check.agent.lineage

    async def _api_resolve(self, request: Request) -> Response:
        alias = request.param("alias")
        uid_text = request.param("uid")
        zone = request.param("zone") or self._default_zone()
        if (alias is None) == (uid_text is None):
            raise ApiError(400, "give exactly one of 'alias' and 'uid'")
        uid = hex32_field(uid_text, "uid") if uid_text is not None else None
        if alias is not None and not 0 < len(alias) <= 256:
            raise ApiError(400, "'alias' must be text of 1..256 characters")
        result, asked = await self.resolve(alias=alias, uid=uid, zone=zone)
        reg = result.registration
        return json_response(
            {
                "query": alias if alias is not None else uid_text,
                "zone": zone,
                "outcome": result.outcome.value,
                "reason": result.reason,
                "hops": result.hops,
                "messages": result.messages,
                "asked": [a.hex() for a in asked],
                "registration": None
                if reg is None
                else {
                    "uid": reg.uid.hex(),
                    "alias": reg.alias,
                    "head": reg.head.hex(),
                    "depth": reg.depth,
                    "scope": list(reg.scope),
                },
            }
        )

    async def _api_anchors(self, request: Request) -> Response:
        epoch = current_epoch()
        live = set(self.directory.live(epoch))
        key = self.my_key
        return json_response(
            {
                "epoch": epoch,
                "me": None if key is None else key.hex(),
                "anchor": self.anchor is not None,
                "registrations": 0 if self.anchor is None else len(self.anchor.by_alias),
                "counters": dict(vars(self.counters)),
                "anchors": [
                    {
                        "key": k.hex(),
                        "peer_id": ID(a.peer_id).to_base58(),
                        "addrs": list(a.addrs),
                        "expires_epoch": a.record.expires_epoch,
                        "live": k in live,
                    }
                    for k, a in sorted(self.announcements.items())
                ],
            }
        )


__all__ = ["PROTOCOL", "AliasParams", "AliasService"]
