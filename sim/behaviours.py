"""What a group's nodes do besides running their router: honest, attackers, churners, carriers.

Every node, attacker or not, runs the real router; a behaviour only adds actions around it
(publishing bad messages, withholding forwards, crashing, moving). One behaviour object serves
a whole group; per-node state lives in dicts keyed by node index, created only where needed.
Random choices use the node's own seeded ``random.Random``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocols.gossip.events import Publish
from protocols.gossip.rpc import Control, Graft, Message, Rpc
from protocols.gossip.sign import sign_message
from sim.scenario import GroupSpec

if TYPE_CHECKING:
    from sim.run import Simulation

US = 1_000_000
CARRIER_STORE = 1000
"""Messages a carrier keeps for store-and-forward (the newest)."""


@dataclass
class Behaviour:
    """Honest: runs the router and nothing else."""

    spec: GroupSpec
    attacker: bool = False
    """Attackers are not counted as delivery targets and may send bad messages."""
    withholds: bool = False
    """Strips messages from outgoing RPCs (never forwards, never answers IWANT)."""

    def start(self, sim: Simulation, members: list[int]) -> None:
        """Called once at t=0 with the group's nodes (ascending)."""

    def on_deliver(self, sim: Simulation, node: int, msg: Message) -> None:
        """The node's router delivered ``msg``."""

    def _window(self, sim: Simulation) -> tuple[int, int]:
        start = round(self.spec.start_s * US)
        stop = sim.end_us if self.spec.stop_s < 0 else round(self.spec.stop_s * US)
        return start, min(stop, sim.end_us)


@dataclass
class _Periodic(Behaviour):
    """Attackers acting ``rate_per_s`` times a second, each node on its own seeded phase."""

    attacker: bool = True

    def start(self, sim: Simulation, members: list[int]) -> None:
        if self.spec.rate_per_s <= 0:
            return
        start, _ = self._window(sim)
        period = round(US / self.spec.rate_per_s)
        for i in members:
            phase = sim.nodes[i].rng.randrange(max(period, 1))
            sim.engine.at(start + phase, self._tick, sim, i, period)

    def _tick(self, sim: Simulation, node: int, period: int) -> None:
        _, stop = self._window(sim)
        if sim.engine.now_us > stop:
            return
        if sim.network.up[node]:
            self.act(sim, node)
        sim.engine.after(period, self._tick, sim, node, period)

    def act(self, sim: Simulation, node: int) -> None:
        raise NotImplementedError

    def payload(self, sim: Simulation, node: int) -> bytes:
        sim.metrics.attack_published += 1
        tag = f"{self.spec.name}/{node}/{sim.metrics.attack_published}".encode()
        return tag.ljust(self.spec.size_bytes, b"\0")


def _zone_attack(beh: _Periodic, sim: Simulation, node: int, kind: str) -> None:
    """Zone topics: send a tampered agent (StrictNoSign message) to every peer."""
    sim.metrics.attack_published += 1
    data = sim.forged_zone_agent(kind, sim.metrics.attack_published)
    sim.send_to_all(node, Rpc(publish=(Message(sim.topic, data),)))


@dataclass
class Spammer(_Periodic):
    """Publishes valid, signed messages at a high rate through its own router (load)."""

    def act(self, sim: Simulation, node: int) -> None:
        sim.call_router(node, Publish(sim.topic, self.payload(sim, node)))


@dataclass
class BadSigner(_Periodic):
    """Sends messages whose signature does not verify straight to all its peers (zone
    topics: agents whose head host signature is zeroed)."""

    def act(self, sim: Simulation, node: int) -> None:
        if sim.world is not None:
            _zone_attack(self, sim, node, "bad_signer")
            return
        n = sim.nodes[node]
        seq = n.rng.getrandbits(63)
        good = sign_message(n.signer, sim.topic, self.payload(sim, node), seq)
        bad_sig = bytes([good.signature[0] ^ 0xFF]) + good.signature[1:]
        msg = Message(good.topic, good.data, good.sender, good.seqno, bad_sig)
        sim.send_to_all(node, Rpc(publish=(msg,)))


@dataclass
class Forger(_Periodic):
    """Plain topics: claims another node as author (signs with its own key under a victim's
    peer id). Zone topics: sends agents whose slope is broken (head DAH swapped)."""

    def act(self, sim: Simulation, node: int) -> None:
        if sim.world is not None:
            _zone_attack(self, sim, node, "forger")
            return
        n = sim.nodes[node]
        victim = sim.nodes[n.rng.randrange(sim.n)]
        seq = n.rng.getrandbits(63)
        own = sign_message(n.signer, sim.topic, self.payload(sim, node), seq)
        msg = Message(own.topic, own.data, victim.peer_id, own.seqno, own.signature)
        sim.send_to_all(node, Rpc(publish=(msg,)))


@dataclass
class Replayer(_Periodic):
    """Re-sends messages it has seen to all its peers (duplicates; stale after seen_ttl)."""

    seen: dict[int, deque[Message]] = field(default_factory=dict)

    def on_deliver(self, sim: Simulation, node: int, msg: Message) -> None:
        self.seen.setdefault(node, deque(maxlen=32)).append(msg)

    def act(self, sim: Simulation, node: int) -> None:
        old = self.seen.get(node)
        if old:
            sim.metrics.attack_published += 1
            sim.send_to_all(node, Rpc(publish=(old[0],)))
            old.rotate(-1)


@dataclass
class Dropper(Behaviour):
    """Silent dropper: stays in meshes, sends control traffic, forwards nothing."""

    attacker: bool = True
    withholds: bool = True


@dataclass
class Eclipse(Dropper):
    """Sybils that all connect to ``targets`` honest nodes, GRAFT them every second and
    forward nothing to them (IHAVE yes, messages and IWANT answers no).

    Without scoring the victims' meshes fill with sybils; with scoring the sybils earn no
    first-delivery credit, break IWANT promises and GRAFT in backoff, so they score negative
    and honest peers keep the mesh.
    """

    victims: list[int] = field(default_factory=list)

    def start(self, sim: Simulation, members: list[int]) -> None:
        want = max(1, self.spec.targets)
        honest = [i for i in range(sim.n) if sim.is_target[i]]
        rng = sim.nodes[members[0]].rng if members else None
        if rng is None or not honest:
            return
        victims = sorted(rng.sample(honest, min(want, len(honest))))
        sim.watch(victims)
        self.victims = victims
        for i in members:
            sim.apply_changes(sim.network.add_links(i, victims))
            sim.engine.at(1 + rng.randrange(US), self._graft, sim, i)

    def _graft(self, sim: Simulation, node: int) -> None:
        """GRAFT every victim once a second, to crowd honest peers out of their meshes."""
        if sim.network.up[node]:
            rpc = Rpc(control=Control(graft=(Graft(sim.topic),)))
            for v in self.victims:
                if v in sim.network.conn[node]:
                    sim.send(node, v, rpc)
        sim.engine.after(US, self._graft, sim, node)


@dataclass
class Churner(Behaviour):
    """Crashes after an exponential up-time, restarts after an exponential down-time."""

    def start(self, sim: Simulation, members: list[int]) -> None:
        start, _ = self._window(sim)
        for i in members:
            up = round(sim.nodes[i].rng.expovariate(1 / self.spec.up_s) * US)
            sim.engine.at(start + up, self._crash, sim, i)

    def _crash(self, sim: Simulation, node: int) -> None:
        _, stop = self._window(sim)
        if sim.engine.now_us > stop or not sim.network.up[node]:
            return
        sim.crash(node)
        down = round(sim.nodes[node].rng.expovariate(1 / self.spec.down_s) * US)
        sim.engine.after(max(down, 1), self._restart, sim, node)

    def _restart(self, sim: Simulation, node: int) -> None:
        if not sim.network.up[node]:
            sim.restart(node)
        up = round(sim.nodes[node].rng.expovariate(1 / self.spec.up_s) * US)
        sim.engine.after(max(up, 1), self._crash, sim, node)


@dataclass
class Carrier(Behaviour):
    """Store-and-forward: moves to the next partition side every ``hop_interval_s``, links
    to ``carrier_links`` nodes there and hands them the messages it carries."""

    store: dict[int, deque[Message]] = field(default_factory=dict)

    def start(self, sim: Simulation, members: list[int]) -> None:
        period = round(self.spec.hop_interval_s * US)
        for i in members:
            phase = sim.nodes[i].rng.randrange(max(period, 1))
            sim.engine.at(phase, self._hop, sim, i, period)

    def on_deliver(self, sim: Simulation, node: int, msg: Message) -> None:
        self.store.setdefault(node, deque(maxlen=CARRIER_STORE)).append(msg)

    def _hop(self, sim: Simulation, node: int, period: int) -> None:
        sim.engine.after(period, self._hop, sim, node, period)
        net = sim.network
        sides = sorted({net.side[i] for i in range(sim.n) if i not in sim.carriers})
        if len(sides) < 2 or not net.up[node]:
            return
        here = net.side[node]
        nxt = sides[(sides.index(here) + 1) % len(sides)] if here in sides else sides[0]
        rng = sim.nodes[node].rng
        cands = [i for i in range(sim.n) if net.side[i] == nxt and net.up[i] and i != node]
        cands = [i for i in cands if i not in sim.carriers]
        changes = net.drop_extra_links(node)
        net.side[node] = nxt
        changes += net.reconcile([node, *net.desired(node)])
        peers = sorted(rng.sample(cands, min(self.spec.carrier_links, len(cands))))
        changes += net.add_links(node, peers)
        sim.apply_changes(changes)
        carried = self.store.get(node)
        if carried:
            rpc = Rpc(publish=tuple(carried))
            for p in peers:
                sim.send(node, p, rpc)


BEHAVIOURS: dict[str, type[Behaviour]] = {
    "honest": Behaviour,
    "spammer": Spammer,
    "forger": Forger,
    "replayer": Replayer,
    "bad_signer": BadSigner,
    "eclipse": Eclipse,
    "dropper": Dropper,
    "churner": Churner,
    "carrier": Carrier,
}


def make(spec: GroupSpec) -> Behaviour:
    return BEHAVIOURS[spec.behaviour](spec)
