"""SQLite store: schema versioning, every table's round trip, rings, and kill -9 durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshnode.store import (
    SCHEMA_VERSION,
    AgentRow,
    DecisionRow,
    DescriptorRow,
    EscalationRow,
    HostRecordRow,
    LineageRow,
    QuarantineRow,
    Store,
    StoreError,
    VoteRow,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "s.sqlite3")
    yield s
    s.close()


def agent(i: int, zone: str = "alpha") -> AgentRow:
    return AgentRow(
        content_id=i.to_bytes(32, "big"),
        zone=zone,
        genesis=b"g" * 32,
        head=bytes([i % 256]) * 32,
        disposition="STORE",
        epoch=100 + i,
        data=b"agent-%d" % i,
    )


def test_pragmas_and_schema_version(store: Store, tmp_path: Path) -> None:
    assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store.close()
    again = Store.open(tmp_path / "s.sqlite3")  # reopening does not re-run migrations
    assert again.schema_version == SCHEMA_VERSION
    again.close()


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this build"):
        Store.open(path)


def test_not_sqlite_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        Store.open(path)


def test_accept_agent_is_atomic_with_lineage_and_decision(store: Store) -> None:
    lineage = [LineageRow(bytes([d]) * 32, b"g" * 32, d, b"entry") for d in range(3)]
    decision = DecisionRow(101, "alpha", agent(1).content_id, "ACCEPT", "STORE", "policy permit")
    did = store.accept_agent(agent(1), lineage, decision)
    assert store.get_agent(agent(1).content_id) == agent(1)
    assert [r.depth for r in store.lineage(b"g" * 32)] == [0, 1, 2]
    assert store.decisions() == [(did, decision)]
    assert store.agents("alpha") == [agent(1)]
    assert store.agents_by_genesis(b"g" * 32) == [agent(1)]
    # a failing write leaves nothing behind
    bad = DecisionRow(1, "alpha", b"s", "ACCEPT", "STORE", None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.accept_agent(agent(2), [], bad)
    assert store.get_agent(agent(2).content_id) is None


def test_quarantine_ttl_and_quota_count(store: Store) -> None:
    for i, expiry in enumerate((10, 20, 30)):
        store.put_quarantine(QuarantineRow(bytes([i]) * 32, "alpha", b"h1", expiry, b"q"))
    assert store.quarantine_count("alpha", b"h1") == 3
    assert store.expire_quarantine(21) == 2
    assert [q.expires_epoch for q in store.quarantined("alpha")] == [30]


def test_control_objects_keep_every_version(store: Store) -> None:
    assert store.put_descriptor(DescriptorRow("alpha", 1, 10, b"c1", b"d1"))
    assert store.put_descriptor(DescriptorRow("alpha", 2, 20, b"c2", b"d2"))
    assert not store.put_descriptor(DescriptorRow("alpha", 2, 20, b"c2", b"other"))
    assert [d.data for d in store.descriptors("alpha")] == [b"d1", b"d2"]
    store.put_contract(b"k1", "alpha", b"contract")
    assert store.get_contract(b"k1") == b"contract"
    assert store.get_contract(b"k2") is None
    store.put_override(b"o1", "alpha", 5, b"ov")
    assert store.overrides("alpha") == [(b"o1", 5, b"ov")]
    rec = HostRecordRow(b"r1", "alpha", b"hk", 3, False, b"rec")
    store.put_host_record(rec)
    assert store.host_records("alpha") == [rec]
    store.put_escalation(EscalationRow(b"scope", "alpha", 7, "open", b"e"))
    assert store.escalations("alpha")[0].status == "open"


def test_one_vote_per_scope(store: Store) -> None:
    first = VoteRow("alpha", b"scope", b"p1", 50, b"v")
    assert store.record_vote(first)
    assert store.record_vote(first)  # a resend of the same proposal
    assert not store.record_vote(VoteRow("alpha", b"scope", b"p2", 50, b"v"))
    assert store.vote("alpha", b"scope") == first


def test_host_identity_and_slope_secrets(store: Store) -> None:
    assert store.host_identity() is None
    store.set_host_identity(b"key", b"ddh-1")
    store.set_host_identity(b"key", b"ddh-2")
    assert store.host_identity() == (b"key", b"ddh-2")
    store.put_slope_secret(b"c", b"g", 4, b"s")
    assert store.slope_secret(b"c") == b"s"
    store.drop_slope_secret(b"c")
    assert store.slope_secret(b"c") is None


def test_message_ring_is_bounded_per_topic(store: Store) -> None:
    for i in range(12):
        store.append_message("chat", bytes([i]), b"m%d" % i, ring_size=5)
    store.append_message("news", b"x", b"n", ring_size=5)
    rows = store.messages("chat")
    assert [r.seq for r in rows] == [8, 9, 10, 11, 12]
    assert [r.data for r in store.messages("chat", after_seq=10)] == [b"m10", b"m11"]
    assert store.table_counts()["messages"] == 6


CHILD = """
import sys
from collections.abc import Iterator
from pathlib import Path
from meshnode.store import AgentRow, DecisionRow, Store
s = Store.open(Path(sys.argv[1]))
i = 0
while True:
    cid = i.to_bytes(32, "big")
    row = AgentRow(cid, "alpha", b"g" * 32, cid, "STORE", i, b"x" * 1024)
    s.accept_agent(row, [], DecisionRow(i, "alpha", cid, "ACCEPT", "STORE", "ok"))
    sys.stdout.write(f"{i}\\n")
    sys.stdout.flush()
    i += 1
"""


def test_kill_9_loses_no_acknowledged_row(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    acked: list[int] = []
    deadline = time.monotonic() + 20
    try:
        assert proc.stdout is not None
        while len(acked) < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(acked) >= 300
    reopened = Store.open(path)
    try:
        missing = [i for i in acked if reopened.get_agent(i.to_bytes(32, "big")) is None]
        assert missing == []
        assert len(reopened.decisions(limit=100_000)) >= len(acked)
    finally:
        reopened.close()
