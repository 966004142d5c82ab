"""``meshnode id --config FILE``: the identity a node will run with, without starting it.

On a fresh config it creates the libp2p key file (mode 0600) and the host identity, prints the
same values on every call, and the node started from that config afterwards reports exactly
that peer id, host key and DDH genesis in ``/status``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.meshnode.zone_harness import ZoneNode, cli, free_port


def test_id_prints_the_identity_the_node_then_runs_with(tmp_path: Path) -> None:
    node = ZoneNode("n0", tmp_path / "n0", free_port())
    node.write_config([])
    key_file = node.dir / "data" / "node.key"
    assert not key_file.exists()

    first = cli("id", "--config", str(node.config), "--json")
    assert first.returncode == 0, first.stderr
    ident = json.loads(first.stdout)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ident["addrs"] == [f"/ip4/127.0.0.1/tcp/{node.port}/p2p/{ident['peer_id']}"]
    again = cli("id", "--config", str(node.config), "--field", "peer_id")
    assert again.stdout.strip() == ident["peer_id"]

    try:
        node.start()
        status = node.get("/status")
    finally:
        node.kill()  # only the process this test started, by pid
    assert status["peer_id"] == ident["peer_id"]
    assert status["host_key"] == ident["host_key"]
    assert status["ddh"]["genesis"] == ident["ddh_genesis"]

    broken = cli("id", "--config", str(tmp_path / "missing.toml"))
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
