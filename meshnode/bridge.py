"""The I/O half of the gossip bridge: libp2p streams <-> length-prefixed RPC frames.

DESIGN §4 "Bridge facts" in code. The bridge knows nothing of GossipSub: it moves whole
frames (unsigned-varint length prefix, at most ``max_frame_bytes``) between py-libp2p streams
and an :class:`RpcSink`, which the sans-I/O router's adapter implements. Why it is shaped so:
- our handlers for ``/meshsub/1.1.0`` and ``/1.0.0`` are registered before ``host.run`` so
  identify advertises them, and no py-libp2p ``Pubsub`` is instantiated;
- the INotifee only hands peer ids to a channel: the swarm awaits notifees while it adds a
  connection, so opening a stream there would stall it;
- one outbound stream per peer, owned by one task with a bounded queue: a slow peer fills
  only its own queue (overflow drops and counts) and never blocks others;
- a bad frame (oversized, malformed length) closes only that stream, is counted, and the
  node keeps serving.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

from meshnode.notify import ConnectionNotifee
from protocols.errors import DecodeError, MeshError
from protocols.types import PeerId

log = logging.getLogger(__name__)

MESHSUB_PROTOCOLS: tuple[str, ...] = ("/meshsub/1.1.0", "/meshsub/1.0.0")
MAX_VARINT_BYTES = 9  # unsigned-varint spec: at most 9 bytes (63 bits)
READ_CHUNK = 64 * 1024


# -- framing (pure) -------------------------------------------------------------------------


def encode_uvarint(value: int) -> bytes:
    """Multiformats unsigned varint (LEB128, minimal)."""
    if value < 0 or value >= 1 << 63:
        raise ValueError(f"uvarint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_frame(payload: bytes) -> bytes:
    return encode_uvarint(len(payload)) + payload


class FrameTooLarge(DecodeError):
    """A length prefix above the frame cap (names the offset of the prefix)."""


class MalformedLength(DecodeError):
    """A length prefix that is not a minimal unsigned varint of at most 9 bytes."""


class FrameDecoder:
    """Sans-I/O reader of varint-prefixed frames: ``feed`` bytes, pull frames out.

    Checks the length against the cap as soon as the prefix is complete, before buffering
    the body, so a peer cannot make us allocate more than ``max_frame_bytes`` + one chunk.
    After an error the decoder is unusable (the caller closes the stream).
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._need: int | None = None  # body length once the prefix is parsed
        self._consumed = 0  # bytes of the stream consumed before _buf[0], for offsets

    def feed(self, data: bytes) -> None:
        self._buf += data

    def _parse_prefix(self) -> bool:
        value = 0
        for i, byte in enumerate(self._buf[:MAX_VARINT_BYTES]):
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise MalformedLength("non-minimal varint length", offset=self._consumed)
                if value > self._max:
                    raise FrameTooLarge(
                        f"frame of {value} bytes exceeds the cap of {self._max}",
                        offset=self._consumed,
                    )
                del self._buf[: i + 1]
                self._consumed += i + 1
                self._need = value
                return True
        if len(self._buf) >= MAX_VARINT_BYTES:
            raise MalformedLength("varint length longer than 9 bytes", offset=self._consumed)
        # Cheap early cap check on a partial prefix: its low bits already exceed the cap.
        if value > self._max:
            raise FrameTooLarge(
                f"frame length prefix exceeds the cap of {self._max}", offset=self._consumed
            )
        return False

    def next_frame(self) -> bytes | None:
        """The next complete frame, or None if more bytes are needed."""
        if self._need is None and not self._parse_prefix():
            return None
        assert self._need is not None
        if len(self._buf) < self._need:
            return None
        frame = bytes(self._buf[: self._need])
        del self._buf[: self._need]
        self._consumed += self._need
        self._need = None
        return frame

    @property
    def buffered(self) -> int:
        return len(self._buf)


# -- the seam to the router ----------------------------------------------------------------


@dataclass(frozen=True)
class LinkInfo:
    """What the router needs to know of a new pubsub peer (maps onto gossip PeerConnected)."""

    outbound: bool  # we dialled the connection
    protocol: str  # meshsub version negotiated with this peer
    ip: str | None  # remote IPv4/IPv6 address (P6 colocation), None when unknown


class RpcSink(Protocol):
    """What the bridge feeds; the gossip router's driver adapter implements it.

    Calls are synchronous and must not block: a sink that needs I/O (validation, SQLite)
    starts its own task. A sink sends with :meth:`Bridge.send`, which never blocks.
    A peer is announced once it speaks meshsub: when our outbound stream to it negotiated
    a protocol, or when its first frame arrives, whichever is first; peers without meshsub
    are never announced. ``on_peer_connected`` comes before any ``on_frame`` of that peer,
    and ``on_peer_disconnected`` after the last one (only for announced peers).
    """

    def on_peer_connected(self, peer: PeerId, link: LinkInfo) -> None: ...

    def on_frame(self, peer: PeerId, frame: bytes) -> None: ...

    def on_peer_disconnected(self, peer: PeerId) -> None: ...

    def on_bad_input(self, peer: PeerId, error: MeshError) -> None:
        """The peer's stream carried bytes the framing refused (the stream is being reset)."""
        ...


@dataclass(frozen=True)
class BridgeParams:
    """Validated limits of the bridge (DESIGN §4: max RPC 1 MiB)."""

    protocols: tuple[str, ...] = MESHSUB_PROTOCOLS
    max_frame_bytes: int = 1024 * 1024
    send_queue_frames: int = 256
    open_stream_timeout_s: float = 10.0
    write_timeout_s: float = 30.0
    open_attempts: int = 3

    def __post_init__(self) -> None:
        if not self.protocols:
            raise ValueError("protocols must not be empty")
        if not 1024 <= self.max_frame_bytes <= 4 * 1024 * 1024:
            raise ValueError("max_frame_bytes must be within 1 KiB .. 4 MiB")
        if self.send_queue_frames < 1:
            raise ValueError("send_queue_frames must be >= 1")
        if self.open_stream_timeout_s <= 0 or self.write_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.open_attempts < 1:
            raise ValueError("open_attempts must be >= 1")


@dataclass
class BridgeCounters:
    """Monotonic counters exported on /metrics."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bad_frames: int = 0
    send_dropped_overflow: int = 0
    send_dropped_no_peer: int = 0
    send_dropped_oversize: int = 0
    duplicate_inbound_streams: int = 0
    stream_open_failures: int = 0
    stream_write_failures: int = 0
    peers_connected: int = 0
    peers_disconnected: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class _Link:
    """Per-peer state: the queue and the task that owns our outbound stream."""

    peer_id: ID
    send: trio.MemorySendChannel[bytes]
    recv: trio.MemoryReceiveChannel[bytes]
    outbound: bool = False
    ip: str | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    protocol: str | None = None
    ready: bool = False
    inbound: INetStream | None = None
    dropped: int = 0
    sent: int = 0


def to_peer_id(peer: ID) -> PeerId:
    return PeerId(peer.to_bytes())


class _Notifee(ConnectionNotifee):
    """Only forwards connection events to a channel (see module docstring)."""

    def __init__(self, events: trio.MemorySendChannel[tuple[bool, INetConn]]) -> None:
        self._events = events

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._events.send_nowait((True, conn))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._events.send_nowait((False, conn))


class Bridge:
    """Stream plumbing between a py-libp2p host and an :class:`RpcSink`.

    Use: ``bridge = Bridge(host, sink, params); bridge.install()`` before ``host.run``, then
    ``await nursery.start(bridge.run)``.
    """

    def __init__(self, host: IHost, sink: RpcSink, params: BridgeParams) -> None:
        self._host = host
        self._sink = sink
        self.params = params
        self.counters = BridgeCounters()
        self._links: dict[PeerId, _Link] = {}
        # Unbounded on purpose: one item per connection event, and the notifee must never
        # block or drop one (a lost "disconnected" would leak a link).
        self._ev_send, self._ev_recv = trio.open_memory_channel[tuple[bool, INetConn]](math.inf)
        self._nursery: trio.Nursery | None = None
        self._installed = False

    # -- setup ---------------------------------------------------------------------------

    def install(self) -> None:
        """Register stream handlers and the notifee; call before ``host.run``."""
        if self._installed:
            return
        for proto in self.params.protocols:
            self._host.set_stream_handler(TProtocol(proto), self._handle_stream)
        self._host.get_network().register_notifee(_Notifee(self._ev_send))
        self._installed = True

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own the per-peer writer tasks until cancelled."""
        if not self._installed:
            raise RuntimeError("Bridge.install() must be called before run()")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                # Peers connected before we started (none in the normal order of startup).
                for conn in list(self._host.get_network().get_connections()):
                    self._ensure_link(conn.muxed_conn.peer_id, conn)
                task_status.started()
                async for connected, conn in self._ev_recv:
                    peer_id = conn.muxed_conn.peer_id
                    if connected:
                        self._ensure_link(peer_id, conn)
                    elif not self._host.get_network().get_connections(peer_id):
                        self._drop_link(to_peer_id(peer_id))
        finally:
            self._nursery = None

    # -- public API ----------------------------------------------------------------------

    def send(self, peer: PeerId, frame: bytes) -> bool:
        """Queue one frame (without prefix) for ``peer``; never blocks. False when dropped."""
        if len(frame) > self.params.max_frame_bytes:
            self.counters.send_dropped_oversize += 1
            log.warning("dropping oversized outbound frame", extra={"bytes": len(frame)})
            return False
        link = self._links.get(peer)
        if link is None:
            self.counters.send_dropped_no_peer += 1
            return False
        try:
            link.send.send_nowait(frame)
        except trio.WouldBlock:
            link.dropped += 1
            self.counters.send_dropped_overflow += 1
            return False
        except trio.ClosedResourceError:  # the writer gave up: the peer has no meshsub
            link.dropped += 1
            self.counters.send_dropped_no_peer += 1
            return False
        return True

    def peers(self) -> list[PeerId]:
        """Announced (meshsub-speaking) peers."""
        return sorted(p for p, link in self._links.items() if link.ready)

    def peer_info(self) -> list[dict[str, Any]]:
        """One dict per linked peer, for /peers."""
        out: list[dict[str, Any]] = []
        for _, link in sorted(self._links.items()):
            stats = link.send.statistics()
            out.append(
                {
                    "peer_id": link.peer_id.to_base58(),
                    "pubsub": link.ready,
                    "outbound": link.outbound,
                    "ip": link.ip,
                    "protocol": link.protocol,
                    "queued": stats.current_buffer_used,
                    "sent": link.sent,
                    "dropped": link.dropped,
                }
            )
        return out

    def protocol_of(self, peer: PeerId) -> str | None:
        """The meshsub version our outbound stream to ``peer`` negotiated, if open yet."""
        link = self._links.get(peer)
        return link.protocol if link else None

    # -- links ---------------------------------------------------------------------------

    def _ensure_link(self, peer_id: ID, conn: INetConn | None) -> _Link | None:
        peer = to_peer_id(peer_id)
        link = self._links.get(peer)
        if link is not None:
            return link
        if self._nursery is None:
            return None
        if conn is None:
            conns = self._host.get_network().get_connections(peer_id)
            conn = conns[0] if conns else None
        send, recv = trio.open_memory_channel[bytes](self.params.send_queue_frames)
        outbound, ip = _describe(conn)
        link = _Link(peer_id=peer_id, send=send, recv=recv, outbound=outbound, ip=ip)
        self._links[peer] = link
        self._nursery.start_soon(self._writer, peer, link)
        return link

    def _mark_ready(self, peer: PeerId, link: _Link, protocol: str) -> None:
        if link.ready or self._links.get(peer) is not link:
            return
        link.ready = True
        self.counters.peers_connected += 1
        log.info("pubsub peer up", extra={"peer": link.peer_id.to_base58(), "protocol": protocol})
        self._sink.on_peer_connected(peer, LinkInfo(link.outbound, protocol, link.ip))

    def _drop_link(self, peer: PeerId) -> None:
        link = self._links.pop(peer, None)
        if link is None:
            return
        link.scope.cancel()
        link.send.close()
        if link.ready:
            self.counters.peers_disconnected += 1
            log.info("pubsub peer down", extra={"peer": link.peer_id.to_base58()})
            self._sink.on_peer_disconnected(peer)

    async def _open(self, link: _Link) -> INetStream | None:
        p = self.params
        for attempt in range(p.open_attempts):
            try:
                with trio.fail_after(p.open_stream_timeout_s):
                    stream = await self._host.new_stream(
                        link.peer_id, [TProtocol(x) for x in p.protocols]
                    )
            except (BaseLibp2pError, trio.TooSlowError, OSError) as exc:
                self.counters.stream_open_failures += 1
                log.info(
                    "cannot open meshsub stream",
                    extra={
                        "peer": link.peer_id.to_base58(),
                        "attempt": attempt + 1,
                        "error": repr(exc),
                    },
                )
                await trio.sleep(0.2 * 2**attempt)
                continue
            link.protocol = str(stream.get_protocol())
            return stream
        return None

    async def _writer(self, peer: PeerId, link: _Link) -> None:
        """Own the one outbound stream to ``peer``; reopen it once if a write fails."""
        stream: INetStream | None = None
        with link.scope:
            # Open eagerly: the peer is announced to the sink once the stream negotiated.
            stream = await self._open(link)
            if stream is not None:
                self._mark_ready(peer, link, str(stream.get_protocol()))
            try:
                async for frame in link.recv:
                    data = encode_frame(frame)
                    for _ in range(2):  # a write failure reopens and retries the frame once
                        if stream is None:
                            stream = await self._open(link)
                            if stream is None:
                                return
                        if await self._write(link, stream, data):
                            break
                        stream = None
            finally:
                if stream is not None:
                    with trio.CancelScope(shield=True), trio.move_on_after(1):
                        await _close_quietly(stream)
                elif self._links.get(peer) is link:
                    # No stream could be opened (the peer lacks meshsub): keep the link so
                    # sends are counted as drops rather than retried forever.
                    link.send.close()

    async def _write(self, link: _Link, stream: INetStream, data: bytes) -> bool:
        try:
            with trio.fail_after(self.params.write_timeout_s):
                await stream.write(data)
        except (BaseLibp2pError, trio.TooSlowError, OSError) as exc:
            self.counters.stream_write_failures += 1
            log.info(
                "meshsub write failed", extra={"peer": link.peer_id.to_base58(), "error": repr(exc)}
            )
            await _reset_quietly(stream)
            return False
        link.sent += 1
        self.counters.frames_out += 1
        self.counters.bytes_out += len(data)
        return True

    # -- inbound -------------------------------------------------------------------------

    async def _handle_stream(self, stream: INetStream) -> None:
        """Read frames until EOF/reset; a bad frame closes only this stream."""
        peer_id: ID = stream.muxed_conn.peer_id
        peer = to_peer_id(peer_id)
        link = self._ensure_link(peer_id, None)
        if link is not None:
            # One inbound stream per peer (as go-libp2p-pubsub): the newest wins, the older
            # one is reset, so a peer cannot pin many 1 MiB decode buffers.
            old, link.inbound = link.inbound, stream
            if old is not None:
                self.counters.duplicate_inbound_streams += 1
                await _reset_quietly(old)
        decoder = FrameDecoder(self.params.max_frame_bytes)
        try:
            while True:
                data = await stream.read(READ_CHUNK)
                if not data:
                    break
                self.counters.bytes_in += len(data)
                decoder.feed(data)
                while (frame := self._next_frame(decoder, peer, link)) is not None:
                    self.counters.frames_in += 1
                    if link is None or self._links.get(peer) is not link:
                        continue  # disconnected meanwhile (or bridge not running)
                    if not link.ready:
                        self._mark_ready(peer, link, str(stream.get_protocol()))
                    self._sink.on_frame(peer, frame)
        except DecodeError as exc:
            self.counters.bad_frames += 1
            log.warning(
                "bad input from peer; closing stream",
                extra={
                    "peer": peer_id.to_base58(),
                    "error_type": type(exc).__name__,
                    "error": exc.describe(),
                },
            )
            await _reset_quietly(stream)
        except BaseLibp2pError as exc:
            # EOF and reset are the normal ends of a peer's stream.
            log.debug("meshsub stream ended", extra={"peer": peer_id.to_base58(), "why": repr(exc)})
        except MeshError as exc:  # raised by the sink for input it refuses outright
            log.warning(
                "sink refused input", extra={"peer": peer_id.to_base58(), "error": str(exc)}
            )
            await _reset_quietly(stream)
        finally:
            if link is not None and link.inbound is stream:
                link.inbound = None

    def _next_frame(self, decoder: FrameDecoder, peer: PeerId, link: _Link | None) -> bytes | None:
        """The decoder's next frame; a framing error is reported to the sink (a penalty for
        the peer) before it propagates and closes the stream."""
        try:
            return decoder.next_frame()
        except DecodeError as exc:
            if link is not None and link.ready and self._links.get(peer) is link:
                self._sink.on_bad_input(peer, exc)
            raise


async def _reset_quietly(stream: INetStream) -> None:
    try:
        await stream.reset()
    except (BaseLibp2pError, OSError) as exc:
        log.debug("stream reset failed", extra={"error": repr(exc)})


async def _close_quietly(stream: INetStream) -> None:
    try:
        await stream.close()
    except (BaseLibp2pError, OSError) as exc:
        log.debug("stream close failed", extra={"error": repr(exc)})


def _describe(conn: INetConn | None) -> tuple[bool, str | None]:
    """(we dialled?, remote IP) of a connection, best effort across py-libp2p versions."""
    if conn is None:
        return False, None
    direction = getattr(getattr(conn, "direction", None), "name", "")
    ip: str | None = None
    try:
        addrs = conn.get_transport_addresses()
    except (BaseLibp2pError, AttributeError):
        addrs = []
    for addr in addrs:
        for proto in ("ip4", "ip6"):
            try:
                ip = addr.value_for_protocol(proto)
            except (ValueError, LookupError):  # multiaddr: protocol not in this address
                continue
            if ip:
                return direction == "OUTBOUND", ip
    return direction == "OUTBOUND", ip


def peer_id_from_bytes(peer: PeerId) -> ID:
    return ID(bytes(peer))
