"""GossipSub router benchmark: prints one JSON line of figures.

Targets ([gossip] issue 6): >= 50,000 handled RPCs per wall second on a 1,000-router RouterNet
(random 20-regular graph, D=6, 20 ms links, 1 KiB StrictSign messages, signatures verified once
per distinct message through the shared cache), counting everything end to end (engine,
router, validation, heartbeats); encode and decode of a 1 KiB message RPC >= 100,000/s each.
The bare heapq event loop rate at the same event count is printed so the router's cost reads
as a ratio, and a minimal hand-written pure-Python codec (publish only, no caps: a lower bound
on what a complete one costs) is timed beside protobuf. Protobuf encodes several times faster,
and a complete hand-written decoder with caps and control messages measured about 1.4x slower
than protobuf's, so ``protocols.gossip.rpc`` uses protobuf.

Run: ``.venv/bin/python bench/router.py [--routers 1000] [--messages 200]``
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import platform
import random
import time
from collections.abc import Callable
from typing import Any

import networkx as nx

from protocols.gossip.config import GossipParams
from protocols.gossip.rpc import Message, Rpc, decode_rpc, encode_rpc
from protocols.gossip.sign import sign_message
from sim.routernet import build_gossip_net, node_signer


def bench_net(routers: int, messages: int, spacing_s: float) -> dict[str, Any]:
    g = nx.random_regular_graph(20, routers, seed=1)
    net = build_gossip_net(
        routers, g.edges(), params=GossipParams(), seed=1, latency_us=20_000, topics=["t"]
    )
    net.start_heartbeats(random.Random(2))
    gc.collect()
    gc.freeze()  # the network's long-lived state: keep the cyclic GC from rescanning it
    net.run_for(3)  # meshes form (not measured)
    rng = random.Random(3)
    payloads = [rng.randbytes(1024) for _ in range(messages)]
    r0, e0 = net.rpcs_handled, net.engine.executed
    w0, c0 = time.perf_counter(), time.process_time()
    ids = []
    for data in payloads:
        ids.append(net.publish(rng.randrange(routers), "t", data))
        net.run_for(spacing_s)
    net.run_for(2)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    gc.unfreeze()
    rpcs, events = net.rpcs_handled - r0, net.engine.executed - e0
    complete = sum(1 for m in ids if m is not None and len(net.deliveries[m]) == routers)
    cache = net.nodes[0]._sig_cache  # type: ignore[attr-defined]
    return {
        "routers": routers,
        "messages": messages,
        "complete_deliveries": complete,
        "rpcs_handled": rpcs,
        "events": events,
        "wall_s": round(wall, 3),
        "rpcs_per_wall_s": round(rpcs / wall),
        "rpcs_per_cpu_s": round(rpcs / cpu),
        "signature_verifications": cache.verified,
        "signature_cache_hits": cache.hits,
    }


def bench_bare_loop(events: int) -> float:
    """heapq push/pop of (time_us, seq, fn, args) entries with a no-op callback, the same
    shape and count as the engine's events: the floor under any simulator in Python."""
    heap: list[list[Any]] = []
    seq = 0

    def noop(*_args: Any) -> None:
        return None

    for i in range(2000):  # a standing queue, like the network's in-flight RPCs
        heapq.heappush(heap, [i * 10, seq, noop, (i,)])
        seq += 1
    t0 = time.perf_counter()
    for _ in range(events):
        entry = heapq.heappop(heap)
        entry[2](*entry[3])
        heapq.heappush(heap, [entry[0] + 20_000, seq, noop, entry[3]])
        seq += 1
    return events / (time.perf_counter() - t0)


def rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(1000):
            fn()
        n += 1000
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


# ------------------------------------- a minimal hand-written codec (the lower bound we beat)


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _ld(fieldno: int, payload: bytes) -> bytes:
    return _uvarint((fieldno << 3) | 2) + _uvarint(len(payload)) + payload


def hand_encode(rpc: Rpc) -> bytes:
    parts = []
    for m in rpc.publish:
        body = b"".join(
            _ld(f, v)
            for f, v in (
                (1, m.sender),
                (2, m.data),
                (3, m.seqno),
                (4, m.topic.encode()),
                (5, m.signature),
                (6, m.key),
            )
            if v or f in (2, 4)
        )
        parts.append(_ld(2, body))
    return b"".join(parts)


def hand_decode(buf: bytes) -> Rpc:
    msgs = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_uvarint(buf, pos)
        ln, pos = _read_uvarint(buf, pos)
        if key == 0x12:
            f: dict[int, bytes] = {}
            p, e = pos, pos + ln
            while p < e:
                k, p = _read_uvarint(buf, p)
                n, p = _read_uvarint(buf, p)
                f[k >> 3] = buf[p : p + n]
                p += n
            msgs.append(
                Message(
                    f.get(4, b"").decode(),
                    f.get(2, b""),
                    f.get(1, b""),
                    f.get(3, b""),
                    f.get(5, b""),
                    f.get(6, b""),
                )
            )
        pos += ln
    return Rpc(publish=tuple(msgs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routers", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--spacing-ms", type=float, default=20.0)
    args = ap.parse_args()

    msg = sign_message(node_signer(0, 0), "t", random.Random(0).randbytes(1024), 1)
    rpc = Rpc(publish=(msg,))
    wire = encode_rpc(rpc)
    assert decode_rpc(wire) == rpc
    assert hand_decode(hand_encode(rpc)) == rpc
    assert hand_encode(rpc) == wire

    codec = {
        "rpc_bytes": len(wire),
        "protobuf_encode_per_s": round(rate(lambda: encode_rpc(rpc))),
        "protobuf_decode_per_s": round(rate(lambda: decode_rpc(wire))),
        "handwritten_minimal_encode_per_s": round(rate(lambda: hand_encode(rpc))),
        "handwritten_minimal_decode_per_s": round(rate(lambda: hand_decode(wire))),
    }
    net = bench_net(args.routers, args.messages, args.spacing_ms / 1000)
    bare = bench_bare_loop(net["events"])
    print(
        json.dumps(
            {
                "bench": "router",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "loadavg_1m": round(os.getloadavg()[0], 2),
                **net,
                "bare_heapq_events_per_s": round(bare),
                "router_vs_bare_loop": round(net["rpcs_per_wall_s"] / bare, 4),
                **codec,
                "targets": {
                    "rpcs_per_wall_s": 50_000,
                    "encode_per_s": 100_000,
                    "decode_per_s": 100_000,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
