"""Request/response framing shared by the node services (alias, quorum, handoff, sync).

Why one helper: every service speaks the same shape (DESIGN 4): one request per libp2p
stream, one unsigned-varint length-prefixed canonical CBOR map each way, a size cap checked
on the prefix before the body is buffered, and a deadline on the whole exchange. A handler
answers ``{"ok": true, ...}`` or a typed error ``{"ok": false, "code", "message"}``; bad
bytes from a peer become a typed error answer and a log line, never a crashed node.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import multiaddr
import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

from meshnode.bridge import FrameDecoder, encode_frame
from protocols import codec
from protocols.errors import DecodeError, MeshError, SchemaError

log = logging.getLogger(__name__)

READ_CHUNK: Final = 64 * 1024
ADDR_TTL_S: Final = 600
MAX_DEPTH: Final = 12

# Error codes a service may answer with (the peer sees the code, the operator the message).
BAD_REQUEST: Final = "bad-request"
TOO_LARGE: Final = "too-large"
NOT_SERVED: Final = "not-served"
REFUSED: Final = "refused"
INTERNAL: Final = "internal"


class ServiceError(MeshError):
    """A typed failure of a service exchange: the code is part of the wire answer."""

    def __init__(self, code: str, message: str, *, path: str = "") -> None:
        self.code = code
        super().__init__(message, path=path)


@dataclass(frozen=True, slots=True)
class WireParams:
    """Bounds of one exchange."""

    max_bytes: int = 256 * 1024
    timeout_s: float = 5.0


async def read_message(stream: INetStream, max_bytes: int) -> dict[str, Any]:
    """Read one length-prefixed canonical CBOR map (DecodeError/SchemaError on bad input)."""
    decoder = FrameDecoder(max_bytes)
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            break
        data = await stream.read(READ_CHUNK)
        if not data:
            raise DecodeError("stream ended before a complete message", offset=decoder.buffered)
        decoder.feed(data)
    tree = codec.decode(frame, max_bytes=max_bytes, max_depth=MAX_DEPTH)
    if not isinstance(tree, dict):
        raise SchemaError("a message is a CBOR map", path="$")
    return tree


async def write_message(stream: INetStream, message: dict[str, Any]) -> None:
    await stream.write(encode_frame(codec.encode(message)))


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message[:500]}


Handler = Callable[[ID, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class ServeCounters:
    requests: int = 0
    errors: int = 0


def stream_handler(
    name: str, handle: Handler, params: WireParams, counters: ServeCounters
) -> Callable[[INetStream], Awaitable[None]]:
    """A py-libp2p stream handler: read one request, answer once, close; never raise."""

    async def on_stream(stream: INetStream) -> None:
        peer: ID = stream.muxed_conn.peer_id
        counters.requests += 1
        try:
            with trio.fail_after(params.timeout_s):
                try:
                    request = await read_message(stream, params.max_bytes)
                    answer = await handle(peer, request)
                except ServiceError as exc:
                    counters.errors += 1
                    answer = error(exc.code, exc.describe())
                except MeshError as exc:  # undecodable or wrongly shaped request
                    counters.errors += 1
                    log.info(
                        "bad service request",
                        extra={"service": name, "peer": peer.to_base58(), "error": exc.describe()},
                    )
                    code = TOO_LARGE if "exceeds the cap" in exc.message else BAD_REQUEST
                    answer = error(code, exc.describe())
                await write_message(stream, answer)
        except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
            counters.errors += 1
            log.info(
                "service stream failed",
                extra={"service": name, "peer": peer.to_base58(), "error": repr(exc)},
            )
            await _reset(stream)
            return
        await _close(stream)

    return on_stream


async def call(
    host: IHost,
    peer: ID,
    addrs: Sequence[str],
    protocol: str,
    request: dict[str, Any],
    params: WireParams,
) -> dict[str, Any]:
    """One exchange with ``peer``; dials it first (``addrs`` are hints) if not connected.

    Returns the answer's fields on ``ok``; raises ServiceError with the peer's code, or with
    ``unreachable`` when the peer cannot be dialled or does not answer in time.
    """
    if addrs:
        parsed = []
        for text in addrs:
            try:
                parsed.append(multiaddr.Multiaddr(text))
            except Exception:  # noqa: BLE001 - multiaddr raises assorted types on bad text
                continue
        host.get_peerstore().add_addrs(peer, parsed, ADDR_TTL_S)
    unblock = getattr(host.get_network(), "unblock_peer", None)
    if unblock is not None and not host.get_network().get_connections(peer):
        unblock(peer)  # py-libp2p's 60 s negative dial cache; our callers bound retries
    stream: INetStream | None = None
    try:
        with trio.fail_after(params.timeout_s):
            stream = await host.new_stream(peer, [TProtocol(protocol)])
            await write_message(stream, request)
            answer = await read_message(stream, params.max_bytes)
    except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
        if stream is not None:
            await _reset(stream)
        raise ServiceError("unreachable", f"{protocol} to {peer.to_base58()}: {exc!r}") from exc
    except MeshError:
        if stream is not None:
            await _reset(stream)
        raise
    await _close(stream)
    if answer.get("ok") is not True:
        code = answer.get("code")
        message = answer.get("message")
        raise ServiceError(
            code if isinstance(code, str) else BAD_REQUEST,
            message if isinstance(message, str) else "peer answered an error",
        )
    return answer


class PeerFilter:
    """Which connected peers are worth asking in periodic rounds.

    A peer that does not speak a protocol (a plain libp2p peer, a js node) is skipped: when
    identify listed its protocols without ours, or for ``mute_s`` after it refused ours.
    Without this every round would log a failed negotiation per such peer.
    """

    def __init__(self, protocol: str, mute_s: float = 60.0) -> None:
        self.protocol = protocol
        self.mute_s = mute_s
        self._muted: dict[bytes, float] = {}

    def wanted(self, host: IHost, peer: ID, now: float) -> bool:
        until = self._muted.get(peer.to_bytes())
        if until is not None and now < until:
            return False
        try:
            known = host.get_peerstore().get_protocols(peer)
        except KeyError:  # PeerStoreError: nothing known yet
            known = []
        return not known or self.protocol in known

    def failed(self, peer: ID, error: ServiceError, now: float) -> None:
        if "not supported" in error.message:
            self._muted[peer.to_bytes()] = now + self.mute_s
        if len(self._muted) > 4096:
            self._muted = {k: v for k, v in self._muted.items() if v > now}


async def _reset(stream: INetStream) -> None:
    with contextlib.suppress(BaseLibp2pError, OSError):
        await stream.reset()


async def _close(stream: INetStream) -> None:
    with trio.move_on_after(1.0):
        with contextlib.suppress(BaseLibp2pError, OSError):
            await stream.close()


def field_bytes(m: dict[str, Any], key: str, size: int | None = None, cap: int = 4096) -> bytes:
    value = m.get(key)
    if type(value) is not bytes or (size is not None and len(value) != size) or len(value) > cap:
        want = f"{size} bytes" if size is not None else f"at most {cap} bytes"
        raise ServiceError(BAD_REQUEST, f"expected {want}", path=key)
    return value


def field_text(m: dict[str, Any], key: str, cap: int = 256) -> str:
    value = m.get(key)
    if type(value) is not str or len(value) > cap:
        raise ServiceError(BAD_REQUEST, f"expected text of at most {cap} characters", path=key)
    return value


def field_int(m: dict[str, Any], key: str, lo: int = 0, hi: int = (1 << 63) - 1) -> int:
    value = m.get(key)
    if type(value) is not int or not lo <= value <= hi:
        raise ServiceError(BAD_REQUEST, f"expected an integer in [{lo}, {hi}]", path=key)
    return value


def field_list(m: dict[str, Any], key: str, cap: int) -> list[Any]:
    value = m.get(key)
    if type(value) is not list or len(value) > cap:
        raise ServiceError(BAD_REQUEST, f"expected an array of at most {cap} items", path=key)
    return value
