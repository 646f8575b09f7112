"""Trust the simulator's replica model: one check against the real Flow.

    bench/autoscale.sh --trust [--duration 15]

1. Starts bench/flow_fast.py with the slow executor (20 ms per request + 0.2 ms per document,
   one request at a time: a small GPU model) — the same Flow as bench/run.sh's slow-executor row.
2. Measures it with bench/flow_ceiling.py: latency with one request in flight at 1, 64 and 512
   documents, and time per request with 4 in flight (back to back: how long each holds the
   executor) at 64 and 512. Fits both as a + b·documents (least squares): the second is the
   replica's serial service time, the difference the overhead beside it (client, gateway).
3. The real run, as bench/run.sh takes it: `flowbridge serve` with every default in front of
   the Flow, `flowbridge load --concurrency 1024` closed loop; events/s and documents per Flow
   request from flowbridge's metrics.
4. The simulator on the same setup: one replica, always up, the fitted times, 1,024 senders
   back to back, flowbridge's defaults; the same two figures.
5. Prints both and their ratios, and what the replica model alone predicts at the batch size
   the real run chose; exits 1 when any is off by more than 20 %.

The trivial executor of bench/run.sh's first rows is not the check: there the loader and
flowbridge share the machine's two cores with the Flow, and the run measures that sharing (see
docs/benchmarks.md), which the replica model leaves out by design.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (bench/bench.py: its process helpers)

TOLERANCE = 0.20


def fit(points):
    """Least squares: seconds = a + b·docs, both at least 0."""
    n = len(points)
    mx = sum(d for d, _ in points) / n
    my = sum(s for _, s in points) / n
    b = sum((d - mx) * (s - my) for d, s in points) / sum((d - mx) ** 2 for d, _ in points)
    return max(my - b * mx, 0.0), max(b, 0.0)


def ceiling(args, gateway, batch, concurrency):
    """Seconds per request at `batch` documents with `concurrency` in flight: its latency with
    one in flight, the time it holds the executor (1 / requests per second) with several."""
    cmd = [sys.executable, str(HERE.parent / "flow_ceiling.py"), "--gateway", gateway,
           "--batch", str(batch), "--concurrency", str(concurrency), "--duration", str(args.duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = result["elapsed_s"] / max(result["requests"], 1)
    bench.say(f"{batch} docs, {concurrency} in flight: {seconds * 1000:.2f} ms per request "
              f"({result['requests']} requests)")
    return seconds


def service_times(args, gateway):
    """The replica model: the serial part (what one request holds the executor for: requests
    back to back with 4 in flight) and the overhead beside it (latency alone minus that)."""
    latency = [(b, ceiling(args, gateway, b, 1)) for b in (1, 64, 512)]
    serial = [(b, ceiling(args, gateway, b, 4)) for b in (64, 512)]
    a_total, b_total = fit(latency)
    a, b = fit(serial)
    return {"latency": latency, "serial": serial, "a": a, "b": b,
            "overhead_a": max(a_total - a, 0.0), "overhead_b": max(b_total - b, 0.0)}


def simulate(args, m):
    scenario = f"""name: trust
about: bench/run.sh's slow-executor run, modelled
flow:
  cold_start: 0s
  per_request: {m['a'] * 1e6:.0f}us
  per_doc: {m['b'] * 1e6:.1f}us
  overhead_request: {m['overhead_a'] * 1e6:.0f}us
  overhead_doc: {m['overhead_b'] * 1e6:.1f}us
  slots: 1
  drain: 0s
knative: {{target: 100, min_scale: 1, max_scale: 1}}
flowbridge: {{autoscale: false}}
docs_per_event: 1
phases:
  - {{phase: closed, senders: {args.load_concurrency}, duration: {args.duration:g}s}}
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trust.yaml"
        path.write_text(scenario)
        subprocess.run([str(args.simulator), "--out", tmp, "--only", "flowbridge", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
        report = json.loads((Path(tmp) / "trust.json").read_text())
    summary = report["runs"][0][0]
    return summary["events_per_second"], summary["docs_per_request"], scenario


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulator", required=True, help="the autoscale bench binary")
    parser.add_argument("--bin", default=bench.ROOT / "target/release/flowbridge")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--load-concurrency", type=int, default=1024)
    parser.add_argument("--request-ms", type=float, default=20.0)
    parser.add_argument("--doc-ms", type=float, default=0.2)
    parser.add_argument("--rust-log", default="")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    try:
        flow, gateway = bench.start_flow(
            args, "trust_flow.log",
            extra=["--request-ms", args.request_ms, "--doc-ms", args.doc_ms])
        model = service_times(args, gateway)
        real = bench.through_flowbridge(args, gateway, "trust_flowbridge.log",
                                        "slow executor: flowbridge (defaults) → Flow",
                                        load_concurrency=args.load_concurrency)
        bench.stop_flow(flow)
    finally:
        bench.stop_all()
    real_eps = real["ok_per_s"]
    real_dpr = real["docs_per_request"]
    sim_eps, sim_dpr, scenario = simulate(args, model)
    # The replica model alone, at the batch size the real run chose: one executor busy all the
    # time serves docs / (a + b·docs) events per second.
    model_eps = real_dpr / (model["a"] + model["b"] * real_dpr)
    rows = [("events/s", real_eps, sim_eps), ("docs per Flow request", real_dpr, sim_dpr),
            ("events/s of the replica model at the real run's docs per request", real_eps, model_eps)]
    print()
    print(f"replica model fitted: the executor holds a request {model['a'] * 1000:.2f} ms + "
          f"{model['b'] * 1000:.3f} ms per document; beside it {model['overhead_a'] * 1000:.2f} ms + "
          f"{model['overhead_b'] * 1000:.3f} ms per document (latency alone: "
          f"{', '.join(f'{d} docs {s * 1000:.1f} ms' for d, s in model['latency'])}; "
          f"4 in flight: {', '.join(f'{d} docs {s * 1000:.1f} ms' for d, s in model['serial'])})")
    print()
    print("| figure | real (bench/run.sh's slow-executor run) | simulator | simulator / real | within 20 % |")
    print("|---|---|---|---|---|")
    ok = True
    for name, r, s in rows:
        ratio = s / r if r else float("inf")
        met = abs(ratio - 1) <= TOLERANCE
        ok &= met
        print(f"| {name} | {r:,.1f} | {s:,.1f} | {ratio:.2f} | {'yes' if met else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"model": model, "scenario": scenario, "real": real, "simulated": [sim_eps, sim_dpr]},
            indent=2, default=str))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
