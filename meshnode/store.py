"""The node's durable state: one SQLite file (DESIGN §7).

Why these choices:
- WAL + ``synchronous=FULL``: a row is on disk when its ``commit`` returns, so a message the
  node ACCEPTs (and so forwards) after a write here survives kill -9.
- Values are opaque CBOR/bytes blobs beside a few indexed columns: the governance code owns
  the encodings and can evolve them without schema churn here.
- Schema versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` is append-only.
- No ORM, no threads inside: every method is synchronous and commits before it returns. The
  node calls them through one worker thread (see ``meshnode.node``), so ``check_same_thread``
  is off and callers must serialise access (one ``trio.CapacityLimiter(1)``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from protocols.errors import MeshError


class StoreError(MeshError):
    """The store file is unusable (newer schema, corrupt, not SQLite)."""


MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE agents (
        content_id  BLOB PRIMARY KEY,
        zone        TEXT NOT NULL,
        genesis     BLOB NOT NULL,
        head        BLOB NOT NULL,
        disposition TEXT NOT NULL,
        epoch       INTEGER NOT NULL,
        data        BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX agents_zone ON agents(zone, epoch);
    CREATE INDEX agents_genesis ON agents(genesis, epoch);
    CREATE INDEX agents_head ON agents(head);

    CREATE TABLE lineage (
        entry_hash BLOB PRIMARY KEY,
        genesis    BLOB NOT NULL,
        depth      INTEGER NOT NULL,
        data       BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX lineage_genesis ON lineage(genesis, depth);

    CREATE TABLE decisions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        epoch       INTEGER NOT NULL,
        zone        TEXT NOT NULL,
        subject     BLOB NOT NULL,
        verdict     TEXT NOT NULL,
        disposition TEXT NOT NULL,
        reason      TEXT NOT NULL,
        data        BLOB NOT NULL
    );
    CREATE INDEX decisions_subject ON decisions(subject);

    CREATE TABLE quarantine (
        content_id     BLOB PRIMARY KEY,
        zone           TEXT NOT NULL,
        host_key       BLOB NOT NULL,
        expires_epoch  INTEGER NOT NULL,
        data           BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX quarantine_expiry ON quarantine(expires_epoch);
    CREATE INDEX quarantine_host ON quarantine(zone, host_key);

    CREATE TABLE escalations (
        scope   BLOB PRIMARY KEY,
        zone    TEXT NOT NULL,
        epoch   INTEGER NOT NULL,
        status  TEXT NOT NULL,
        data    BLOB NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE descriptors (
        zone             TEXT NOT NULL,
        version          INTEGER NOT NULL,
        activation_epoch INTEGER NOT NULL,
        content_id       BLOB NOT NULL,
        data             BLOB NOT NULL,
        PRIMARY KEY (zone, version)
    ) WITHOUT ROWID;

    CREATE TABLE contracts (
        content_id BLOB PRIMARY KEY,
        zone       TEXT NOT NULL,
        data       BLOB NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE overrides (
        content_id BLOB PRIMARY KEY,
        zone       TEXT NOT NULL,
        epoch      INTEGER NOT NULL,
        data       BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX overrides_zone ON overrides(zone, epoch);

    CREATE TABLE host_records (
        content_id       BLOB PRIMARY KEY,
        zone             TEXT NOT NULL,
        host_key         BLOB NOT NULL,
        valid_from_epoch INTEGER NOT NULL,
        revoked          INTEGER NOT NULL DEFAULT 0,
        data             BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX host_records_key ON host_records(zone, host_key);

    CREATE TABLE votes_cast (
        zone           TEXT NOT NULL,
        scope          BLOB NOT NULL,
        proposal_hash  BLOB NOT NULL,
        deadline_epoch INTEGER NOT NULL,
        data           BLOB NOT NULL,
        PRIMARY KEY (zone, scope)
    ) WITHOUT ROWID;

    CREATE TABLE host_identity (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        host_key  BLOB NOT NULL,
        ddh_state BLOB NOT NULL
    );

    CREATE TABLE slope_secrets (
        commitment    BLOB PRIMARY KEY,
        genesis       BLOB NOT NULL,
        created_epoch INTEGER NOT NULL,
        secret        BLOB NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE messages (
        topic  TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        msg_id BLOB NOT NULL,
        data   BLOB NOT NULL,
        PRIMARY KEY (topic, seq)
    ) WITHOUT ROWID;
    """,
    # 2: executions, agent depth (last trusted state per slope), policy references
    """
    ALTER TABLE agents ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX agents_genesis_depth ON agents(genesis, depth);

    CREATE TABLE executions (
        content_id  BLOB PRIMARY KEY,
        zone        TEXT NOT NULL,
        genesis     BLOB NOT NULL,
        verb        TEXT NOT NULL,
        epoch       INTEGER NOT NULL,
        result_id   BLOB NOT NULL,
        output      BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX executions_zone ON executions(zone, epoch);

    CREATE TABLE policy_refs (
        content_id BLOB PRIMARY KEY,
        zone       TEXT NOT NULL,
        data       BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: wall-clock times of decisions and plain-topic receipts (audit, latency figures)
    """
    ALTER TABLE decisions ADD COLUMN at_ns INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN received_ns INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: a plain-topic message is kept once: a restarted node's seen-cache is empty, so
    # gossip re-offers (IHAVE) what it stored before the restart
    """
    DELETE FROM messages WHERE EXISTS (
        SELECT 1 FROM messages AS m WHERE m.topic = messages.topic
        AND m.msg_id = messages.msg_id AND m.seq < messages.seq
    );
    CREATE UNIQUE INDEX messages_topic_msg_id ON messages(topic, msg_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class AgentRow:
    """One accepted agent state. ``head`` is its head DAH; ``data`` the canonical bytes."""

    content_id: bytes
    zone: str
    genesis: bytes
    head: bytes
    disposition: str
    epoch: int
    data: bytes
    depth: int = 0  # lineage depth of the head (schema 2)


@dataclass(frozen=True)
class LineageRow:
    entry_hash: bytes
    genesis: bytes
    depth: int
    data: bytes


@dataclass(frozen=True)
class DecisionRow:
    """One node-local audit record: every admission decision writes one (DESIGN §5)."""

    epoch: int
    zone: str
    subject: bytes
    verdict: str
    disposition: str
    reason: str
    data: bytes = b""
    at_ns: int = 0  # wall clock (unix ns) when the node decided (schema 3)


@dataclass(frozen=True)
class QuarantineRow:
    content_id: bytes
    zone: str
    host_key: bytes
    expires_epoch: int
    data: bytes


@dataclass(frozen=True)
class EscalationRow:
    scope: bytes
    zone: str
    epoch: int
    status: str
    data: bytes


@dataclass(frozen=True)
class DescriptorRow:
    zone: str
    version: int
    activation_epoch: int
    content_id: bytes
    data: bytes


@dataclass(frozen=True)
class HostRecordRow:
    content_id: bytes
    zone: str
    host_key: bytes
    valid_from_epoch: int
    revoked: bool
    data: bytes


@dataclass(frozen=True)
class VoteRow:
    zone: str
    scope: bytes
    proposal_hash: bytes
    deadline_epoch: int
    data: bytes


@dataclass(frozen=True)
class ExecutionRow:
    """One execution of an agent state by this node as its host (schema 2).

    ``content_id`` is the executed state; ``result_id`` the state with the execution entry.
    The primary key makes "executed at most once" durable across restarts.
    """

    content_id: bytes
    zone: str
    genesis: bytes
    verb: str
    epoch: int
    result_id: bytes
    output: bytes


@dataclass(frozen=True)
class AdmissionWrite:
    """Everything one admission writes, committed with the others of its batch at once."""

    decision: DecisionRow
    agent: AgentRow | None = None
    lineage: tuple[LineageRow, ...] = ()
    quarantine: QuarantineRow | None = None
    escalation: EscalationRow | None = None
    secret: tuple[bytes, bytes, int, bytes] | None = None
    """(commitment, genesis, epoch, secret) of a slope step this host made (a mutation)."""
    spent: bytes | None = None
    """The commitment whose secret that step revealed: dropped in the same transaction."""


@dataclass(frozen=True)
class MessageRow:
    topic: str
    seq: int
    msg_id: bytes
    data: bytes
    received_ns: int = 0  # wall clock (unix ns) when the router delivered it (schema 3)


class Store:
    """Synchronous SQLite store; every write method commits before it returns."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) and migrate the store at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn, path)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        return store

    def close(self) -> None:
        self._conn.close()

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema {version}, newer than this build ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._tx() as c:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; committed (durably) on exit, rolled back on error."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    # -- agents, lineage, decisions --------------------------------------------------------

    def accept_agent(
        self, agent: AgentRow, lineage: Sequence[LineageRow], decision: DecisionRow
    ) -> int:
        """Store an accepted agent state, its new lineage entries and the audit record at once.

        Returns the decision id. Idempotent for a state already stored.
        """
        with self._tx() as c:
            self._put_agent(c, agent)
            self._put_lineage(c, lineage)
            return self._put_decision(c, decision)

    def put_agent(self, agent: AgentRow) -> None:
        with self._tx() as c:
            self._put_agent(c, agent)

    def commit_admissions(self, writes: Sequence[AdmissionWrite]) -> None:
        """One transaction (one fsync) for a batch of admissions: group commit, so a burst
        of zone messages costs one disk flush, not one per message."""
        if not writes:
            return
        with self._tx() as c:
            for w in writes:
                if w.agent is not None:
                    self._put_agent(c, w.agent)
                if w.lineage:
                    self._put_lineage(c, w.lineage)
                if w.quarantine is not None:
                    self._put_quarantine(c, w.quarantine)
                if w.escalation is not None:
                    self._put_escalation(c, w.escalation)
                if w.secret is not None:
                    c.execute("INSERT OR REPLACE INTO slope_secrets VALUES (?,?,?,?)", w.secret)
                if w.spent is not None:
                    c.execute("DELETE FROM slope_secrets WHERE commitment = ?", (w.spent,))
                self._put_decision(c, w.decision)

    @staticmethod
    def _put_agent(c: sqlite3.Connection, a: AgentRow) -> None:
        c.execute(
            "INSERT OR REPLACE INTO agents"
            " (content_id, zone, genesis, head, disposition, epoch, data, depth)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (a.content_id, a.zone, a.genesis, a.head, a.disposition, a.epoch, a.data, a.depth),
        )

    @staticmethod
    def _put_lineage(c: sqlite3.Connection, rows: Sequence[LineageRow]) -> None:
        c.executemany(
            "INSERT OR IGNORE INTO lineage VALUES (?,?,?,?)",
            [(r.entry_hash, r.genesis, r.depth, r.data) for r in rows],
        )

    @staticmethod
    def _put_decision(c: sqlite3.Connection, d: DecisionRow) -> int:
        cur = c.execute(
            "INSERT INTO decisions"
            " (epoch, zone, subject, verdict, disposition, reason, data, at_ns)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (d.epoch, d.zone, d.subject, d.verdict, d.disposition, d.reason, d.data, d.at_ns),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def get_agent(self, content_id: bytes) -> AgentRow | None:
        row = self._conn.execute(
            "SELECT * FROM agents WHERE content_id = ?", (content_id,)
        ).fetchone()
        return AgentRow(*row) if row else None

    def agents(self, zone: str, limit: int = 100) -> list[AgentRow]:
        rows = self._conn.execute(
            "SELECT * FROM agents WHERE zone = ? ORDER BY epoch DESC, content_id LIMIT ?",
            (zone, limit),
        ).fetchall()
        return [AgentRow(*r) for r in rows]

    def has_agent(self, content_id: bytes) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM agents WHERE content_id = ?", (content_id,)
        ).fetchone()
        return row is not None

    def latest_state(self, genesis: bytes) -> AgentRow | None:
        """The deepest stored state of a slope (the last one this node trusted)."""
        row = self._conn.execute(
            "SELECT * FROM agents WHERE genesis = ? ORDER BY depth DESC LIMIT 1", (genesis,)
        ).fetchone()
        return AgentRow(*row) if row else None

    def accepted_at_ns(self, subject: bytes) -> int:
        """Wall-clock ns of this node's first ACCEPT of ``subject`` (0 if none or unrecorded)."""
        row = self._conn.execute(
            "SELECT min(at_ns) FROM decisions WHERE subject = ? AND verdict = 'ACCEPT'",
            (subject,),
        ).fetchone()
        return int(row[0] or 0)

    def trusted_heads(self) -> list[tuple[bytes, bytes, int]]:
        """(genesis, head entry hash, depth) of the deepest stored entry of every slope."""
        rows = self._conn.execute(
            "SELECT genesis, entry_hash, max(depth) FROM lineage GROUP BY genesis"
        ).fetchall()
        return [(bytes(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def agents_by_genesis(self, genesis: bytes) -> list[AgentRow]:
        rows = self._conn.execute(
            "SELECT * FROM agents WHERE genesis = ? ORDER BY epoch, content_id", (genesis,)
        ).fetchall()
        return [AgentRow(*r) for r in rows]

    def put_lineage(self, rows: Sequence[LineageRow]) -> None:
        with self._tx() as c:
            self._put_lineage(c, rows)

    def lineage(self, genesis: bytes) -> list[LineageRow]:
        rows = self._conn.execute(
            "SELECT * FROM lineage WHERE genesis = ? ORDER BY depth", (genesis,)
        ).fetchall()
        return [LineageRow(*r) for r in rows]

    def record_decision(self, decision: DecisionRow) -> int:
        with self._tx() as c:
            return self._put_decision(c, decision)

    def decisions(self, limit: int = 100, after_id: int = 0) -> list[tuple[int, DecisionRow]]:
        rows = self._conn.execute(
            "SELECT id, epoch, zone, subject, verdict, disposition, reason, data, at_ns"
            " FROM decisions WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [(r[0], DecisionRow(*r[1:])) for r in rows]

    # -- quarantine and escalations --------------------------------------------------------

    def put_quarantine(self, row: QuarantineRow, decision: DecisionRow | None = None) -> None:
        with self._tx() as c:
            self._put_quarantine(c, row)
            if decision is not None:
                self._put_decision(c, decision)

    @staticmethod
    def _put_quarantine(c: sqlite3.Connection, row: QuarantineRow) -> None:
        c.execute(
            "INSERT OR REPLACE INTO quarantine VALUES (?,?,?,?,?)",
            (row.content_id, row.zone, row.host_key, row.expires_epoch, row.data),
        )

    @staticmethod
    def _put_escalation(c: sqlite3.Connection, row: EscalationRow) -> None:
        c.execute(
            "INSERT OR REPLACE INTO escalations VALUES (?,?,?,?,?)",
            (row.scope, row.zone, row.epoch, row.status, row.data),
        )

    def quarantined(self, zone: str | None = None, limit: int = 100) -> list[QuarantineRow]:
        if zone is None:
            rows = self._conn.execute(
                "SELECT * FROM quarantine ORDER BY expires_epoch LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM quarantine WHERE zone = ? ORDER BY expires_epoch LIMIT ?",
                (zone, limit),
            ).fetchall()
        return [QuarantineRow(*r) for r in rows]

    def quarantine_count(self, zone: str, host_key: bytes) -> int:
        """Entries held for one host (the per-host quota of DESIGN §5)."""
        row = self._conn.execute(
            "SELECT count(*) FROM quarantine WHERE zone = ? AND host_key = ?", (zone, host_key)
        ).fetchone()
        return int(row[0])

    def expire_quarantine(self, epoch: int) -> int:
        """Drop entries whose TTL epoch has passed; returns how many."""
        with self._tx() as c:
            return c.execute("DELETE FROM quarantine WHERE expires_epoch < ?", (epoch,)).rowcount

    def put_escalation(self, row: EscalationRow) -> None:
        with self._tx() as c:
            self._put_escalation(c, row)

    def escalations(self, zone: str | None = None) -> list[EscalationRow]:
        sql = "SELECT * FROM escalations"
        args: tuple[str, ...] = ()
        if zone is not None:
            sql += " WHERE zone = ?"
            args = (zone,)
        return [EscalationRow(*r) for r in self._conn.execute(sql + " ORDER BY epoch", args)]

    # -- zone control objects --------------------------------------------------------------

    def put_descriptor(self, row: DescriptorRow) -> bool:
        """Keep every version; returns False if this (zone, version) was already stored."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO descriptors VALUES (?,?,?,?,?)",
                (row.zone, row.version, row.activation_epoch, row.content_id, row.data),
            )
            return cur.rowcount == 1

    def descriptors(self, zone: str) -> list[DescriptorRow]:
        rows = self._conn.execute(
            "SELECT * FROM descriptors WHERE zone = ? ORDER BY version", (zone,)
        ).fetchall()
        return [DescriptorRow(*r) for r in rows]

    def put_contract(self, content_id: bytes, zone: str, data: bytes) -> None:
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO contracts VALUES (?,?,?)", (content_id, zone, data))

    def get_contract(self, content_id: bytes) -> bytes | None:
        row = self._conn.execute(
            "SELECT data FROM contracts WHERE content_id = ?", (content_id,)
        ).fetchone()
        return bytes(row[0]) if row else None

    def contracts(self, zone: str) -> list[bytes]:
        rows = self._conn.execute(
            "SELECT data FROM contracts WHERE zone = ? ORDER BY content_id", (zone,)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def put_policy_ref(self, content_id: bytes, zone: str, data: bytes) -> bool:
        """Keep a signed policy reference agents of the zone may carry; False if known."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO policy_refs VALUES (?,?,?)", (content_id, zone, data)
            )
            return cur.rowcount == 1

    def policy_refs(self, zone: str) -> list[bytes]:
        rows = self._conn.execute(
            "SELECT data FROM policy_refs WHERE zone = ? ORDER BY content_id", (zone,)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def put_override(self, content_id: bytes, zone: str, epoch: int, data: bytes) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO overrides VALUES (?,?,?,?)", (content_id, zone, epoch, data)
            )

    def overrides(self, zone: str) -> list[tuple[bytes, int, bytes]]:
        rows = self._conn.execute(
            "SELECT content_id, epoch, data FROM overrides WHERE zone = ? ORDER BY epoch", (zone,)
        ).fetchall()
        return [(bytes(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    def put_host_record(self, row: HostRecordRow) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO host_records VALUES (?,?,?,?,?,?)",
                (
                    row.content_id,
                    row.zone,
                    row.host_key,
                    row.valid_from_epoch,
                    int(row.revoked),
                    row.data,
                ),
            )

    def host_record_zone(self, content_id: bytes) -> str | None:
        """The zone of the host-record row keyed ``content_id``, if there is one."""
        row = self._conn.execute(
            "SELECT zone FROM host_records WHERE content_id = ?", (content_id,)
        ).fetchone()
        return str(row[0]) if row else None

    def host_records(self, zone: str) -> list[HostRecordRow]:
        rows = self._conn.execute(
            "SELECT * FROM host_records WHERE zone = ? ORDER BY valid_from_epoch, content_id",
            (zone,),
        ).fetchall()
        return [HostRecordRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    # -- executions ------------------------------------------------------------------------

    def executed(self, content_id: bytes) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM executions WHERE content_id = ?", (content_id,)
        ).fetchone()
        return row is not None

    def record_execution(
        self,
        row: ExecutionRow,
        new_secret: tuple[bytes, bytes, int, bytes] | None,
        spent_commit: bytes | None,
    ) -> bool:
        """Record an execution with the slope secret it made and the one it spent, at once.

        Returns False (writing nothing) when this state was executed before.
        """
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO executions VALUES (?,?,?,?,?,?,?)",
                (
                    row.content_id,
                    row.zone,
                    row.genesis,
                    row.verb,
                    row.epoch,
                    row.result_id,
                    row.output,
                ),
            )
            if cur.rowcount != 1:
                return False
            if new_secret is not None:
                c.execute("INSERT OR REPLACE INTO slope_secrets VALUES (?,?,?,?)", new_secret)
            if spent_commit is not None:
                c.execute("DELETE FROM slope_secrets WHERE commitment = ?", (spent_commit,))
            return True

    def executions(self, zone: str | None = None, limit: int = 100) -> list[ExecutionRow]:
        if zone is None:
            rows = self._conn.execute(
                "SELECT * FROM executions ORDER BY epoch DESC, content_id LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM executions WHERE zone = ? ORDER BY epoch DESC, content_id LIMIT ?",
                (zone, limit),
            ).fetchall()
        return [ExecutionRow(*r) for r in rows]

    def unexecuted(self, limit: int = 100) -> list[AgentRow]:
        """Stored EXECUTE states with no execution record (a crash came between)."""
        rows = self._conn.execute(
            "SELECT * FROM agents WHERE disposition = 'EXECUTE' AND content_id NOT IN"
            " (SELECT content_id FROM executions) ORDER BY epoch LIMIT ?",
            (limit,),
        ).fetchall()
        return [AgentRow(*r) for r in rows]

    # -- quorum votes ----------------------------------------------------------------------

    def record_vote(self, row: VoteRow) -> bool:
        """Record our vote before it is sent; False if we already voted in this scope.

        The primary key (zone, scope) is what makes "at most one proposal per scope" durable.
        Re-recording the very same proposal is allowed (a resend after a crash).
        """
        with self._tx() as c:
            existing = c.execute(
                "SELECT proposal_hash FROM votes_cast WHERE zone = ? AND scope = ?",
                (row.zone, row.scope),
            ).fetchone()
            if existing is not None:
                return bytes(existing[0]) == row.proposal_hash
            c.execute(
                "INSERT INTO votes_cast VALUES (?,?,?,?,?)",
                (row.zone, row.scope, row.proposal_hash, row.deadline_epoch, row.data),
            )
            return True

    def vote(self, zone: str, scope: bytes) -> VoteRow | None:
        row = self._conn.execute(
            "SELECT * FROM votes_cast WHERE zone = ? AND scope = ?", (zone, scope)
        ).fetchone()
        return VoteRow(*row) if row else None

    # -- host identity and slope secrets ---------------------------------------------------

    def host_identity(self) -> tuple[bytes, bytes] | None:
        """(host signing key bytes, DDH slope state) or None before first run."""
        row = self._conn.execute("SELECT host_key, ddh_state FROM host_identity").fetchone()
        return (bytes(row[0]), bytes(row[1])) if row else None

    def set_host_identity(self, host_key: bytes, ddh_state: bytes) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO host_identity VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE"
                " SET host_key = excluded.host_key, ddh_state = excluded.ddh_state",
                (host_key, ddh_state),
            )

    def put_slope_secret(
        self, commitment: bytes, genesis: bytes, created_epoch: int, secret: bytes
    ) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO slope_secrets VALUES (?,?,?,?)",
                (commitment, genesis, created_epoch, secret),
            )

    def slope_secret(self, commitment: bytes) -> bytes | None:
        row = self._conn.execute(
            "SELECT secret FROM slope_secrets WHERE commitment = ?", (commitment,)
        ).fetchone()
        return bytes(row[0]) if row else None

    def take_slope_secret(
        self, commitment: bytes, genesis: bytes, content_id: bytes
    ) -> tuple[bytes, int] | None:
        """Remove and return ``(secret, created_epoch)`` of ``commitment`` if ``content_id``
        is still the newest stored state of ``genesis``; else None and nothing changes.

        Why one transaction: a seal must not spend a secret the executor or a mutation
        spent meanwhile (that makes two successors of one head, a fork), and after the seal
        neither may use it (they run on the store thread too, so whichever comes first wins).
        """
        with self._tx() as c:
            latest = c.execute(
                "SELECT content_id FROM agents WHERE genesis = ? ORDER BY depth DESC LIMIT 1",
                (genesis,),
            ).fetchone()
            if latest is None or bytes(latest[0]) != content_id:
                return None
            row = c.execute(
                "SELECT secret, created_epoch FROM slope_secrets WHERE commitment = ?",
                (commitment,),
            ).fetchone()
            if row is None:
                return None
            c.execute("DELETE FROM slope_secrets WHERE commitment = ?", (commitment,))
            return bytes(row[0]), int(row[1])

    def drop_slope_secret(self, commitment: bytes) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM slope_secrets WHERE commitment = ?", (commitment,))

    # -- plain-topic messages (bounded ring per topic) -------------------------------------

    def append_message(
        self, topic: str, msg_id: bytes, data: bytes, ring_size: int, received_ns: int = 0
    ) -> int:
        """Append to the topic's ring, dropping the oldest beyond ``ring_size``; returns seq
        (0 if the ring already holds this message id)."""
        with self._tx() as c:
            row = c.execute("SELECT max(seq) FROM messages WHERE topic = ?", (topic,)).fetchone()
            seq = (row[0] or 0) + 1
            added = c.execute(
                "INSERT OR IGNORE INTO messages (topic, seq, msg_id, data, received_ns)"
                " VALUES (?,?,?,?,?)",
                (topic, seq, msg_id, data, received_ns),
            ).rowcount
            if not added:  # already held (re-offered after a restart): keep the first copy
                return 0
            c.execute("DELETE FROM messages WHERE topic = ? AND seq <= ?", (topic, seq - ring_size))
            return seq

    def append_messages(
        self, items: Sequence[tuple[str, bytes, bytes, int]], ring_size: int
    ) -> list[int]:
        """Append ``(topic, msg_id, data, received_ns)`` items in one transaction (one fsync
        for a burst, not one per message); each topic's ring keeps ``ring_size``. A message
        id the ring already holds is skipped (its seq is 0)."""
        seqs: list[int] = []
        next_seq: dict[str, int] = {}
        with self._tx() as c:
            for topic, msg_id, data, received_ns in items:
                seq = next_seq.get(topic)
                if seq is None:
                    row = c.execute(
                        "SELECT max(seq) FROM messages WHERE topic = ?", (topic,)
                    ).fetchone()
                    seq = (row[0] or 0) + 1
                added = c.execute(
                    "INSERT OR IGNORE INTO messages (topic, seq, msg_id, data, received_ns)"
                    " VALUES (?,?,?,?,?)",
                    (topic, seq, msg_id, data, received_ns),
                ).rowcount
                if not added:  # already held (re-offered after a restart)
                    seqs.append(0)
                    next_seq[topic] = seq
                    continue
                next_seq[topic] = seq + 1
                seqs.append(seq)
            for topic, seq in next_seq.items():
                oldest_kept = seq - ring_size  # seq is one past the last appended
                c.execute("DELETE FROM messages WHERE topic = ? AND seq < ?", (topic, oldest_kept))
        return seqs

    def messages(self, topic: str, limit: int = 100, after_seq: int = 0) -> list[MessageRow]:
        rows = self._conn.execute(
            "SELECT topic, seq, msg_id, data, received_ns FROM messages"
            " WHERE topic = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (topic, after_seq, limit),
        ).fetchall()
        return [MessageRow(*r) for r in rows]

    # -- metrics ---------------------------------------------------------------------------

    def table_counts(self) -> dict[str, int]:
        """Row counts of the main tables, for /metrics and /status."""
        out: dict[str, int] = {}
        for table in (
            "agents",
            "decisions",
            "quarantine",
            "escalations",
            "executions",
            "messages",
        ):
            out[table] = int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return out
