"""The operator's zone workflow through the CLI against a real node process.

keygen -> zone new -> (node runs) -> zone admit-host with the node's host key -> zone publish
-> zones -> spawn (executed here, its host) -> spawn --out + publish --zone -> quarantine ->
executions -> agents; a forged file is refused with exit 1 and the admission table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshnode.cli import main
from meshnode.cli_governance import read_key
from protocols.governance.signing import public_key
from tests.meshnode.zone_harness import REPO, ZoneNode, forge, free_port, poll

ZONE = "fleet"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ZoneNode]:
    n = ZoneNode("n0", tmp_path / "n0", free_port())
    yield n
    n.kill()  # only the process this test started, by pid


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_operator_zone_workflow(node: ZoneNode, tmp_path: Path) -> None:
    key, zfile = tmp_path / "auth.key", tmp_path / "zone.cbor"
    assert cli("keygen", "--out", str(key))[0] == 0
    policy = str(REPO / "examples" / "zone-policy.toml")
    code, out = cli("zone", "new", "--id", ZONE, "--policy", policy, "--key", str(key),
                    "--out", str(zfile))  # fmt: skip
    assert code == 0, out
    node.write_config([], zones=())
    authority = public_key(read_key(key)).hex()
    node.config.write_text(
        node.config.read_text() + f'[[zone]]\nid = "{ZONE}"\nauthority_keys = ["{authority}"]\n'
    )
    node.start()
    api = ("--api", node.api)
    status = node.get("/status")
    host, ddh = status["host_key"], status["ddh"]["genesis"]
    code, out = cli("zone", "admit-host", str(zfile), "--key", str(key),
                    "--host-key", host, "--ddh", ddh)  # fmt: skip
    assert code == 0, out

    code, out = cli("zone", "publish", str(zfile), *api)
    assert code == 0, out
    assert "descriptors=1" in out
    assert "host_records=1" in out
    code, out = cli("zones", *api, "--json")
    (zone,) = json.loads(out)
    assert (zone["zone"], zone["active_descriptor"], zone["host_admitted"]) == (ZONE, 1, True)

    code, out = cli("spawn", "--zone", ZONE, "--intent", "note:text=hello", *api, "--json")
    assert code == 0, out
    spawned = json.loads(out)
    assert (spawned["wire"], spawned["disposition"]) == ("ACCEPT", "EXECUTE")

    made = tmp_path / "echo.cbor"
    code, out = cli("spawn", "--zone", ZONE, "--intent", "echo:x=1", "--out", str(made), *api)
    assert code == 0, out
    assert made.exists()
    code, out = cli("publish", "--zone", ZONE, str(made), *api)
    assert code == 0, out
    assert "EXECUTE" in out

    code, out = cli("spawn", "--zone", ZONE, "--intent", "note:text=x", "--role", "suspect", *api)
    assert code == 0, out
    assert "QUARANTINE" in out
    code, out = cli("quarantine", *api, "--json")
    assert len(json.loads(out)) == 1

    fresh, forged = tmp_path / "fresh.cbor", tmp_path / "forged.cbor"
    code, out = cli("spawn", "--zone", ZONE, "--intent", "note:text=f", "--out", str(fresh), *api)
    assert code == 0, out
    forged.write_bytes(forge(fresh.read_bytes()))
    code, out = cli("publish", "--zone", ZONE, str(forged), *api)
    assert code == 1
    assert "REJECT" in out

    rows = poll(lambda: json.loads(cli("executions", *api, "--json")[1]), 5, "executions")
    runs = poll(lambda: rows if len(rows) == 2 else None, 1, "two executions")
    assert sorted(r["verb"] for r in runs) == ["echo", "note"]
    code, out = cli("agents", "--zone", ZONE, *api, "--json")
    agents = json.loads(out)
    # two executed states and the two states their executions made, nothing else
    assert sorted(a["disposition"] for a in agents) == ["EXECUTE", "EXECUTE", "STORE", "STORE"]
    for table in (("agents", "--zone", ZONE), ("executions",), ("quarantine",), ("zones",)):
        code, out = cli(*table, *api)
        assert code == 0, out
        assert "Traceback" not in out
    code, out = cli("agents", "--zone", "nowhere", *api)
    assert code == 1
    assert "not joined zone 'nowhere'" in out
