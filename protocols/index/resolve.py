"""Alias registration and resolution over slope bands (SPEC 2.17), sans-I/O.

Three roles, each a pure object driven with messages and ``now`` (seconds):

- :class:`AnchorStore`, on an anchor: keeps registrations of the bands it holds, keyed by
  alias and by UID, newest head wins; answers queries, refusing requesters outside a
  registration's scope.
- :func:`registration_messages`: where a registration goes (the groups of ``band(alias)`` and
  ``band(uid)``).
- :class:`Resolver`, on the querying node: asks the band's group (``fanout`` anchors at once,
  then the rest), then adjacent bands up to the bound; checks the action-type policy *before*
  a result is used; repairs anchors that answered with a stale head (read repair).

A "hop" is one round of requests on direct streams (DESIGN 8 models a direct stream as one
hop whatever the path length), so a lookup answered by the first round took one hop.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols.agent.schema import LineageEntry
from protocols.identity.host import HostDirectory, VerifiedSignatures
from protocols.index.band import (
    BandTable,
    IndexParams,
    adjacent_bands,
    alias_name,
    band_of,
    uid_name,
)
from protocols.index.binding import check_binding

PROOF_ENTRY_BYTES = 640
"""Approximate bytes of one lineage entry held in a proof (its CBOR is about 630)."""


class Outcome(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not-found"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Registration:
    """An alias bound to a UID and its lineage head, visible to the zones in ``scope``."""

    uid: bytes
    alias: str
    head: bytes
    depth: int
    """Lineage depth of ``head``: a deeper head is newer (slopes only grow)."""
    scope: tuple[str, ...] = ()
    """Zones whose members may resolve it; empty means any zone."""
    proof: tuple[LineageEntry, ...] = ()
    """Lineage entries ending at ``head`` that tie it to the UID's slope (see binding)."""
    sig: bytes = b""
    """The head signer's signature over the other fields but ``proof`` (see binding)."""

    def fresher_than(self, other: Registration) -> bool:
        return (self.depth, self.head) > (other.depth, other.head)


@dataclass(frozen=True, slots=True)
class Query:
    query_id: int
    alias: str | None
    uid: bytes | None
    requester_zone: str


@dataclass(frozen=True, slots=True)
class Reply:
    query_id: int
    anchor: bytes
    outcome: Outcome
    registration: Registration | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SendQuery:
    """Output: send ``query`` to ``anchor`` on the alias protocol."""

    anchor: bytes
    query: Query


@dataclass(frozen=True, slots=True)
class SendRegister:
    """Output: store ``registration`` at ``anchor`` (also used for read repair)."""

    anchor: bytes
    registration: Registration


@dataclass(frozen=True, slots=True)
class Resolved:
    """Output: the lookup finished."""

    query_id: int
    outcome: Outcome
    registration: Registration | None
    hops: int
    messages: int
    reason: str = ""


ResolverOutput = SendQuery | SendRegister | Resolved


@dataclass(frozen=True, slots=True)
class AliasPolicy:
    """Which zones may resolve which action types (``fetch`` in ``fetch:image``).

    An action type not listed is open to every zone; a listed one only to its zones.
    """

    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def permits(self, alias: str, zone: str) -> bool:
        action, sep, _rest = alias.partition(":")
        if not sep or action not in self.allowed:
            return True
        return zone in self.allowed[action]


def registration_messages(reg: Registration, table: BandTable) -> list[SendRegister]:
    """Store a registration at every anchor of the alias band and of the UID band."""
    first, then = registration_phases(reg, table)
    return [*first, *then]


def registration_phases(
    reg: Registration, table: BandTable
) -> tuple[list[SendRegister], list[SendRegister]]:
    """(the alias band's anchors, the UID band's others): send the second only once the first
    stored it.

    Why two phases: only the alias band's anchors know which UID an alias is bound to, so
    only they can refuse ``alias-bound``; sent to all at once, a UID-band anchor outside the
    alias group stored an alias re-bound to another UID (found by test_svc_alias).
    """
    params = table.params
    first = list(dict.fromkeys(table.group(band_of(alias_name(reg.alias), params))))
    rest = [a for a in dict.fromkeys(table.group(band_of(uid_name(reg.uid), params)))]
    then = [a for a in rest if a not in first]
    return [SendRegister(a, reg) for a in first], [SendRegister(a, reg) for a in then]


class AnchorStore:
    """Registrations held by one anchor."""

    __slots__ = ("by_alias", "by_uid", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.by_alias: dict[str, Registration] = {}
        self.by_uid: dict[bytes, Registration] = {}

    def register(
        self,
        reg: Registration,
        hosts: HostDirectory,
        epoch: int,
        verified: VerifiedSignatures | None = None,
    ) -> bool:
        """Verify ``reg`` (:func:`~protocols.index.binding.check_binding`), then keep it if it
        is new or fresher; return whether anything changed. A refused registration raises
        :class:`~protocols.index.binding.RegistrationRefused` and changes nothing."""
        self.check(reg, hosts, epoch, verified)
        return self.restore(reg)

    def check(
        self,
        reg: Registration,
        hosts: HostDirectory,
        epoch: int,
        verified: VerifiedSignatures | None = None,
    ) -> None:
        """Raise RegistrationRefused unless ``reg`` may be stored here (stores nothing)."""
        check_binding(
            reg,
            bound=self.by_alias.get(reg.alias),
            known=self.by_uid.get(reg.uid),
            hosts=hosts,
            epoch=epoch,
            verified=verified,
        )

    def restore(self, reg: Registration) -> bool:
        """Keep an already verified ``reg`` (e.g. reloaded from this anchor's own file)."""
        changed = False
        old = self.by_alias.get(reg.alias)
        if old is None or (old.uid == reg.uid and reg.fresher_than(old)):
            self.by_alias[reg.alias] = reg
            changed = True
        old = self.by_uid.get(reg.uid)
        if old is None or reg.fresher_than(old):
            self.by_uid[reg.uid] = reg
            changed = True
        return changed

    def lookup(self, query: Query) -> Reply:
        reg = None
        if query.alias is not None:
            reg = self.by_alias.get(query.alias)
        elif query.uid is not None:
            reg = self.by_uid.get(query.uid)
        if reg is None:
            return Reply(query.query_id, self.key, Outcome.NOT_FOUND)
        if reg.scope and query.requester_zone not in reg.scope:
            return Reply(
                query.query_id,
                self.key,
                Outcome.REFUSED,
                reason=f"zone {query.requester_zone!r} is outside the alias scope",
            )
        return Reply(query.query_id, self.key, Outcome.FOUND, reg)

    def state_bytes(self) -> int:
        """Approximate bytes of registration state held (for the per-node state figure)."""
        per = 32 + 32 + 8 + 48 + 64  # uid, head, depth, alias/scope/overhead, signature
        regs = (*self.by_alias.values(), *self.by_uid.values())
        return sum(per + PROOF_ENTRY_BYTES * len(r.proof) for r in regs)


@dataclass(slots=True)
class _Lookup:
    query: Query
    rounds: list[tuple[bytes, ...]]
    deadline: float
    primary: tuple[bytes, ...] = ()
    hops: int = 0
    messages: int = 0
    waiting: set[bytes] = field(default_factory=set)
    replies: list[Reply] = field(default_factory=list)


class Resolver:
    """Resolution state machine of one querying node."""

    def __init__(
        self,
        table: BandTable,
        *,
        fanout: int = 2,
        round_timeout_s: float = 2.0,
        policy: AliasPolicy | None = None,
        requester_zone: str = "",
    ) -> None:
        if fanout < 1:
            raise ValueError("fanout must be at least 1")
        self.table = table
        self.fanout = fanout
        self.round_timeout_s = round_timeout_s
        self.policy = policy or AliasPolicy()
        self.requester_zone = requester_zone
        self._lookups: dict[int, _Lookup] = {}

    @property
    def params(self) -> IndexParams:
        return self.table.params

    def resolve_alias(self, query_id: int, alias: str, now: float) -> list[ResolverOutput]:
        if not self.policy.permits(alias, self.requester_zone):
            return [
                Resolved(
                    query_id,
                    Outcome.REFUSED,
                    None,
                    0,
                    0,
                    reason=f"policy forbids {alias!r} in zone {self.requester_zone!r}",
                )
            ]
        band = band_of(alias_name(alias), self.params)
        return self._start(Query(query_id, alias, None, self.requester_zone), band, now)

    def resolve_uid(self, query_id: int, uid: bytes, now: float) -> list[ResolverOutput]:
        band = band_of(uid_name(uid), self.params)
        return self._start(Query(query_id, None, uid, self.requester_zone), band, now)

    def _start(self, query: Query, band: int, now: float) -> list[ResolverOutput]:
        group = self.table.group(band)
        rounds: list[tuple[bytes, ...]] = [group[: self.fanout]]
        if group[self.fanout :]:
            rounds.append(group[self.fanout :])
        for other in adjacent_bands(band, self.params):
            rounds.append(tuple(a for a in self.table.group(other) if a not in group))
        lookup = _Lookup(query, [r for r in rounds if r], deadline=now, primary=group)
        self._lookups[query.query_id] = lookup
        return self._next_round(lookup, now)

    def _next_round(self, lookup: _Lookup, now: float) -> list[ResolverOutput]:
        if not lookup.rounds:
            del self._lookups[lookup.query.query_id]
            return [
                Resolved(
                    lookup.query.query_id, Outcome.NOT_FOUND, None, lookup.hops, lookup.messages
                )
            ]
        anchors = lookup.rounds.pop(0)
        lookup.hops += 1
        lookup.messages += len(anchors)
        lookup.waiting = set(anchors)
        lookup.deadline = now + self.round_timeout_s
        return [SendQuery(anchor, lookup.query) for anchor in anchors]

    def next_deadline(self) -> float | None:
        """Earliest round deadline, so the driver can schedule one timer."""
        return min((lk.deadline for lk in self._lookups.values()), default=None)

    def on_reply(self, reply: Reply, now: float) -> list[ResolverOutput]:
        lookup = self._lookups.get(reply.query_id)
        if lookup is None or reply.anchor not in lookup.waiting:
            return []  # late or unsolicited: ignored
        lookup.waiting.discard(reply.anchor)
        lookup.messages += 1
        lookup.replies.append(reply)
        if lookup.waiting:
            return []
        return self._finish_round(lookup, now)

    def on_timeout(self, now: float) -> list[ResolverOutput]:
        """Close every round whose deadline has passed; silent anchors count as not found."""
        out: list[ResolverOutput] = []
        for query_id in sorted(self._lookups):
            lookup = self._lookups[query_id]
            if lookup.deadline <= now:
                lookup.waiting.clear()
                out.extend(self._finish_round(lookup, now))
        return out

    def _finish_round(self, lookup: _Lookup, now: float) -> list[ResolverOutput]:
        replies = lookup.replies
        lookup.replies = []
        refused = [r for r in replies if r.outcome is Outcome.REFUSED]
        found = [r for r in replies if r.outcome is Outcome.FOUND and r.registration]
        if refused and not found:
            del self._lookups[lookup.query.query_id]
            return [
                Resolved(
                    lookup.query.query_id,
                    Outcome.REFUSED,
                    None,
                    lookup.hops,
                    lookup.messages,
                    reason=refused[0].reason,
                )
            ]
        if not found:
            return self._next_round(lookup, now)
        best = found[0].registration
        assert best is not None
        for reply in found[1:]:
            if reply.registration is not None and reply.registration.fresher_than(best):
                best = reply.registration
        if not self.policy.permits(best.alias, self.requester_zone):
            del self._lookups[lookup.query.query_id]
            return [
                Resolved(
                    lookup.query.query_id,
                    Outcome.REFUSED,
                    None,
                    lookup.hops,
                    lookup.messages,
                    reason="policy forbids the resolved alias",
                )
            ]
        repairs: list[ResolverOutput] = [
            SendRegister(r.anchor, best)
            for r in replies
            if r.anchor in lookup.primary
            and (
                r.outcome is Outcome.NOT_FOUND
                or (r.registration is not None and best.fresher_than(r.registration))
            )
        ]
        del self._lookups[lookup.query.query_id]
        return [
            *repairs,
            Resolved(
                lookup.query.query_id,
                Outcome.FOUND,
                best,
                lookup.hops,
                lookup.messages + len(repairs),
            ),
        ]
