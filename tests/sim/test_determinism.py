"""Same scenario and seed -> same digest in separate processes; another seed -> another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke-50.toml"


def digest_in_subprocess(tmp: Path, seed: int, hashseed: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["PYTHONHASHSEED"] = hashseed
    out = tmp / f"out-{seed}-{hashseed}"
    args = ["run", str(SMOKE), "--seed", str(seed), "--out", str(out), "--digest", "--no-plots"]
    r = subprocess.run(
        [sys.executable, "-m", "meshnode.cli_sim", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_smoke_digest_is_reproducible_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    a = digest_in_subprocess(tmp_path, 1, "0")
    b = digest_in_subprocess(tmp_path, 1, "12345")
    c = digest_in_subprocess(tmp_path, 2, "0")
    assert len(a) == 64
    assert a == b
    assert c != a
    summary_a = (tmp_path / "out-1-0" / "summary.json").read_text()
    summary_b = (tmp_path / "out-1-12345" / "summary.json").read_text()
    metrics_a = (tmp_path / "out-1-0" / "metrics.jsonl").read_bytes()
    assert metrics_a == (tmp_path / "out-1-12345" / "metrics.jsonl").read_bytes()
    assert summary_a.split('"host"')[0] == summary_b.split('"host"')[0]


def test_carriers_mobility_and_eclipse_are_reproducible_across_hash_seeds(tmp_path: Path) -> None:
    cases = {
        "partition-carrier.toml": ["topology.nodes=80", "run.duration_s=20", "event.2.at_s=15"],
        "mobility.toml": ["topology.nodes=60", "run.duration_s=14"],
        "attack-eclipse.toml": [
            "topology.nodes=80",
            "group.sybil.count=10",
            "run.duration_s=14",
            "event.0.count=3",
        ],
    }
    for name, sets in cases.items():
        digests = set()
        for hashseed in ("0", "4242"):
            env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
            env["PYTHONHASHSEED"] = hashseed
            args = ["run", str(ROOT / "scenarios" / name), "--digest", "--no-plots"]
            args += ["--out", str(tmp_path / f"{name}-{hashseed}")]
            for s in sets:
                args += ["--set", s]
            r = subprocess.run(
                [sys.executable, "-m", "meshnode.cli_sim", *args],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=120,
                check=False,
            )
            assert r.returncode == 0, r.stderr
            digests.add(r.stdout.strip())
        assert len(digests) == 1, name
