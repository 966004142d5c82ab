"""``/meshnode/quorum/1.0.0``: vote requests and certificates (DESIGN 5 "Quorum", SPEC 2.7).

A proposer names a descriptor version by id and sends the :class:`Proposal` to each
validator of the scope's set; each validator recomputes the set from that descriptor, signs
an approval only when it is in the set, before the deadline, and has not signed another
proposal for the scope, and **records the vote durably before it answers** (the store's
``votes_cast`` primary key ``(zone, scope)`` is the ledger, so a crash and restart cannot
make it sign a second proposal). The proposer tallies with ``protocols.governance.quorum``
and returns the certificate when k approvals arrived.

Validators are dialled through their trusted host records (peer id and address hints).
Refusals are typed errors: ``not-in-validator-set``, ``after-deadline``, ``already-voted``,
``unknown-descriptor``, ``mode-mismatch``, ``no-identity``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import nacl.signing
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from meshnode.api import ApiError, Handler, Request, Response, hex32_field, json_body, json_response
from meshnode.services import current_epoch, load_descriptors, load_trust, local_signer
from meshnode.store import VoteRow
from meshnode.svc_wire import (
    BAD_REQUEST,
    NOT_SERVED,
    ServeCounters,
    ServiceError,
    WireParams,
    call,
    field_bytes,
    field_text,
    ok,
    stream_handler,
)
from protocols import codec
from protocols.errors import MeshError
from protocols.governance.quorum import (
    Proposal,
    Vote,
    new_proposal,
    tally,
    validator_set,
    verify_certificate,
)
from protocols.governance.signing import TAG_VOTE, expect_bool, public_key, sign
from protocols.governance.zone import GLOBAL, ZoneDescriptor

if TYPE_CHECKING:
    from meshnode.node import MeshNode

log = logging.getLogger(__name__)

PROTOCOL: Final = "/meshnode/quorum/1.0.0"
ALREADY_VOTED: Final = "already-voted"
NOT_IN_SET: Final = "not-in-validator-set"
AFTER_DEADLINE: Final = "after-deadline"
UNKNOWN_DESCRIPTOR: Final = "unknown-descriptor"


@dataclass(frozen=True)
class QuorumParams:
    wire: WireParams = field(default_factory=lambda: WireParams(max_bytes=64 * 1024, timeout_s=3.0))


@dataclass
class QuorumCounters:
    votes_cast: int = 0
    votes_refused: int = 0
    proposals: int = 0
    certified: int = 0


@dataclass(frozen=True)
class VoterResult:
    key: bytes
    vote: Vote | None
    error: str


class QuorumService:
    """Validator (votes when selected) and proposer (collects a certificate)."""

    name = "quorum"

    def __init__(self, node: MeshNode, params: QuorumParams | None = None) -> None:
        self.node = node
        self.params = params or QuorumParams()
        self.counters = QuorumCounters()
        self.serve_counters = ServeCounters()

    def install(self) -> None:
        handler = stream_handler(self.name, self._handle, self.params.wire, self.serve_counters)
        self.node.mesh.host.set_stream_handler(TProtocol(PROTOCOL), handler)

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", "/quorum/propose"): self._api_propose}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    # -- validator -------------------------------------------------------------------------

    async def _handle(self, peer: ID, request: dict[str, Any]) -> dict[str, Any]:
        kind = field_text(request, "t", 16)
        if kind != "vote":
            raise ServiceError(BAD_REQUEST, f"unknown request type {kind!r}", path="t")
        proposal = Proposal.from_cbor(request.get("proposal"), "proposal")
        vote = await self.cast(proposal, field_bytes(request, "descriptor", 32))
        return ok(vote={"voter": vote.voter, "approve": vote.approve, "signature": vote.signature})

    async def _descriptor(self, zone: str, descriptor_id: bytes) -> ZoneDescriptor:
        node = self.node
        sets = await node.db(load_descriptors, node.store, node.config)
        known = sets.get(zone)
        if known is None:
            raise ServiceError(NOT_SERVED, f"this node has not joined zone {zone!r}")
        desc = known.get(descriptor_id)
        if desc is None:
            raise ServiceError(UNKNOWN_DESCRIPTOR, "descriptor version not known here")
        return desc

    async def _signer(self) -> nacl.signing.SigningKey:
        signer = await self.node.db(local_signer, self.node, self.node.store)
        if signer is None:
            raise ServiceError("no-identity", "this node has no host identity")
        return signer

    async def cast(self, proposal: Proposal, descriptor_id: bytes) -> Vote:
        """Sign an approval if allowed; the vote is committed to the store before returning."""
        desc = await self._descriptor(proposal.zone, descriptor_id)
        signer = await self._signer()
        me = public_key(signer)
        if proposal.mode != desc.quorum.mode:
            raise ServiceError("mode-mismatch", f"descriptor requires {desc.quorum.mode} quorum")
        eligible = (
            validator_set(desc, proposal.scope, proposal.g0)
            if proposal.mode == GLOBAL
            else desc.validators
        )
        if me not in eligible:
            self.counters.votes_refused += 1
            raise ServiceError(NOT_IN_SET, "this host is not in the scope's validator set")
        if current_epoch() > proposal.deadline:
            self.counters.votes_refused += 1
            raise ServiceError(AFTER_DEADLINE, f"deadline epoch {proposal.deadline} has passed")
        signature = sign(signer, TAG_VOTE, proposal.vote_body(me, True))
        data = codec.encode(
            {
                "voter": me,
                "approve": True,
                "proposal": proposal.to_cbor(),
                "signature": signature,
                "descriptor": descriptor_id,
            }
        )
        row = VoteRow(proposal.zone, proposal.scope, proposal.subject, proposal.deadline, data)
        fresh = await self.node.db(self.node.store.record_vote, row)  # durable before sent
        if not fresh:
            self.counters.votes_refused += 1
            earlier = await self.node.db(self.node.store.vote, proposal.zone, proposal.scope)
            other = earlier.proposal_hash.hex()[:16] if earlier else "?"
            raise ServiceError(ALREADY_VOTED, f"already voted for proposal {other} in this scope")
        self.counters.votes_cast += 1
        return Vote(me, True, signature)

    # -- proposer --------------------------------------------------------------------------

    async def propose(
        self, zone: str, genesis: bytes, genesis_epoch: int, subject: bytes
    ) -> dict[str, Any]:
        """Ask the scope's validators; tally; return the outcome and certificate (if any)."""
        self.counters.proposals += 1
        node = self.node
        sets = await node.db(load_descriptors, node.store, node.config)
        known = sets.get(zone)
        epoch = current_epoch()
        desc = known.governing(epoch) if known is not None else None
        if desc is None:
            raise ApiError(409, f"no descriptor of zone {zone!r} governs epoch {epoch}")
        proposal = new_proposal(desc, genesis, genesis_epoch, subject, epoch)
        voters = (
            validator_set(desc, proposal.scope, proposal.g0)
            if proposal.mode == GLOBAL
            else desc.validators
        )
        results: list[VoterResult] = []
        async with trio.open_nursery() as nursery:
            for key in voters:
                nursery.start_soon(self._ask, key, proposal, desc.id, results)
        votes = [r.vote for r in results if r.vote is not None]
        reached = tuple(r.key for r in results if r.vote is not None or r.error != "unreachable")
        result = tally(desc, proposal, votes, current_epoch(), reached=reached)
        cert = result.certificate
        if cert is not None:
            check = verify_certificate(cert, desc, proposal.scope, subject)
            if not check.ok:  # our own tally and the verifier disagree: a bug, say so
                raise ApiError(500, f"certificate does not verify: {check.reason}")
            self.counters.certified += 1
        return {
            "outcome": result.outcome.value,
            "zone": zone,
            "scope": proposal.scope.hex(),
            "subject": subject.hex(),
            "g0": proposal.g0,
            "deadline": proposal.deadline,
            "descriptor": desc.id.hex(),
            "n": result.record["n"],
            "k": result.record["k"],
            "approvals": result.approvals,
            "refusals": result.refusals,
            "excluded": [[k.hex(), why] for k, why in result.excluded],
            "voters": [
                {"key": r.key.hex(), "voted": r.vote is not None, "error": r.error}
                for r in sorted(results, key=lambda r: r.key)
            ],
            "certificate": None if cert is None else codec.encode(cert.to_cbor()).hex(),
        }

    async def _ask(
        self, key: bytes, proposal: Proposal, descriptor_id: bytes, out: list[VoterResult]
    ) -> None:
        try:
            out.append(VoterResult(key, await self._vote_of(key, proposal, descriptor_id), ""))
        except ServiceError as exc:
            out.append(VoterResult(key, None, exc.code))
        except MeshError as exc:
            out.append(VoterResult(key, None, f"{BAD_REQUEST}: {exc.describe()}"))

    async def _vote_of(self, key: bytes, proposal: Proposal, descriptor_id: bytes) -> Vote:
        signer = await self.node.db(local_signer, self.node, self.node.store)
        if signer is not None and public_key(signer) == key:
            return await self.cast(proposal, descriptor_id)
        trust = await self.node.db(load_trust, self.node.store, self.node.config)
        records = [r for r in trust.by_key(key) if r.peer_id]
        if not records:
            raise ServiceError("unreachable", "no trusted host record names this validator")
        record = records[-1]
        request = {"t": "vote", "proposal": proposal.to_cbor(), "descriptor": descriptor_id}
        answer = await call(
            self.node.mesh.host,
            ID(record.peer_id),
            record.addrs,
            PROTOCOL,
            request,
            self.params.wire,
        )
        raw = answer.get("vote")
        if not isinstance(raw, dict):
            raise ServiceError(BAD_REQUEST, "answer carries no vote", path="vote")
        voter = field_bytes(raw, "voter", 32)
        if voter != key:
            raise ServiceError(BAD_REQUEST, "vote signed by another key", path="vote.voter")
        return Vote(
            voter,
            expect_bool(raw.get("approve"), "vote.approve"),
            field_bytes(raw, "signature", 64),
        )

    # -- control API -----------------------------------------------------------------------

    async def _api_propose(self, request: Request) -> Response:
        body = json_body(request)
        zones = [z.id for z in self.node.config.zones]
        zone = body.get("zone") or (zones[0] if zones else "")
        if zone not in zones:
            raise ApiError(400, f"this node has not joined zone {zone!r}")
        genesis_epoch = body.get("genesis_epoch")
        if type(genesis_epoch) is not int or genesis_epoch < 0:
            raise ApiError(400, "'genesis_epoch' must be a non-negative integer")
        result = await self.propose(
            zone,
            hex32_field(body.get("genesis"), "genesis"),
            genesis_epoch,
            hex32_field(body.get("subject"), "subject"),
        )
        return json_response(result)
