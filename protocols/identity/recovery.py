"""Recovery and rotation (SPEC 2.18; DESIGN 6 "the one exception to the signer rule").

**Recovery.** When the host an agent's head names as next signer is gone, a new host cannot
reveal the committed secret or sign as that host. Instead a *global* quorum certificate
(a :class:`RecoveryToken`) over scope ``(genesis DAH, head DAH)`` names the new signer and
the commitment it made; the recovery entry, signed by the new signer, reveals the secret of
that commitment and carries the token in ``proof``, so the token is recorded in lineage.
Validators are the first ``n`` eligible hosts ranked by ``H(zone || g0 || scope || key)``;
``k = max(ceil(2n/3), minimum)`` distinct votes are needed, votes name a deadline epoch, and
recoveries of one agent are at least ``min_gap`` epochs apart (rate limit). Validators are
previously trusted hosts: each votes only for a head its own slope tracker trusts.

**Rotation.** A slope rotated to a fresh genesis is tied to the old one by a
:class:`ForwardLink` signed by the old head's next signer, naming the old head and the new
genesis DAH: a verifier holding the old head accepts the new slope through the link and
refuses an unlinked one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from protocols import codec
from protocols.agent import lineage as lineage_mod
from protocols.agent.schema import Agent, LineageEntry, MutationClass
from protocols.errors import MeshError, SchemaError
from protocols.identity.dah import SALT_LEN, Step, StepMaterial, make_entry, next_totals
from protocols.identity.hashing import PROPOSAL_TAG, RANK_TAG, SCOPE_TAG, h, text, u64
from protocols.identity.host import LocalHost, verify_signature
from protocols.identity.host_secrets import HostSecrets, commitment
from protocols.identity.reasons import SlopeReason, SlopeRefusal

VOTE_TAG: Final = b"meshnode/recovery-vote/1\x00"
LINK_TAG: Final = b"meshnode/forward-link/1\x00"
MAX_TOKEN_BYTES: Final = 16 * 1024
MAX_VOTES: Final = 64


class RecoveryVerifier(Protocol):
    """What slope verification asks about a recovery entry (pluggable: a zone may verify
    recovery with its own quorum certificates instead of :class:`RecoveryRule` tokens)."""

    def why_not(
        self, entry: LineageEntry, prev: LineageEntry, genesis: tuple[bytes, int] | None
    ) -> str | None:
        """None when ``entry`` validly resumes the slope after ``prev``, else the reason."""


@dataclass(frozen=True, slots=True)
class RecoveryRule:
    """Quorum parameters of a zone (from its descriptor): who may vote and how many must."""

    zone: str
    eligible: tuple[bytes, ...]
    n: int = 5
    minimum: int = 1
    min_gap: int = 16
    generation_epochs: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.n <= MAX_VOTES:
            raise SchemaError(f"n must be 1..{MAX_VOTES}", path="recovery.n")
        if self.minimum < 0 or self.min_gap < 0 or self.generation_epochs <= 0:
            raise SchemaError("minimum, min_gap >= 0 and generation_epochs > 0", path="recovery")
        if self.k > self.n:
            raise SchemaError(f"k={self.k} exceeds n={self.n}", path="recovery.minimum")

    @property
    def k(self) -> int:
        """Votes needed: at least two thirds of n, and more than half (DESIGN 5 Quorum)."""
        return max(math.ceil(2 * self.n / 3), self.minimum, self.n // 2 + 1)

    def why_not(
        self, entry: LineageEntry, prev: LineageEntry, genesis: tuple[bytes, int] | None
    ) -> str | None:
        return check_recovery(entry, prev, self, genesis)


def scope(zone: str, genesis_dah: bytes, head_dah: bytes) -> bytes:
    """The recovery scope: one certificate per (zone, genesis DAH, head DAH)."""
    return h(SCOPE_TAG, text(zone), genesis_dah, head_dah)


def generation(rule: RecoveryRule, genesis_epoch: int) -> int:
    """g0: the validator generation of the slope's genesis epoch."""
    return genesis_epoch // rule.generation_epochs


def validator_set(rule: RecoveryRule, g0: int, scope_id: bytes) -> tuple[bytes, ...]:
    """The first n eligible keys ranked by ``H(zone || g0 || scope || key)`` (recomputable)."""
    ranked = sorted(
        set(rule.eligible), key=lambda key: h(RANK_TAG, text(rule.zone), u64(g0), scope_id, key)
    )
    return tuple(ranked[: rule.n])


@dataclass(frozen=True, slots=True)
class RecoveryProposal:
    """What validators vote on: resume the slope at ``head`` with a new signer and commitment."""

    zone: str
    genesis_dah: bytes
    genesis_epoch: int
    head: bytes
    head_dah: bytes
    new_signer: bytes
    commit: bytes
    deadline: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "zone": self.zone,
            "commit": self.commit,
            "deadline": self.deadline,
            "head_dah": self.head_dah,
            "new_signer": self.new_signer,
            "genesis_dah": self.genesis_dah,
            "genesis_epoch": self.genesis_epoch,
        }

    @property
    def digest(self) -> bytes:
        return h(PROPOSAL_TAG, codec.encode_ordered(self.to_cbor()))

    def scope_id(self) -> bytes:
        return scope(self.zone, self.genesis_dah, self.head_dah)

    def vote_message(self, g0: int) -> bytes:
        """Votes sign (zone, scope, g0, proposal hash, mode, deadline) (DESIGN 5)."""
        body = {
            "g0": g0,
            "mode": "global",
            "zone": self.zone,
            "scope": self.scope_id(),
            "deadline": self.deadline,
            "proposal": self.digest,
        }
        return VOTE_TAG + codec.encode_ordered(body)


@dataclass(frozen=True, slots=True)
class Vote:
    validator: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class RecoveryToken:
    """A proposal with at least k valid votes: the global quorum certificate."""

    proposal: RecoveryProposal
    votes: tuple[Vote, ...]

    def to_cbor(self) -> dict[str, Any]:
        return {
            "votes": [[v.validator, v.signature] for v in self.votes],
            "proposal": self.proposal.to_cbor(),
        }

    def encode(self) -> bytes:
        return codec.encode_ordered(self.to_cbor())


def cast_vote(proposal: RecoveryProposal, rule: RecoveryRule, validator: LocalHost) -> Vote:
    """A validator's signature on the proposal (the caller checks its own memory first)."""
    g0 = generation(rule, proposal.genesis_epoch)
    return Vote(validator.key, validator.sign(proposal.vote_message(g0)))


def count_votes(token: RecoveryToken, rule: RecoveryRule) -> int:
    """Distinct valid votes from the scope's validator set."""
    p = token.proposal
    g0 = generation(rule, p.genesis_epoch)
    allowed = set(validator_set(rule, g0, p.scope_id()))
    message = p.vote_message(g0)
    good = {
        v.validator
        for v in token.votes
        if v.validator in allowed and verify_signature(v.validator, message, v.signature)
    }
    return len(good)


def certify(
    proposal: RecoveryProposal, votes: Iterable[Vote], rule: RecoveryRule
) -> RecoveryToken | None:
    """The token when at least k distinct valid votes are in hand, else None (no token)."""
    token = RecoveryToken(proposal, tuple(sorted(votes, key=lambda v: v.validator)))
    return token if count_votes(token, rule) >= rule.k else None


_K_PROPOSAL: Final = frozenset(
    ("head", "zone", "commit", "deadline", "head_dah", "new_signer", "genesis_dah", "genesis_epoch")
)


def decode_token(data: bytes) -> RecoveryToken:
    """Token from an entry's ``proof``; DecodeError/SchemaError on anything malformed."""
    tree = codec.decode(data, max_bytes=MAX_TOKEN_BYTES, max_depth=4)
    if not isinstance(tree, dict) or set(tree) != {"votes", "proposal"}:
        raise SchemaError("not a recovery token", path="proof")
    p = tree["proposal"]
    if not isinstance(p, dict) or set(p) != _K_PROPOSAL:
        raise SchemaError("not a recovery proposal", path="proof.proposal")
    for name in ("head", "commit", "head_dah", "new_signer", "genesis_dah"):
        if type(p[name]) is not bytes or len(p[name]) != 32:
            raise SchemaError("expected 32 bytes", path=f"proof.proposal.{name}")
    for name in ("deadline", "genesis_epoch"):
        if type(p[name]) is not int or p[name] < 0:
            raise SchemaError("expected an unsigned integer", path=f"proof.proposal.{name}")
    if type(p["zone"]) is not str:
        raise SchemaError("expected text", path="proof.proposal.zone")
    votes_raw = tree["votes"]
    if type(votes_raw) is not list or len(votes_raw) > MAX_VOTES:
        raise SchemaError(f"expected at most {MAX_VOTES} votes", path="proof.votes")
    votes = []
    for i, v in enumerate(votes_raw):
        if (
            type(v) is not list
            or len(v) != 2
            or type(v[0]) is not bytes
            or type(v[1]) is not bytes
            or len(v[0]) != 32
            or len(v[1]) != 64
        ):
            raise SchemaError("expected [key, signature]", path=f"proof.votes[{i}]")
        votes.append(Vote(v[0], v[1]))
    proposal = RecoveryProposal(
        zone=p["zone"],
        genesis_dah=p["genesis_dah"],
        genesis_epoch=p["genesis_epoch"],
        head=p["head"],
        head_dah=p["head_dah"],
        new_signer=p["new_signer"],
        commit=p["commit"],
        deadline=p["deadline"],
    )
    return RecoveryToken(proposal, tuple(votes))


def check_recovery(
    entry: LineageEntry,
    prev: LineageEntry,
    rule: RecoveryRule | None,
    genesis: tuple[bytes, int] | None,
) -> str | None:
    """Why a recovery entry does not stand on ``prev`` (None: it does).

    ``genesis`` is the slope's (genesis DAH, genesis epoch), needed for the scope.
    """
    if rule is None:
        return "no recovery rule configured for this zone"
    if genesis is None:
        return "the slope's genesis DAH is not known, so the scope cannot be recomputed"
    try:
        token = decode_token(entry.proof)
    except MeshError as exc:
        return f"proof is not a recovery token ({exc.describe()})"
    p = token.proposal
    if p.zone != rule.zone:
        return f"token is for zone {p.zone!r}, not {rule.zone!r}"
    if (p.genesis_dah, p.genesis_epoch) != genesis:
        return "token names another slope's genesis"
    if p.head != lineage_mod.entry_hash(prev) or p.head_dah != prev.dah:
        return "token does not name the entry the recovery continues"
    if p.new_signer != entry.host:
        return "recovery entry is not signed by the signer the token names"
    if commitment(entry.reveal) != p.commit:
        return "reveal does not open the commitment the token names"
    if entry.epoch > p.deadline:
        return f"recovery at epoch {entry.epoch} is after the votes' deadline {p.deadline}"
    last = prev.totals.last_recovery
    if last and entry.epoch - (last - 1) < rule.min_gap:
        return f"previous recovery at epoch {last - 1}: rate limit is {rule.min_gap} epochs"
    votes = count_votes(token, rule)
    if votes < rule.k:
        return f"{votes} valid votes from the validator set, {rule.k} needed"
    return None


def propose(
    agent: Agent, rule: RecoveryRule, new_signer: bytes, commit: bytes, deadline: int
) -> RecoveryProposal:
    """The proposal for resuming ``agent`` at its current head."""
    if agent.lineage is None:
        raise SchemaError("agent has no lineage", path="lineage")
    head = agent.lineage.entries[-1]
    return RecoveryProposal(
        zone=rule.zone,
        genesis_dah=agent.lineage.genesis_dah,
        genesis_epoch=agent.lineage.genesis_epoch,
        head=lineage_mod.entry_hash(head),
        head_dah=head.dah,
        new_signer=new_signer,
        commit=commit,
        deadline=deadline,
    )


def recover(
    agent: Agent,
    token: RecoveryToken,
    host: LocalHost,
    secrets: HostSecrets,
    epoch: int,
    rng: random.Random,
) -> Step:
    """Append the recovery entry as the token's new signer; the token is recorded in lineage."""
    if agent.lineage is None or agent.context is None:
        raise SchemaError("agent has no lineage or context", path="lineage")
    line = agent.lineage
    head = line.entries[-1]
    step_no = len(line.entries)
    p = token.proposal
    if p.new_signer != host.key:
        raise SlopeRefusal(SlopeReason.BAD_RECOVERY, step_no, "token names another signer")
    reveal = secrets.get(p.commit)
    if reveal is None:
        raise SlopeRefusal(SlopeReason.BAD_RECOVERY, step_no, "no secret for the token's commit")
    secrets = secrets.take(p.commit)
    commit, secrets = secrets.fresh(rng)
    zone = agent.context.zone
    entry = make_entry(
        StepMaterial(
            prev=lineage_mod.entry_hash(head),
            prev_dah=head.dah,
            cls=MutationClass.RECOVERY,
            epoch=epoch,
            zone=zone,
            link=b"",
            state=lineage_mod.state_digest(agent),
            reveal=reveal,
            salt=rng.randbytes(SALT_LEN),
            commit=commit,
            next_signer=host.key,
            totals=next_totals(head, MutationClass.RECOVERY, zone, epoch),
            descriptor=head.descriptor,
            proof=token.encode(),
        ),
        host,
    )
    new_agent = Agent(
        intent=agent.intent,
        context=agent.context,
        memory=agent.memory,
        policy_ref=agent.policy_ref,
        mutation_descriptor=agent.mutation_descriptor,
        lineage=lineage_mod.extend(line, entry),
    )
    return Step(new_agent, secrets, entry)


@dataclass(frozen=True, slots=True)
class ForwardLink:
    """Rotation: the old head's next signer ties the old slope's final value to a new genesis."""

    old_head: bytes
    old_dah: bytes
    new_genesis_dah: bytes
    epoch: int
    signer: bytes
    signature: bytes

    def body(self) -> bytes:
        return LINK_TAG + self.old_head + self.old_dah + self.new_genesis_dah + u64(self.epoch)


def forward_link(
    old_head: LineageEntry, new_genesis: LineageEntry, host: LocalHost, epoch: int
) -> ForwardLink:
    """Sign the link as ``host`` (who must be the old head's next signer)."""
    if old_head.next_signer != host.key:
        raise SlopeRefusal(SlopeReason.WRONG_SIGNER, 0, "only the old head's next signer links")
    unsigned = ForwardLink(
        lineage_mod.entry_hash(old_head), old_head.dah, new_genesis.dah, epoch, host.key, b""
    )
    return ForwardLink(*_unsigned_fields(unsigned), host.sign(unsigned.body()))


def _unsigned_fields(link: ForwardLink) -> tuple[bytes, bytes, bytes, int, bytes]:
    return (link.old_head, link.old_dah, link.new_genesis_dah, link.epoch, link.signer)


def link_ok(link: ForwardLink, old_head: LineageEntry, new_entries: Sequence[LineageEntry]) -> bool:
    """The link ties the trusted ``old_head`` to the genesis of ``new_entries``."""
    return (
        bool(new_entries)
        and link.old_head == lineage_mod.entry_hash(old_head)
        and link.old_dah == old_head.dah
        and link.signer == old_head.next_signer
        and link.new_genesis_dah == new_entries[0].dah
        and link.epoch >= old_head.epoch
        and verify_signature(link.signer, link.body(), link.signature)
    )
