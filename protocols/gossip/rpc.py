"""The pubsub wire: the libp2p ``RPC`` as frozen dataclasses, its protobuf codec and
unsigned-varint framing.

Field numbers follow libp2p/specs pubsub/README.md and gossipsub-v1.1.md (``Message.topic``
is field 4, wire-compatible with the older ``repeated topicIDs``; we accept exactly one).
The protobuf runtime (upb) plus conversion into our dataclasses beat a hand-written
pure-Python codec (``bench/router.py`` prints both), so protobuf is the one kept. The frame
length is capped before parsing, every repeated count is capped before conversion, and hostile
bytes raise :class:`DecodeError` and nothing else. Unknown fields are skipped, as protobuf
requires, so newer peers (extensions) interoperate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError as _PbDecodeError

from protocols.errors import DecodeError
from protocols.gossip.pb import MESSAGE as _MSG
from protocols.gossip.pb import RPC

MAX_VARINT_BYTES = 10


@dataclass(frozen=True, slots=True)
class SubOpts:
    """A (un)subscription announcement."""

    subscribe: bool
    topic: str


@dataclass(frozen=True, slots=True)
class Message:
    """A pubsub message. ``sender``/``seqno``/``signature``/``key`` are empty under StrictNoSign."""

    topic: str
    data: bytes
    sender: bytes = b""  # wire field ``from`` (a keyword in Python)
    seqno: bytes = b""
    signature: bytes = b""
    key: bytes = b""


@dataclass(frozen=True, slots=True)
class IHave:
    topic: str
    msg_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class IWant:
    msg_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Graft:
    topic: str


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A peer exchange record: peer id and an optional signed peer record (opaque here)."""

    peer_id: bytes
    signed_peer_record: bytes = b""


@dataclass(frozen=True, slots=True)
class Prune:
    topic: str
    peers: tuple[PeerInfo, ...] = ()
    backoff: int | None = None  # seconds; None when absent (v1.0 peers)


@dataclass(frozen=True, slots=True)
class IDontWant:
    """v1.2 IDONTWANT: decoded and re-encoded so it survives, not acted upon yet."""

    msg_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Control:
    ihave: tuple[IHave, ...] = ()
    iwant: tuple[IWant, ...] = ()
    graft: tuple[Graft, ...] = ()
    prune: tuple[Prune, ...] = ()
    idontwant: tuple[IDontWant, ...] = ()

    def is_empty(self) -> bool:
        return not (self.ihave or self.iwant or self.graft or self.prune or self.idontwant)


EMPTY_CONTROL = Control()


@dataclass(frozen=True, slots=True)
class Rpc:
    """One framed pubsub RPC."""

    subscriptions: tuple[SubOpts, ...] = ()
    publish: tuple[Message, ...] = ()
    control: Control = field(default=EMPTY_CONTROL)

    def is_empty(self) -> bool:
        return not (self.subscriptions or self.publish) and self.control.is_empty()


@dataclass(frozen=True, slots=True)
class Limits:
    """Decode caps: a hostile frame cannot make us allocate more than these allow."""

    max_rpc_bytes: int = 1 << 20
    max_subscriptions: int = 1024
    max_messages: int = 1024
    max_ihave_ids: int = 5000  # per IHAVE entry, as MaxIHaveLength
    max_iwant_ids: int = 5000
    max_control_entries: int = 1024
    max_px_peers: int = 64


DEFAULT_LIMITS = Limits()


# --------------------------------------------------------------------------- varints


def encode_uvarint(n: int) -> bytes:
    """Unsigned LEB128 (multiformats unsigned-varint)."""
    if n < 0:
        raise ValueError("negative varint")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a varint at ``pos``; returns (value, next position)."""
    if pos >= end:
        raise DecodeError("truncated varint", offset=pos)
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise DecodeError("truncated varint", offset=pos)
        if pos - start >= MAX_VARINT_BYTES:
            raise DecodeError("varint too long", offset=start)
        b = buf[pos]
        result |= (b & 0x7F) << shift
        pos += 1
        if b < 0x80:
            if result >= 1 << 64:
                raise DecodeError("varint exceeds 64 bits", offset=start)
            return result, pos
        shift += 7


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its unsigned-varint length."""
    return encode_uvarint(len(payload)) + payload


class FrameReader:
    """Incremental varint-length-prefixed frame splitter for a byte stream.

    Feed bytes as they arrive; ``feed`` returns the payloads completed so far. A declared
    length above ``max_frame`` raises DecodeError before any of that payload is buffered.
    """

    def __init__(self, max_frame: int = DEFAULT_LIMITS.max_rpc_bytes) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            buf = bytes(self._buf[:MAX_VARINT_BYTES])
            try:
                length, hdr = decode_uvarint(buf, 0, len(buf))
            except DecodeError:
                if len(buf) >= MAX_VARINT_BYTES:
                    raise
                break  # need more bytes for the header
            if length > self._max:
                raise DecodeError(f"frame of {length} bytes exceeds cap {self._max}", offset=0)
            if len(self._buf) < hdr + length:
                break
            out.append(bytes(self._buf[hdr : hdr + length]))
            del self._buf[: hdr + length]
        return out


# --------------------------------------------------------------------------- codec


def _b(text: str) -> bytes:
    return text.encode()


def _to_pb(rpc: Rpc) -> Any:
    p = RPC()
    for s in rpc.subscriptions:
        ps = p.subscriptions.add()
        ps.subscribe = s.subscribe
        ps.topicid = _b(s.topic)
    for m in rpc.publish:
        pm = p.publish.add()
        if m.sender:
            setattr(pm, "from", m.sender)
        pm.data = m.data
        if m.seqno:
            pm.seqno = m.seqno
        pm.topic.append(_b(m.topic))
        if m.signature:
            pm.signature = m.signature
        if m.key:
            pm.key = m.key
    c = rpc.control
    if not c.is_empty():
        pc = p.control
        for ih in c.ihave:
            e = pc.ihave.add()
            e.topicID = _b(ih.topic)
            e.messageIDs.extend(ih.msg_ids)
        for iw in c.iwant:
            pc.iwant.add().messageIDs.extend(iw.msg_ids)
        for g in c.graft:
            pc.graft.add().topicID = _b(g.topic)
        for pr in c.prune:
            e = pc.prune.add()
            e.topicID = _b(pr.topic)
            for info in pr.peers:
                pi = e.peers.add()
                pi.peerID = info.peer_id
                if info.signed_peer_record:
                    pi.signedPeerRecord = info.signed_peer_record
            if pr.backoff is not None:
                e.backoff = pr.backoff
        for idw in c.idontwant:
            pc.idontwant.add().messageIDs.extend(idw.msg_ids)
    return p


def encode_message(m: Message) -> bytes:
    """Marshal one Message alone (the bytes StrictSign signs, after the prefix)."""
    pm = _MSG()
    if m.sender:
        setattr(pm, "from", m.sender)
    pm.data = m.data
    if m.seqno:
        pm.seqno = m.seqno
    pm.topic.append(_b(m.topic))
    if m.signature:
        pm.signature = m.signature
    if m.key:
        pm.key = m.key
    return bytes(pm.SerializeToString())


def encode_rpc(rpc: Rpc) -> bytes:
    """Marshal an RPC to protobuf bytes (no length prefix; see :func:`frame`)."""
    return bytes(_to_pb(rpc).SerializeToString())


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is not UTF-8", path=what) from None


def _cap(count: int, cap: int, what: str) -> None:
    if count > cap:
        raise DecodeError(f"{count} {what} exceed the cap of {cap}", path=what)


def _ids(raw: Any, cap: int, what: str) -> tuple[bytes, ...]:
    _cap(len(raw), cap, what)
    return tuple(raw)


def _from_pb_control(pc: Any, lim: Limits) -> Control:
    n = len(pc.ihave) + len(pc.iwant) + len(pc.graft) + len(pc.prune) + len(pc.idontwant)
    _cap(n, lim.max_control_entries, "control entries")
    prunes = []
    for e in pc.prune:
        _cap(len(e.peers), lim.max_px_peers, "control.prune.peers")
        prunes.append(
            Prune(
                _text(e.topicID, "control.prune.topicID"),
                tuple(PeerInfo(pi.peerID, pi.signedPeerRecord) for pi in e.peers),
                e.backoff if e.HasField("backoff") else None,
            )
        )
    return Control(
        tuple(
            IHave(
                _text(e.topicID, "control.ihave.topicID"),
                _ids(e.messageIDs, lim.max_ihave_ids, "control.ihave.messageIDs"),
            )
            for e in pc.ihave
        ),
        tuple(
            IWant(_ids(e.messageIDs, lim.max_iwant_ids, "control.iwant.messageIDs"))
            for e in pc.iwant
        ),
        tuple(Graft(_text(e.topicID, "control.graft.topicID")) for e in pc.graft),
        tuple(prunes),
        tuple(
            IDontWant(_ids(e.messageIDs, lim.max_iwant_ids, "control.idontwant.messageIDs"))
            for e in pc.idontwant
        ),
    )


def decode_rpc(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Rpc:
    """Unmarshal one RPC payload (already unframed). Raises DecodeError only."""
    if len(data) > limits.max_rpc_bytes:
        raise DecodeError(f"RPC of {len(data)} bytes exceeds cap {limits.max_rpc_bytes}", offset=0)
    p = RPC()
    try:
        p.ParseFromString(data)
    except _PbDecodeError as exc:
        raise DecodeError(f"malformed protobuf: {exc}", offset=0) from None
    subs: tuple[SubOpts, ...] = ()
    if p.subscriptions:
        _cap(len(p.subscriptions), limits.max_subscriptions, "subscriptions")
        subs = tuple(
            SubOpts(s.subscribe, _text(s.topicid, "subscriptions.topicid")) for s in p.subscriptions
        )
    msgs: tuple[Message, ...] = ()
    if p.publish:
        _cap(len(p.publish), limits.max_messages, "publish")
        out = []
        for pm in p.publish:
            topics = pm.topic
            if len(topics) != 1:
                raise DecodeError(
                    f"message names {len(topics)} topics, not one", path="publish.topic"
                )
            try:
                topic = topics[0].decode()
            except UnicodeDecodeError:
                raise DecodeError("publish.topic is not UTF-8", path="publish.topic") from None
            out.append(
                Message(topic, pm.data, pm.__getattribute__("from"), pm.seqno, pm.signature, pm.key)
            )
        msgs = tuple(out)
    if p.HasField("control"):
        return Rpc(subs, msgs, _from_pb_control(p.control, limits))
    return Rpc(subs, msgs)
