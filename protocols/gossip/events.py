"""The router's vocabulary: frozen inputs the driver feeds and outputs it carries out.

Inputs go to ``GossipRouter.handle(event, now)``; outputs come back as a list, in the order
the driver should perform them (h11/wsproto style: no callbacks, no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.gossip.rpc import Message, Rpc
from protocols.types import MsgId, PeerId, TopicId, WireVerdict

# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """A connection with a peer speaking ``protocol`` is up (``outbound``: we dialled).

    ``ip`` feeds the P6 colocation factor; None when unknown.
    """

    peer: PeerId
    outbound: bool
    protocol: str = "/meshsub/1.1.0"
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    peer: PeerId


@dataclass(frozen=True, slots=True)
class RpcReceived:
    """A decoded RPC from ``peer`` (the driver decodes; DecodeError -> ``MalformedRpc``)."""

    peer: PeerId
    rpc: Rpc


@dataclass(frozen=True, slots=True)
class MalformedRpc:
    """The peer sent bytes that failed to decode: counted as a behaviour penalty."""

    peer: PeerId


@dataclass(frozen=True, slots=True)
class Join:
    """Subscribe to a topic locally (announce, build a mesh)."""

    topic: TopicId


@dataclass(frozen=True, slots=True)
class Leave:
    topic: TopicId


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish ``data`` on ``topic``; the router builds, signs (or not) and routes it."""

    topic: TopicId
    data: bytes


@dataclass(frozen=True, slots=True)
class ValidationCompleted:
    """The driver's answer to a validator that said PENDING."""

    msg_id: MsgId
    result: WireVerdict


@dataclass(frozen=True, slots=True)
class SetAppScore:
    """P5: the application's opinion of a peer (e.g. a trusted anchor gets +100)."""

    peer: PeerId
    score: float


Input = (
    PeerConnected
    | PeerDisconnected
    | RpcReceived
    | MalformedRpc
    | Join
    | Leave
    | Publish
    | ValidationCompleted
    | SetAppScore
)

# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class SendRpc:
    """Send ``rpc`` to ``peer`` (the driver frames and encodes it)."""

    peer: PeerId
    rpc: Rpc


@dataclass(frozen=True, slots=True)
class Deliver:
    """An ACCEPTed message for the local application; ``received_from`` is None for our own."""

    msg_id: MsgId
    message: Message
    received_from: PeerId | None


@dataclass(frozen=True, slots=True)
class Published:
    """Our own publish was routed; ``peers`` is how many peers it was sent to."""

    msg_id: MsgId
    peers: int


@dataclass(frozen=True, slots=True)
class PublishFailed:
    """Our own publish could not be built or had nobody to go to."""

    topic: TopicId
    reason: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Connect to a peer learnt by PX (or a direct peer that dropped)."""

    peer: PeerId
    signed_peer_record: bytes = b""


Output = SendRpc | Deliver | Published | PublishFailed | Dial
