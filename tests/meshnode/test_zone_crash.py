"""kill -9 of a node during a stream of 200 zone publishes to it.

The test process records each acknowledgement (HTTP 200 = admitted and committed) as it
arrives; after a restart the node still has every acknowledged agent, has executed each one
it hosts (an execution interrupted by the crash is resumed from the store), its DDH slope
continues (same genesis, the same value or one linked step on), and it re-joins its mesh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.meshnode.zone_harness import ZoneNode, admit_all, free_port, poll, start_line

PUBLISHES = 200
KILL_AFTER = 60  # acknowledgements before the kill


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    nodes = [ZoneNode(f"n{i}", tmp_path / f"n{i}", free_port()) for i in range(2)]
    yield nodes
    for n in nodes:  # kill only what this test started, by pid
        n.kill()


def test_kill_9_during_200_publishes_keeps_every_ack(pair: list[ZoneNode]) -> None:
    peer, target = pair
    start_line(pair)
    admit_all(pair, via=peer)

    acked: list[str] = []
    failures: list[str] = []
    enough = threading.Event()

    def publisher() -> None:
        for i in range(PUBLISHES):
            try:
                status, answer = target.new_agent({"verb": "echo", "args": {"i": i}}, publish=True)
            except OSError as exc:  # the node died under us: stop, as a client would
                failures.append(repr(exc))
                return
            if status != 200:
                failures.append(f"{status}: {answer}")
                return
            acked.append(answer["content_id"])  # recorded the moment the ack arrives
            if len(acked) >= KILL_AFTER:
                enough.set()
        enough.set()

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    assert enough.wait(60), failures
    before = target.get("/status")["ddh"]
    read_at = time.monotonic()
    target.kill()  # SIGKILL, mid-stream
    thread.join(30)
    assert not thread.is_alive()
    assert KILL_AFTER <= len(acked) < PUBLISHES, (len(acked), failures)

    target.start()
    after = target.get("/status")["ddh"]
    # less than one epoch (10 s) between the reads: at most one epoch boundary, so the slope
    # is where it was or one linked step on from it (a fresh slope would fail both)
    assert time.monotonic() - read_at < 10
    assert after["genesis"] == before["genesis"]
    assert after["epoch"] >= before["epoch"]
    assert after["value"] == before["value"] or after["prev"] == before["value"]

    have = target.agent_ids()
    missing = [c for c in acked if c not in have]
    assert missing == [], f"{len(missing)} acknowledged agents lost"
    # every acknowledged agent it hosts was executed exactly once (resumed if interrupted)
    poll(
        lambda: set(acked) <= {e["content_id"] for e in target.executions()},
        15,
        "executions of every acknowledged agent",
    )
    executed = [e["content_id"] for e in target.executions()]
    assert len(executed) == len(set(executed))

    # it re-joins its mesh: a new agent from the restarted node reaches its peer
    poll(lambda: target.get("/zones")["zones"][0]["mesh_peers"] == 1, 15, "mesh re-joined")
    status, answer = target.new_agent({"verb": "note", "args": {"text": "back"}}, publish=True)
    assert status == 200, answer
    poll(lambda: answer["content_id"] in peer.agent_ids(), 10, "post-restart agent at the peer")
    assert "Traceback" not in target.log_text()
