"""Strict node config: unknown keys and bad values name the key and the file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from meshnode.config import NodeConfig, load_config, parse_config, render
from protocols.errors import ConfigError

KEY = "ab" * 32
PEER = "12D3KooWBGhAFiQFDCc6uhjtWKRaXtt6LaAYuqfNMbKUKoks8Xtv"

FULL = f"""
[node]
data_dir = "state"
key_file = "id.key"

[network]
listen = ["/ip4/127.0.0.1/tcp/4001"]
bootstrap = ["/ip4/127.0.0.1/tcp/4002/p2p/{PEER}"]
mdns = false
reconnect_initial_s = 0.25
reconnect_max_s = 10
send_queue_frames = 64

[api]
host = "127.0.0.1"
port = 7701

[pubsub]
topics = ["chat", "news"]
ring_size = 50

[[zone]]
id = "alpha"
authority_keys = ["{KEY}"]

[log]
level = "debug"
format = "json"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_full_file_loads_with_paths_resolved(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL))
    assert cfg.node.data_dir == (tmp_path / "state").resolve()
    assert cfg.node.key_file == (tmp_path / "state" / "id.key").resolve()
    assert cfg.network.listen == ("/ip4/127.0.0.1/tcp/4001",)
    assert cfg.network.bootstrap[0].endswith(PEER)
    assert cfg.network.reconnect_max_s == 10.0
    assert cfg.api.port == 7701
    assert cfg.pubsub.topics == ("chat", "news")
    assert cfg.zones[0].id == "alpha"
    assert cfg.zones[0].authority_keys == (bytes.fromhex(KEY),)
    assert cfg.log.level == "DEBUG"


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[node]\ndata_dir = "d"\n'))
    assert cfg.network.listen == ("/ip4/127.0.0.1/tcp/0",)
    assert cfg.network.max_frame_bytes == 1024 * 1024
    assert cfg.api.host == "127.0.0.1"
    assert cfg.zones == ()


def test_render_round_trips(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL))
    text = render(cfg)
    again = parse_config(tomllib.loads(text), file="rendered", base_dir=tmp_path)
    assert again.node == cfg.node
    assert again.network == cfg.network
    assert again.api == cfg.api
    assert again.pubsub == cfg.pubsub
    assert again.zones == cfg.zones
    assert again.log == cfg.log


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ('[node]\ndata_dir = "d"\ncolour = 1\n', "node.colour", "unknown key"),
        ('[node]\ndata_dir = "d"\n[netwrok]\n', "netwrok", "unknown key"),
        ('[node]\ndata_dir = "d"\n[network]\nmdns = "yes"\n', "network.mdns", "true or false"),
        ('[node]\ndata_dir = "d"\n[api]\nport = 70000\n', "api.port", "between"),
        ('[node]\ndata_dir = "d"\n[api]\nport = true\n', "api.port", "integer"),
        ('[node]\ndata_dir = "d"\n[api]\nhost = "0.0.0.0"\n', "api.host", "127.0.0.1 only"),
        (
            '[node]\ndata_dir = "d"\n[network]\nbootstrap = ["/ip4/127.0.0.1/tcp/1"]\n',
            "network.bootstrap[0]",
            "/p2p/",
        ),
        (
            '[node]\ndata_dir = "d"\n[network]\nlisten = ["not an address"]\n',
            "network.listen[0]",
            "multiaddr",
        ),
        (
            '[node]\ndata_dir = "d"\n[network]\nreconnect_initial_s = 5\nreconnect_max_s = 1\n',
            "network.reconnect_max_s",
            ">=",
        ),
        ('[node]\ndata_dir = "d"\n[[zone]]\nid = "z"\n', "zone[0].authority_keys", "missing"),
        (
            '[node]\ndata_dir = "d"\n[[zone]]\nid = "z"\nauthority_keys = ["abcd"]\n',
            "zone[0].authority_keys[0]",
            "32 bytes",
        ),
        (
            f'[node]\ndata_dir = "d"\n[[zone]]\nid = "z"\nauthority_keys = ["{KEY}"]\nx = 1\n',
            "zone[0].x",
            "unknown key",
        ),
        ('[node]\ndata_dir = "d"\n[pubsub]\ntopics = ["a", "a"]\n', "pubsub.topics", "twice"),
        ('[node]\ndata_dir = "d"\n[log]\nlevel = "loud"\n', "log.level", "one of"),
        ("[network]\n", "node", "missing"),
    ],
)
def test_bad_files_name_key_and_file(tmp_path: Path, text: str, where: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.where == where
    assert fragment in info.value.message
    assert str(path) in info.value.message


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[node\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_for_data_dir_defaults(tmp_path: Path) -> None:
    cfg = NodeConfig.for_data_dir(tmp_path)
    assert cfg.node.key_file == tmp_path / "node.key"
    assert cfg.store_path.parent == tmp_path


def test_every_key_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "config.md").read_text()
    cfg = NodeConfig.for_data_dir(Path("/x"))
    sections = {
        "node": cfg.node,
        "network": cfg.network,
        "api": cfg.api,
        "pubsub": cfg.pubsub,
        "log": cfg.log,
    }
    missing = [
        f"{name}.{key}"
        for name, section in sections.items()
        for key in vars(section)
        if f"`{name}.{key}`" not in doc
    ]
    missing += [f"zone.{k}" for k in ("id", "authority_keys") if f"`zone.{k}`" not in doc]
    assert missing == []
