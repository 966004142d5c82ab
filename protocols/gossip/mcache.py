"""The message cache (gossipsub-v1.0 §Message Cache): recent messages for IWANT, ids for IHAVE.

``history_length`` windows are kept and the newest ``history_gossip`` are advertised; the
heartbeat shifts the windows. Also counts IWANT retransmissions per (message, peer) so one
peer cannot pull the same message more than ``gossip_retransmission`` times.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from protocols.gossip.rpc import Message
from protocols.types import MsgId, PeerId


class MessageCache:
    def __init__(self, history_length: int, history_gossip: int) -> None:
        self._gossip = history_gossip
        self._msgs: dict[MsgId, Message] = {}
        self._peertx: dict[MsgId, dict[PeerId, int]] = {}
        self._windows: deque[list[tuple[MsgId, str]]] = deque(
            [[] for _ in range(history_length)], maxlen=history_length
        )

    def __contains__(self, msg_id: MsgId) -> bool:
        return msg_id in self._msgs

    def __len__(self) -> int:
        return len(self._msgs)

    def put(self, msg_id: MsgId, message: Message) -> None:
        if msg_id in self._msgs:
            return
        self._msgs[msg_id] = message
        self._windows[0].append((msg_id, message.topic))

    def get(self, msg_id: MsgId) -> Message | None:
        return self._msgs.get(msg_id)

    def get_for_peer(self, msg_id: MsgId, peer: PeerId) -> tuple[Message | None, int]:
        """The message and how many times ``peer`` has now asked for it."""
        m = self._msgs.get(msg_id)
        if m is None:
            return None, 0
        tx = self._peertx.setdefault(msg_id, {})
        n = tx.get(peer, 0) + 1
        tx[peer] = n
        return m, n

    def gossip_ids(self, topic: str) -> list[MsgId]:
        """Ids of ``topic`` in the newest ``history_gossip`` windows, newest first."""
        out: list[MsgId] = []
        for window in islice(self._windows, self._gossip):
            if window:  # every heartbeat asks; most windows are empty between messages
                out.extend([mid for mid, t in window if t == topic])
        return out

    def shift(self) -> None:
        """Drop the oldest window (its messages become unretrievable) and open a new one."""
        oldest = self._windows[-1]
        for mid, _ in oldest:
            self._msgs.pop(mid, None)
            self._peertx.pop(mid, None)
        self._windows.appendleft([])
