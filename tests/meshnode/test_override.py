"""``POST /override`` and ``meshnode override publish|list`` on three real node processes.

The meta-authority signs a SUSPEND override for one agent's scope (``meshnode zone override
--out``) and publishes it through the far node; every member lists it. The targeted agent,
then published at the far end, is QUARANTINEd (``suspended``) by every member and never
executed by its host; an agent it does not target executes as usual. An override signed by
the zone authority instead of the meta-authority is refused with 422 and reaches no one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshnode.cli_governance import write_key
from protocols.agent.validate import validate_bytes
from protocols.governance.meta import Action, Override
from protocols.governance.quorum import scope_of
from tests.meshnode.svc_harness import start_zone_line
from tests.meshnode.zone_harness import (
    WORLD,
    ZONE,
    ZoneNode,
    admit_all,
    cli,
    content_id,
    poll,
    zone_file,
    zone_nodes,
)

N = 3


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


def genesis_of(agent: bytes) -> bytes:
    made = validate_bytes(agent).agent
    assert made is not None
    assert made.lineage is not None
    return made.lineage.genesis_dah


def override_ids(node: ZoneNode) -> set[str]:
    return {o["id"] for o in node.get(f"/overrides?zone={ZONE}")["overrides"]}


def test_override_reaches_members_and_binds_its_target(
    line: list[ZoneNode], tmp_path: Path
) -> None:
    start_zone_line(line)
    admit_all(line, via=line[0])
    host, far = line[0], line[-1]
    target = host.make_agent({"verb": "note", "args": {"text": "hold me"}})
    other = host.make_agent({"verb": "note", "args": {"text": "carry on"}})
    scope = scope_of(ZONE, genesis_of(target))
    epoch = int(time.time()) // 10

    # Not the meta-authority: refused where posted, published nowhere.
    forged = Override(ZONE, scope, Action.SUSPEND, epoch - 1, epoch + 100, "forged").sign(
        WORLD.authority[0]
    )
    status, refused = far.call("POST", f"/override?zone={ZONE}", forged.encode())
    assert status == 422, refused
    assert "override refused" in refused["error"]

    # The meta-authority's override, made by the CLI, published through the far node.
    zone_path, meta_key, out = tmp_path / "zone.cbor", tmp_path / "meta.key", tmp_path / "o.cbor"
    zone_path.write_bytes(zone_file(line))
    write_key(meta_key, WORLD.meta[0].encode())
    made = cli(
        "zone", "override", str(zone_path), "--meta-key", str(meta_key), "--action", "suspend",
        "--target", scope.hex(), "--from-epoch", str(epoch - 1), "--until-epoch",
        str(epoch + 100), "--reason", "safety hold", "--out", str(out),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    done = cli("override", "publish", str(out), "--api", far.api, "--json")
    assert done.returncode == 0, done.stderr
    published = json.loads(done.stdout)
    (ov,) = published["overrides"]
    assert (ov["action"], ov["target"]) == ("suspend", scope.hex())
    for n in line:
        poll(lambda n=n: ov["id"] in override_ids(n), 15, f"override at {n.name}")
        assert override_ids(n) == {ov["id"]}, n.name  # the forged one is nowhere
    listed = cli("override", "list", "--zone", ZONE, "--api", host.api, "--json")
    assert [o["id"] for o in json.loads(listed.stdout)] == [ov["id"]]

    # The targeted agent: suspended (QUARANTINE) by every member, executed by none.
    status, verdict = far.publish_agent(target)
    assert status == 200, verdict
    assert (verdict["code"], verdict["disposition"]) == ("suspended", "QUARANTINE"), verdict
    for n in line:
        poll(lambda n=n: content_id(target) in n.quarantine_ids(), 15, f"held at {n.name}")
        assert content_id(target) not in n.agent_ids(), n.name
    # An agent the override does not target executes on its host as usual.
    status, verdict = far.publish_agent(other)
    assert (status, verdict["code"]) == (200, "permit"), verdict
    ran = poll(lambda: host.executions(), 15, "the other agent's execution")
    assert [e["content_id"] for e in ran] == [content_id(other)]
