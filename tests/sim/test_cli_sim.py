"""``meshnode sim`` through a real subprocess: help, run, show-config, one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke-50.toml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshnode.cli_sim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_help_on_every_command() -> None:
    for args in ((), ("run",), ("show-config",)):
        r = cli(*args, "--help")
        assert r.returncode == 0, r.stderr
        assert "Usage:" in r.stdout


def test_run_writes_report_and_prints_table(tmp_path: Path) -> None:
    r = cli("run", str(SMOKE), "--out", str(tmp_path / "o"), "--quiet", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "delivery ratio" in r.stdout
    assert "digest:" in r.stdout
    assert (tmp_path / "o" / "report.md").exists()


def test_show_config_prints_resolved_scenario_with_overrides() -> None:
    r = cli("show-config", str(SMOKE), "--set", "topology.nodes=60")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["topology"]["nodes"] == 60
    assert doc["gossip"]["d_hi"] == 12


def test_user_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nduration_s = 1.0\nspeed = 2\n[topology]\nkind = "line"\nnodes = 3\n')
    for args in (
        ("run", str(bad)),
        ("show-config", str(bad)),
        ("run", str(SMOKE), "--set", "topology.nodes=abc"),
        ("run", str(tmp_path / "missing.toml")),
    ):
        r = cli(*args)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("run", str(bad))
    assert "run.speed" in r.stderr
    assert str(bad) in r.stderr


def test_sweep_runs_the_grid_in_parallel_processes_in_order(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    args = ["sweep", str(SMOKE), "--grid", "topology.degree=4,8", "--seeds", "1-2"]
    r = cli(*args, "--set", "run.duration_s=10", "--workers", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (out / "sweep.jsonl").read_text().splitlines()]
    assert [(x["seed"], x["overrides"][-1]) for x in rows] == [
        (1, "topology.degree=4"),
        (2, "topology.degree=4"),
        (1, "topology.degree=8"),
        (2, "topology.degree=8"),
    ]
    assert len({x["digest"] for x in rows}) == 4
    again = cli(*args, "--set", "run.duration_s=10", "--workers", "1", "--out", str(out / "b"))
    assert again.returncode == 0, again.stderr
    assert (out / "b" / "sweep.jsonl").read_text() == (out / "sweep.jsonl").read_text()
    bad = cli("sweep", str(SMOKE), "--grid", "topology.colour=1,2")
    assert bad.returncode != 0
    assert "topology.colour" in bad.stderr
