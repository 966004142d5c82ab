"""Node CLI commands: --help everywhere, config show, one-line user errors, live status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from meshnode.cli_node import COMMANDS, register

REPO = Path(__file__).parents[2]


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def main() -> None:
        """test group"""

    register(main)
    return main


def invoke(cli: click.Group, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [[c.name] for c in COMMANDS if c.name] + [["config", "show"]],
    ids=lambda a: " ".join(a),
)
def test_every_command_has_help(cli: click.Group, args: list[str]) -> None:
    code, out = invoke(cli, *args, "--help")
    assert code == 0
    assert "Usage:" in out


def test_config_show_prints_resolved_toml(cli: click.Group, tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\ndata_dir = "d"\n[pubsub]\ntopics = ["chat"]\n')
    code, out = invoke(cli, "config", "show", "--config", str(cfg))
    assert code == 0
    assert f'data_dir = "{tmp_path / "d"}"' in out
    assert 'listen = ["/ip4/127.0.0.1/tcp/0"]' in out
    assert 'topics = ["chat"]' in out


def test_user_errors_are_one_line(cli: click.Group, tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\ndata_dir = "d"\nbogus = 1\n')
    code, out = invoke(cli, "config", "show", "--config", str(cfg))
    assert code == 1
    assert out.strip().splitlines() == [f"Error: node.bogus: unknown key (in {cfg})"]
    code, out = invoke(cli, "status", "--api", "127.0.0.1:1")
    assert code == 1
    assert len(out.strip().splitlines()) == 1
    assert "cannot reach the node API at 127.0.0.1:1" in out
    code, out = invoke(cli, "peers", "--api", "nonsense")
    assert code == 2
    assert "HOST:PORT" in out


def test_run_refuses_unsafe_key_file(
    cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshnode.node

    # run() installs the node's log handler on the root logger; keep pytest's in this process
    monkeypatch.setattr(meshnode.node, "configure_logging", lambda config: None)
    (tmp_path / "d").mkdir()
    key = tmp_path / "d" / "node.key"
    key.write_bytes(b"x")
    os.chmod(key, 0o644)
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\ndata_dir = "d"\n[api]\nport = 0\n')
    code, out = invoke(cli, "run", "--config", str(cfg))
    assert code == 1
    assert "Traceback" not in out
    assert "chmod 600" in out


def test_status_peers_publish_messages_against_a_live_node(
    cli: click.Group, tmp_path: Path
) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\ndata_dir = "d"\n[api]\nport = 0\n[pubsub]\ntopics = ["chat"]\n')
    info = tmp_path / "d" / "node.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshnode.node", "--config", str(cfg)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        api = json.loads(info.read_text())["api"]
        code, out = invoke(cli, "status", "--api", api, "--json")
        assert code == 0
        assert json.loads(out)["topics"] == ["chat"]
        code, out = invoke(cli, "status", "--api", api)
        assert code == 0
        assert "node status" in out
        code, out = invoke(cli, "peers", "--api", api, "--json")
        assert (code, json.loads(out)) == (0, [])
        data = tmp_path / "msg.txt"
        data.write_text("hi there")
        code, out = invoke(cli, "publish", "--api", api, "--topic", "chat", "--data", str(data))
        assert code == 0
        assert "published" in out
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            code, out = invoke(cli, "messages", "--api", api, "--topic", "chat", "--json")
            if json.loads(out):
                break
            time.sleep(0.05)
        assert [m["text"] for m in json.loads(out)] == ["hi there"]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
