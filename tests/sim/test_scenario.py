"""Scenario files are strict: every bad key or value is a ConfigError naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.errors import ConfigError
from sim.scenario import load, schema_markdown

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(  # *-sweep.toml are sweep files (tests/sim/test_sweep.py loads those)
    p for p in (ROOT / "scenarios").glob("*.toml") if not p.stem.endswith("-sweep")
)

BASE = """
[run]
duration_s = 5.0

[topology]
kind = "random_regular"
nodes = 20
degree = 4
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_minimal_scenario_fills_defaults(tmp_path: Path) -> None:
    sc = load(write(tmp_path, BASE))
    assert sc.run.seed == 1
    assert sc.gossip.d == 6
    assert [g.name for g in sc.groups] == ["honest"]
    assert sc.group_sizes() == (20,)
    assert [lc.name for lc in sc.link_classes] == ["default"]


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("[run]\nbogus = 1\n", "run.bogus"),
        ("[bogus]\nx = 1\n", "bogus"),
        ('[[group]]\nname = "a"\nspeed = 3\n', "group[0].speed"),
        ('[[event]]\nat_s = 1.0\nkind = "heal"\ncount = 3\n', "event[0].count"),
        ('[[event]]\nat_s = 1.0\nkind = "explode"\n', "event[0].kind"),
        ('[gossip]\nd = "six"\n', "gossip.d"),
        ("[gossip]\nd = 3\n", "gossip.d"),
        ('[network]\nlink_class = "nope"\n', "network.link_class"),
        ("[[link_class]]\nlatency_ms = 1.0\n", "link_class[0].name"),
        ('[[link_class]]\nname = "default"\nloss = 1.5\n', "link_class[0].loss"),
        ('[[group]]\nname = "a"\ncount = 30\n', "group"),
        ('[[event]]\nat_s = 99.0\nkind = "heal"\n', "event[0].at_s"),
    ],
)
def test_bad_keys_name_key_and_file(tmp_path: Path, extra: str, where: str) -> None:
    text = BASE + "\n" + extra
    if extra.startswith("[run]"):
        text = BASE.replace("[run]\n", "[run]\nbogus = 1\n", 1)
    if extra.startswith("[gossip]\nd = 3"):
        text = BASE + "\n[gossip]\nd = 3\nd_lo = 4\nd_out = 1\nd_score = 2\n"
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(p)
    assert info.value.path == where
    assert str(p) in info.value.message


def test_set_overrides_any_documented_key(tmp_path: Path) -> None:
    p = write(tmp_path, BASE + '\n[[link_class]]\nname = "default"\n')
    sc = load(p, ["topology.nodes=30", "link_class.default.loss=0.25", "run.name=x"])
    assert sc.topology.nodes == 30
    assert sc.link_class("default").loss == 0.25
    assert sc.run.name == "x"
    with pytest.raises(ConfigError) as info:
        load(p, ["topology.colour=3"])
    assert info.value.path == "topology.colour"
    with pytest.raises(ConfigError):
        load(p, ["no-equals-sign"])


def test_every_shipped_scenario_loads() -> None:
    assert SCENARIOS
    for path in SCENARIOS:
        load(path)


def test_readme_documents_every_key() -> None:
    readme = (ROOT / "scenarios" / "README.md").read_text()
    assert schema_markdown() in readme
