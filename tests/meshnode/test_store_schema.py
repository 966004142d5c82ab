"""Store schemas 2-4: a version-1 file migrates in place with its rows kept; executions are
recorded at most once with their slope secrets; a batch of admissions commits as one; a
plain-topic message id is kept once (schema 4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meshnode.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AdmissionWrite,
    AgentRow,
    DecisionRow,
    ExecutionRow,
    LineageRow,
    QuarantineRow,
    Store,
)


def test_version_1_file_migrates_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO agents VALUES (?,?,?,?,?,?,?)", (b"c", "z", b"g", b"h", "STORE", 5, b"d")
    )
    conn.execute("INSERT INTO messages VALUES ('t', 1, x'01', x'02')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION == 4
    assert store.get_agent(b"c") == AgentRow(b"c", "z", b"g", b"h", "STORE", 5, b"d", 0)
    (msg,) = store.messages("t")
    assert (msg.data, msg.received_ns) == (b"\x02", 0)
    assert store.executions() == []


def test_execution_recorded_once_with_its_secrets(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    store.put_slope_secret(b"old", b"g", 1, b"s-old")
    row = ExecutionRow(b"c", "z", b"g", "note", 3, b"r", b"\xa0")
    assert store.record_execution(row, (b"new", b"g", 3, b"s-new"), b"old")
    assert store.slope_secret(b"old") is None
    assert store.slope_secret(b"new") == b"s-new"
    assert not store.record_execution(row, (b"other", b"g", 3, b"x"), b"new")
    assert store.slope_secret(b"other") is None  # nothing of the refused repeat was written
    assert store.slope_secret(b"new") == b"s-new"
    assert store.executions("z") == [row]
    assert store.executed(b"c")


def test_batch_of_admissions_commits_together(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    decision = DecisionRow(7, "z", b"c1", "ACCEPT", "EXECUTE", "permit-host: ok", at_ns=123)
    writes = [
        AdmissionWrite(
            decision,
            agent=AgentRow(b"c1", "z", b"g1", b"h1", "EXECUTE", 7, b"a", 2),
            lineage=(LineageRow(b"e1", b"g1", 1, b"x"), LineageRow(b"e2", b"g1", 2, b"y")),
        ),
        AdmissionWrite(
            DecisionRow(7, "z", b"c2", "ACCEPT", "QUARANTINE", "policy-quarantine: held"),
            quarantine=QuarantineRow(b"c2", "z", b"host", 9, b"q"),
        ),
        AdmissionWrite(DecisionRow(7, "z", b"c3", "REJECT", "DROP", "bad-signature: x")),
    ]
    store.commit_admissions(writes)
    assert [d.subject for _, d in store.decisions()] == [b"c1", b"c2", b"c3"]
    assert store.decisions()[0][1].at_ns == 123
    assert store.latest_state(b"g1") is not None
    assert store.trusted_heads() == [(b"g1", b"e2", 2)]
    assert store.quarantine_count("z", b"host") == 1
    assert [r.content_id for r in store.unexecuted()] == [b"c1"]


def test_append_messages_batch_keeps_each_ring(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite3")
    store.append_message("a", b"m0", b"old", 3)
    items = [("a", b"m%d" % i, b"x%d" % i, i) for i in range(1, 5)] + [("b", b"n", b"y", 9)]
    assert store.append_messages(items, 3) == [2, 3, 4, 5, 1]
    assert [m.seq for m in store.messages("a")] == [3, 4, 5]
    assert [m.received_ns for m in store.messages("a")] == [2, 3, 4]
    assert [(m.seq, m.data) for m in store.messages("b")] == [(1, b"y")]


def test_a_message_id_already_held_is_not_stored_again(tmp_path: Path) -> None:
    """A restarted node's seen-cache is empty: gossip re-offers what its ring already holds."""
    store = Store.open(tmp_path / "s.sqlite3")
    assert store.append_message("a", b"m1", b"first", 5, received_ns=1) == 1
    assert store.append_message("a", b"m1", b"again", 5, received_ns=2) == 0
    items = [("a", b"m1", b"again", 3), ("a", b"m2", b"new", 4), ("a", b"m2", b"dup", 5)]
    assert store.append_messages(items, 5) == [0, 2, 0]
    assert [(m.seq, m.data) for m in store.messages("a")] == [(1, b"first"), (2, b"new")]
    assert store.append_message("b", b"m1", b"other topic", 5) == 1  # ids are per topic


def test_version_3_file_with_duplicate_messages_keeps_the_first(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    rows = [("t", 1, b"x", b"one", 1), ("t", 2, b"y", b"two", 2), ("t", 3, b"x", b"re", 3)]
    conn.executemany("INSERT INTO messages VALUES (?,?,?,?,?)", rows)
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    store = Store.open(path)
    assert [(m.seq, m.data) for m in store.messages("t")] == [(1, b"one"), (2, b"two")]


def test_accepted_at_is_the_first_accept(tmp_path: Path) -> None:
    """Sync offers only states accepted a while ago: the age comes from the first ACCEPT."""
    store = Store.open(tmp_path / "s.sqlite3")
    assert store.accepted_at_ns(b"c") == 0
    store.commit_admissions([AdmissionWrite(DecisionRow(1, "z", b"c", "REJECT", "DROP", "x", 5))])
    assert store.accepted_at_ns(b"c") == 0
    for at in (30, 20):
        decision = DecisionRow(1, "z", b"c", "ACCEPT", "STORE", "permit", at_ns=at)
        store.commit_admissions([AdmissionWrite(decision)])
    assert store.accepted_at_ns(b"c") == 20


def test_a_seal_takes_the_secret_only_from_the_newest_state(tmp_path: Path) -> None:
    """take_slope_secret: one claim, and none once a newer state of the slope exists."""
    store = Store.open(tmp_path / "s.sqlite3")

    def state(cid: bytes, depth: int) -> AdmissionWrite:
        decision = DecisionRow(1, "z", cid, "ACCEPT", "EXECUTE", "permit")
        return AdmissionWrite(
            decision, agent=AgentRow(cid, "z", b"g", cid, "EXECUTE", 1, b"", depth)
        )

    store.commit_admissions([state(b"s1", 1)])
    store.put_slope_secret(b"k1", b"g", 4, b"secret-1")
    store.commit_admissions([state(b"s2", 2)])  # the executor extended the slope meanwhile
    assert store.take_slope_secret(b"k1", b"g", b"s1") is None
    assert store.slope_secret(b"k1") == b"secret-1"  # nothing changed
    store.put_slope_secret(b"k2", b"g", 5, b"secret-2")
    assert store.take_slope_secret(b"k2", b"g", b"s2") == (b"secret-2", 5)
    assert store.slope_secret(b"k2") is None
    assert store.take_slope_secret(b"k2", b"g", b"s2") is None  # spent: no second seal
