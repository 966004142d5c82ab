"""README figures that overlay several simulator runs (one run's plots come from `sim run`).

meshnode sim run scenarios/attack-eclipse.toml --set gossip.scoring=false --out /tmp/ecl-off
meshnode sim run scenarios/attack-eclipse.toml --out /tmp/ecl-on
python docs/make_figures.py eclipse /tmp/ecl-off /tmp/ecl-on docs/img/eclipse-scoring.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def eclipse(off_dir: Path, on_dir: Path, out: Path) -> None:
    """Sybil share of the victims' meshes over time, scoring off vs on."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for run_dir, label in ((off_dir, "scoring off"), (on_dir, "scoring on (P3 from 30 s)")):
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines if line]
        ax.plot(
            [r["t_s"] for r in rows],
            [r["watched_mesh_attacker_share"] for r in rows],
            label=label,
        )
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("sybil share of victims' mesh")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("1,000 nodes, 100 sybils eclipsing 10 victims")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "eclipse":
        eclipse(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
