"""Parameter sweeps: one scenario over a grid of ``--set`` overrides x seeds, in parallel.

Each cell is an independent single-process run (DESIGN §8: a run stays single-process; scale
out is across runs). Rows come back in grid order whatever order the workers finish in, and
each row carries its run's digest, so a sweep is reproducible byte for byte per seed.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.errors import ConfigError
from sim import report
from sim.run import Simulation
from sim.scenario import load


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """What to sweep: ``grid`` maps a scenario key to the values it takes (as TOML text)."""

    scenario: str
    grid: tuple[tuple[str, tuple[str, ...]], ...]
    seeds: tuple[int, ...]
    base_overrides: tuple[str, ...] = ()

    def cells(self) -> list[tuple[int, tuple[str, ...]]]:
        """(seed, overrides) for every grid point and seed, in a fixed order."""
        keys = [k for k, _ in self.grid]
        combos = itertools.product(*(values for _, values in self.grid)) if keys else [()]
        out: list[tuple[int, tuple[str, ...]]] = []
        for combo in combos:
            sets = tuple(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            for seed in self.seeds:
                out.append((seed, (*self.base_overrides, *sets)))
        return out


def parse_grid(items: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``key=v1,v2,v3`` items -> grid; a ConfigError names a malformed item."""
    grid: list[tuple[str, tuple[str, ...]]] = []
    for item in items:
        key, eq, values = item.partition("=")
        if not eq or not key or not values:
            raise ConfigError(f"--grid wants KEY=V1,V2,..., got {item!r}", path="--grid")
        grid.append((key.strip(), tuple(v.strip() for v in values.split(","))))
    return tuple(grid)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``1-4`` or ``1,5,9`` -> seeds."""
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return tuple(range(int(lo), int(hi) + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--seeds wants A-B or A,B,C, got {text!r}", path="--seeds") from None


def run_cell(scenario: str, seed: int, overrides: tuple[str, ...]) -> dict[str, Any]:
    """One run of the sweep (in a worker process): its headline figures and digest."""
    sc = load(scenario, overrides)
    result = Simulation(sc, seed).run()
    r = result.data["results"]
    return {
        "seed": seed,
        "overrides": list(overrides),
        "nodes": result.data["nodes"],
        "delivery_ratio": r["delivery_ratio"],
        "latency_p50_ms": r["latency_ms"]["p50"],
        "latency_p99_ms": r["latency_ms"]["p99"],
        "hops_mean": r["hops"]["mean"],
        "duplicates_per_delivery": r["duplicates_per_delivery"],
        "bytes_sent_per_node": r["bytes_sent_per_node"],
        "verdict_disagreements": r["verdict_disagreements"],
        "digest": report.digest(result),
    }


def run_sweep(spec: SweepSpec, workers: int) -> list[dict[str, Any]]:
    """Every cell, ``workers`` at a time (1 = in this process); rows in grid order."""
    cells = spec.cells()
    for _, overrides in cells[:1]:
        load(spec.scenario, overrides)  # fail fast, in the caller, on a bad key
    if workers <= 1:
        return [run_cell(spec.scenario, seed, sets) for seed, sets in cells]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(run_cell, spec.scenario, seed, sets) for seed, sets in cells]
        return [f.result() for f in futures]


def write(rows: list[dict[str, Any]], out: Path) -> None:
    """``sweep.jsonl`` (one canonical line per run) and ``sweep.md`` (a table)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.jsonl").write_text("".join(report.canonical(r) + "\n" for r in rows))
    cols = [
        "seed",
        "overrides",
        "delivery_ratio",
        "latency_p50_ms",
        "latency_p99_ms",
        "hops_mean",
        "duplicates_per_delivery",
        "bytes_sent_per_node",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [" ".join(r[c]) if c == "overrides" else json.dumps(r[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "sweep.md").write_text("# Sweep\n\n" + "\n".join(lines) + "\n")
