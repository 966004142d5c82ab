"""Migration into a zone whose members never joined the source zone, all by the CLI.

Zones alpha and beta share one authority. n0 and n1 join both, n2 joins beta only. The
authority admits n0 and n1 with one host record each that is valid in both zones
(``meshnode zone admit-host alpha.zone beta.zone``), so beta's zone file carries the very
records the agent's alpha entries name. n0 hosts an agent in alpha; ``meshnode agent migrate
--to-zone beta`` hands it to n1. n2, which holds nothing of alpha's, admits the admission
entry (it verifies the agent's alpha history against those records) and the execution n1 then
makes in beta. Identities come from ``meshnode id`` before any node starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.meshnode.zone_harness import REPO, ZoneNode, _read_json, cli, free_port, poll

POLICY = """
[contract]
zone = "{zone}"
name = "{zone}-notes"
version = 1
default = "deny"
default_reason = "only notes by workers"

[[rule]]
name = "notes"
verdict = "permit"
reason = "notes by workers"
verbs = ["note"]
roles = ["worker"]
"""


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    made = [ZoneNode(f"n{i}", tmp_path / f"n{i}", free_port()) for i in range(3)]
    yield made
    for n in made:  # kill only what this test started, by pid
        n.kill()


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def zone_row(node: ZoneNode, zone: str) -> dict[str, Any]:
    return next(z for z in node.get("/zones")["zones"] if z["zone"] == zone)


def test_agent_migrates_into_a_zone_whose_members_never_saw_the_source(
    nodes: list[ZoneNode], tmp_path: Path
) -> None:
    auth = ok(cli("keygen", "--out", str(tmp_path / "authority.key"))).split()[-1]
    files = {}
    for zone in ("alpha", "beta"):
        policy = tmp_path / f"{zone}.toml"
        policy.write_text(POLICY.format(zone=zone))
        files[zone] = tmp_path / f"{zone}.zone"
        cross = ["--cross-zone", "alpha"] if zone == "beta" else []
        ok(
            cli(
                "zone", "new", "--id", zone, "--policy", str(policy), "--key",
                str(tmp_path / "authority.key"), "--out", str(files[zone]), *cross,
            )
        )  # fmt: skip
    member_of = {0: ("alpha", "beta"), 1: ("alpha", "beta"), 2: ("beta",)}
    idents = []
    for i, node in enumerate(nodes):
        node.write_config([], member_of[i], authority=auth)
        ident = json.loads(ok(cli("id", "--config", str(node.config), "--json")))
        idents.append(ident)
        node.peer_id = ident["peer_id"]
        # one record per host, valid in every zone it joins, added to each of those files
        ok(
            cli(
                "zone", "admit-host", *(str(files[z]) for z in member_of[i]), "--key",
                str(tmp_path / "authority.key"), "--host-key", ident["host_key"], "--ddh",
                ident["ddh_genesis"], "--addr", ident["addrs"][0],
            )
        )  # fmt: skip
    for i, node in enumerate(nodes):
        node.write_config([nodes[i - 1].addr()] if i else [], member_of[i], authority=auth)
        with open(node.dir / "stderr.log", "ab") as err:
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(node.config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
    for node in nodes:
        info = poll(lambda n=node: _read_json(n.dir / "data" / "node.json"), 60, node.name)
        node.api = info["api"]
    for zone in ("alpha", "beta"):
        ok(cli("zone", "publish", str(files[zone]), "--api", nodes[0].api))
    for i, node in enumerate(nodes):
        for zone in member_of[i]:
            want = 2 if zone == "alpha" else 3
            poll(
                lambda n=node, z=zone, w=want: (
                    (r := zone_row(n, z))["host_admitted"] and r["hosts"] == w
                ),
                20,
                f"{node.name} to learn {zone}",
            )

    old, new, outsider = nodes
    spawned = json.loads(
        ok(cli("spawn", "--zone", "alpha", "--intent", "note:text=hi", "--api", old.api, "--json"))
    )
    agent_state = spawned["content_id"]
    executed = poll(lambda: old.executions(), 20, "execution in alpha")
    assert executed[0]["content_id"] == agent_state
    rows = old.get("/agents?zone=alpha")["agents"]
    genesis = next(r["genesis"] for r in rows if r["content_id"] == agent_state)

    done = cli(
        "agent", "migrate", "--zone", "alpha", genesis, "--to", new.peer_id, "--to-zone",
        "beta", "--api", old.api, "--json",
    )  # fmt: skip
    moved = json.loads(ok(done))
    assert (moved["admission"]["wire"], moved["admission"]["code"]) == ("ACCEPT", "permit-host")
    admission = moved["admission"]["content_id"]
    beta_ids = lambda n: {r["content_id"] for r in n.get("/agents?zone=beta")["agents"]}  # noqa: E731
    poll(lambda: admission in beta_ids(outsider), 20, "the admission at the beta-only node")
    ran = poll(lambda: new.executions(), 20, "execution by the new host in beta")
    assert [(e["content_id"], e["zone"]) for e in ran] == [(admission, "beta")]
    poll(lambda: ran[0]["result_id"] in beta_ids(outsider), 20, "the new result at n2")
    # n2 judged the agent's alpha history without ever joining alpha.
    assert [z["zone"] for z in outsider.get("/zones")["zones"]] == ["beta"]
    # A node in both zones keeps each shared record for both (its view is rebuilt from
    # these rows on restart).
    for node in (old, new):
        with closing(node.db()) as conn:
            rows = conn.execute("SELECT zone, COUNT(*) FROM host_records GROUP BY zone").fetchall()
        assert dict(rows) == {"alpha": 2, "beta": 3}, (node.name, rows)
