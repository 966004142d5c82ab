"""Overlay state: who is connected, who is subscribed to what, meshes, fanout, backoff.

Also the one way the router chooses peers: candidates are sorted first and then drawn with the
injected ``random.Random``, never taken in set or dict order, so a seed fixes every choice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocols.types import PeerId

MESHSUB_V10 = "/meshsub/1.0.0"
MESHSUB_V11 = "/meshsub/1.1.0"


@dataclass(slots=True)
class PeerState:
    protocol: str
    outbound: bool
    topics: set[str] = field(default_factory=set)

    @property
    def v11(self) -> bool:
        """v1.1 features (PX, backoff in PRUNE) only go to peers that speak them."""
        return self.protocol != MESHSUB_V10


def pick(
    rng: random.Random, peers: Iterable[PeerId], n: int, keep: Callable[[PeerId], bool]
) -> list[PeerId]:
    """Up to ``n`` peers passing ``keep``, chosen uniformly at random, deterministically."""
    if n <= 0:
        return []
    cands = [p for p in sorted(peers) if keep(p)]
    if len(cands) <= n:
        rng.shuffle(cands)
        return cands
    return rng.sample(cands, n)


class Overlay:
    """Membership tables. Mutated only by the router; read by tests."""

    def __init__(self) -> None:
        self.peers: dict[PeerId, PeerState] = {}
        self.topics: dict[str, set[PeerId]] = {}
        """topic -> connected peers that announced a subscription."""
        self.mesh: dict[str, set[PeerId]] = {}
        """joined topic -> mesh peers (a topic is joined iff it is a key here)."""
        self.fanout: dict[str, set[PeerId]] = {}
        self.lastpub: dict[str, float] = {}
        self.backoff: dict[str, dict[PeerId, float]] = {}
        """topic -> peer -> time before which neither side may GRAFT."""

    def add_backoff(self, topic: str, peer: PeerId, until: float) -> None:
        """Record a backoff, never shortening an existing one."""
        per = self.backoff.setdefault(topic, {})
        if per.get(peer, -1.0) < until:
            per[peer] = until

    def backoff_until(self, topic: str, peer: PeerId) -> float | None:
        per = self.backoff.get(topic)
        return None if per is None else per.get(peer)

    def clear_backoff(self, now: float, slack: float) -> None:
        for topic in sorted(self.backoff):
            per = self.backoff[topic]
            for p in [p for p, until in per.items() if until + slack < now]:
                del per[p]
            if not per:
                del self.backoff[topic]

    def subscribe(self, peer: PeerId, topic: str) -> None:
        self.topics.setdefault(topic, set()).add(peer)
        self.peers[peer].topics.add(topic)

    def unsubscribe(self, peer: PeerId, topic: str) -> None:
        tp = self.topics.get(topic)
        if tp is not None:
            tp.discard(peer)
            if not tp:
                del self.topics[topic]
        self.peers[peer].topics.discard(topic)
