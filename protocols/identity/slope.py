"""Slope verification (SPEC 2.11, 2.13, 2.16, 2.18): one function, one tracker, one queue.

:func:`verify_slope` checks a run of lineage entries from genesis or from a trusted entry:
links, signer rule, reveals, running totals, every DAH step, host admission and signature,
epochs, and the head's freshness and state digest. It returns a :class:`SlopeCheck` naming
the reason and the step of the first refusal; it never raises for bad entries.

:class:`SlopeTracker` remembers the last trusted head per slope (by genesis DAH, bounded,
least recently used evicted) and checks a newly seen lineage against it: replay, fork,
a continuation (only the new steps are verified), or a gap the agent no longer carries.
:class:`DelayedValidation` holds such gaps as deferred checks with deadlines until the
missing steps are supplied and replayed (SPEC 2.18 delayed validation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from protocols.agent import lineage as lineage_mod
from protocols.agent.schema import GENESIS_PREV, Agent, LineageEntry, MutationClass
from protocols.errors import SchemaError
from protocols.identity.dah import GENESIS_DAH_PREV, entry_dah, genesis_totals, next_totals
from protocols.identity.host import (
    HostDirectory,
    VerifiedSignatures,
    check_signature,
    verify_signature,
)
from protocols.identity.host_secrets import commitment
from protocols.identity.reasons import SlopeReason, SlopeRefusal
from protocols.identity.recovery import ForwardLink, RecoveryVerifier, link_ok

__all__ = [
    "Deferred",
    "DelayParams",
    "DelayedValidation",
    "Equivocation",
    "SlopeCheck",
    "SlopeParams",
    "SlopeReason",
    "SlopeRefusal",
    "SlopeTracker",
    "find_equivocation",
    "verify_agent",
    "verify_slope",
]


@dataclass(frozen=True, slots=True)
class SlopeParams:
    """Bounds of the acceptance envelope (DESIGN 5 "Time", SPEC 2.18).

    ``window``: the head epoch must be within +-window of the local epoch (None: no freshness
    check, for anti-entropy sync where continuity decides). ``max_ahead``: no entry epoch may
    exceed the local epoch + max_ahead. ``max_gap``: the most steps a tracker bridges in one
    check. ``recovery``: how the zone verifies recovery entries, e.g. a
    :class:`~protocols.identity.recovery.RecoveryRule` (None: recovery entries refused).
    """

    window: int | None = 1
    max_ahead: int = 1
    max_gap: int = 64
    recovery: RecoveryVerifier | None = None

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 0:
            raise SchemaError("window must be >= 0", path="slope.window")
        if self.max_ahead < 0 or self.max_gap < 1:
            raise SchemaError("max_ahead >= 0 and max_gap >= 1", path="slope")


DEFAULT_PARAMS: Final = SlopeParams()


@dataclass(frozen=True, slots=True)
class SlopeCheck:
    """Result of a slope check. ``step`` indexes the entries checked (-1: none in particular);
    on success ``head``/``head_dah``/``depth`` describe the verified head. ``conflict`` is the
    entry that branches off the trusted slope on a FORK (for an equivocation proof)."""

    reason: SlopeReason
    step: int = -1
    message: str = ""
    head: bytes = b""
    head_dah: bytes = b""
    depth: int = -1
    conflict: LineageEntry | None = None

    @property
    def ok(self) -> bool:
        return self.reason is SlopeReason.OK

    def error(self) -> SlopeRefusal:
        return SlopeRefusal(self.reason, self.step, self.message)

    def raise_if_refused(self) -> None:
        """Raise the SlopeError (a SlopeRefusal naming reason and step) unless OK."""
        if not self.ok:
            raise self.error()


def _fail(reason: SlopeReason, step: int, message: str) -> SlopeCheck:
    return SlopeCheck(reason, step, message)


def _step_problem(
    e: LineageEntry,
    prev: LineageEntry,
    prev_name: bytes,
    body: bytes,
    params: SlopeParams,
    genesis: tuple[bytes, int] | None,
) -> tuple[SlopeReason, str] | None:
    if e.prev != prev_name:
        return SlopeReason.NON_DESCENDANT, "prev does not name the entry this step must follow"
    if e.type is MutationClass.INITIALIZATION:
        return SlopeReason.BAD_GENESIS, "an initialization entry in the middle of a slope"
    if e.epoch < prev.epoch:
        return SlopeReason.EPOCH_WINDOW, f"epoch {e.epoch} goes back from {prev.epoch}"
    if e.type is MutationClass.RECOVERY:
        if params.recovery is None:
            return SlopeReason.BAD_RECOVERY, "no recovery rule configured for this zone"
        why = params.recovery.why_not(e, prev, genesis)
        if why is not None:
            return SlopeReason.BAD_RECOVERY, why
    else:
        if e.host != prev.next_signer:
            return SlopeReason.WRONG_SIGNER, "signed by a host other than the named next signer"
        if commitment(e.reveal) != prev.commit:
            return SlopeReason.BAD_REVEAL, "reveal does not open the previous entry's commit"
    if e.totals != next_totals(prev, e.type, e.zone, e.epoch):
        return SlopeReason.BAD_TOTALS, "running totals do not follow from the previous entry"
    if e.dah != entry_dah(prev.dah, e, body):
        return SlopeReason.BAD_STEP, "DAH does not recompute from the previous DAH"
    return None


def _genesis_problem(e: LineageEntry, body: bytes) -> tuple[SlopeReason, str] | None:
    if e.prev != GENESIS_PREV or e.type is not MutationClass.INITIALIZATION:
        return SlopeReason.BAD_GENESIS, "first step is not an initialization entry on the zero base"
    if e.totals != genesis_totals(e.zone, e.totals.delegation) or (
        (e.totals.delegation > 0) != bool(e.link)
    ):
        return SlopeReason.BAD_TOTALS, "genesis totals are not the starting totals"
    if e.dah != entry_dah(GENESIS_DAH_PREV, e, body):
        return SlopeReason.BAD_STEP, "genesis DAH does not recompute"
    return None


def _host_problem(
    e: LineageEntry,
    body: bytes,
    hosts: HostDirectory,
    epoch: int,
    params: SlopeParams,
    verified: VerifiedSignatures | None,
) -> tuple[SlopeReason, str] | None:
    if e.epoch > epoch + params.max_ahead:
        return SlopeReason.EPOCH_WINDOW, f"epoch {e.epoch} is ahead of the local epoch {epoch}"
    record = hosts.by_key(e.host)
    if record is None:
        return SlopeReason.UNKNOWN_HOST, "signing host is not admitted"
    named = hosts.by_name(e.host_record) if e.host_record else record
    if named is not record and named != record:  # identity first: the usual, cheap case
        return SlopeReason.UNKNOWN_HOST, "names a host record that does not admit its signer"
    if e.epoch < record.valid_from_epoch:
        return SlopeReason.UNKNOWN_HOST, "made before the host's record is valid"
    if not check_signature(e.host, lineage_mod.signing_message(body, e.dah), e.sig, verified):
        return SlopeReason.BAD_SIGNATURE, "host signature does not verify"
    return None


def verify_slope(
    entries: Sequence[LineageEntry],
    trusted_head: LineageEntry | None,
    hosts: HostDirectory,
    *,
    epoch: int,
    params: SlopeParams = DEFAULT_PARAMS,
    head_state: bytes | None = None,
    genesis: tuple[bytes, int] | None = None,
    trusted_name: bytes | None = None,
    verified: VerifiedSignatures | None = None,
) -> SlopeCheck:
    """Check ``entries`` as the continuation of ``trusted_head`` (None: from genesis).

    ``epoch`` is the local epoch; ``head_state`` the recomputed state digest of the agent
    (checked against the head's); ``genesis`` the slope's (genesis DAH, epoch) when
    ``trusted_head`` is given (needed only to check recovery tokens); ``trusted_name`` the
    trusted head's name when the caller already computed it; ``verified`` the caller's
    cache of signatures that verified (it changes no verdict, see
    :class:`~protocols.identity.host.VerifiedSignatures`).
    """
    if not entries:
        return _fail(SlopeReason.MALFORMED, 0, "no entries to check")
    prev = trusted_head
    if prev is None:
        prev_name = GENESIS_PREV
    elif trusted_name is not None:
        prev_name = trusted_name
    else:
        prev_name = lineage_mod.entry_hash(prev)
    if prev is None:
        genesis = (entries[0].dah, entries[0].epoch)
    body = b""
    for i, e in enumerate(entries):
        body = lineage_mod.body_digest(e)
        if prev is None:
            problem = _genesis_problem(e, body)
        else:
            problem = _step_problem(e, prev, prev_name, body, params, genesis)
        if problem is None:
            problem = _host_problem(e, body, hosts, epoch, params, verified)
        if problem is not None:
            return _fail(problem[0], i, problem[1])
        prev, prev_name = e, lineage_mod.entry_hash(e)  # memoized; body is e's digest
    last = len(entries) - 1
    head = entries[last]
    if hosts.is_revoked(head.host):
        return _fail(SlopeReason.REVOKED_HOST, last, "head is signed by a revoked host")
    if hosts.is_revoked(head.next_signer):
        return _fail(SlopeReason.REVOKED_HOST, last, "head names a revoked next signer")
    if params.window is not None and abs(head.epoch - epoch) > params.window:
        return _fail(
            SlopeReason.EPOCH_WINDOW,
            last,
            f"head epoch {head.epoch} is outside {epoch}+-{params.window}",
        )
    if head_state is not None and head_state != head.state_digest:
        return _fail(SlopeReason.BAD_STATE, last, "head state digest differs from the agent")
    return SlopeCheck(SlopeReason.OK, -1, "", prev_name, head.dah, head.totals.depth)


def _checkpoint_problem(
    entry: LineageEntry, hosts: HostDirectory, verified: VerifiedSignatures | None
) -> str | None:
    """A pruned entry is taken on its signature alone (its own step is not carried)."""
    body = lineage_mod.body_digest(entry)
    if hosts.by_key(entry.host) is None:
        return "the pruned checkpoint entry's host is not admitted"
    message = lineage_mod.signing_message(body, entry.dah)
    if not check_signature(entry.host, message, entry.sig, verified):
        return "the pruned checkpoint entry's signature does not verify"
    return None


def verify_agent(
    agent: Agent,
    hosts: HostDirectory,
    tracker: SlopeTracker | None,
    epoch: int,
    *,
    params: SlopeParams = DEFAULT_PARAMS,
    verified: VerifiedSignatures | None = None,
) -> SlopeCheck:
    """Check a (structurally valid) agent's slope; records nothing.

    With a tracker that trusts a head of this slope, only the steps after that head are
    checked (replay, fork and gap are named). Otherwise the whole carried lineage is checked
    with no prior trust: from genesis when nothing was pruned, else from the pruned
    checkpoint entry (whose host and signature must verify). The head's state digest is
    recomputed from the agent either way. ``verified``: see :func:`verify_slope`.
    """
    if tracker is not None:
        return tracker.check(agent, hosts, epoch=epoch, params=params, verified=verified)
    line = agent.lineage
    if line is None or not line.entries:
        return _fail(SlopeReason.MALFORMED, 0, "agent has no lineage")
    if line.pruned is not None:
        why = _checkpoint_problem(line.pruned, hosts, verified)
        if why is not None:
            return SlopeCheck(SlopeReason.UNKNOWN_HOST, -1, why)
    return verify_slope(
        line.entries,
        line.pruned,
        hosts,
        epoch=epoch,
        params=params,
        head_state=lineage_mod.state_digest(agent),
        genesis=(line.genesis_dah, line.genesis_epoch),
        verified=verified,
    )


# -- equivocation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Proof that one host signed two different entries on the same previous entry."""

    first: LineageEntry
    second: LineageEntry

    @property
    def host(self) -> bytes:
        return self.first.host

    def valid(self) -> bool:
        """Anyone can check the proof: same signer, same prev, different entries, both signed."""
        a, b = self.first, self.second
        if a.host != b.host or a.prev != b.prev or a == b:
            return False
        return all(
            verify_signature(
                e.host, lineage_mod.signing_message(lineage_mod.body_digest(e), e.dah), e.sig
            )
            for e in (a, b)
        )


def find_equivocation(a: LineageEntry, b: LineageEntry) -> Equivocation | None:
    """The proof object when ``a`` and ``b`` equivocate, else None."""
    first, second = sorted((a, b), key=lineage_mod.entry_hash)
    proof = Equivocation(first, second)
    return proof if proof.valid() else None


# -- tracker -------------------------------------------------------------------------------

_DEPTH: Final = 8


class SlopeTracker:
    """Last trusted head per slope, keyed by genesis DAH; bounded, least recently used evicted.

    Per slope it keeps 40 bytes (head name and depth) under a 32-byte key, so a million
    slopes fit in about 200 MB of CPython objects.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise SchemaError("capacity must be >= 1", path="tracker.capacity")
        self.capacity = capacity
        self._heads: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._heads)

    def trusted(self, genesis_dah: bytes) -> tuple[bytes, int] | None:
        """(head name, depth) trusted for the slope, or None."""
        value = self._heads.get(genesis_dah)
        if value is None:
            return None
        return value[:32], int.from_bytes(value[32:], "big")

    def remember(self, genesis_dah: bytes, head: bytes, depth: int) -> None:
        """Trust ``head`` for the slope (most recently used); evict the least recent."""
        heads = self._heads
        heads.pop(genesis_dah, None)
        heads[genesis_dah] = head + depth.to_bytes(_DEPTH, "big")
        while len(heads) > self.capacity:
            del heads[next(iter(heads))]

    def forget(self, genesis_dah: bytes) -> None:
        self._heads.pop(genesis_dah, None)

    def check(
        self,
        agent: Agent,
        hosts: HostDirectory,
        *,
        epoch: int,
        params: SlopeParams = DEFAULT_PARAMS,
        bridge: Sequence[LineageEntry] = (),
        verified: VerifiedSignatures | None = None,
    ) -> SlopeCheck:
        """Check ``agent`` against the trusted head of its slope; records nothing.

        ``bridge``: the steps from the trusted head itself up to the agent's first carried
        entry, when the agent no longer carries the trusted head (delayed validation).
        ``verified``: see :func:`verify_slope`.
        """
        line = agent.lineage
        if line is None or not line.entries:
            return _fail(SlopeReason.MALFORMED, 0, "agent has no lineage")
        known = self.trusted(line.genesis_dah)
        if known is None:
            return verify_agent(agent, hosts, None, epoch, params=params, verified=verified)
        trusted_name, trusted_depth = known
        entries = line.entries
        head_depth = entries[-1].totals.depth
        first_depth = entries[0].totals.depth
        if head_depth < trusted_depth:
            return _fail(SlopeReason.REPLAY, len(entries) - 1, "older than the trusted head")
        if head_depth - trusted_depth > params.max_gap:
            return _fail(
                SlopeReason.GAP_TOO_LARGE,
                0,
                f"{head_depth - trusted_depth} steps past the trusted head, bound {params.max_gap}",
            )
        chain: Sequence[LineageEntry] = entries
        base_at = trusted_depth - first_depth
        if base_at < -1 or (base_at == -1 and line.pruned is None):
            if not bridge:
                return _fail(
                    SlopeReason.NEEDS_STEPS,
                    0,
                    "the agent no longer carries the trusted head; the missing steps are needed",
                )
            joined = _join(bridge, entries)
            if joined is None:
                return _fail(
                    SlopeReason.NON_DESCENDANT, 0, "supplied steps do not join the lineage"
                )
            chain = joined
            base_at = trusted_depth - chain[0].totals.depth
            if base_at < 0:
                return _fail(
                    SlopeReason.NON_DESCENDANT, 0, "supplied steps must start at the trusted head"
                )
        if base_at == -1:
            assert line.pruned is not None
            base: LineageEntry = line.pruned
        else:
            if not 0 <= base_at < len(chain):
                return _fail(SlopeReason.NON_DESCENDANT, 0, "steps do not reach the trusted head")
            base = chain[base_at]
        if lineage_mod.entry_hash(base) != trusted_name:
            step = max(base_at, 0)
            return SlopeCheck(
                SlopeReason.FORK,
                step,
                "a different step at the trusted depth: the slope was forked",
                conflict=base,
            )
        rest = chain[base_at + 1 :]
        if not rest:
            return _fail(SlopeReason.REPLAY, len(chain) - 1, "the trusted head itself")
        result = verify_slope(
            rest,
            base,
            hosts,
            epoch=epoch,
            params=params,
            head_state=lineage_mod.state_digest(agent),
            genesis=(line.genesis_dah, line.genesis_epoch),
            trusted_name=trusted_name,
            verified=verified,
        )
        if result.ok:
            return result
        offset = len(chain) - len(entries)
        return SlopeCheck(
            result.reason, result.step + base_at + 1 - offset, result.message, conflict=None
        )

    def accept(
        self,
        agent: Agent,
        hosts: HostDirectory,
        *,
        epoch: int,
        params: SlopeParams = DEFAULT_PARAMS,
        bridge: Sequence[LineageEntry] = (),
        verified: VerifiedSignatures | None = None,
    ) -> SlopeCheck:
        """:meth:`check`, and on success trust the new head."""
        result = self.check(
            agent, hosts, epoch=epoch, params=params, bridge=bridge, verified=verified
        )
        if result.ok:
            assert agent.lineage is not None
            self.remember(agent.lineage.genesis_dah, result.head, result.depth)
        return result

    def rotate(
        self,
        old_genesis: bytes,
        old_head: LineageEntry,
        link: ForwardLink,
        agent: Agent,
        hosts: HostDirectory,
        *,
        epoch: int,
        params: SlopeParams = DEFAULT_PARAMS,
    ) -> SlopeCheck:
        """Follow a rotation: trust ``agent``'s new slope in place of the old one when the
        forward link ties the old head this tracker trusts to the new slope's genesis."""
        known = self.trusted(old_genesis)
        if known is None or known[0] != lineage_mod.entry_hash(old_head):
            return _fail(SlopeReason.NON_DESCENDANT, -1, "the old head is not the trusted head")
        line = agent.lineage
        if line is None or line.pruned is not None or not link_ok(link, old_head, line.entries):
            return _fail(SlopeReason.NON_DESCENDANT, 0, "no valid forward link to this slope")
        result = verify_agent(agent, hosts, None, epoch, params=params)
        if result.ok:
            self.forget(old_genesis)
            self.remember(line.genesis_dah, result.head, result.depth)
        return result


def _join(
    bridge: Sequence[LineageEntry], entries: Sequence[LineageEntry]
) -> list[LineageEntry] | None:
    """Bridge steps followed by the carried entries, overlapping entries dropped once."""
    start = entries[0].totals.depth
    before = [e for e in bridge if e.totals.depth < start]
    if not before or before[-1].totals.depth != start - 1:
        return None
    return [*before, *entries]


# -- delayed validation --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DelayParams:
    """Bounded queue of deferred checks: capacity and how many epochs each may wait."""

    capacity: int = 256
    ttl_epochs: int = 6

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.ttl_epochs < 0:
            raise SchemaError("capacity >= 1 and ttl_epochs >= 0", path="delay")


@dataclass(frozen=True, slots=True)
class Deferred:
    """A check waiting for the steps between the trusted head and the agent's lineage."""

    agent: Agent
    deadline: int
    seq: int

    @property
    def key(self) -> bytes:
        assert self.agent.lineage is not None
        return self.agent.lineage.genesis_dah


@dataclass
class DelayedValidation:
    """Deferred slope checks with deadlines (SPEC 2.18); overflow refuses the oldest."""

    params: DelayParams = field(default_factory=DelayParams)
    _items: dict[bytes, Deferred] = field(default_factory=dict, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._items)

    def defer(self, agent: Agent, *, epoch: int) -> list[tuple[Deferred, SlopeCheck]]:
        """Queue ``agent`` until its missing steps arrive; returns the refusals of any
        overflowed (oldest) items."""
        if agent.lineage is None:
            raise SchemaError("agent has no lineage", path="lineage")
        self._seq += 1
        item = Deferred(agent, epoch + self.params.ttl_epochs, self._seq)
        self._items.pop(item.key, None)
        self._items[item.key] = item
        out = []
        while len(self._items) > self.params.capacity:
            oldest = min(self._items.values(), key=lambda d: d.seq)
            del self._items[oldest.key]
            out.append((oldest, _fail(SlopeReason.OVERFLOW, -1, "delayed-validation queue full")))
        return out

    def supply(
        self,
        genesis_dah: bytes,
        steps: Sequence[LineageEntry],
        tracker: SlopeTracker,
        hosts: HostDirectory,
        *,
        epoch: int,
        params: SlopeParams = DEFAULT_PARAMS,
    ) -> SlopeCheck | None:
        """Replay the supplied steps for a deferred item and settle it (None: not queued)."""
        item = self._items.pop(genesis_dah, None)
        if item is None:
            return None
        if epoch > item.deadline:
            return _fail(SlopeReason.TIMEOUT, -1, f"deadline {item.deadline} passed")
        return tracker.accept(item.agent, hosts, epoch=epoch, params=params, bridge=steps)

    def expire(self, epoch: int) -> list[tuple[Deferred, SlopeCheck]]:
        """Refuse every item whose deadline has passed (TIMEOUT), oldest first."""
        late = sorted((d for d in self._items.values() if d.deadline < epoch), key=lambda d: d.seq)
        for d in late:
            del self._items[d.key]
        return [(d, _fail(SlopeReason.TIMEOUT, -1, f"deadline {d.deadline} passed")) for d in late]
