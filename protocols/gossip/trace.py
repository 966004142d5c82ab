"""Router observers (go-libp2p-pubsub ``RawTracer``): called synchronously as things happen.

Peer scoring is one tracer; simulator metrics and node logging are others. Methods are no-ops
here so a tracer overrides only what it needs. Tracers observe; they never change routing.
"""

from __future__ import annotations

from protocols.gossip.rpc import Message
from protocols.types import MsgId, PeerId, WireVerdict


class Tracer:
    def add_peer(self, peer: PeerId, protocol: str, ip: str | None, now: float) -> None:
        """A peer connected."""

    def remove_peer(self, peer: PeerId, now: float) -> None:
        """A peer disconnected."""

    def join(self, topic: str, now: float) -> None:
        """We joined ``topic``."""

    def leave(self, topic: str, now: float) -> None:
        """We left ``topic``."""

    def graft(self, peer: PeerId, topic: str, now: float) -> None:
        """``peer`` entered our mesh for ``topic``."""

    def prune(self, peer: PeerId, topic: str, now: float) -> None:
        """``peer`` left our mesh for ``topic``."""

    def validate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        """First copy of a message received from ``peer``; validation starts."""

    def deliver_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        """The message was ACCEPTed (and will be forwarded)."""

    def reject_message(
        self,
        msg_id: MsgId | None,
        msg: Message,
        peer: PeerId,
        verdict: WireVerdict,
        reason: str,
        now: float,
    ) -> None:
        """REJECT (sender penalised) or IGNORE (not penalised); ``msg_id`` None if unknown."""

    def duplicate_message(self, msg_id: MsgId, msg: Message, peer: PeerId, now: float) -> None:
        """A copy of a message we have already seen."""

    def behaviour_penalty(self, peer: PeerId, count: float, reason: str, now: float) -> None:
        """A protocol misbehaviour (P7): broken promise, GRAFT in backoff, malformed RPC."""
