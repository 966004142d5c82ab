"""Durable alias registrations of an anchor: a small SQLite file beside the node's store.

Why a separate file (``<data_dir>/alias.sqlite3``) rather than a table in the node store: the
node store's schema is versioned by its own append-only migrations, owned with the rest of
the node; the anchor role is optional and its table can evolve on its own version number.
Same durability rules (WAL, ``synchronous=FULL``): a registration is acknowledged only after
its row is committed. Calls are synchronous; the service runs them in a worker thread.

Schema 2 adds each registration's ``sig`` and ``proof`` (canonical CBOR of its lineage
entries), which the anchor needs to check later registrations of the same UID. Schema-1 rows
carry neither and cannot be verified, so opening a schema-1 file drops them: registrants
re-register (``meshnode alias register``) with a signed, proven registration.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from protocols import codec
from protocols.agent.validate import entry_from_cbor
from protocols.errors import MeshError
from protocols.index.resolve import Registration

SCHEMA_VERSION = 2
MAX_ROWS = 200_000
MAX_PROOF_BYTES = 1 << 20
SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    alias TEXT NOT NULL,
    uid   BLOB NOT NULL,
    head  BLOB NOT NULL,
    depth INTEGER NOT NULL,
    scope TEXT NOT NULL,
    sig   BLOB NOT NULL,
    proof BLOB NOT NULL,
    PRIMARY KEY (alias, uid)
) WITHOUT ROWID;
"""


class AliasStoreError(MeshError):
    """The alias file is unusable or full."""


class AliasStore:
    """Registrations held by this anchor, newest head per (alias, uid)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> AliasStore:
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise AliasStoreError(f"{path} has alias schema {version}, newer than ours")
            if version == 1:  # unsigned, unproven rows: dropped (module doc)
                conn.execute("DROP TABLE IF EXISTS registrations")
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise AliasStoreError(f"cannot open alias store {path}: {exc}") from exc
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def put(self, reg: Registration) -> None:
        """Keep ``reg`` if it is fresher than the row for its (alias, uid); commit first."""
        row = self._conn.execute(
            "SELECT depth, head FROM registrations WHERE alias = ? AND uid = ?",
            (reg.alias, reg.uid),
        ).fetchone()
        if row is not None and (int(row[0]), bytes(row[1])) >= (reg.depth, reg.head):
            return
        if row is None and self.count() >= MAX_ROWS:
            raise AliasStoreError(f"alias store holds {MAX_ROWS} registrations; refusing more")
        self._conn.execute(
            "INSERT OR REPLACE INTO registrations VALUES (?,?,?,?,?,?,?)",
            (
                reg.alias,
                reg.uid,
                reg.head,
                reg.depth,
                json.dumps(list(reg.scope)),
                reg.sig,
                codec.encode([e.to_cbor() for e in reg.proof]),
            ),
        )

    def all(self) -> list[Registration]:
        """Every row, oldest head first per UID (so a reload keeps the deepest)."""
        rows = self._conn.execute(
            "SELECT alias, uid, head, depth, scope, sig, proof FROM registrations"
            " ORDER BY uid, depth, alias"
        ).fetchall()
        out = []
        for r in rows:
            try:
                items = codec.decode(bytes(r[6]), max_bytes=MAX_PROOF_BYTES)
                if not isinstance(items, list):
                    raise AliasStoreError("a stored proof is not a list")
                proof = tuple(entry_from_cbor(e) for e in items)
            except MeshError:
                continue  # a damaged row is skipped, never served
            scope = tuple(json.loads(r[4]))
            out.append(
                Registration(
                    bytes(r[1]), str(r[0]), bytes(r[2]), int(r[3]), scope, proof, bytes(r[5])
                )
            )
        return out

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM registrations").fetchone()[0])
