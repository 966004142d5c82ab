"""Kademlia baseline for the index benchmark: XOR routing, k = 20, alpha = 3 (as py-libp2p's
kad-dht), on the same node count and workload as the slope-band index.

Routing tables are built as a well-populated DHT would have them: bucket i of node x holds up
to k nodes whose ids share exactly i leading bits with x, sampled with the run's seed. Sorted
ids make every bucket a contiguous range, so tables are built lazily in O(k log N) per bucket.
Lookups are iterative FIND_VALUE: query the alpha closest unqueried contacts each round, stop
at the first node that holds the value (values live on the k nodes closest to the key).
A round of parallel requests is one hop; each request and each reply is one message.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass, field

ID_BITS = 256


@dataclass(frozen=True, slots=True)
class KadParams:
    k: int = 20
    alpha: int = 3
    max_rounds: int = 32


@dataclass(frozen=True, slots=True)
class KadLookup:
    found: bool
    hops: int
    messages: int


def node_id(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/kad/{index}".encode()).digest(), "big")


def key_id(name: bytes) -> int:
    return int.from_bytes(hashlib.sha256(name).digest(), "big")


@dataclass
class KadNet:
    """N Kademlia nodes with lazily built routing tables."""

    count: int
    seed: int = 1
    params: KadParams = field(default_factory=KadParams)

    def __post_init__(self) -> None:
        self.ids = sorted(node_id(self.seed, i) for i in range(self.count))
        self._tables: dict[int, tuple[int, ...]] = {}
        self.stored: dict[int, set[int]] = {}  # key -> holders

    def table(self, me: int) -> tuple[int, ...]:
        """Contacts of node ``me`` (all its buckets), built on first use."""
        cached = self._tables.get(me)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}/table/{me}")
        contacts: list[int] = []
        for shared in range(ID_BITS):
            bit = ID_BITS - 1 - shared
            prefix = (me >> (bit + 1)) << (bit + 1)
            flipped = prefix | ((~me) & (1 << bit))
            low = flipped
            high = flipped | ((1 << bit) - 1)
            lo = bisect.bisect_left(self.ids, low)
            hi = bisect.bisect_right(self.ids, high)
            if hi > lo:
                span = self.ids[lo:hi]
                contacts.extend(
                    span if len(span) <= self.params.k else rng.sample(span, self.params.k)
                )
            # Once fewer than 2 ids share the prefix, deeper buckets are empty.
            lo_all = bisect.bisect_left(self.ids, prefix)
            hi_all = bisect.bisect_right(self.ids, prefix | ((1 << (bit + 1)) - 1))
            if hi_all - lo_all <= 1:
                break
        result = tuple(contacts)
        self._tables[me] = result
        return result

    def closest(self, key: int, count: int) -> list[int]:
        """The ``count`` nodes closest to ``key`` in the whole network (where values live)."""
        at = bisect.bisect_left(self.ids, key)
        window = self.ids[max(0, at - 4 * count) : at + 4 * count]
        return sorted(window, key=lambda n: n ^ key)[:count]

    def store(self, name: bytes) -> int:
        """Store a value at its k closest nodes; return the STORE messages (requests+replies).

        The FIND_NODE lookup that locates them costs about one lookup; the caller adds it.
        """
        key = key_id(name)
        holders = self.closest(key, self.params.k)
        self.stored[key] = set(holders)
        return 2 * len(holders)

    def lookup(self, origin: int, name: bytes) -> KadLookup:
        key = key_id(name)
        holders = self.stored.get(key, set())
        if origin in holders:
            return KadLookup(True, 0, 0)
        k, alpha = self.params.k, self.params.alpha
        shortlist = sorted(self.table(origin), key=lambda n: n ^ key)[:k]
        queried: set[int] = {origin}
        hops = messages = 0
        for _ in range(self.params.max_rounds):
            batch = [n for n in shortlist if n not in queried][:alpha]
            if not batch:
                break
            hops += 1
            messages += 2 * len(batch)
            learned: list[int] = []
            for node in batch:
                queried.add(node)
                if node in holders:
                    return KadLookup(True, hops, messages)
                learned.extend(sorted(self.table(node), key=lambda n: n ^ key)[:k])
            shortlist = sorted(set(shortlist) | set(learned), key=lambda n: n ^ key)[:k]
        return KadLookup(False, hops, messages)

    def state_bytes_per_node(self, value_bytes: int = 120) -> float:
        """Mean routing-table plus stored-value bytes per node (32-byte id + 40 address)."""
        tables = [len(t) for t in self._tables.values()] or [0]
        mean_contacts = sum(tables) / len(tables)
        values = sum(len(h) for h in self.stored.values()) / max(1, self.count)
        return mean_contacts * 72 + values * value_bytes
