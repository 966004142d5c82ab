"""The seen-message cache (``seenTTL``): message ids remembered for duplicate suppression."""

from __future__ import annotations

from collections import deque

from protocols.types import MsgId


class SeenCache:
    """Message ids with a first-seen time, forgotten ``ttl`` seconds later.

    Entries are appended in time order, so expiry pops from the front of a deque: O(1) per
    entry, no scan, no reliance on dict ordering after deletions.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.ids: dict[MsgId, float] = {}
        """id -> first-seen time; read-only for callers (``in`` on it is the hot path)."""
        self._order: deque[tuple[float, MsgId]] = deque()

    def __contains__(self, msg_id: MsgId) -> bool:
        return msg_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, msg_id: MsgId, now: float) -> bool:
        """Record ``msg_id``; False if it was already there (a duplicate)."""
        if msg_id in self.ids:
            return False
        self.ids[msg_id] = now
        self._order.append((now, msg_id))
        return True

    def expire(self, now: float) -> None:
        cutoff = now - self.ttl
        order = self._order
        while order and order[0][0] <= cutoff:
            _, mid = order.popleft()
            self.ids.pop(mid, None)
