"""Multi-region workload, small: residency holds at every boundary; one region fails."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sim import report
from sim.run import RunResult, Simulation
from sim.scenario import load

ROOT = Path(__file__).resolve().parents[2]
MR = ROOT / "scenarios" / "multiregion.toml"
SMALL = (
    "topology.nodes=60",
    "run.duration_s=100",
    "workload.tasks=60",
    "workload.tasks_end_s=90",
    "workload.misplacements=6",
    "workload.fail_s=50",
)


@cache
def small_run() -> RunResult:
    return Simulation(load(MR, SMALL)).run()


def workload() -> dict[str, Any]:
    w: dict[str, Any] = small_run().data["workload"]
    return w


def test_no_job_runs_where_its_residency_forbids() -> None:
    res = workload()["residency"]
    assert res["forbidden_executions"] == 0
    assert res["faulty_placements_refused"] == 6
    assert set(res["faulty_placement_codes"]) == {"cross-zone-unauthorised"}
    assert res["cross_region_jobs"] > 0


def test_jobs_resume_after_the_region_fails() -> None:
    r = workload()["resume"]
    assert r["ours_resume_s"] is not None
    assert r["baseline_resume_s"] is not None
    assert r["ours_resume_s"] < r["baseline_resume_s"]


def test_invariants_hold() -> None:
    inv = workload()["invariants"]
    assert inv["duplicate_claims_in_records"] == 0
    assert inv["tasks_executed_twice"] == 0
    assert inv["verdict_disagreements"] == 0
    assert workload()["history"]["mismatched"] == 0


def test_same_seed_same_digest() -> None:
    assert report.digest(small_run()) == report.digest(Simulation(load(MR, SMALL)).run())


def test_cli_prints_the_headline_table_and_writes_the_plots(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from meshnode.cli_sim import sim_group

    tiny = [f"--set={s}" for s in (*SMALL, "topology.nodes=30", "workload.tasks=12")]
    out = tmp_path / "mr"
    r = CliRunner().invoke(sim_group, ["run", str(MR), "--quiet", "--out", str(out), *tiny])
    assert r.exit_code == 0, r.output
    assert "central baseline" in r.output
    assert "time to resume" in r.output
    for name in ("report.md", "resume.png", "claim_latency_cdf.png", "verdicts.png"):
        assert (out / name).exists()
