"""Charts of the autoscaling simulator: one PNG per scenario, both clients overlaid.

    python bench/autoscale/chart.py DIR [--out DIR]

Reads DIR/<scenario>.json (written by the simulator) and draws, over virtual time: ready
replicas, requests in flight at the Flow, documents per Flow request, and the median latency of
the events answered each second.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"direct": "#d62728", "flowbridge": "#1f77b4"}
LABELS = {"direct": "direct client, one Flow request per event", "flowbridge": "flowbridge"}


def draw(report, out):
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    for summary, series in report["runs"]:
        client = summary["client"]
        rev, cli = series["revision"], series["client"]
        t = list(range(1, len(rev) + 1))
        c = COLORS[client]
        axes[0].step(t, [s["ready"] for s in rev], where="post", color=c, label=LABELS[client])
        axes[1].plot(t, [s["in_flight"] for s in rev], color=c, lw=0.8)
        batch = [s["docs"] / s["requests"] if s["requests"] else None for s in rev]
        axes[2].plot(t, batch, ".", color=c, ms=2)
        lat = [s["p50"] for s in cli]
        axes[3].plot(list(range(1, len(lat) + 1)), lat, ".", color=c, ms=2)
    axes[0].set_ylabel("ready replicas")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].set_ylabel("requests in flight\nat the Flow (1 s mean)")
    axes[2].set_ylabel("docs per\nFlow request")
    axes[2].set_yscale("log")
    axes[3].set_ylabel("event latency p50\nper second (s)")
    axes[3].set_yscale("log")
    axes[3].set_xlabel("virtual time (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"{report['scenario']}: {report['about']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--out")
    args = parser.parse_args()
    out = Path(args.out or args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(args.dir).glob("*.json")):
        report = json.loads(path.read_text())
        png = out / f"autoscale-{report['scenario']}.png"
        draw(report, png)
        print(f"chart: {png}")


if __name__ == "__main__":
    main()
