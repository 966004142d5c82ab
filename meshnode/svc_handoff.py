"""``/meshnode/handoff/1.0.0``: migration of an agent to a new host (SPEC 2.10, DESIGN 6).

Three steps, driven by the old host (``POST /migrate``):

1. ``commit``: the old host asks the new host for a commitment. The new host draws a fresh
   slope secret, keeps it **durably** in ``<data_dir>/handoff.sqlite3`` (not yet in the
   node's slope secrets, so its executor cannot act on the seal before the admission entry
   exists) and answers its key and the secret's commitment. The secret never travels.
2. The old host appends the **seal** (a MIGRATION entry naming the new host as next signer
   with that commitment), admits and publishes it on the source zone, and forgets its own
   spent secret: after the seal it can no longer extend the slope, and members REJECT any
   entry it signs on top of the seal (wrong signer).
3. ``seal``: the old host sends the sealed agent; the new host checks that the seal names it
   and a commitment it holds, appends the **admission** entry (rebinding descriptor and
   policy reference when the zone changes), moves the next secret into the node's slope
   secrets so its executor can continue, and admits and publishes it on the destination
   zone.

Peers are dialled from the destination's host record (peer id, or the ``/p2p/`` part of an
address hint).
"""

from __future__ import annotations

import hashlib
import logging
import random
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from meshnode.api import ApiError, Handler, Request, Response, hex32_field, json_body, json_response
from meshnode.services import current_epoch, record_peer_id
from meshnode.svc_wire import (
    BAD_REQUEST,
    NOT_SERVED,
    REFUSED,
    ServeCounters,
    ServiceError,
    WireParams,
    call,
    field_bytes,
    field_text,
    ok,
    stream_handler,
)
from protocols.agent.build import encode_agent
from protocols.agent.schema import MAX_AGENT_BYTES, Agent, MutationClass
from protocols.agent.validate import validate_bytes
from protocols.errors import MeshError
from protocols.identity.dah import Change, Handoff, arrival, mutate
from protocols.identity.host import HostRecord, LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.types import WireVerdict

if TYPE_CHECKING:
    from meshnode.node import MeshNode

log = logging.getLogger(__name__)

PROTOCOL: Final = "/meshnode/handoff/1.0.0"
PENDING_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS pending (
    commitment BLOB PRIMARY KEY,
    genesis    BLOB NOT NULL,
    zone       TEXT NOT NULL,
    to_zone    TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    secret     BLOB NOT NULL
) WITHOUT ROWID;
"""
MAX_PENDING: Final = 10_000


class PendingStore:
    """Secrets promised to old hosts, kept until the seal arrives (a small SQLite file)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(PENDING_SCHEMA)

    def put(
        self, commit: bytes, genesis: bytes, zone: str, to_zone: str, epoch: int, secret: bytes
    ) -> None:
        count = int(self._conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0])
        if count >= MAX_PENDING:
            raise ServiceError(REFUSED, "too many pending handoffs")
        self._conn.execute(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?)",
            (commit, genesis, zone, to_zone, epoch, secret),
        )

    def get(self, commit: bytes) -> tuple[bytes, str, str, bytes] | None:
        row = self._conn.execute(
            "SELECT genesis, zone, to_zone, secret FROM pending WHERE commitment = ?", (commit,)
        ).fetchone()
        return None if row is None else (bytes(row[0]), str(row[1]), str(row[2]), bytes(row[3]))

    def drop(self, commit: bytes) -> None:
        self._conn.execute("DELETE FROM pending WHERE commitment = ?", (commit,))

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class HandoffParams:
    wire: WireParams = field(
        default_factory=lambda: WireParams(max_bytes=MAX_AGENT_BYTES + 4096, timeout_s=10.0)
    )


@dataclass
class HandoffCounters:
    commitments: int = 0
    seals_made: int = 0
    admissions_made: int = 0
    refused: int = 0


def dial_target(record: HostRecord) -> tuple[ID, tuple[str, ...]]:
    """Peer id and address hints of a host record (peer id field, else an address's /p2p/)."""
    peer = record_peer_id(record)
    if peer is None:
        raise ServiceError(NOT_SERVED, "the host record names no peer id")
    return peer, tuple(a.split("/p2p/")[0] for a in record.addrs)


class HandoffService:
    """Both ends of a migration: the old host's driver and the new host's answers."""

    name = "handoff"

    def __init__(self, node: MeshNode, params: HandoffParams | None = None) -> None:
        self.node = node
        self.params = params or HandoffParams()
        self.counters = HandoffCounters()
        self.serve_counters = ServeCounters()
        self.pending: PendingStore | None = None
        self._lock = trio.Lock()
        self._file_limiter = trio.CapacityLimiter(1)  # one thread at a time on the file

    def install(self) -> None:
        handler = stream_handler(self.name, self._handle, self.params.wire, self.serve_counters)
        self.node.mesh.host.set_stream_handler(TProtocol(PROTOCOL), handler)

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", "/migrate"): self._api_migrate}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        path = self.node.config.node.data_dir / "handoff.sqlite3"
        self.pending = await trio.to_thread.run_sync(PendingStore, path, limiter=self._file_limiter)
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.pending.close, limiter=self._file_limiter)

    # -- shared ----------------------------------------------------------------------------

    def _host(self, zone: str) -> LocalHost:
        """This node's host, named by its record in ``zone`` (the signer of our entries)."""
        zones = self.node.zones
        host = zones.host
        if host is None:
            raise ServiceError(NOT_SERVED, "this node has no host identity yet")
        try:
            record = zones.zone(zone).view.hosts.by_key(host.key)
        except MeshError as exc:
            raise ServiceError(NOT_SERVED, exc.message) from exc
        if record is None:
            raise ServiceError(REFUSED, f"this host is not admitted to zone {zone!r}")
        return host.with_record(record.name)

    async def _publish(self, zone: str, data: bytes) -> dict[str, Any]:
        outcome, _mid, peers = await self.node.publish_agent(zone, data)
        if outcome.wire is not WireVerdict.ACCEPT:
            raise ServiceError(REFUSED, f"not admitted: {outcome.code}: {outcome.reason}")
        return {**outcome.to_json(), "peers": peers}

    # -- new host --------------------------------------------------------------------------

    async def _handle(self, peer: ID, request: dict[str, Any]) -> dict[str, Any]:
        kind = field_text(request, "t", 16)
        if kind == "commit":
            return await self._commit(request)
        if kind == "seal":
            return await self._admit(request)
        raise ServiceError(BAD_REQUEST, f"unknown request type {kind!r}", path="t")

    async def _commit(self, request: dict[str, Any]) -> dict[str, Any]:
        zone = field_text(request, "zone", 64)
        to_zone = field_text(request, "to_zone", 64)
        genesis = field_bytes(request, "genesis", 32)
        host = self._host(to_zone)
        self._host(zone)  # must be a member of the source zone too, to judge the seal
        handoff, secrets = arrival(host, HostSecrets(), random.SystemRandom())
        secret = secrets.get(handoff.commit)
        assert secret is not None
        assert self.pending is not None
        pending = self.pending
        await trio.to_thread.run_sync(
            pending.put,
            handoff.commit,
            genesis,
            zone,
            to_zone,
            current_epoch(),
            secret,
            limiter=self._file_limiter,
        )  # durable before the commitment leaves this node
        self.counters.commitments += 1
        return ok(next_signer=handoff.next_signer, commit=handoff.commit)

    async def _admit(self, request: dict[str, Any]) -> dict[str, Any]:
        data = field_bytes(request, "agent", cap=MAX_AGENT_BYTES)
        check = validate_bytes(data)
        agent = check.agent
        if agent is None or agent.lineage is None:
            raise ServiceError(BAD_REQUEST, "not a readable agent", path="agent")
        seal = agent.lineage.entries[-1]
        host = self.node.zones.host
        if seal.type is not MutationClass.MIGRATION or host is None or seal.next_signer != host.key:
            self.counters.refused += 1
            raise ServiceError(REFUSED, "the head is not a seal naming this host")
        assert self.pending is not None
        pending = await trio.to_thread.run_sync(
            self.pending.get, seal.commit, limiter=self._file_limiter
        )
        if pending is None:
            self.counters.refused += 1
            raise ServiceError(REFUSED, "no commitment of this host matches the seal")
        genesis, zone, to_zone, secret = pending
        if genesis != agent.lineage.genesis_dah or zone != seal.zone:
            raise ServiceError(REFUSED, "the seal is for another agent or zone")
        async with self._lock:
            sealed = await self._publish_seal_here(zone, data)
            admitted = await self._admission(agent, to_zone, secret)
            assert admitted.lineage is not None
            entry = admitted.lineage.entries[-1]
            result = await self._publish(to_zone, encode_agent(admitted))
        await trio.to_thread.run_sync(self.pending.drop, seal.commit, limiter=self._file_limiter)
        self.counters.admissions_made += 1
        log.info("migration admitted", extra={"zone": to_zone, "genesis": genesis.hex()})
        return ok(seal=sealed, admission=result, head=entry.dah)

    async def _publish_seal_here(self, zone: str, data: bytes) -> dict[str, Any]:
        """Admit (and relay) the seal here first unless gossip already brought it."""
        cid = hashlib.sha256(data).digest()
        if await self.node.db(self.node.store.has_agent, cid):
            return {"content_id": cid.hex(), "wire": "ACCEPT", "code": "already-stored"}
        try:
            outcome, _mid, _peers = await self.node.publish_agent(zone, data)
        except ApiError as exc:  # the router saw it already: admitted meanwhile
            if await self.node.db(self.node.store.has_agent, cid):
                return {"content_id": cid.hex(), "wire": "ACCEPT", "code": "already-stored"}
            raise ServiceError(REFUSED, f"seal not admitted here: {exc.message}") from exc
        if outcome.wire is not WireVerdict.ACCEPT:
            raise ServiceError(REFUSED, f"seal not admitted here: {outcome.code}: {outcome.reason}")
        return outcome.to_json()

    async def _admission(self, sealed: Agent, to_zone: str, secret: bytes) -> Agent:
        """The first entry on the new host, with the next secret kept in the node store."""
        assert sealed.lineage is not None
        assert sealed.context is not None
        seal = sealed.lineage.entries[-1]
        host = self._host(to_zone)
        change = Change(cls=MutationClass.STATE_TRANSITION)
        if to_zone != seal.zone:
            z = self.node.zones.zone(to_zone)
            desc = z.view.descriptors.governing(current_epoch())
            if desc is None:
                raise ServiceError(REFUSED, f"no descriptor of {to_zone!r} is active")
            refs = [r for r in z.policy_refs if r.contract in desc.contracts]
            if not refs:
                raise ServiceError(REFUSED, f"no policy reference known for {to_zone!r}")
            change = Change(
                cls=MutationClass.STATE_TRANSITION,
                context=replace(sealed.context, zone=to_zone),
                descriptor=desc.id,
                policy_ref=(refs[0],),
            )
        step = mutate(
            sealed,
            change,
            host,
            HostSecrets(MappingProxyType({seal.commit: secret})),
            max(current_epoch(), seal.epoch),
            random.SystemRandom(),
        )
        assert step.agent.lineage is not None
        entry = step.agent.lineage.entries[-1]
        nxt = step.secrets.get(entry.commit)
        assert nxt is not None
        await self.node.db(
            self.node.store.put_slope_secret,
            entry.commit,
            sealed.lineage.genesis_dah,
            current_epoch(),
            nxt,
        )
        return step.agent

    # -- old host --------------------------------------------------------------------------

    async def migrate(self, zone: str, genesis: bytes, to: bytes, to_zone: str) -> dict[str, Any]:
        """Seal the newest state of ``genesis`` to host ``to`` and have it admit the agent."""
        node = self.node
        row = await node.db(node.store.latest_state, genesis)
        if row is None:
            raise ApiError(404, f"no agent with genesis {genesis.hex()} in this node's store")
        agent = validate_bytes(row.data).agent
        if agent is None or agent.lineage is None:
            raise ApiError(409, "the stored agent has no readable lineage")
        head = agent.lineage.entries[-1]
        host = self._host(zone)
        if head.next_signer != host.key:
            raise ApiError(409, "this node is not the agent's host (not the head's next signer)")
        secret = await node.db(node.store.slope_secret, head.commit)
        if secret is None:
            raise ApiError(409, "this node holds no secret for the head's commitment")
        record = node.zones.zone(zone).view.hosts.by_key(to)
        if record is None:
            raise ApiError(404, f"host {to.hex()[:16]} is not admitted to zone {zone!r}")
        peer, addrs = dial_target(record)
        wire = self.params.wire
        answer = await call(
            node.mesh.host,
            peer,
            addrs,
            PROTOCOL,
            {"t": "commit", "zone": zone, "to_zone": to_zone, "genesis": genesis},
            wire,
        )
        handoff = Handoff(field_bytes(answer, "next_signer", 32), field_bytes(answer, "commit", 32))
        if handoff.next_signer != to:
            raise ServiceError(REFUSED, "the commitment came from another host key")
        async with self._lock:
            # Claim the secret only now, atomically with a check that the state we seal is
            # still the newest: the executor or a mutation may have extended the slope while
            # the commitment was fetched, and sealing the old head then would fork it.
            taken = await node.db(
                node.store.take_slope_secret, head.commit, genesis, row.content_id
            )
            if taken is None:
                raise ApiError(
                    409, "the agent changed during the handoff (a newer state was made); not sealed"
                )
            sealed = b""
            try:
                step = mutate(
                    agent,
                    Change(cls=MutationClass.MIGRATION, handoff=handoff),
                    host,
                    HostSecrets(MappingProxyType({head.commit: taken[0]})),
                    max(current_epoch(), head.epoch),
                    random.SystemRandom(),
                )
                sealed = encode_agent(step.agent)
                seal = await self._publish(zone, sealed)
            except BaseException:
                # not sealed here: the secret is this host's again (nothing else could spend
                # it); a seal that was stored before the failure keeps it spent
                with trio.CancelScope(shield=True):
                    cid = hashlib.sha256(sealed).digest()
                    if not sealed or not await node.db(node.store.has_agent, cid):
                        await node.db(
                            node.store.put_slope_secret, head.commit, genesis, taken[1], taken[0]
                        )
                raise
        self.counters.seals_made += 1
        answer = await call(
            node.mesh.host, peer, addrs, PROTOCOL, {"t": "seal", "agent": sealed}, wire
        )
        admission = answer.get("admission")
        head_dah = field_bytes(answer, "head", 32)
        return {"seal": seal, "admission": admission, "head": head_dah.hex(), "to": to.hex()}

    async def _api_migrate(self, request: Request) -> Response:
        body = json_body(request)
        zones = [z.id for z in self.node.config.zones]
        zone = body.get("zone") or (zones[0] if zones else "")
        to_zone = body.get("to_zone") or zone
        if zone not in zones or to_zone not in zones:
            raise ApiError(400, "this node has not joined the source or destination zone")
        genesis, to = hex32_field(body.get("genesis"), "genesis"), hex32_field(body.get("to"), "to")
        try:
            result = await self.migrate(zone, genesis, to, to_zone)
        except ServiceError as exc:
            raise ApiError(502 if exc.code == "unreachable" else 409, exc.describe()) from exc
        except MeshError as exc:
            raise ApiError(409, exc.describe()) from exc
        return json_response(result)
