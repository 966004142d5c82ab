"""One py-libp2p host running stock Pubsub + GossipSub, for ``bench/mesh.py``'s comparison.

Imports only py-libp2p (never this project), so it measures the stock stack alone.
Usage: ``stock_worker.py PORT SEED_HEX PEERS_JSON OUT_FILE``; stdin carries one hex payload
per line to publish; OUT_FILE gets ``p|r <first 16 bytes hex> <unix ns>`` per publish/receipt.
"""

from __future__ import annotations

import json
import os
import sys
import time

TOPIC = "bench"


def stock_worker(port: int, seed: bytes, peers: list[str], out_path: str) -> None:
    """Run the worker until stdin closes."""
    import multiaddr
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.tools.anyio_service import background_trio_service

    async def main() -> None:
        host = new_host(key_pair=create_new_key_pair(seed))
        gossipsub = GossipSub(
            protocols=[TProtocol("/meshsub/1.1.0")],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=1,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
        )
        pubsub = Pubsub(host, gossipsub)
        out = open(out_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the worker
        listen = [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")]
        async with (
            host.run(listen_addrs=listen),
            background_trio_service(pubsub),
            background_trio_service(gossipsub),
            trio.open_nursery() as nursery,
        ):
            await pubsub.wait_until_ready()
            sub = await pubsub.subscribe(TOPIC)

            async def receive() -> None:
                while True:
                    msg = await sub.get()
                    out.write(f"r {msg.data[:16].hex()} {time.time_ns()}\n")

            nursery.start_soon(receive)
            for text in peers:
                info = info_from_p2p_addr(multiaddr.Multiaddr(text))
                for _ in range(50):
                    try:
                        with trio.fail_after(5):
                            await host.connect(info)
                        break
                    except Exception:  # noqa: BLE001 - py-libp2p raises assorted types
                        await trio.sleep(0.2)
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            stdin = trio.lowlevel.FdStream(os.dup(0))
            buf = b""
            while True:
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    data = bytes.fromhex(line.decode())
                    out.write(f"p {data[:16].hex()} {time.time_ns()}\n")
                    await pubsub.publish(TOPIC, data)
            nursery.cancel_scope.cancel()

    trio.run(main)


if __name__ == "__main__":
    port, seed, peers, out = sys.argv[1:5]
    stock_worker(int(port), bytes.fromhex(seed), json.loads(peers), out)
