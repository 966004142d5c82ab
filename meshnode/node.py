"""MeshNode: one trio nursery owning host, bridge, router slot, store and control API.

Why one nursery: every task the node starts is owned by it, so a crash in any part stops the
whole node loudly, and cancelling it (SIGINT/SIGTERM) stops everything in order. Services
start with ``nursery.start`` so "started" means "ready" (listening, bound).

The router slot holds :class:`FloodRelay`, a PLACEHOLDER: a floodsub-style relay of
plain-topic messages over the pubsub RPC wire format, kept only until the sans-I/O
``protocols.gossip`` router is plugged in through an adapter implementing
:class:`meshnode.bridge.RpcSink` (see ``MeshNode.__init__``).

Store calls run in one worker thread (``trio.to_thread.run_sync`` with a
``CapacityLimiter(1)``): measured ~0.25-0.35 ms per committed write with
``synchronous=FULL`` on the dev disk, +0.25 ms thread hop; the hop keeps an fsync stall on a
slow disk from freezing the event loop (and with it every peer's streams).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol, TypeVar

import trio
from google.protobuf.message import DecodeError as ProtobufDecodeError
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX, signature_validator

from meshnode.api import (
    ApiError,
    ApiParams,
    ControlApi,
    Handler,
    Metric,
    Request,
    Response,
    json_response,
    metrics_response,
)
from meshnode.bridge import Bridge, BridgeParams, LinkInfo, RpcSink
from meshnode.config import NodeConfig, load_config
from meshnode.host import MeshHost
from meshnode.keys import load_or_create_key
from meshnode.services import NodeService, build_services
from meshnode.store import Store
from protocols.errors import DecodeError, MeshError
from protocols.types import PeerId

log = logging.getLogger("meshnode.node")  # stable name also when run as __main__

EPOCH_S = 10  # DESIGN §5: protocol constant
T = TypeVar("T")


def wall_epoch(now_unix: float) -> int:
    """DESIGN §5: epoch = floor(unix_time / EPOCH_S), from the wall clock on real nodes."""
    return int(now_unix // EPOCH_S)


# -- the router slot ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A plain-topic message for the local application (to the store's ring)."""

    topic: str
    msg_id: bytes
    data: bytes
    source: bytes  # publisher peer id bytes


class RouterSlot(RpcSink, Protocol):
    """What MeshNode needs of its router: the bridge's RpcSink plus a few node-facing calls.

    The gossip adapter implements this: ``attach`` gives it the bridge to send with;
    ``run`` owns its timers (heartbeat: ``router.heartbeat(trio.current_time())``) and
    calls ``task_status.started()`` once ready; ``publish`` routes our own plain-topic
    message; accepted plain-topic messages go to the node's Delivery channel.
    """

    def attach(self, bridge: Bridge) -> None: ...

    async def run(self, *, task_status: Any = ...) -> None: ...

    def publish(self, topic: str, data: bytes) -> tuple[bytes, int]: ...

    def topics_of(self, peer: PeerId) -> set[str]: ...

    def counters_snapshot(self) -> dict[str, int]: ...


RouterFactory = Callable[[KeyPair, NodeConfig, "trio.MemorySendChannel[Delivery]"], RouterSlot]


# -- PLACEHOLDER router: flood relay of plain-topic messages -------------------------------


@dataclass
class RelayCounters:
    published: int = 0
    delivered: int = 0
    forwarded: int = 0
    duplicates: int = 0
    invalid_messages: int = 0
    malformed_rpcs: int = 0
    deliveries_dropped: int = 0


@dataclass
class FloodRelay:
    """PLACEHOLDER for ``protocols.gossip``: floodsub semantics on the meshsub stream.

    Speaks the pubsub RPC protobuf (SUBSCRIBE on connect, StrictSign messages with
    ``from + seqno`` ids, key omitted for ed25519) so the wire is right, but has no mesh, no
    gossip, no scoring: every message goes to every peer subscribed to its topic. Delivers
    to a bounded channel the node drains into the store; never blocks.
    """

    key_pair: KeyPair
    topics: tuple[str, ...]
    deliveries: trio.MemorySendChannel[Delivery]
    seen_cap: int = 20_000
    bridge: Bridge | None = None
    counters: RelayCounters = field(default_factory=RelayCounters)
    peer_topics: dict[PeerId, set[str]] = field(default_factory=dict)
    _seen: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _seqno: int = field(default_factory=time.time_ns)

    @classmethod
    def create(
        cls, key_pair: KeyPair, config: NodeConfig, deliveries: trio.MemorySendChannel[Delivery]
    ) -> FloodRelay:
        """The default :data:`RouterFactory`."""
        return cls(key_pair, config.pubsub.topics, deliveries)

    @property
    def me(self) -> bytes:
        return bytes(ID.from_pubkey(self.key_pair.public_key).to_bytes())

    def attach(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """No timers: a flood relay has no heartbeat."""
        task_status.started()
        await trio.sleep_forever()

    def topics_of(self, peer: PeerId) -> set[str]:
        return set(self.peer_topics.get(peer, ()))

    def counters_snapshot(self) -> dict[str, int]:
        return dict(vars(self.counters))

    # RpcSink
    def on_peer_connected(self, peer: PeerId, link: LinkInfo) -> None:
        self.peer_topics[peer] = set()
        if self.topics and self.bridge is not None:
            rpc = rpc_pb2.RPC(
                subscriptions=[rpc_pb2.RPC.SubOpts(subscribe=True, topicid=t) for t in self.topics]
            )
            self.bridge.send(peer, rpc.SerializeToString())

    def on_peer_disconnected(self, peer: PeerId) -> None:
        self.peer_topics.pop(peer, None)

    def on_frame(self, peer: PeerId, frame: bytes) -> None:
        rpc = rpc_pb2.RPC()
        try:
            rpc.ParseFromString(frame)
        except ProtobufDecodeError as exc:
            self.counters.malformed_rpcs += 1
            raise DecodeError(f"undecodable pubsub RPC: {exc}") from exc
        subs = self.peer_topics.setdefault(peer, set())
        for opt in rpc.subscriptions:
            (subs.add if opt.subscribe else subs.discard)(opt.topicid)
        for msg in rpc.publish:
            self._on_message(peer, msg)

    def _on_message(self, source: PeerId, msg: rpc_pb2.Message) -> None:
        if len(msg.topicIDs) != 1 or len(msg.seqno) != 8 or not msg.from_id:
            self.counters.invalid_messages += 1
            return
        msg_id = bytes(msg.from_id) + bytes(msg.seqno)
        if msg_id in self._seen:
            self.counters.duplicates += 1
            return
        try:
            valid = signature_validator(msg)
        except Exception:  # noqa: BLE001 - py-libp2p raises assorted types on foreign keys
            valid = False
        if not valid:
            self.counters.invalid_messages += 1
            return
        self._remember(msg_id)
        topic = msg.topicIDs[0]
        if topic in self.topics:
            self._deliver(Delivery(topic, msg_id, bytes(msg.data), bytes(msg.from_id)))
        self._forward(msg, topic, exclude={source, PeerId(bytes(msg.from_id))})

    def _remember(self, msg_id: bytes) -> None:
        self._seen[msg_id] = None
        while len(self._seen) > self.seen_cap:
            self._seen.popitem(last=False)

    def _deliver(self, d: Delivery) -> None:
        try:
            self.deliveries.send_nowait(d)
            self.counters.delivered += 1
        except trio.WouldBlock:
            self.counters.deliveries_dropped += 1

    def _forward(self, msg: rpc_pb2.Message, topic: str, exclude: set[PeerId]) -> int:
        if self.bridge is None:
            return 0
        frame = rpc_pb2.RPC(publish=[msg]).SerializeToString()
        sent = 0
        for peer, subs in self.peer_topics.items():
            if topic in subs and peer not in exclude and self.bridge.send(peer, frame):
                sent += 1
        self.counters.forwarded += sent
        return sent

    def publish(self, topic: str, data: bytes) -> tuple[bytes, int]:
        """Sign and flood our own message; returns (message id, peers sent to)."""
        self._seqno += 1
        msg = rpc_pb2.Message(
            from_id=self.me,
            data=data,
            seqno=self._seqno.to_bytes(8, "big"),
            topicIDs=[topic],
        )
        payload = PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString()
        msg.signature = self.key_pair.private_key.sign(payload)
        msg_id = bytes(msg.from_id) + bytes(msg.seqno)
        self._remember(msg_id)
        self.counters.published += 1
        if topic in self.topics:
            self._deliver(Delivery(topic, msg_id, data, self.me))
        return msg_id, self._forward(msg, topic, exclude=set())


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
        # Router slot: the placeholder FloodRelay unless a factory is given. The gossip
        # router plugs in here through an adapter (RouterSlot) that turns on_* calls into
        # router.handle(event, trio.current_time()) and carries out SendRpc via bridge.send.
        factory = router_factory or FloodRelay.create
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
        self.bridge.install()  # before host.run, so identify advertises meshsub
        for service in self.services:
            service.install()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.bridge.run)
                await nursery.start(self.router.run)
                await nursery.start(self.mesh.run)
                nursery.start_soon(self._store_deliveries)
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
        finally:
            with trio.CancelScope(shield=True):
                self._remove_info()
                await self.db(self.store.close)

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
        ring = self.config.pubsub.ring_size
        async for d in self._deliver_recv:
            await self.db(self.store.append_message, d.topic, d.msg_id, d.data, ring)
            self.store_writes += 1

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
                "zones": [z.id for z in self.config.zones],
                "store": {"schema_version": schema, **counts},
                "router": type(self.router).__name__,
            }
        )

    async def _peers(self, request: Request) -> Response:
        links = {p["peer_id"]: p for p in self.bridge.peer_info()}
        out = []
        store = self.mesh.host.get_peerstore()
        for peer_id in sorted(self.mesh.connected_peers(), key=lambda p: p.to_base58()):
            b58 = peer_id.to_base58()
            entry = links.get(b58, {"peer_id": b58, "pubsub": False})
            entry["addrs"] = [str(a) for a in store.addrs(peer_id)]
            entry["topics"] = sorted(self.router.topics_of(PeerId(peer_id.to_bytes())))
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
                }
            )
        return json_response({"topic": topic, "messages": out})

    async def _publish(self, request: Request) -> Response:
        topic = request.param("topic")
        if not topic:
            raise ApiError(400, "query parameter 'topic' is required")
        if topic.startswith("/meshnode/zone/"):
            raise ApiError(400, "zone topics are published with --zone (not implemented yet)")
        msg_id, peers = self.router.publish(topic, request.body)
        return json_response({"topic": topic, "msg_id": msg_id.hex(), "peers": peers})


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
