"""MeshNode: one trio nursery owning host, bridge, router slot, store and control API.

Why one nursery: every task the node starts is owned by it, so a crash in any part stops the
whole node loudly, and cancelling it (SIGINT/SIGTERM) stops everything in order. Services
start with ``nursery.start`` so "started" means "ready" (listening, bound).

The router slot holds :class:`~meshnode.gossip_slot.GossipSlot` (the sans-I/O GossipSub
router driven by trio); zone topics validate through :class:`~meshnode.zones.Zones` (admission,
durable commit, execution) before the router accepts and forwards a message.

Store calls run in one worker thread (``trio.to_thread.run_sync`` with a
``CapacityLimiter(1)``): measured ~0.25-0.35 ms per committed write with
``synchronous=FULL`` on the dev disk, +0.25 ms thread hop; the hop keeps an fsync stall on a
slow disk from freezing the event loop (and with it every peer's streams).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol, TypeVar

import trio
from libp2p.crypto.keys import KeyPair

from meshnode.api import (
    ApiError,
    ApiParams,
    ControlApi,
    Handler,
    Metric,
    Request,
    Response,
    hex32_field,
    json_body,
    json_response,
    metrics_response,
)
from meshnode.bridge import Bridge, BridgeParams, RpcSink
from meshnode.config import NodeConfig, load_config
from meshnode.gossip_slot import Delivery, GossipSlot, PublishError
from meshnode.host import MeshHost
from meshnode.keys import load_or_create_key
from meshnode.services import NodeService, build_services, record_peer_id
from meshnode.store import Store
from meshnode.zones import (
    MutationRefused,
    MutationSpec,
    Outcome,
    Queued,
    Zones,
    ZoneUnknown,
    agents_topic,
    control_topic,
)
from protocols import codec
from protocols.errors import MeshError
from protocols.gossip.rpc import Message
from protocols.gossip.validate import PENDING, Pending, TopicConfig, zone_topic_config
from protocols.governance.pipeline import encode_envelope
from protocols.governance.signing import Signed
from protocols.types import MsgId, PeerId, WireVerdict

__all__ = ["Delivery", "MeshNode", "RouterSlot", "main", "run", "serve"]

log = logging.getLogger("meshnode.node")  # stable name also when run as __main__

EPOCH_S = 10  # DESIGN §5: protocol constant
ADMIT_QUEUE = 4096  # zone messages awaiting admission; beyond it they are IGNOREd
ADMIT_BATCH = 64  # admissions per worker-thread hop and SQLite transaction
DELIVERY_BATCH = 256  # plain-topic messages per ring transaction
DELIVERY_LINGER_S = 0.05  # after a delivery, wait this long for more before writing the ring
T = TypeVar("T")


def wall_epoch(now_unix: float) -> int:
    """DESIGN §5: epoch = floor(unix_time / EPOCH_S), from the wall clock on real nodes."""
    return int(now_unix // EPOCH_S)


# -- the router slot ---------------------------------------------------------------------


class RouterSlot(RpcSink, Protocol):
    """What MeshNode needs of its router: the bridge's RpcSink plus a few node-facing calls.

    :class:`meshnode.gossip_slot.GossipSlot` (the default) implements this around the
    sans-I/O GossipSub router: ``attach`` gives it the bridge to send with; ``run`` owns its
    heartbeat and calls ``task_status.started()`` once ready; ``publish`` routes our own
    message; ``complete`` answers a PENDING validation; accepted plain-topic messages go to
    the node's Delivery channel.
    """

    def attach(self, bridge: Bridge) -> None: ...

    def attach_host(self, mesh: MeshHost) -> None: ...

    def set_topic_config(self, topic: str, config: TopicConfig, *, join: bool = True) -> None: ...

    async def run(self, *, task_status: Any = ...) -> None: ...

    def publish(self, topic: str, data: bytes) -> tuple[bytes, int]: ...

    def complete(self, msg_id: bytes, verdict: WireVerdict) -> None: ...

    def topics_of(self, peer: PeerId) -> set[str]: ...

    def score_of(self, peer: PeerId) -> float: ...

    def mesh_size(self, topic: str) -> int: ...

    def counters_snapshot(self) -> dict[str, int]: ...


RouterFactory = Callable[[KeyPair, NodeConfig, "trio.MemorySendChannel[Delivery]"], RouterSlot]


# -- the node ----------------------------------------------------------------------------


class MeshNode:
    """All parts of one running node. ``await nursery.start(node.run)`` -> ready."""

    def __init__(self, config: NodeConfig, router_factory: RouterFactory | None = None) -> None:
        self.config = config
        key_pair = load_or_create_key(config.node.key_file)
        self.mesh = MeshHost(key_pair, config.network)
        self.store = Store.open(config.store_path)
        self._db_limiter = trio.CapacityLimiter(1)
        self._deliver_send, self._deliver_recv = trio.open_memory_channel[Delivery](1024)
        self._admit_send, self._admit_recv = trio.open_memory_channel[Queued](ADMIT_QUEUE)
        self._admitting = 0  # size of the batch being admitted now
        factory: RouterFactory = router_factory or GossipSlot
        self.router: RouterSlot = factory(key_pair, config, self._deliver_send)
        self.bridge = Bridge(
            self.mesh.host,
            self.router,
            BridgeParams(
                max_frame_bytes=config.network.max_frame_bytes,
                send_queue_frames=config.network.send_queue_frames,
            ),
        )
        self.router.attach(self.bridge)
        self.router.attach_host(self.mesh)
        self.zones = Zones(config, self.store)
        for zone in config.zones:
            for kind, topic in (
                ("agents", agents_topic(zone.id)),
                ("control", control_topic(zone.id)),
            ):
                validator = self._zone_validator(kind, zone.id)
                self.router.set_topic_config(topic, zone_topic_config(validator))
        self.admission_overflow = 0
        self._nursery: trio.Nursery | None = None
        self.services: list[NodeService] = build_services(self)
        self.api = ControlApi(
            ApiParams(
                host=config.api.host,
                port=config.api.port,
                max_request_bytes=config.api.max_request_bytes,
                request_timeout_s=config.api.request_timeout_s,
            ),
            self.routes(),
        )
        self.api_port: int | None = None
        self.started_at = time.time()
        self.store_writes = 0

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one store call in the store's worker thread (serialised)."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self._db_limiter)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self.db(self.zones.load, wall_epoch(time.time()))
        self.bridge.install()  # before host.run, so identify advertises meshsub
        for service in self.services:
            service.install()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.bridge.run)
                await nursery.start(self.router.run)
                await nursery.start(self.mesh.run)
                nursery.start_soon(self._store_deliveries)
                nursery.start_soon(self._admission_loop)
                nursery.start_soon(self._epoch_loop)
                for service in self.services:
                    await nursery.start(service.run)
                self.api_port = await nursery.start(self.api.run)
                self._write_info()
                log.info(
                    "node ready",
                    extra={
                        "peer": self.mesh.peer_id.to_base58(),
                        "api_port": self.api_port,
                        "addrs": self.mesh.listen_addrs(),
                    },
                )
                task_status.started(self)
                resumed = await self.db(self.zones.resume_executions, wall_epoch(time.time()))
                self._publish_follow_ups(tuple(resumed))
        finally:
            with trio.CancelScope(shield=True):
                self._remove_info()
                await self.db(self.store.close)

    # -- zone admission ----------------------------------------------------------------------

    def _zone_validator(self, kind: str, zone: str) -> Callable[..., WireVerdict | Pending]:
        """The router's validator for a zone topic: queue for admission, answer PENDING."""

        def validate(peer: PeerId, msg_id: MsgId, msg: Message) -> WireVerdict | Pending:
            try:
                self._admit_send.send_nowait(Queued(kind, zone, bytes(msg_id), msg.data))
            except trio.WouldBlock:
                self.admission_overflow += 1
                return WireVerdict.IGNORE  # overloaded: no penalty for the sender
            return PENDING

        return validate

    def admission_backlog(self) -> int:
        """Zone messages received and not yet admitted: queued or in the batch being admitted
        (sync defers to gossip while there are any)."""
        return self._admit_send.statistics().current_buffer_used + self._admitting

    async def _admission_loop(self) -> None:
        """Admit queued zone messages in batches; verdicts go to the router after commit."""
        async for first in self._admit_recv:
            batch = [first]
            while len(batch) < ADMIT_BATCH:
                try:
                    batch.append(self._admit_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            self._admitting = len(batch)
            try:
                outcomes = await self.db(self.zones.process, batch, wall_epoch(time.time()))
            finally:
                self._admitting = 0
            for item, outcome in zip(batch, outcomes, strict=True):
                if not item.local:
                    self.router.complete(outcome.msg_id, outcome.wire)
            await self.run_executions()

    async def run_executions(self) -> None:
        """Executions admitted so far, after their verdicts went out; publish the results."""
        if self.zones.pending_executions:
            follow_ups = await self.db(self.zones.run_executions, wall_epoch(time.time()))
            self._publish_follow_ups(follow_ups)

    def _publish_follow_ups(self, follow_ups: tuple[tuple[str, bytes], ...]) -> None:
        for topic, data in follow_ups:
            try:
                self.router.publish(topic, data)
            except PublishError as exc:
                log.warning("cannot publish a follow-up", extra={"error": exc.describe()})

    async def _epoch_loop(self) -> None:
        """Advance the DDH once per epoch (persisted before it is used)."""
        while True:
            now = time.time()
            await trio.sleep((wall_epoch(now) + 1) * EPOCH_S - now + 0.01)
            await self.db(self.zones.advance_ddh, wall_epoch(time.time()))

    async def publish_agent(self, zone: str, agent_bytes: bytes) -> tuple[Outcome, bytes, int]:
        """Admit our own agent here (committed), then publish it: (outcome, msg id, peers)."""
        if zone not in self.zones.zones:
            raise ApiError(404, f"this node has not joined zone {zone!r}")
        envelope = encode_envelope(zone, agent_bytes)
        mid = hashlib.sha256(envelope).digest()
        (outcome,) = await self.db(
            self.zones.process,
            [Queued("agents", zone, mid, envelope, local=True)],
            wall_epoch(time.time()),
        )
        if outcome.wire is not WireVerdict.ACCEPT:
            return outcome, mid, 0
        try:
            msg_id, peers = self.router.publish(agents_topic(zone), envelope)
        except PublishError as exc:
            raise ApiError(409, exc.describe()) from None
        self._nursery_soon(self.run_executions)
        return outcome, msg_id, peers

    def _nursery_soon(self, fn: Callable[[], Any]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn)

    def info(self) -> dict[str, Any]:
        return {
            "peer_id": self.mesh.peer_id.to_base58(),
            "addrs": self.mesh.listen_addrs(),
            "api": f"{self.config.api.host}:{self.api_port}",
            "pid": os.getpid(),
        }

    def _write_info(self) -> None:
        path = self.config.info_path
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.info(), indent=2) + "\n")
        os.replace(tmp, path)

    def _remove_info(self) -> None:
        self.config.info_path.unlink(missing_ok=True)

    async def _store_deliveries(self) -> None:
        """Write plain-topic deliveries to the ring, a batch per ``DELIVERY_LINGER_S``.

        Why linger: every write is a hand-off to the store thread, and one per message was
        about a third of a node's event-loop samples at tens of messages per second (py-spy).
        The receive time is stamped when the router delivers, so it does not include the wait;
        plain messages are relayed before they are stored (only zone admissions are durable
        before they are forwarded), so the ring never promised more.
        """
        ring = self.config.pubsub.ring_size
        async for d in self._deliver_recv:
            batch = [d]
            closed = False
            try:
                with trio.move_on_after(DELIVERY_LINGER_S):
                    while len(batch) < DELIVERY_BATCH:
                        try:
                            batch.append(await self._deliver_recv.receive())
                        except trio.EndOfChannel:
                            closed = True
                            break
            finally:
                items = [(x.topic, x.msg_id, x.data, x.received_ns) for x in batch]
                with trio.CancelScope(shield=True):  # a stopping node still writes its batch
                    await self.db(self.store.append_messages, items, ring)
                self.store_writes += len(batch)
            if closed:
                return

    # -- API handlers ----------------------------------------------------------------------

    def routes(self) -> dict[tuple[str, str], Handler]:
        routes = self._own_routes()
        for service in self.services:
            routes.update(service.routes())
        return routes

    def _own_routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("GET", "/status"): self._status,
            ("GET", "/peers"): self._peers,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/messages"): self._messages,
            ("POST", "/publish"): self._publish,
            ("GET", "/zones"): self._zones,
            ("POST", "/zone/publish"): self._zone_publish,
            ("GET", "/agents"): self._agents,
            ("POST", "/agents/new"): self._agents_new,
            ("GET", "/quarantine"): self._quarantine,
            ("GET", "/executions"): self._executions,
            ("GET", "/decisions"): self._decisions,
            ("POST", "/mutate"): self._mutate,
            ("GET", "/zone/hosts"): self._zone_hosts,
            ("POST", "/override"): self._override,
            ("GET", "/overrides"): self._overrides,
        }

    async def _status(self, request: Request) -> Response:
        counts = await self.db(self.store.table_counts)
        schema = await self.db(lambda: self.store.schema_version)
        try:
            ver = version("meshnode")
        except PackageNotFoundError:
            ver = "unknown"
        now = time.time()
        return json_response(
            {
                **self.info(),
                "version": ver,
                "epoch": wall_epoch(now),
                "uptime_s": round(now - self.started_at, 3),
                "connected_peers": len(self.mesh.connected_peers()),
                "pubsub_peers": len(self.bridge.peers()),
                "topics": list(self.config.pubsub.topics),
                "mesh": {t: self.router.mesh_size(t) for t in self._joined_topics()},
                "zones": [z.id for z in self.config.zones],
                "store": {"schema_version": schema, **counts},
                "router": type(self.router).__name__,
                **(await self.db(self.zones.identity)),
            }
        )

    def _joined_topics(self) -> list[str]:
        topics = list(self.config.pubsub.topics)
        for z in self.config.zones:
            topics += [agents_topic(z.id), control_topic(z.id)]
        return topics

    async def _peers(self, request: Request) -> Response:
        links = {p["peer_id"]: p for p in self.bridge.peer_info()}
        out = []
        store = self.mesh.host.get_peerstore()
        for peer_id in sorted(self.mesh.connected_peers(), key=lambda p: p.to_base58()):
            b58 = peer_id.to_base58()
            entry = links.get(b58, {"peer_id": b58, "pubsub": False})
            entry["addrs"] = [str(a) for a in store.addrs(peer_id)]
            entry["topics"] = sorted(self.router.topics_of(PeerId(peer_id.to_bytes())))
            entry["score"] = round(self.router.score_of(PeerId(peer_id.to_bytes())), 3)
            out.append(entry)
        return json_response({"peers": out})

    async def _metrics(self, request: Request) -> Response:
        counts = await self.db(self.store.table_counts)
        metrics = [
            Metric(
                "meshnode_bridge_events_total",
                "counter",
                "Bridge frame and stream events by kind.",
                {(("kind", k),): float(v) for k, v in self.bridge.counters.snapshot().items()},
            ),
            Metric(
                "meshnode_router_events_total",
                "counter",
                "Router events by kind.",
                {(("kind", k),): float(v) for k, v in self.router.counters_snapshot().items()},
            ),
            Metric(
                "meshnode_admissions_total",
                "counter",
                "Zone admission decisions by outcome code.",
                {(("code", k),): float(v) for k, v in self.zones.decision_counts().items()},
            ),
            Metric(
                "meshnode_admission_overflow_total",
                "counter",
                "Zone messages IGNOREd because the admission queue was full.",
                {(): float(self.admission_overflow)},
            ),
            Metric(
                "meshnode_executions_total",
                "counter",
                "Intent handlers run by this node as the agent's host.",
                {(): float(self.zones.executor.executed)},
            ),
            Metric(
                "meshnode_mesh_peers",
                "gauge",
                "Mesh peers per joined zone topic.",
                {
                    (("topic", agents_topic(z.id)),): float(
                        self.router.mesh_size(agents_topic(z.id))
                    )
                    for z in self.config.zones
                },
            ),
            Metric(
                "meshnode_verified_signature_hits_total",
                "counter",
                "Host signatures answered from the verified-signature cache.",
                {(): float(self.zones.verified.hits)},
            ),
            Metric(
                "meshnode_verified_signatures",
                "gauge",
                "Host signatures held in the verified-signature cache (bounded LRU).",
                {(): float(len(self.zones.verified))},
            ),
            Metric(
                "meshnode_connected_peers",
                "gauge",
                "Peers with an open libp2p connection.",
                {(): float(len(self.mesh.connected_peers()))},
            ),
            Metric(
                "meshnode_pubsub_peers",
                "gauge",
                "Peers speaking meshsub.",
                {(): float(len(self.bridge.peers()))},
            ),
            Metric(
                "meshnode_store_rows",
                "gauge",
                "Rows per store table.",
                {(("table", t),): float(n) for t, n in counts.items()},
            ),
            Metric(
                "meshnode_bootstrap_dial_failures_total",
                "counter",
                "Failed bootstrap dials.",
                {(): float(self.mesh.dial_failures)},
            ),
            Metric(
                "meshnode_api_requests_total",
                "counter",
                "Control API requests served.",
                {(): float(self.api.requests)},
            ),
        ]
        return metrics_response(metrics)

    async def _messages(self, request: Request) -> Response:
        topic = request.param("topic")
        if not topic:
            raise ApiError(400, "query parameter 'topic' is required")
        try:
            after = int(request.param("after", "0") or 0)
            limit = min(int(request.param("limit", "100") or 100), 1000)
        except ValueError as exc:
            raise ApiError(400, "'after' and 'limit' must be integers") from exc
        rows = await self.db(self.store.messages, topic, limit, after)
        out = []
        for r in rows:
            try:
                text: str | None = r.data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            out.append(
                {
                    "seq": r.seq,
                    "msg_id": r.msg_id.hex(),
                    "data_b64": base64.b64encode(r.data).decode(),
                    "text": text,
                    "received_ns": r.received_ns,
                }
            )
        return json_response({"topic": topic, "messages": out})

    async def _publish(self, request: Request) -> Response:
        zone = request.param("zone")
        if zone:
            return await self._publish_zone(zone, request.body)
        topic = request.param("topic")
        if not topic:
            raise ApiError(400, "query parameter 'topic' or 'zone' is required")
        if topic.startswith("/meshnode/zone/"):
            raise ApiError(400, "zone topics are published with 'zone=<id>' (admission first)")
        try:
            msg_id, peers = self.router.publish(topic, request.body)
        except PublishError as exc:
            raise ApiError(400, exc.describe()) from None
        return json_response({"topic": topic, "msg_id": msg_id.hex(), "peers": peers})

    async def _publish_zone(self, zone: str, agent_bytes: bytes) -> Response:
        outcome, msg_id, peers = await self.publish_agent(zone, agent_bytes)
        body = {**outcome.to_json(), "zone": zone, "msg_id": msg_id.hex(), "peers": peers}
        if outcome.wire is not WireVerdict.ACCEPT:
            body["error"] = f"not admitted here: {outcome.code}: {outcome.reason}"
            return json_response(body, 422)
        return json_response(body)

    def _zone_param(self, request: Request, required: bool = True) -> str | None:
        zone = request.param("zone")
        if zone is None and required:
            raise ApiError(400, "query parameter 'zone' is required")
        if zone is not None and zone not in self.zones.zones:
            raise ApiError(404, f"this node has not joined zone {zone!r}")
        return zone

    @staticmethod
    def _limit(request: Request) -> int:
        try:
            return max(1, min(int(request.param("limit", "100") or 100), 10_000))
        except ValueError as exc:
            raise ApiError(400, "'limit' must be an integer") from exc

    async def _zones(self, request: Request) -> Response:
        zones = await self.db(self.zones.summary, wall_epoch(time.time()))
        for z in zones:
            z["mesh_peers"] = self.router.mesh_size(z["topic"])
        return json_response({"zones": zones})

    async def _zone_publish(self, request: Request) -> Response:
        """Apply a zone file here (verified, persisted), then publish it on the control topic."""
        zone = request.param("zone")
        if not zone:
            raise ApiError(400, "query parameter 'zone' is required")
        try:
            applied = await self.db(
                self.zones.apply_control, zone, request.body, wall_epoch(time.time())
            )
        except ZoneUnknown as exc:
            raise ApiError(404, exc.describe()) from None
        except MeshError as exc:
            raise ApiError(422, f"zone file refused: {exc.describe()}") from None
        try:
            msg_id, peers = self.router.publish(control_topic(zone), request.body)
        except PublishError as exc:  # the same file again: applied, already gossiped
            return json_response({"zone": zone, "applied": applied, "published": exc.describe()})
        return json_response(
            {"zone": zone, "applied": applied, "msg_id": msg_id.hex(), "peers": peers}
        )

    async def _agents(self, request: Request) -> Response:
        zone = self._zone_param(request)
        assert zone is not None
        rows = await self.db(self.store.agents, zone, self._limit(request))
        return json_response(
            {
                "zone": zone,
                "agents": [
                    {
                        "content_id": r.content_id.hex(),
                        "genesis": r.genesis.hex(),
                        "head": r.head.hex(),
                        "depth": r.depth,
                        "disposition": r.disposition,
                        "epoch": r.epoch,
                        "bytes": len(r.data),
                    }
                    for r in rows
                ],
            }
        )

    async def _agents_new(self, request: Request) -> Response:
        """Make an agent hosted by this node from ``{"verb", "args", "role", "omit",
        "mutable"}`` (``mutable``: the descriptor's mutable fields, default memory); publish it
        unless ``publish=0`` (then the bytes are returned, base64, for publishing elsewhere)."""
        zone = self._zone_param(request)
        assert zone is not None
        try:
            spec = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from None
        if not isinstance(spec, dict) or not isinstance(spec.get("verb"), str):
            raise ApiError(400, "body must be a JSON object with a string 'verb'")
        args = spec.get("args", {})
        role = spec.get("role", "worker")
        omit = spec.get("omit", [])
        if not isinstance(args, dict) or not isinstance(role, str):
            raise ApiError(400, "'args' must be an object and 'role' a string")
        if not isinstance(omit, list) or not all(isinstance(x, str) for x in omit):
            raise ApiError(400, "'omit' must be a list of field names")
        mutable = spec.get("mutable", ["memory"])
        if not isinstance(mutable, list) or not all(isinstance(x, str) for x in mutable):
            raise ApiError(400, "'mutable' must be a list of field names")
        try:
            data = await self.db(
                self.zones.create_agent,
                zone,
                spec["verb"],
                args,
                role,
                wall_epoch(time.time()),
                tuple(omit),
                tuple(mutable),
            )
        except MeshError as exc:
            raise ApiError(422, exc.describe()) from None
        cid = hashlib.sha256(data).hexdigest()
        if request.param("publish", "1") == "0":
            return json_response(
                {"zone": zone, "content_id": cid, "agent_b64": base64.b64encode(data).decode()}
            )
        return await self._publish_zone(zone, data)

    async def _mutate(self, request: Request) -> Response:
        """``{"zone", "genesis", "set": {path: value}}``: mutate an agent this node hosts
        (:meth:`Zones.mutate`); publish it only if this node's own admission accepts it."""
        body = json_body(request)
        zone = body.get("zone")
        if not isinstance(zone, str) or not zone:
            raise ApiError(400, "'zone' must be a zone id")
        if zone not in self.zones.zones:
            raise ApiError(404, f"this node has not joined zone {zone!r}")
        genesis = hex32_field(body.get("genesis"), "genesis")
        sets = body.get("set")
        if not isinstance(sets, dict):
            raise ApiError(400, "'set' must be an object of path -> value")
        base = {"zone": zone, "genesis": genesis.hex(), "published": False, "peers": 0}
        try:
            spec = MutationSpec.parse(sets)
            made = await self.db(self.zones.mutate, zone, genesis, spec, wall_epoch(time.time()))
        except MutationRefused as exc:
            status = MUTATION_STATUS.get(exc.code, 422)
            answer = {**base, "code": exc.code, "stage": "mutation", "reason": exc.describe()}
            return json_response({**answer, "error": f"{exc.code}: {exc.describe()}"}, status)
        except MeshError as exc:
            return json_response({**base, "code": "refused", "error": exc.describe()}, 422)
        out = {
            **base,
            **made.outcome.to_json(),
            "stage": "admission",
            "head": made.head.dah.hex(),
            "depth": made.head.totals.depth,
        }
        if not made.envelope:
            reason = f"{made.outcome.code}: {made.outcome.reason}"
            return json_response({**out, "error": f"not admitted here: {reason}"}, 422)
        try:
            msg_id, peers = self.router.publish(agents_topic(zone), made.envelope)
        except PublishError as exc:  # committed here; members get it by sync
            out["publish_error"] = exc.describe()
        else:
            out.update(published=True, msg_id=msg_id.hex(), peers=peers)
        self._nursery_soon(self.run_executions)
        return json_response(out)

    async def _override(self, request: Request) -> Response:
        """Body: a zone file with overrides or one signed override. Its overrides are checked
        against the meta-authority, kept, and gossiped on the zone's control topic."""
        zone = self._zone_param(request)
        assert zone is not None
        epoch = wall_epoch(time.time())
        try:
            wrapped, overrides = await self.db(self.zones.override_file, zone, request.body)
            applied = await self.db(self.zones.apply_control, zone, wrapped, epoch)
        except MeshError as exc:
            raise ApiError(422, f"override refused: {exc.describe()}") from None
        body: dict[str, Any] = {
            "zone": zone,
            "applied": applied,
            "overrides": [_override_json(o) for o in overrides],
            "peers": 0,
        }
        try:
            msg_id, peers = self.router.publish(control_topic(zone), wrapped)
        except PublishError as exc:  # the same overrides again: applied, already gossiped
            body["published"] = exc.describe()
        else:
            body.update(msg_id=msg_id.hex(), peers=peers)
        return json_response(body)

    async def _overrides(self, request: Request) -> Response:
        zone = self._zone_param(request, required=False)
        rows = await self.db(self.zones.override_rows, zone, wall_epoch(time.time()))
        return json_response({"overrides": rows})

    async def _zone_hosts(self, request: Request) -> Response:
        """The host records this node holds for a zone (for ``agent migrate --to PEER``)."""
        zone = self._zone_param(request)
        assert zone is not None
        rows = await self.db(self.store.host_records, zone)
        hosts = []
        for row in rows:
            entry: dict[str, Any] = {"host_key": row.host_key.hex(), "revoked": row.revoked}
            if not row.revoked:
                record = self.zones.zone(zone).view.hosts.by_key(row.host_key)
                if record is not None:
                    peer = record_peer_id(record)
                    entry.update(
                        name=record.name.hex(),
                        peer_id=peer.to_base58() if peer is not None else "",
                        addrs=list(record.addrs),
                        roles=list(record.roles),
                        zones=list(record.zones),
                    )
            hosts.append(entry)
        return json_response({"zone": zone, "hosts": hosts})

    async def _quarantine(self, request: Request) -> Response:
        zone = self._zone_param(request, required=False)
        rows = await self.db(self.store.quarantined, zone, self._limit(request))
        return json_response(
            {
                "quarantine": [
                    {
                        "content_id": r.content_id.hex(),
                        "zone": r.zone,
                        "host_key": r.host_key.hex(),
                        "expires_epoch": r.expires_epoch,
                        "bytes": len(r.data),
                    }
                    for r in rows
                ]
            }
        )

    async def _executions(self, request: Request) -> Response:
        zone = self._zone_param(request, required=False)
        rows = await self.db(self.store.executions, zone, self._limit(request))
        return json_response(
            {
                "executions": [
                    {
                        "content_id": r.content_id.hex(),
                        "zone": r.zone,
                        "genesis": r.genesis.hex(),
                        "verb": r.verb,
                        "epoch": r.epoch,
                        "result_id": r.result_id.hex(),
                        "output": _jsonable(codec.decode(r.output, max_bytes=1 << 20)),
                    }
                    for r in rows
                ]
            }
        )

    async def _decisions(self, request: Request) -> Response:
        try:
            after = int(request.param("after", "0") or 0)
        except ValueError as exc:
            raise ApiError(400, "'after' must be an integer") from exc
        rows = await self.db(self.store.decisions, self._limit(request), after)
        return json_response(
            {
                "decisions": [
                    {
                        "id": i,
                        "epoch": d.epoch,
                        "zone": d.zone,
                        "subject": d.subject.hex(),
                        "verdict": d.verdict,
                        "disposition": d.disposition,
                        "reason": d.reason,
                        "at_ns": d.at_ns,
                    }
                    for i, d in rows
                ]
            }
        )


MUTATION_STATUS: dict[str, int] = {
    "bad-mutation": 400,
    "unknown-agent": 404,
    "wrong-zone": 409,
    "not-host": 409,
    "no-secret": 409,
    "not-mutable": 422,
}
"""HTTP status of each refusal code of ``POST /mutate`` before admission."""


def _override_json(signed: Signed) -> dict[str, Any]:
    """A signed override as JSON (the fields its signers signed, hex for bytes)."""
    body = _jsonable(dict(signed.body))
    return {"id": signed.id.hex(), **body} if isinstance(body, dict) else {"id": signed.id.hex()}


def _jsonable(value: Any) -> Any:
    """CBOR output as JSON: bytes as hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# -- process entry point -----------------------------------------------------------------


class _JsonFormatter(logging.Formatter):
    _SKIP = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._SKIP:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _TextFormatter(logging.Formatter):
    _SKIP = _JsonFormatter._SKIP

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in self._SKIP}
        return base + ("  " + json.dumps(extra, default=str) if extra else "")


def configure_logging(config: NodeConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log.format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log.level)
    if config.log.level != "DEBUG":
        logging.getLogger("libp2p").setLevel(logging.WARNING)


async def serve(config: NodeConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run a node until SIGINT or SIGTERM, then shut it down cleanly."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            node = await nursery.start(MeshNode(config).run)
            task_status.started(node)
            async for signum in signals:
                log.info("shutting down", extra={"signal": signal.Signals(signum).name})
                nursery.cancel_scope.cancel()
                break


def run(config: NodeConfig) -> None:
    """Blocking entry point: ``meshnode run`` calls this."""
    configure_logging(config)
    trio.run(serve, config)


def main(argv: list[str] | None = None) -> int:
    """``python -m meshnode.node --config FILE`` (the CLI's ``run`` does the same)."""
    parser = argparse.ArgumentParser(prog="python -m meshnode.node")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        run(config)
    except (MeshError, OSError, BaseExceptionGroup) as exc:
        user = user_error(exc)
        if user is None:
            raise
        sys.stderr.write(f"error: {user}\n")
        return 2
    return 0


def user_error(exc: BaseException) -> BaseException | None:
    """The operator-facing cause (bad config/key/store file, port in use) or None for bugs.

    trio wraps errors raised inside nurseries in exception groups; unwrap them so the
    operator sees one line, not a traceback.
    """
    if isinstance(exc, MeshError | OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split((MeshError, OSError))
        if matched is None or rest is not None:
            return None
        leaf: BaseException = matched
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        return leaf
    return None


if __name__ == "__main__":
    sys.exit(main())
