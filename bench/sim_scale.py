"""Simulator scale benchmark: prints one JSON line of figures.

Targets ([sim]): gossip-10k <= 90 s wall end to end (graph, nodes, run, report data) with 100%
delivery; >= 60,000 events/s sustained (an event = one RPC delivery, timer or heartbeat);
gossip-100k <= 15 min and <= 12 GB peak RSS; <= 30 KB per simulated node. A bare heapq flood
over the same graph, measured in the same process, is printed beside our events/s so the
overhead of running the real router reads as a ratio on any machine.

Run: ``.venv/bin/python bench/sim_scale.py [--scenario scenarios/gossip-10k.toml]
[--set KEY=VALUE ...] [--seed N]``
"""

from __future__ import annotations

import argparse
import heapq
import json
import platform
import random
import time
from pathlib import Path

from sim import report
from sim.run import Simulation, peak_rss_bytes
from sim.scenario import load
from sim.topology import Topology

ROOT = Path(__file__).resolve().parents[1]


def bare_flood(topo: Topology, messages: int, latency_us: int, seed: int) -> tuple[int, float]:
    """Flood ``messages`` messages over the graph with a plain heap: the floor any DES pays.

    Each delivery is one event (pop, seen check, push to every neighbour)."""
    rng = random.Random(seed)
    events = 0
    t0 = time.perf_counter()
    for _ in range(messages):
        src = rng.randrange(topo.n)
        seen = bytearray(topo.n)
        seen[src] = 1
        heap: list[tuple[int, int, int]] = []
        seq = 0
        for v in topo.neighbours(src):
            heap.append((latency_us, seq, v))
            seq += 1
        heapq.heapify(heap)
        neigh, off = topo.neigh, topo.offsets
        while heap:
            t, _, u = heapq.heappop(heap)
            events += 1
            if seen[u]:
                continue
            seen[u] = 1
            for k in range(off[u], off[u + 1]):
                v = neigh[k]
                if not seen[v]:
                    seq += 1
                    heapq.heappush(heap, (t + latency_us, seq, v))
    return events, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "gossip-10k.toml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--flood-messages", type=int, default=5)
    args = ap.parse_args()

    rss_before = peak_rss_bytes()
    t0 = time.perf_counter()
    sc = load(args.scenario, args.overrides)
    sim = Simulation(sc, args.seed)
    t_built = time.perf_counter()
    result = sim.run()
    t_run = time.perf_counter()
    digest = report.digest(result)  # report data: summary, metrics lines, tables
    t_end = time.perf_counter()
    rss = peak_rss_bytes()

    latency_us = sim.network.classes[0].latency_us or 1
    flood_events, flood_s = bare_flood(sim.topology, args.flood_messages, latency_us, sim.seed)
    events = result.data["events_executed"]
    run_s = t_run - t_built
    eps = events / run_s if run_s else 0.0
    flood_eps = flood_events / flood_s if flood_s else 0.0
    r = result.data["results"]
    line = {
        "bench": "sim_scale",
        "scenario": sc.run.name,
        "nodes": sim.n,
        "edges": result.data["topology"]["edges"],
        "virtual_s": sc.run.duration_s,
        "messages": r["messages"],
        "delivery_ratio": r["delivery_ratio"],
        "latency_p50_ms": r["latency_ms"]["p50"],
        "latency_p99_ms": r["latency_ms"]["p99"],
        "duplicates_per_delivery": r["duplicates_per_delivery"],
        "admissions": r["admissions"],
        "verdict_disagreements": r["verdict_disagreements"],
        "build_s": round(t_built - t0, 2),
        "run_s": round(run_s, 2),
        "report_data_s": round(t_end - t_run, 2),
        "wall_s": round(t_end - t0, 2),
        "events": events,
        "events_per_s": round(eps),
        "bare_heapq_flood_events_per_s": round(flood_eps),
        "overhead_ratio": round(flood_eps / eps, 1) if eps else None,
        "peak_rss_bytes": rss,
        "bytes_per_node": round(rss / sim.n),
        "bytes_per_node_above_baseline": round((rss - rss_before) / sim.n),
        "digest": digest,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
