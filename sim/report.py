"""Run outputs: ``summary.json``, ``metrics.jsonl``, ``report.md`` with PNG plots, and a digest.

The digest is sha256 over the data outputs only (summary data, metrics lines, report tables),
each in a canonical form; wall-clock and memory figures ("host") and image files are outside
it, so the same scenario and seed give the same digest on any machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sim.run import RunResult
from sim.scenario import Scenario


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace variance, floats as Python prints them."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def metrics_lines(result: RunResult) -> str:
    return "".join(canonical(line) + "\n" for line in result.timeline)


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def tables_markdown(result: RunResult) -> str:
    """The report's tables, from data only (part of the digest)."""
    d = result.data
    r = d["results"]
    lines = ["## Results", "", "| figure | value |", "|---|---|"]
    for key in (
        "messages",
        "targets",
        "delivery_ratio",
        "deliveries",
        "duplicates",
        "duplicates_per_delivery",
        "bytes_sent_per_node",
        "bytes_sent_per_node_max",
        "rpcs_sent_total",
        "rpcs_dropped_link_down",
        "verdict_disagreements",
        "admissions",
        "crashes",
        "restarts",
        "joins",
        "link_changes",
        "attack_messages",
    ):
        lines.append(_row([key, r[key]]))
    lines.append(_row(["events_executed", d["events_executed"]]))
    lines.append(_row(["signature_checks", d["signature_checks"]]))
    lines.append(_row(["retransmissions", d["retransmissions"]]))
    if d["watched"]:
        lines.append(_row(["watched_nodes", len(d["watched"]["nodes"])]))
        lines.append(_row(["watched_delivery_ratio", d["watched"]["delivery_ratio"]]))
        lines.append(
            _row(["watched_mesh_attacker_share_end", d["watched"]["mesh_attacker_share_end"]])
        )
        wl = d["watched"]["latency_ms"]
        lines.append(_row(["watched_latency_p50_ms", wl["p50"]]))
        lines.append(_row(["watched_latency_p99_ms", wl["p99"]]))
    lines += [
        "",
        "## Latency and hops",
        "",
        "| figure | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|",
    ]
    lat = r["latency_ms"]
    lines.append(_row(["latency (ms)", lat["p50"], lat["p90"], lat["p99"], lat["p100"]]))
    h = r["hops"]
    lines.append(_row(["hops", h["p50"], "", h["p99"], h["max"]]))
    lines += ["", "## Topology", "", "| figure | value |", "|---|---|"]
    for key, value in d["topology"].items():
        lines.append(_row([key, value]))
    lines += ["", "## Groups", "", "| group | behaviour | nodes |", "|---|---|---|"]
    for name, g in d["groups"].items():
        lines.append(_row([name, g["behaviour"], g["nodes"]]))
    if r["decisions"]:
        lines += [
            "",
            f"## Admission decisions in zone {d['zone']} (every member its own)",
            "",
            "| outcome code | decisions |",
            "|---|---|",
        ]
        for code, count in r["decisions"].items():
            lines.append(_row([code, count]))
    if r["rejects"]:
        lines += ["", "## Rejections (all nodes)", "", "| reason | count |", "|---|---|"]
        for reason, count in r["rejects"].items():
            lines.append(_row([reason, count]))
    sc = d["scores"]
    if sc.get("enabled"):
        lines += [
            "",
            "## Peer scores at the end (honest observers)",
            "",
            "| peers | count | min | median | max |",
            "|---|---|---|---|---|",
        ]
        for kind in ("honest_peers", "attacker_peers"):
            s = sc[kind]
            lines.append(
                _row([kind, s["count"], s.get("min", ""), s.get("median", ""), s.get("max", "")])
            )
    lines += [
        "",
        "## Messages",
        "",
        "| # | publisher | published (ms) | delivered | p50 (ms) | p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for m in r["per_message"][:50]:
        lines.append(
            _row(
                [
                    m["index"],
                    m["publisher"],
                    m["published_ms"],
                    m["delivered"],
                    m["p50_ms"],
                    m["p99_ms"],
                ]
            )
        )
    if len(r["per_message"]) > 50:
        lines.append(f"\n({len(r['per_message']) - 50} more in summary.json)")
    lines.append("")
    if "workload" in d:
        lines += workload_markdown(d["workload"])
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return canonical(value)
    return str(value)


def workload_markdown(w: dict[str, Any]) -> list[str]:
    """The workload's comparison with its central baseline, invariants and figures."""
    lines = [
        "## Mesh vs central baseline",
        "",
        "| figure | mesh (ours) | central baseline |",
        "|---|---|---|",
    ]
    for fig, ours, base in w["headline"]:
        lines.append(_row([fig, _cell(ours), _cell(base)]))
    lat = w.get("latency_ms", {})
    if lat:
        lines += [
            "",
            "## Claim latency (ms, task appears -> claimant holds it)",
            "",
            "| system | count | p50 | p90 | p99 | max |",
            "|---|---|---|---|---|---|",
        ]
        for name, q in lat.items():
            lines.append(_row([name, q["count"], q["p50"], q["p90"], q["p99"], q["max"]]))
    for section in ("windows",):
        rows = w.get(section, {})
        if rows:
            lines += [
                "",
                "## Windows (tasks created in the window, done by its end)",
                "",
                "| window | tasks | mesh done | mesh share | mesh held in SLA | baseline done"
                " | baseline share | baseline held in SLA |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for name, r in rows.items():
                lines.append(
                    _row(
                        [
                            name,
                            r["tasks"],
                            r["ours_done"],
                            _cell(r["ours_share"]),
                            _cell(r.get("ours_held_within_sla")),
                            _cell(r.get("baseline_done")),
                            _cell(r.get("baseline_share")),
                            _cell(r.get("baseline_held_within_sla")),
                        ]
                    )
                )
    skip = {"headline", "latency_ms", "latency_cdf_ms", "windows", "marks", "kind", "plot"}
    for section, body in w.items():
        if section in skip or not isinstance(body, dict) or not body:
            continue
        lines += ["", f"## {section.replace('_', ' ').capitalize()}", "", "| key | value |"]
        lines.append("|---|---|")
        for key, value in body.items():
            lines.append(_row([key, _cell(value)]))
    lines.append("")
    return lines


def digest(result: RunResult) -> str:
    """sha256 over summary data, metrics lines and report tables (no host figures, no images)."""
    h = hashlib.sha256()
    for part in (canonical(result.data), metrics_lines(result), tables_markdown(result)):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part.encode())
    return h.hexdigest()


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _plots(result: RunResult, out: Path) -> list[tuple[str, str]]:
    """PNG plots via matplotlib's Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = result.timeline
    t = [x["t_s"] for x in tl]
    made: list[tuple[str, str]] = []

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ratio = [_num(x["delivery_ratio"]) for x in tl]
    ax.plot(t, ratio, label="all honest nodes")
    if tl and "watched_delivery_ratio" in tl[-1]:
        w: list[float] = [_num(x.get("watched_delivery_ratio")) for x in tl]
        ax.plot(t, w, label="watched nodes (victims)")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("delivery ratio (cumulative)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "delivery.png", dpi=100)
    plt.close(fig)
    made.append(("Delivery ratio over time", "delivery.png"))

    cdf = result.data["results"]["latency_cdf_ms"]
    if any(cdf):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(cdf, [q / 100 for q in range(1, 101)])
        ax.set_xlabel("delivery latency (ms)")
        ax.set_ylabel("fraction of deliveries")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "latency_cdf.png", dpi=100)
        plt.close(fig)
        made.append(("Latency CDF", "latency_cdf.png"))

    if tl and "watched_mesh_attacker_share" in tl[-1]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(t, [_num(x.get("watched_mesh_attacker_share")) for x in tl])
        ax.set_xlabel("virtual time (s)")
        ax.set_ylabel("attacker share of victims' mesh")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "victim_mesh.png", dpi=100)
        plt.close(fig)
        made.append(("Attackers in the victims' meshes", "victim_mesh.png"))

    if "workload" in result.data:
        made += _workload_plots(result, out)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(t, [x["mesh_degree_mean"] for x in tl], label="mean")
    ax.plot(t, [x["mesh_degree_min"] for x in tl], label="min")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("mesh degree")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "mesh_degree.png", dpi=100)
    plt.close(fig)
    made.append(("Mesh degree", "mesh_degree.png"))
    return made


def _workload_plots(result: RunResult, out: Path) -> list[tuple[str, str]]:
    """Mesh vs baseline over time (with the scenario's windows shaded), claim latency CDF
    and every node's admission decisions by outcome code."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = result.data["workload"]
    tl = result.timeline
    t = [x["t_s"] for x in tl]
    made: list[tuple[str, str]] = []
    plot = w.get("plot", {})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, key in plot.get("series", []):
        if tl and key in tl[-1]:
            ax.plot(t, [_num(x.get(key)) for x in tl], label=label)
    for k, (label, lo, hi) in enumerate(w.get("marks", [])):
        ax.axvspan(lo, hi, alpha=0.12, color=f"C{k + 3}", label=label)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(plot.get("ylabel", "tasks"))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    name = plot.get("file", "completion.png")
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    made.append((plot.get("title", "Mesh vs central baseline"), name))

    cdf = w.get("latency_cdf_ms", {})
    if any(cdf.values()):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for label, xs in cdf.items():
            if xs:
                ax.plot(xs, [q / 100 for q in range(1, 101)], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("claim latency (ms, log scale)")
        ax.set_ylabel("fraction of tasks")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "claim_latency_cdf.png", dpi=100)
        plt.close(fig)
        made.append(("Claim latency CDF, mesh vs baseline", "claim_latency_cdf.png"))

    codes = w.get("decisions", {})
    if codes:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = list(codes)
        ax.barh(names, [codes[c] for c in names])
        ax.set_xscale("log")
        ax.set_xlabel("admission decisions (all nodes, log scale)")
        fig.tight_layout()
        fig.savefig(out / "verdicts.png", dpi=100)
        plt.close(fig)
        made.append(("Admission decisions by outcome code", "verdicts.png"))
    return made


def write(result: RunResult, scenario: Scenario, out: Path, plots: bool = True) -> str:
    """Write every output file into ``out``; returns the digest."""
    out.mkdir(parents=True, exist_ok=True)
    dig = digest(result)
    summary = {"data": result.data, "digest": dig, "host": result.host}
    (out / "summary.json").write_text(json.dumps(summary, sort_keys=True, indent=1) + "\n")
    (out / "metrics.jsonl").write_text(metrics_lines(result))
    made = _plots(result, out) if plots else []
    d = result.data
    host = result.host
    md = [
        f"# Simulation report: {d['scenario']}",
        "",
        f"Seed {d['seed']}, {d['nodes']} nodes, {d['virtual_s']} s of virtual time, "
        f"scenario file `{scenario.source}`. Digest `{dig}`.",
        "",
        tables_markdown(result),
        "## Plots",
        "",
    ]
    for title, name in made:
        md += [f"### {title}", "", f"![{title}]({name})", ""]
    md += [
        "## Run host (not part of the digest)",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    md += [_row([k, v]) for k, v in host.items()]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return dig
