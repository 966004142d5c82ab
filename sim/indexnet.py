"""The slope-band index on an in-memory network: the protocol objects of protocols.index,
driven message by message with per-message counting.

Direct streams (DESIGN 8) are one hop each whatever the path, so a lookup's hops are its
request rounds. A dead anchor never replies; the resolver's round times out. Used by the index
tests and by bench/index.py; the real node drives the same objects over /meshnode/alias/1.0.0.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocols.index.anchors import AnchorDirectory, sign_anchor_record, signing_key_from_seed
from protocols.index.band import BandTable, IndexParams
from protocols.index.resolve import (
    AliasPolicy,
    AnchorStore,
    Registration,
    Resolved,
    Resolver,
    ResolverOutput,
    SendQuery,
    SendRegister,
    registration_messages,
)

if TYPE_CHECKING:
    from nacl.signing import SigningKey


def anchor_signing_key(seed: int, index: int) -> SigningKey:
    """Deterministic anchor host key for simulations."""
    return signing_key_from_seed(hashlib.sha256(f"{seed}/anchor/{index}".encode()).digest())


@dataclass
class IndexNetStats:
    messages: int = 0
    register_messages: int = 0
    lookup_messages: int = 0
    repairs: int = 0


@dataclass
class IndexNet:
    """Anchors with their stores, one shared anchor view, and message accounting."""

    params: IndexParams
    anchor_count: int
    seed: int = 1
    epoch: int = 0
    stores: dict[bytes, AnchorStore] = field(default_factory=dict)
    dead: set[bytes] = field(default_factory=set)
    stats: IndexNetStats = field(default_factory=IndexNetStats)

    def __post_init__(self) -> None:
        self.keys = [anchor_signing_key(self.seed, i) for i in range(self.anchor_count)]
        self.anchor_keys = sorted(bytes(k.verify_key) for k in self.keys)
        self.directory = AnchorDirectory(self.params, may_anchor=lambda _key: True)
        for key in self.keys:
            self.directory.hear(
                sign_anchor_record(key, self.epoch, self.params.record_ttl_epochs), self.epoch
            )
        for anchor in self.anchor_keys:
            self.stores[anchor] = AnchorStore(anchor)
        self._next_query = 0

    @property
    def table(self) -> BandTable:
        return self.directory.table(self.epoch)

    def register(self, reg: Registration, table: BandTable | None = None) -> int:
        """Send a registration to its anchors; return the messages used."""
        sends = registration_messages(reg, table or self.table)
        for send in sends:
            self._deliver_register(send)
        self.stats.register_messages += len(sends)
        return len(sends)

    def _deliver_register(self, send: SendRegister) -> None:
        self.stats.messages += 1
        if send.anchor not in self.dead:
            self.stores[send.anchor].register(send.registration)

    def lookup(
        self,
        alias: str | None = None,
        uid: bytes | None = None,
        *,
        zone: str = "",
        policy: AliasPolicy | None = None,
        table: BandTable | None = None,
        fanout: int = 2,
    ) -> Resolved:
        """Resolve from a node holding ``table`` (default: the shared view)."""
        resolver = Resolver(table or self.table, fanout=fanout, policy=policy, requester_zone=zone)
        self._next_query += 1
        now = 0.0
        if alias is not None:
            pending = resolver.resolve_alias(self._next_query, alias, now)
        else:
            assert uid is not None
            pending = resolver.resolve_uid(self._next_query, uid, now)
        for _round in range(64):  # bounded: each round either finishes or times out
            result, pending = self._run(resolver, pending, now)
            if result is not None:
                self.stats.lookup_messages += result.messages
                return result
            now += resolver.round_timeout_s
            pending = resolver.on_timeout(now)
        raise RuntimeError("lookup did not finish in 64 rounds")

    def _run(
        self, resolver: Resolver, outputs: list[ResolverOutput], now: float
    ) -> tuple[Resolved | None, list[ResolverOutput]]:
        queue = list(outputs)
        while queue:
            out = queue.pop(0)
            if isinstance(out, Resolved):
                return out, []
            if isinstance(out, SendRegister):
                self.stats.repairs += 1
                self._deliver_register(out)
                continue
            assert isinstance(out, SendQuery)
            self.stats.messages += 1
            if out.anchor in self.dead:
                continue
            reply = self.stores[out.anchor].lookup(out.query)
            self.stats.messages += 1
            queue.extend(resolver.on_reply(reply, now))
        return None, []

    def kill(self, anchor: bytes) -> None:
        self.dead.add(anchor)

    def churn(self, fraction: float, rng: random.Random) -> tuple[bytes, ...]:
        """Remove a fraction of anchors from the view and the network; return them."""
        count = round(len(self.anchor_keys) * fraction)
        gone = tuple(rng.sample(self.anchor_keys, count))
        for anchor in gone:
            self.dead.add(anchor)
            self.directory.withdraw(anchor)
        return gone
