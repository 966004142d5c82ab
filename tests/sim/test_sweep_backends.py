"""A tiny sweep gives byte-identical results on the process pool and on Ray tasks (a local
Ray cluster of 2 CPUs, started and shut down by the sweep)."""

from __future__ import annotations

from pathlib import Path

from sim import report
from sim.sweep import SweepSpec, run_sweep

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke-50.toml"


def test_process_pool_and_ray_give_identical_rows() -> None:
    spec = SweepSpec.from_grid(
        str(SMOKE),
        [("topology.kind", ["random_regular", "watts_strogatz"])],
        [1, 2],
        ["run.duration_s=9.0", "topology.nodes=30", "topology.degree=6", "topology.k=6"],
    )
    seen: list[tuple[int, int]] = []
    local = run_sweep(spec, 2, backend="process", progress=lambda d, t: seen.append((d, t)))
    ray = run_sweep(spec, 2, backend="ray")
    assert seen[-1] == (4, 4)
    as_text = [report.canonical(r) for r in local.rows]
    assert as_text == [report.canonical(r) for r in ray.rows]
    assert len({r["digest"] for r in local.rows}) == 4
    assert [r["labels"]["topology.kind"] for r in local.rows] == [
        "random_regular",
        "random_regular",
        "watts_strogatz",
        "watts_strogatz",
    ]
    assert all(r["delivery_ratio"] > 0.5 for r in local.rows)
