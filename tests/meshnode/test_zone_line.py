"""Five real node processes in a line (each linked only to its neighbours) joined to one zone.

An agent published at one end is in every member's store within 2 s and executed by its host
(the other end) only; a forged slope is REJECTed where it enters and reaches nobody else; a
quarantine-worthy agent is in every member's quarantine and executed nowhere; a partial agent
with a valid lineage is forwarded and executed nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.meshnode.zone_harness import (
    ZoneNode,
    admit_all,
    content_id,
    forge,
    poll,
    start_line,
    zone_nodes,
)

N = 5


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


def test_zone_line_store_execute_reject_quarantine_partial(line: list[ZoneNode]) -> None:
    start_line(line)
    admit_all(line, via=line[0])
    first, last = line[0], line[-1]

    # honest: hosted by the far end, published at this end
    honest = last.make_agent({"verb": "note", "args": {"text": "hello"}})
    cid = content_id(honest)
    t0 = time.monotonic()
    status, answer = first.publish_agent(honest)
    assert status == 200, answer
    assert (answer["wire"], answer["disposition"]) == ("ACCEPT", "STORE")
    for n in line:
        poll(lambda n=n: cid in n.agent_ids(), 2.0 - (time.monotonic() - t0), f"agent at {n.name}")
    assert time.monotonic() - t0 < 2.0
    executed = poll(lambda: last.executions(), 5, "execution at the host")
    assert [e["content_id"] for e in executed] == [cid]
    assert executed[0]["output"] == {"noted": "hello"}
    result = executed[0]["result_id"]
    for n in line:  # the executed state travels back along the line, executed nowhere
        poll(lambda n=n: result in n.agent_ids(), 5, f"executed state at {n.name}")
    for n in line[:-1]:
        assert n.executions() == []

    # forged: the far end's agent with a damaged head signature, entering at this end
    forged = forge(last.make_agent({"verb": "note", "args": {"text": "forged"}}))
    status, answer = first.publish_agent(forged)
    assert status == 422
    assert (answer["wire"], answer["code"]) == ("REJECT", "bad-signature")
    fid = content_id(forged)
    rejects = [d for d in first.decisions() if d["subject"] == fid]
    assert [d["verdict"] for d in rejects] == ["REJECT"]

    # quarantine-worthy (the zone's contract holds role "suspect")
    suspect = last.make_agent({"verb": "note", "args": {"text": "x"}, "role": "suspect"})
    sid = content_id(suspect)
    status, answer = first.publish_agent(suspect)
    assert status == 200, answer
    assert answer["disposition"] == "QUARANTINE"
    for n in line:
        poll(lambda n=n: sid in n.quarantine_ids(), 5, f"quarantine at {n.name}")
        assert sid not in n.agent_ids()

    # partial: no memory, signed lineage: forwarded (FALLBACK), never executed
    partial = last.make_agent({"verb": "note", "args": {"text": "p"}, "omit": ["memory"]})
    pid = content_id(partial)
    status, answer = first.publish_agent(partial)
    assert status == 200, answer
    assert answer["disposition"] == "FALLBACK"
    for n in line:
        poll(lambda n=n: pid in n.agent_ids(), 5, f"partial at {n.name}")

    # after everything: the far end executed the honest agent only; nobody else executed;
    # the forged agent reached nobody beyond where it entered
    assert [e["content_id"] for e in last.executions()] == [cid]
    for n in line[:-1]:
        assert n.executions() == []
    for n in line[1:]:
        assert all(d["subject"] != fid for d in n.decisions())
    for n in line:
        assert "Traceback" not in n.log_text()
