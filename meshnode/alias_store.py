"""Durable alias registrations of an anchor: a small SQLite file beside the node's store.

Why a separate file (``<data_dir>/alias.sqlite3``) rather than a table in the node store: the
node store's schema is versioned by its own append-only migrations, owned with the rest of
the node; the anchor role is optional and its table can evolve on its own version number.
Same durability rules (WAL, ``synchronous=FULL``): a registration is acknowledged only after
its row is committed. Calls are synchronous; the service runs them in a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from protocols.errors import MeshError
from protocols.index.resolve import Registration

SCHEMA_VERSION = 1
MAX_ROWS = 200_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    alias TEXT NOT NULL,
    uid   BLOB NOT NULL,
    head  BLOB NOT NULL,
    depth INTEGER NOT NULL,
    scope TEXT NOT NULL,
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
            "INSERT OR REPLACE INTO registrations VALUES (?,?,?,?,?)",
            (reg.alias, reg.uid, reg.head, reg.depth, json.dumps(list(reg.scope))),
        )

    def all(self) -> list[Registration]:
        rows = self._conn.execute(
            "SELECT alias, uid, head, depth, scope FROM registrations ORDER BY alias, uid"
        ).fetchall()
        return [
            Registration(bytes(r[1]), str(r[0]), bytes(r[2]), int(r[3]), tuple(json.loads(r[4])))
            for r in rows
        ]

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM registrations").fetchone()[0])
