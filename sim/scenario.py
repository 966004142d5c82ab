"""Strict TOML scenario files -> one frozen :class:`Scenario`.

One table of :class:`Key` rows per section is the single source of truth: the parser checks
against it, ``show-config`` prints from it and ``scenarios/README.md`` is generated from it, so
the documentation cannot drift from what the parser accepts. Units live in key names
(``duration_s``, ``latency_ms``, ``size_bytes``); an unknown key, wrong type or out-of-range
value is a :class:`ConfigError` naming the key and the file (Shadow's ``deny_unknown_fields``).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from protocols.errors import ConfigError

REQUIRED: Final = object()

TOPOLOGY_KINDS = (
    "random_regular",
    "erdos_renyi",
    "watts_strogatz",
    "barabasi_albert",
    "random_geometric",
    "clustered",
    "edge_list",
    "line",
)
LATENCY_DISTS = ("constant", "uniform", "normal", "lognormal")
BEHAVIOURS = (
    "honest",
    "spammer",
    "forger",
    "replayer",
    "bad_signer",
    "eclipse",
    "dropper",
    "churner",
    "carrier",
)
EVENT_KINDS = ("publish", "partition", "heal", "outage", "churn", "override", "descriptor")
MOBILITY_MODELS = ("none", "random_waypoint")
WORKLOAD_KINDS = ("none", "fleet", "disaster", "multiregion")


@dataclass(frozen=True, slots=True)
class Key:
    """One documented scenario key: type, default, unit/meaning and bounds."""

    name: str
    kind: type
    default: object
    doc: str
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    list_of: type | None = None


def _k(
    name: str,
    kind: type,
    default: object,
    doc: str,
    *,
    choices: Sequence[str] = (),
    lo: float | None = None,
    hi: float | None = None,
    list_of: type | None = None,
) -> Key:
    return Key(name, kind, default, doc, tuple(choices), lo, hi, list_of)


RUN_KEYS: Final = (
    _k("name", str, "scenario", "label printed in the report"),
    _k("seed", int, 1, "default seed; `--seed` overrides it", lo=0),
    _k("duration_s", float, REQUIRED, "seconds of virtual time simulated", lo=0.001),
    _k("metrics_interval_s", float, 1.0, "seconds; one metrics.jsonl line per interval", lo=0.001),
)
TOPOLOGY_KEYS: Final = (
    _k("kind", str, REQUIRED, "graph builder", choices=TOPOLOGY_KINDS),
    _k("nodes", int, REQUIRED, "number of virtual nodes", lo=2),
    _k("degree", int, 8, "random_regular: degree of every node", lo=1),
    _k(
        "p",
        float,
        0.05,
        "erdos_renyi: edge probability; clustered: intra-cluster edge probability",
        lo=0.0,
        hi=1.0,
    ),
    _k("k", int, 6, "watts_strogatz: ring neighbours per node (even)", lo=2),
    _k("rewire_p", float, 0.1, "watts_strogatz: rewiring probability", lo=0.0, hi=1.0),
    _k("m", int, 3, "barabasi_albert: edges from each new node", lo=1),
    _k("radius", float, 0.1, "random_geometric: link radius on the unit square", lo=0.0),
    _k("clusters", int, 4, "clustered: number of clusters (zones)", lo=1),
    _k(
        "inter_links",
        int,
        2,
        "clustered: random links from each cluster to each other cluster",
        lo=0,
    ),
    _k("path", str, "", "edge_list: file of `u v` lines (integer ids), relative to the scenario"),
)
GOSSIP_KEYS: Final = (
    _k("topic", str, "sim/plain/1", "plain topic every node joins"),
    _k("d", int, 6, "mesh degree D", lo=1),
    _k("d_lo", int, 5, "D_lo", lo=0),
    _k("d_hi", int, 12, "D_hi", lo=1),
    _k("d_lazy", int, 6, "D_lazy", lo=0),
    _k("d_out", int, 2, "D_out", lo=0),
    _k("d_score", int, 4, "D_score", lo=0),
    _k("heartbeat_interval_ms", float, 1000.0, "milliseconds between heartbeats", lo=1.0),
    _k(
        "flood_publish", bool, True, "flood own publishes to every peer above the publish threshold"
    ),
    _k("scoring", bool, True, "peer scoring on (v1.1) or off (v1.0 behaviour)"),
    _k(
        "mesh_message_deliveries_weight",
        float,
        0.0,
        "score P3 weight (<= 0; 0 = off, the router default): penalises mesh peers that"
        " deliver less than the threshold",
        hi=0.0,
    ),
    _k(
        "mesh_message_deliveries_threshold",
        float,
        1.0,
        "score P3: decayed deliveries a mesh peer must keep up",
        lo=0.001,
    ),
    _k(
        "mesh_message_deliveries_activation_s",
        float,
        30.0,
        "seconds in the mesh before P3 applies",
        lo=1.0,
    ),
    _k(
        "mesh_failure_penalty_weight",
        float,
        0.0,
        "score P3b weight (<= 0; 0 = off): sticky penalty for peers pruned while in deficit",
        hi=0.0,
    ),
    _k("do_px", bool, False, "peer exchange on PRUNE (off: the topology is the scenario's)"),
    _k(
        "heartbeat_stagger",
        bool,
        True,
        "offset each node's first heartbeat by a seeded fraction of the interval",
    ),
)
ZONE_KEYS: Final = (
    _k(
        "name",
        str,
        "",
        "zone id: when set, nodes join the zone topic and every member runs the real"
        " admission pipeline on every agent (empty: the plain gossip.topic)",
    ),
    _k("hosts", int, 3, "zone hosts (nodes 0..hosts-1) that create and publish the agents", lo=1),
    _k("epoch", int, 10, "the epoch agents are made in and members judge them at", lo=0),
)
NETWORK_KEYS: Final = (
    _k("link_class", str, "default", "link class of nodes whose group names none"),
    _k(
        "inter_cluster_link_class",
        str,
        "",
        "clustered topologies: class of links between clusters (empty: the usual rule)",
    ),
    _k(
        "connect_spread_ms",
        float,
        0.0,
        "milliseconds; initial connections are made at a seeded time in [0, this)",
        lo=0.0,
    ),
    _k(
        "detect_ms",
        float,
        0.0,
        "milliseconds until both ends notice a cut link or a crashed peer",
        lo=0.0,
    ),
)
LINK_CLASS_KEYS: Final = (
    _k("name", str, REQUIRED, "referenced by `network.link_class` and `group.link_class`"),
    _k("latency_ms", float, 20.0, "milliseconds; mean one-way latency", lo=0.0),
    _k(
        "latency_dist",
        str,
        "constant",
        "latency distribution around the mean",
        choices=LATENCY_DISTS,
    ),
    _k(
        "jitter_ms",
        float,
        0.0,
        "milliseconds; spread (uniform half-width, normal sd, lognormal sd)",
        lo=0.0,
    ),
    _k(
        "loss",
        float,
        0.0,
        "probability one transmission of an RPC is lost; streams are reliable, so it is"
        " retransmitted after `rto_ms` (shows as delay and head-of-line blocking)",
        lo=0.0,
        hi=0.9,
    ),
    _k("rto_ms", float, 200.0, "milliseconds; retransmission timeout after a loss", lo=0.0),
    _k(
        "bandwidth_kbps",
        float,
        0.0,
        "kilobits per second of each node's uplink; 0 = unlimited (no serialisation delay)",
        lo=0.0,
    ),
)
GROUP_KEYS: Final = (
    _k("name", str, REQUIRED, "group label (unique)"),
    _k("count", int, -1, "nodes in the group; -1 with fraction -1 = the remaining nodes", lo=-1),
    _k(
        "fraction",
        float,
        -1.0,
        "share of all nodes instead of count (-1 = unused)",
        lo=-1.0,
        hi=1.0,
    ),
    _k("behaviour", str, "honest", "what the group's nodes do", choices=BEHAVIOURS),
    _k("link_class", str, "", "link class of the group's nodes (empty: network.link_class)"),
    _k("rate_per_s", float, 1.0, "spammer/forger/replayer/bad_signer: messages per second", lo=0.0),
    _k("size_bytes", int, 256, "bytes of each message the group's attackers publish", lo=1),
    _k("start_s", float, 0.0, "seconds; attackers start (churners start cycling) here", lo=0.0),
    _k("stop_s", float, -1.0, "seconds; attackers stop here (-1 = end of run)", lo=-1.0),
    _k(
        "join_s",
        float,
        0.0,
        "seconds; the group's nodes are off until then and join the running network",
        lo=0.0,
    ),
    _k("up_s", float, 10.0, "churner: seconds up between crashes (exponential mean)", lo=0.001),
    _k("down_s", float, 5.0, "churner: seconds down per crash (exponential mean)", lo=0.001),
    _k(
        "hop_interval_s",
        float,
        5.0,
        "carrier: seconds between moves to the next partition side",
        lo=0.001,
    ),
    _k("carrier_links", int, 3, "carrier: links made on arrival in a side", lo=1),
    _k("targets", int, 0, "eclipse: how many honest nodes the group surrounds (0 = 1)", lo=0),
)
EVENT_KEYS: Final = (
    _k("at_s", float, REQUIRED, "seconds of virtual time the event fires", lo=0.0),
    _k("kind", str, REQUIRED, "what happens", choices=EVENT_KINDS),
    _k("count", int, 1, "publish: messages in the burst", lo=1),
    _k("interval_ms", float, 0.0, "publish: milliseconds between messages of the burst", lo=0.0),
    _k("size_bytes", int, 256, "publish: bytes of each message", lo=1),
    _k("group", str, "", "publish/outage: group the nodes come from (empty: any honest node)"),
    _k(
        "fraction",
        float,
        0.5,
        "partition: share of nodes on side 0; outage/churn: share of nodes hit",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "sides",
        list,
        [],
        'partition: group names per side, e.g. [["a"], ["b", "c"]] (empty: by fraction)',
        list_of=list,
    ),
    _k(
        "by_cluster",
        bool,
        False,
        "partition: one side per cluster of a clustered topology (instead of sides/fraction)",
    ),
    _k("duration_s", float, 0.0, "outage/churn: seconds it lasts", lo=0.0),
    _k("down_s", float, 5.0, "churn: mean seconds a crashed node stays down", lo=0.001),
    _k("key", str, "", "override: scenario key to change mid-run (e.g. link_class.default.loss)"),
    _k("value", str, "", "override: new value, as TOML"),
)
EVENT_KIND_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "publish": frozenset({"count", "interval_ms", "size_bytes", "group"}),
    "partition": frozenset({"fraction", "sides", "by_cluster"}),
    "heal": frozenset(),
    "outage": frozenset({"fraction", "group", "duration_s"}),
    "churn": frozenset({"fraction", "duration_s", "down_s"}),
    "override": frozenset({"key", "value"}),
    "descriptor": frozenset(),
}
MOBILITY_KEYS: Final = (
    _k("model", str, "none", "node movement", choices=MOBILITY_MODELS),
    _k("area_m", float, 1000.0, "metres; side of the square nodes move in", lo=1.0),
    _k("radius_m", float, 150.0, "metres; nodes closer than this are linked", lo=0.0),
    _k("speed_min_mps", float, 0.5, "metres per second; slowest waypoint speed", lo=0.0),
    _k("speed_max_mps", float, 2.0, "metres per second; fastest waypoint speed", lo=0.0),
    _k("pause_s", float, 0.0, "seconds paused at each waypoint", lo=0.0),
    _k("recompute_interval_s", float, 1.0, "seconds between link recomputations", lo=0.001),
)

WORKLOAD_KEYS: Final = (
    _k(
        "kind",
        str,
        "none",
        "coordination workload run on top of the gossip layer, with its central baseline on"
        " the same network (none: gossip only)",
        choices=WORKLOAD_KINDS,
    ),
    _k("zones", int, 10, "fleet: area zones; disaster: agencies; multiregion: regions", lo=1),
    _k(
        "tasks",
        int,
        2000,
        "tasks (fleet), sectors to search (disaster) or jobs (multiregion)",
        lo=0,
    ),
    _k("tasks_start_s", float, 10.0, "seconds; tasks appear uniformly from here", lo=0.0),
    _k("tasks_end_s", float, 600.0, "seconds; ... to here", lo=0.0),
    _k("validators", int, 5, "validator units per zone (quorum voters)", lo=1),
    _k("quorum_n", int, 5, "validators per scope (n); k = max(ceil(2n/3), k_min)", lo=1),
    _k("quorum_k_min", int, 4, "minimum k of a certificate", lo=1),
    _k("quorum_mode", str, "global", "claim quorum mode", choices=("global", "local")),
    _k("epoch_s", float, 10.0, "seconds per protocol epoch (EPOCH_S)", lo=0.001),
    _k("epoch0", int, 1000, "protocol epoch at virtual time 0", lo=2),
    _k(
        "vote_retry_s",
        float,
        2.0,
        "seconds; a proposer re-asks validators that did not answer",
        lo=0.001,
    ),
    _k(
        "outage_start_s",
        float,
        -1.0,
        "seconds; publisher/primary coordinator goes down (-1 = never)",
    ),
    _k("outage_end_s", float, -1.0, "seconds; ... and comes back"),
    _k(
        "descriptor_publish_s",
        float,
        -1.0,
        "fleet: seconds; the publisher sends descriptor version 2 on the control topic (-1 = none)",
    ),
    _k("descriptor_active_s", float, -1.0, "fleet: seconds; version 2 activates (epoch E)"),
    _k("forgeries", int, 0, "claims with a forged DAH successor or forged certificate", lo=0),
    _k("replays", int, 0, "claims carrying another task's certificate, or replayed stale", lo=0),
    _k("attack_start_s", float, 30.0, "seconds; forged/replayed claims are injected from here"),
    _k("attack_end_s", float, 550.0, "seconds; ... to here"),
    _k("partition_zone", int, -1, "zone cut off as a sub-fleet (-1 = none)"),
    _k("partition_zones", int, 1, "how many zones, from partition_zone on, are cut off", lo=1),
    _k("partition_start_s", float, -1.0, "seconds; the sub-fleet is cut off"),
    _k("partition_end_s", float, -1.0, "seconds; ... and rejoins"),
    _k("baseline", bool, True, "also run the central-coordinator baseline on the same network"),
    _k("failover_s", float, 30.0, "baseline: seconds until the standby takes over", lo=0.0),
    _k("request_timeout_s", float, 2.0, "baseline: client timeout per attempt", lo=0.001),
    _k("retry_max_s", float, 16.0, "baseline: cap of the exponential retry backoff", lo=0.001),
    _k("service_ms", float, 2.0, "baseline: coordinator processing time per request", lo=0.0),
    _k("exec_s", float, 5.0, "seconds a task runs once its claimant holds it", lo=0.0),
    _k(
        "misplacements",
        int,
        0,
        "multiregion: jobs whose first handoff goes to a forbidden region (a placement fault"
        " injected into both schedulers)",
        lo=0,
    ),
    _k("delegations", int, 0, "disaster: mutual-aid grants during the split", lo=0),
    _k("sectors", int, 100, "disaster: sectors to search (tasks are requests for them)", lo=1),
    _k("fail_zone", int, -1, "multiregion: region (cluster) that fails (-1 = none)"),
    _k("fail_s", float, -1.0, "multiregion: seconds; the region fails"),
    _k("heal_s", float, -1.0, "disaster: seconds; the partitions heal"),
    _k("split_s", float, 0.0, "disaster: seconds; command node cut and the partitions form (t0)"),
    _k(
        "override_s", float, -1.0, "disaster: seconds; the safety override is issued (-1 = at heal)"
    ),
    _k("recover_s", float, -1.0, "disaster: seconds; one device loses its memory and recovers"),
)

SECTIONS: Final[Mapping[str, tuple[Key, ...]]] = {
    "run": RUN_KEYS,
    "topology": TOPOLOGY_KEYS,
    "gossip": GOSSIP_KEYS,
    "zone": ZONE_KEYS,
    "network": NETWORK_KEYS,
    "mobility": MOBILITY_KEYS,
    "workload": WORKLOAD_KEYS,
}
ARRAYS: Final[Mapping[str, tuple[Key, ...]]] = {
    "link_class": LINK_CLASS_KEYS,
    "group": GROUP_KEYS,
    "event": EVENT_KEYS,
}


@dataclass(frozen=True, slots=True)
class RunSpec:
    name: str
    seed: int
    duration_s: float
    metrics_interval_s: float


@dataclass(frozen=True, slots=True)
class TopologySpec:
    kind: str
    nodes: int
    degree: int
    p: float
    k: int
    rewire_p: float
    m: int
    radius: float
    clusters: int
    inter_links: int
    path: str


@dataclass(frozen=True, slots=True)
class GossipSpec:
    topic: str
    d: int
    d_lo: int
    d_hi: int
    d_lazy: int
    d_out: int
    d_score: int
    heartbeat_interval_ms: float
    flood_publish: bool
    scoring: bool
    mesh_message_deliveries_weight: float
    mesh_message_deliveries_threshold: float
    mesh_message_deliveries_activation_s: float
    mesh_failure_penalty_weight: float
    do_px: bool
    heartbeat_stagger: bool


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    name: str
    hosts: int
    epoch: int


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    link_class: str
    inter_cluster_link_class: str
    connect_spread_ms: float
    detect_ms: float


@dataclass(frozen=True, slots=True)
class LinkClassSpec:
    name: str
    latency_ms: float
    latency_dist: str
    jitter_ms: float
    loss: float
    rto_ms: float
    bandwidth_kbps: float


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    count: int
    fraction: float
    behaviour: str
    link_class: str
    rate_per_s: float
    size_bytes: int
    start_s: float
    stop_s: float
    join_s: float
    up_s: float
    down_s: float
    hop_interval_s: float
    carrier_links: int
    targets: int


@dataclass(frozen=True, slots=True)
class EventSpec:
    at_s: float
    kind: str
    count: int
    interval_ms: float
    size_bytes: int
    group: str
    fraction: float
    sides: tuple[tuple[str, ...], ...]
    by_cluster: bool
    duration_s: float
    down_s: float
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class MobilitySpec:
    model: str
    area_m: float
    radius_m: float
    speed_min_mps: float
    speed_max_mps: float
    pause_s: float
    recompute_interval_s: float


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    kind: str
    zones: int
    tasks: int
    tasks_start_s: float
    tasks_end_s: float
    validators: int
    quorum_n: int
    quorum_k_min: int
    quorum_mode: str
    epoch_s: float
    epoch0: int
    vote_retry_s: float
    outage_start_s: float
    outage_end_s: float
    descriptor_publish_s: float
    descriptor_active_s: float
    forgeries: int
    replays: int
    attack_start_s: float
    attack_end_s: float
    partition_zone: int
    partition_zones: int
    partition_start_s: float
    partition_end_s: float
    baseline: bool
    failover_s: float
    request_timeout_s: float
    retry_max_s: float
    service_ms: float
    exec_s: float
    misplacements: int
    delegations: int
    sectors: int
    fail_zone: int
    fail_s: float
    heal_s: float
    split_s: float
    override_s: float
    recover_s: float


@dataclass(frozen=True, slots=True)
class Scenario:
    """A fully resolved, validated scenario; ``source`` is the file it came from."""

    run: RunSpec
    topology: TopologySpec
    gossip: GossipSpec
    zone: ZoneSpec
    network: NetworkSpec
    mobility: MobilitySpec
    workload: WorkloadSpec
    link_classes: tuple[LinkClassSpec, ...]
    groups: tuple[GroupSpec, ...]
    events: tuple[EventSpec, ...]
    source: str = field(default="", compare=False)

    def group_sizes(self) -> tuple[int, ...]:
        """Nodes per group, in order; the remainder group takes what is left."""
        n = self.topology.nodes
        sizes = [
            g.count if g.count >= 0 else (round(g.fraction * n) if g.fraction >= 0 else -1)
            for g in self.groups
        ]
        fixed = sum(s for s in sizes if s >= 0)
        return tuple(n - fixed if s < 0 else s for s in sizes)

    def link_class(self, name: str) -> LinkClassSpec:
        for lc in self.link_classes:
            if lc.name == name:
                return lc
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain data (for show-config and summary.json)."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            out[name] = _as_dict(getattr(self, name))
        out["link_class"] = [_as_dict(x) for x in self.link_classes]
        out["group"] = [_as_dict(x) for x in self.groups]
        out["event"] = [_as_dict(x) for x in self.events]
        return out


def _as_dict(obj: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        d[f.name] = [list(s) for s in v] if f.name == "sides" else v
    return d


# ----------------------------------------------------------------------------- parsing


class _Ctx:
    def __init__(self, file: str) -> None:
        self.file = file

    def err(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{message} (in {self.file})", path=path)


def _coerce(ctx: _Ctx, key: Key, path: str, value: object) -> object:
    if key.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.err(path, f"must be a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise ctx.err(path, "must be finite")
    elif key.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.err(path, f"must be an integer, got {type(value).__name__}")
    elif key.kind is bool:
        if not isinstance(value, bool):
            raise ctx.err(path, f"must be true or false, got {type(value).__name__}")
    elif key.kind is str:
        if not isinstance(value, str):
            raise ctx.err(path, f"must be a string, got {type(value).__name__}")
        if key.choices and value not in key.choices:
            raise ctx.err(path, f"must be one of {', '.join(key.choices)}; got {value!r}")
    elif key.kind is list:
        if not isinstance(value, list):
            raise ctx.err(path, f"must be an array, got {type(value).__name__}")
        sides: list[tuple[str, ...]] = []
        for i, side in enumerate(value):
            if not isinstance(side, list) or not all(isinstance(s, str) for s in side):
                raise ctx.err(f"{path}[{i}]", "must be an array of group names")
            sides.append(tuple(side))
        return tuple(sides)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key.lo is not None and value < key.lo:
            raise ctx.err(path, f"must be >= {key.lo:g}, got {value}")
        if key.hi is not None and value > key.hi:
            raise ctx.err(path, f"must be <= {key.hi:g}, got {value}")
    return value


def _table(ctx: _Ctx, raw: object, keys: Iterable[Key], path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ctx.err(path, "must be a table")
    by_name = {k.name: k for k in keys}
    for name in sorted(raw):
        if name not in by_name:
            raise ctx.err(f"{path}.{name}", "unknown key")
    out: dict[str, Any] = {}
    for key in by_name.values():
        if key.name in raw:
            out[key.name] = _coerce(ctx, key, f"{path}.{key.name}", raw[key.name])
        elif key.default is REQUIRED:
            raise ctx.err(f"{path}.{key.name}", "required key is missing")
        else:
            default = key.default
            out[key.name] = tuple(default) if isinstance(default, list) else default
    return out


def _array(ctx: _Ctx, raw: object, keys: tuple[Key, ...], path: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.err(path, f"must be an array of tables [[{path}]]")
    return [_table(ctx, item, keys, f"{path}[{i}]") for i, item in enumerate(raw)]


def from_dict(doc: Mapping[str, Any], file: str = "<scenario>") -> Scenario:
    """Validate a parsed TOML document; every error names the key and ``file``."""
    ctx = _Ctx(file)
    for name in sorted(doc):
        if name not in SECTIONS and name not in ARRAYS:
            raise ctx.err(name, "unknown section")
    for name in ("run", "topology"):
        if name not in doc:
            raise ctx.err(name, "required section is missing")
    sec = {name: _table(ctx, doc.get(name, {}), keys, name) for name, keys in SECTIONS.items()}
    classes = _array(ctx, doc.get("link_class"), LINK_CLASS_KEYS, "link_class")
    groups = _array(ctx, doc.get("group"), GROUP_KEYS, "group")
    events = _array(ctx, doc.get("event"), EVENT_KEYS, "event")
    if not classes:
        classes = [_table(ctx, {"name": "default"}, LINK_CLASS_KEYS, "link_class[0]")]
    if not groups:
        groups = [_table(ctx, {"name": "honest"}, GROUP_KEYS, "group[0]")]
    for i, ev in enumerate(events):
        raw_ev = doc["event"][i]
        allowed = EVENT_KIND_KEYS[ev["kind"]] | {"at_s", "kind"}
        for name in sorted(raw_ev):
            if name not in allowed:
                raise ctx.err(f"event[{i}].{name}", f"not a key of a {ev['kind']!r} event")
    scenario = Scenario(
        run=RunSpec(**sec["run"]),
        topology=TopologySpec(**sec["topology"]),
        gossip=GossipSpec(**sec["gossip"]),
        zone=ZoneSpec(**sec["zone"]),
        network=NetworkSpec(**sec["network"]),
        mobility=MobilitySpec(**sec["mobility"]),
        workload=WorkloadSpec(**sec["workload"]),
        link_classes=tuple(LinkClassSpec(**c) for c in classes),
        groups=tuple(GroupSpec(**g) for g in groups),
        events=tuple(EventSpec(**e) for e in events),
        source=file,
    )
    _check(ctx, scenario)
    return scenario


def _check(ctx: _Ctx, s: Scenario) -> None:
    """Cross-key invariants (the per-key ones are in the tables)."""
    names = [lc.name for lc in s.link_classes]
    if len(set(names)) != len(names):
        raise ctx.err("link_class", "two link classes share a name")
    if s.network.link_class not in names:
        raise ctx.err("network.link_class", f"no [[link_class]] named {s.network.link_class!r}")
    icl = s.network.inter_cluster_link_class
    if icl and icl not in names:
        raise ctx.err("network.inter_cluster_link_class", f"no [[link_class]] named {icl!r}")
    gnames = [g.name for g in s.groups]
    if len(set(gnames)) != len(gnames):
        raise ctx.err("group", "two groups share a name")
    remainder = 0
    for i, g in enumerate(s.groups):
        if g.link_class and g.link_class not in names:
            raise ctx.err(f"group[{i}].link_class", f"no [[link_class]] named {g.link_class!r}")
        if g.count >= 0 and g.fraction >= 0:
            raise ctx.err(f"group[{i}].fraction", "give count or fraction, not both")
        if g.count < 0 and g.fraction < 0:
            remainder += 1
    if remainder > 1:
        raise ctx.err("group", "at most one group may take the remaining nodes")
    sizes = s.group_sizes()
    if sum(sizes) != s.topology.nodes or min(sizes) < 0:
        raise ctx.err("group", f"group sizes {list(sizes)} do not add up to topology.nodes")
    gp = s.gossip
    if not (gp.d_lo <= gp.d <= gp.d_hi):
        raise ctx.err("gossip.d", "must satisfy d_lo <= d <= d_hi")
    if gp.d_out >= max(gp.d_lo, 1) or gp.d_out > gp.d // 2:
        raise ctx.err("gossip.d_out", "must be < d_lo and <= d / 2")
    if gp.d_score > gp.d:
        raise ctx.err("gossip.d_score", "must be <= d")
    t = s.topology
    if t.kind == "edge_list" and not t.path:
        raise ctx.err("topology.path", "edge_list needs a path")
    if t.kind == "random_regular" and (t.degree >= t.nodes or (t.degree * t.nodes) % 2):
        raise ctx.err("topology.degree", "needs degree < nodes and degree * nodes even")
    if t.kind == "watts_strogatz" and t.k % 2:
        raise ctx.err("topology.k", "must be even")
    if s.zone.name and s.zone.hosts > s.topology.nodes:
        raise ctx.err("zone.hosts", "more hosts than nodes")
    m = s.mobility
    if m.model != "none" and t.kind != "random_geometric":
        raise ctx.err("mobility.model", "mobility needs topology.kind = random_geometric")
    if m.speed_max_mps < m.speed_min_mps:
        raise ctx.err("mobility.speed_max_mps", "must be >= speed_min_mps")
    w = s.workload
    if w.kind != "none":
        if not w.quorum_n // 2 < w.quorum_k_min <= w.quorum_n:
            raise ctx.err("workload.quorum_k_min", "must be in n//2+1..n")
        if w.validators < w.quorum_n:
            raise ctx.err("workload.validators", "must be >= quorum_n")
        if w.zones * w.validators > s.topology.nodes:
            raise ctx.err("workload.validators", "more validator units than nodes")
        if w.tasks_end_s < w.tasks_start_s or w.tasks_end_s > s.run.duration_s:
            raise ctx.err("workload.tasks_end_s", "must be in tasks_start_s..run.duration_s")
        if w.partition_zone >= w.zones:
            raise ctx.err("workload.partition_zone", "no such zone")
        if w.fail_zone >= w.zones:
            raise ctx.err("workload.fail_zone", "no such zone")
    for i, ev in enumerate(s.events):
        if ev.at_s > s.run.duration_s:
            raise ctx.err(f"event[{i}].at_s", "is after run.duration_s")
        if ev.group and ev.group not in gnames:
            raise ctx.err(f"event[{i}].group", f"no [[group]] named {ev.group!r}")
        for j, side in enumerate(ev.sides):
            for gname in side:
                if gname not in gnames:
                    raise ctx.err(f"event[{i}].sides[{j}]", f"no [[group]] named {gname!r}")
        if ev.by_cluster and s.topology.kind != "clustered":
            raise ctx.err(f"event[{i}].by_cluster", "needs topology.kind = clustered")
        if ev.by_cluster and ev.sides:
            raise ctx.err(f"event[{i}].sides", "give sides or by_cluster, not both")
        if ev.kind == "descriptor":
            raise ctx.err(f"event[{i}].kind", "descriptor events are not built yet")
        if ev.kind == "override":
            _check_override(ctx, f"event[{i}]", ev, s)


OVERRIDABLE: Final = frozenset({"loss", "latency_ms", "jitter_ms", "bandwidth_kbps"})


def _check_override(ctx: _Ctx, path: str, ev: EventSpec, s: Scenario) -> None:
    parts = ev.key.split(".")
    if len(parts) != 3 or parts[0] != "link_class" or parts[2] not in OVERRIDABLE:
        raise ctx.err(
            f"{path}.key",
            "override supports link_class.<name>.(loss|latency_ms|jitter_ms|bandwidth_kbps)",
        )
    try:
        lc = s.link_class(parts[1])
    except KeyError:
        raise ctx.err(f"{path}.key", f"no [[link_class]] named {parts[1]!r}") from None
    key = {k.name: k for k in LINK_CLASS_KEYS}[parts[2]]
    _coerce(ctx, key, f"{path}.value", _toml_value(ev.value))
    del lc


def _toml_value(text: str) -> object:
    """Parse ``text`` as a TOML value; bare words that are not TOML are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(lc: LinkClassSpec, ev: EventSpec) -> LinkClassSpec:
    """The link class after an ``override`` event (validated at load time)."""
    name = ev.key.split(".")[2]
    key = {k.name: k for k in LINK_CLASS_KEYS}[name]
    value = _coerce(_Ctx("<override>"), key, ev.key, _toml_value(ev.value))
    assert isinstance(value, float)
    changes: dict[str, Any] = {name: value}
    return replace(lc, **changes)


# ----------------------------------------------------------------------------- --set


def apply_set(doc: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set path=value`` to a parsed document (before validation).

    Paths are dotted; array tables are addressed by index (``group.1.count``) or by name
    (``link_class.default.loss``). The value is TOML (``0.1``, ``true``, ``"x"``, bare words
    become strings). The key must be a documented one.
    """
    path, eq, text = assignment.partition("=")
    path = path.strip()
    if not eq or not path:
        raise ConfigError(f"--set wants PATH=VALUE, got {assignment!r}", path="--set")
    parts = path.split(".")
    value = _toml_value(text.strip())
    head = parts[0]
    if head in SECTIONS and len(parts) == 2:
        keys = SECTIONS[head]
        table = doc.setdefault(head, {})
    elif head in ARRAYS and len(parts) == 3:
        keys = ARRAYS[head]
        items = doc.setdefault(head, [])
        table = _find_item(items, parts[1], path)
    else:
        raise ConfigError("no such scenario key (from --set)", path=path)
    if parts[-1] not in {k.name for k in keys}:
        raise ConfigError("unknown key (from --set)", path=path)
    table[parts[-1]] = value


def _find_item(items: list[dict[str, Any]], ref: str, path: str) -> dict[str, Any]:
    if ref.isdigit():
        if int(ref) < len(items):
            return items[int(ref)]
    else:
        for item in items:
            if item.get("name") == ref:
                return item
    raise ConfigError("no such array entry (from --set)", path=path)


def load(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file; every failure is a ConfigError."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario {p}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8", offset=exc.start) from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    for assignment in overrides:
        apply_set(doc, assignment)
    scenario = from_dict(doc, str(p))
    if scenario.topology.kind == "edge_list":
        edge_path = Path(scenario.topology.path)
        if not edge_path.is_absolute():
            edge_path = p.parent / edge_path
        scenario = replace(scenario, topology=replace(scenario.topology, path=str(edge_path)))
    return scenario


# ----------------------------------------------------------------------------- docs


def _fmt_default(key: Key) -> str:
    if key.default is REQUIRED:
        return "required"
    if isinstance(key.default, bool):
        return "`true`" if key.default else "`false`"
    if isinstance(key.default, str):
        return f'`"{key.default}"`'
    return f"`{key.default}`"


def schema_markdown() -> str:
    """Markdown tables of every key (scenarios/README.md embeds this verbatim)."""
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "array"}
    lines: list[str] = []
    groups = [(f"[{n}]", n, k) for n, k in SECTIONS.items()]
    groups += [(f"[[{n}]]", n, k) for n, k in ARRAYS.items()]
    for title, prefix, keys in groups:
        lines += [
            f"### `{title}`",
            "",
            "| key | type | default | unit / meaning |",
            "|---|---|---|---|",
        ]
        for key in keys:
            doc = key.doc
            if key.choices:
                doc += " (one of: " + ", ".join(f"`{c}`" for c in key.choices) + ")"
            lines.append(
                f"| `{prefix}.{key.name}` | {names[key.kind]} | {_fmt_default(key)} | {doc} |"
            )
        lines.append("")
    lines += ["Keys allowed per event kind (besides `at_s` and `kind`):", ""]
    for kind in EVENT_KINDS:
        allowed = ", ".join(f"`{k}`" for k in sorted(EVENT_KIND_KEYS[kind])) or "none"
        lines.append(f"- `{kind}`: {allowed}")
    lines.append("")
    return "\n".join(lines)
