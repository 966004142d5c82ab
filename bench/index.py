"""Slope-band index against a Kademlia baseline on the same workload: one JSON line.

Workload ([index] issue): 10,000 nodes, 200 anchors, 100,000 registrations, 100,000 lookups
from random nodes. Ours: protocols.index driven by sim.indexnet; the baseline: sim.kademlia
(k = 20, alpha = 3) on a sample of the same lookups (it is the slow side; its figures are
per lookup). Messages per lookup include, for ours, the amortised anchor-announcement traffic
(one aggregated roster per renewal window, gossiped to every node, counted as
nodes x GOSSIP_TRANSMISSIONS_PER_NODE) and, for Kademlia, its bucket refreshes over the same
window (one refresh lookup per non-empty bucket per hour, as the Kademlia paper prescribes).
The window holds the whole workload. Registrations are signed and carry their agent's
genesis entry as proof, and every anchor verifies them (protocols.index.binding), so
``registrations_per_s`` includes that verification (building the agents is not timed).

Run: ``.venv/bin/python bench/index.py [--nodes N --anchors A --registrations R --lookups L]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from protocols.index.band import IndexParams
from protocols.index.resolve import Outcome
from sim.indexnet import IndexNet
from sim.kademlia import KadNet

GOSSIP_TRANSMISSIONS_PER_NODE = 6.0
"""Copies of one gossip message a node receives (first delivery + duplicates) at D = 6; the
[gossip] network test bounds duplicates per delivery at 3-6, so this is the upper end."""
WINDOW_HOURS = 0.5
"""Renewal window: anchor records live 1 h and are renewed every 30 min."""
RECORD_BYTES = 32 + 8 + 8 + 64  # key, issued, expires, signature


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--anchors", type=int, default=200)
    parser.add_argument("--registrations", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--kad-lookups", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", help="write a PNG of the hop distributions here")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    params = IndexParams(band_bits=8, replication=3, adjacent_bound=1)
    net = IndexNet(params, anchor_count=args.anchors, seed=args.seed)
    # Real agents (a signed genesis entry each) and signed registrations: every anchor
    # checks the binding (signature, proof from genesis) as a real anchor does.
    regs = [
        net.registration(net.new_agent(i % net.host_count), f"agent-{i}")
        for i in range(args.registrations)
    ]
    start = time.perf_counter()
    for reg in regs:
        net.register(reg)
    register_s = time.perf_counter() - start
    register_messages = net.stats.register_messages

    targets = [regs[rng.randrange(len(regs))].alias for _ in range(args.lookups)]
    hops: list[int] = []
    found = 0
    start = time.perf_counter()
    for alias in targets:
        result = net.lookup(alias=alias)
        hops.append(result.hops)
        found += result.outcome is Outcome.FOUND
    lookup_s = time.perf_counter() - start
    lookup_messages = net.stats.lookup_messages / args.lookups
    roster_messages = args.nodes * GOSSIP_TRANSMISSIONS_PER_NODE  # one roster per window
    ours_per_lookup = lookup_messages + roster_messages / args.lookups
    store_bytes = sum(s.state_bytes() for s in net.stores.values())
    ours_state = (store_bytes + args.nodes * args.anchors * RECORD_BYTES) / args.nodes

    kad = KadNet(args.nodes, seed=args.seed)
    kad_sample = min(args.kad_lookups, args.lookups)
    start = time.perf_counter()
    for reg in regs[: max(kad_sample, 1)]:
        kad.store(f"alias:{reg.alias}".encode())
    kad_hops: list[int] = []
    kad_msgs: list[int] = []
    kad_found = 0
    for i in range(kad_sample):
        origin = kad.ids[rng.randrange(len(kad.ids))]
        res = kad.lookup(origin, f"alias:{regs[i].alias}".encode())
        kad_hops.append(res.hops)
        kad_msgs.append(res.messages)
        kad_found += res.found
    kad_s = time.perf_counter() - start
    buckets = statistics.mean(len(kad.table(n)) for n in kad.ids[:200]) / kad.params.k
    refresh_lookups = args.nodes * buckets * WINDOW_HOURS
    kad_lookup_msgs = statistics.mean(kad_msgs)
    kad_per_lookup = kad_lookup_msgs + refresh_lookups * kad_lookup_msgs / args.lookups
    kad.stored.clear()
    kad_values_per_node = args.registrations * kad.params.k / args.nodes
    kad_state = kad.state_bytes_per_node() + kad_values_per_node * 120

    if args.plot:
        _plot(args.plot, hops, kad_hops)
    print(
        json.dumps(
            {
                "bench": "index",
                "nodes": args.nodes,
                "anchors": args.anchors,
                "registrations": args.registrations,
                "lookups": args.lookups,
                "band_bits": params.band_bits,
                "replication": 3,
                "ours": {
                    "success": found / args.lookups,
                    "hops_p50": percentile(hops, 0.50),
                    "hops_p99": percentile(hops, 0.99),
                    "lookup_messages_per_lookup": round(lookup_messages, 3),
                    "roster_messages_per_lookup": round(roster_messages / args.lookups, 3),
                    "messages_per_lookup": round(ours_per_lookup, 3),
                    "register_messages_per_registration": round(register_messages / len(regs), 3),
                    "state_bytes_per_node": round(ours_state),
                    "lookups_per_s": round(args.lookups / lookup_s),
                    "registrations_per_s": round(len(regs) / register_s),
                    "registrations_refused": sum(net.stats.refused.values()),
                },
                "kademlia": {
                    "sample_lookups": kad_sample,
                    "success": kad_found / max(1, kad_sample),
                    "hops_p50": percentile(kad_hops, 0.50),
                    "hops_p99": percentile(kad_hops, 0.99),
                    "lookup_messages_per_lookup": round(kad_lookup_msgs, 3),
                    "refresh_messages_per_lookup": round(kad_per_lookup - kad_lookup_msgs, 3),
                    "messages_per_lookup": round(kad_per_lookup, 3),
                    "state_bytes_per_node": round(kad_state),
                    "lookups_per_s": round(kad_sample / kad_s),
                },
                "assumptions": {
                    "gossip_transmissions_per_node": GOSSIP_TRANSMISSIONS_PER_NODE,
                    "window_hours": WINDOW_HOURS,
                },
                "targets": {"success": 1.0, "hops_p50": 2, "hops_p99": 3, "lookups_per_s": 20000},
            }
        )
    )


def _plot(path: str, ours: list[int], kad: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(max(ours), max(kad)) + 1
    bins = list(range(top + 1))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(
        [ours, kad],
        bins=bins,
        density=True,
        align="left",
        label=["slope-band index", "Kademlia (k=20, alpha=3)"],
    )
    ax.set_xlabel("network hops per lookup (request rounds)")
    ax.set_ylabel("share of lookups")
    ax.set_xticks(bins[:-1])
    ax.legend()
    ax.set_title("Alias lookups, 10,000 nodes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
