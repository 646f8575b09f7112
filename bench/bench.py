"""flowbridge benchmarks: runs every measurement in one go and prints the ratio table.

    bench/run.sh [--duration 15] [--concurrency 64] [--only null|flow] [--json FILE]

(run.sh builds the release binaries and the Jina venv, then runs this file with the venv's
Python.) Every measurement is taken in the same run, on the same machine, with the same load
generator (``flowbridge load``), so the table compares like with like:

* startup: ``flowbridge serve`` spawned several times; time from exec to the first accepted TCP
  connection (and to the first ``GET /readyz`` 200), median; idle RSS (VmRSS) after 1 s.
* null gateway (``examples/null_gateway.rs serve``, answers every Call at once):
  - throughput: ``flowbridge load`` closed loop at ``--concurrency`` through flowbridge;
    RSS sampled every 100 ms meanwhile (peak = RSS under load);
  - latency at 1,000 events/s: ``flowbridge load --rate 1000`` through flowbridge vs
    ``null_gateway direct`` (flowbridge's own gRPC client calling the null gateway at
    1,000 calls/s), alternating in ``--latency-rounds`` rounds (median per percentile): the
    difference is what flowbridge adds (HTTP in and out, decode, route, map, log).
* real Jina Flow (``bench/flow_fast.py``, one trivial executor):
  - flowbridge: ``flowbridge load`` closed loop at ``--concurrency``;
  - the per-event Python sink (``bench/python_sink.py``): same load, same concurrency;
  - the Flow's ceiling (``bench/flow_ceiling.py``): async jina.Client, batches of 256 docs.

Each load runs after a short warm-up. Child processes run in their own process groups and are
killed when this script exits. Logs go to ``target/bench/``.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "target" / "bench"
CHILDREN = []


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, log_name, env=None, stdin=None, stdout=None):
    log = open(LOGS / log_name, "ab")
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [str(a) for a in args],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=stdout if stdout is not None else log,
        stderr=log,
        env=full_env,
        start_new_session=True,
    )
    CHILDREN.append(proc)
    return proc


def stop(proc, grace=5.0):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)


def stop_all():
    for proc in list(CHILDREN):
        stop(proc, grace=2.0)


def wait_marker(proc, marker, timeout, what):
    """Read proc's stdout (a pipe) until a line starts with marker."""
    deadline = time.monotonic() + timeout
    result = {}

    def reader():
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith(marker):
                result["line"] = line.strip()
                break

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if "line" not in result:
        raise SystemExit(f"bench: {what} did not print {marker!r} within {timeout}s (log in {LOGS})")
    return result["line"]


def connects(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def readyz(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_port(port, timeout, proc, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited with {proc.returncode} (log in {LOGS})")
        if readyz(port):
            return
        time.sleep(0.01)
    raise SystemExit(f"bench: {what} not ready on port {port} within {timeout}s (log in {LOGS})")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def serve(args, gateway, log_name, concurrency=None):
    """`flowbridge serve` with the embedded default config, or with a one-route config whose
    gateway has the given `concurrency` (max in-flight Flow requests)."""
    port = free_port()
    target = ["--gateway", gateway]
    if concurrency is not None:
        config = LOGS / f"{log_name}.yaml"
        config.write_text(
            f"gateways:\n  flow: {{ url: {gateway}, concurrency: {concurrency} }}\n"
            "routes:\n  - name: all\n"
        )
        target = ["--config", config]
    proc = spawn(
        # No admin listener: runs follow each other quickly and must not race for its port.
        [args.bin, "serve", *target, "--port", port, "--admin-listen", "off"],
        log_name,
        env={"RUST_LOG": args.rust_log} if args.rust_log else None,
    )
    wait_port(port, 30, proc, "flowbridge serve")
    return proc, port


def load(args, url, concurrency, duration, rate=None, label=""):
    cmd = [
        args.bin,
        "load",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        f"{duration}s",
        "--json",
        "--quiet",
    ]
    if rate:
        cmd += ["--rate", str(rate)]
    say(f"{label}: {' '.join(str(c) for c in cmd)}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if not out.stdout.strip():
        raise SystemExit(f"bench: flowbridge load printed nothing ({out.returncode}): {out.stderr}")
    summary = json.loads(out.stdout)
    lat = summary.get("latency_ms") or {}
    say(
        f"{label}: {summary['ok_per_s']:.0f} events/s 2xx, status {summary['status']}, "
        f"transport errors {summary['transport_errors']}, p50 {lat.get('p50', 0):.3f} ms, "
        f"p99 {lat.get('p99', 0):.3f} ms"
    )
    return summary


def measure_startup(args, gateway, runs=7):
    ready_connect, ready_http, idle = [], [], []
    for i in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        proc = spawn(
            [args.bin, "serve", "--gateway", gateway, "--port", port, "--admin-listen", "off"],
            "startup.log",
        )
        while not connects(port):
            if proc.poll() is not None:
                raise SystemExit(f"bench: flowbridge serve exited with {proc.returncode}")
            time.sleep(0.0002)
        t1 = time.perf_counter()
        while not readyz(port):
            time.sleep(0.0002)
        t2 = time.perf_counter()
        ready_connect.append((t1 - t0) * 1000)
        ready_http.append((t2 - t0) * 1000)
        time.sleep(1.0)
        idle.append(rss_kib(proc.pid) / 1024)
        stop(proc)
    say(f"startup: connect {[round(x, 1) for x in ready_connect]} ms, idle RSS {idle} MiB")
    return {
        "ready_connect_ms": statistics.median(ready_connect),
        "ready_readyz_ms": statistics.median(ready_http),
        "ready_connect_runs_ms": ready_connect,
        "idle_rss_mib": statistics.median(idle),
    }


class RssSampler:
    def __init__(self, pid):
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.1):
            try:
                self.samples.append(rss_kib(self.pid) / 1024)
            except OSError:
                return

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def null_gateway_section(args, results):
    port = free_port()
    gw = spawn([args.null_gateway, "serve", port], "null_gateway.log", stdout=subprocess.PIPE)
    wait_marker(gw, "NULL GATEWAY READY", 30, "null gateway")
    gateway = f"grpc://127.0.0.1:{port}"
    results["startup"] = measure_startup(args, gateway)

    proc, fb_port = serve(args, gateway, "flowbridge-null.log")
    url = f"http://127.0.0.1:{fb_port}/"
    load(args, url, args.concurrency, args.warmup, label="null warm-up")
    with RssSampler(proc.pid) as rss:
        results["null_max"] = load(args, url, args.concurrency, args.duration, label="null max")
    results["rss_under_load_mib"] = max(rss.samples) if rss.samples else None
    # Latency at 1,000 events/s: through flowbridge and direct, alternating in rounds so that a
    # burst of noise from other processes hits both sides alike; each percentile is the median
    # over the rounds.
    rounds = max(1, args.latency_rounds)
    per_round = max(2.0, args.duration / rounds)
    via, direct = [], []
    for r in range(rounds):
        via.append(
            load(args, url, args.latency_concurrency, per_round, rate=args.latency_rate,
                 label=f"null {args.latency_rate}/s round {r + 1}/{rounds}")
        )
        cmd = [args.null_gateway, "direct", gateway, args.latency_rate, per_round]
        say(f"direct {args.latency_rate}/s round {r + 1}/{rounds}: {' '.join(str(c) for c in cmd)}")
        out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
        if not out.stdout.strip():
            raise SystemExit(f"bench: null_gateway direct printed nothing: {out.stderr}")
        direct.append(json.loads(out.stdout))
        d = direct[-1]["latency_ms"]
        say(f"direct {args.latency_rate}/s round {r + 1}/{rounds}: p50 {d['p50']:.3f} ms, p99 {d['p99']:.3f} ms")
    stop(proc)

    def median_latency(runs):
        return {
            k: statistics.median(run["latency_ms"][k] for run in runs)
            for k in ("p50", "p90", "p99", "max")
        }

    results["null_rate"] = {
        "rounds": via,
        "latency_ms": median_latency(via),
        "kept_up": all(v.get("kept_up") for v in via),
    }
    results["direct_rate"] = {"rounds": direct, "latency_ms": median_latency(direct)}
    stop(gw)


def flow_section(args, results):
    python = sys.executable
    port = free_port()
    flow = spawn(
        [python, ROOT / "bench" / "flow_fast.py", "--port", port, "--watch-stdin"],
        "flow_fast.log",
        env={"PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    say("starting the Jina Flow (bench/flow_fast.py)…")
    say(wait_marker(flow, "FLOW READY", 180, "bench/flow_fast.py"))
    gateway = f"grpc://127.0.0.1:{port}"

    proc, fb_port = serve(args, gateway, "flowbridge-flow.log")
    url = f"http://127.0.0.1:{fb_port}/"
    load(args, url, args.concurrency, args.warmup, label="flow warm-up")
    results["flow_flowbridge"] = load(args, url, args.concurrency, args.duration, label="flowbridge → Flow")
    stop(proc)

    # The same, with fewer Flow requests in flight: events wait for a slot and leave in bigger
    # batches, which is what a single-replica Flow prefers (docs/delivery.md, "Tuning").
    proc, fb_port = serve(args, gateway, "flowbridge-flow-tuned.log", args.tuned_concurrency)
    url = f"http://127.0.0.1:{fb_port}/"
    load(args, url, args.concurrency, args.warmup, label="flow warm-up (tuned)")
    results["flow_flowbridge_tuned"] = load(
        args, url, args.concurrency, args.duration,
        label=f"flowbridge (gateway concurrency {args.tuned_concurrency}) → Flow",
    )
    results["flow_flowbridge_tuned"]["gateway_concurrency"] = args.tuned_concurrency
    stop(proc)

    sink_port = free_port()
    sink = spawn(
        [python, ROOT / "bench" / "python_sink.py", "--port", sink_port, "--gateway", gateway],
        "python_sink.log",
        env={"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
    )
    wait_marker(sink, "SINK READY", 60, "bench/python_sink.py")
    sink_url = f"http://127.0.0.1:{sink_port}/"
    load(args, sink_url, args.concurrency, args.warmup, label="sink warm-up")
    results["flow_python_sink"] = load(
        args, sink_url, args.concurrency, args.duration, label="python sink → Flow"
    )
    stop(sink)

    cmd = [
        python,
        ROOT / "bench" / "flow_ceiling.py",
        "--gateway",
        gateway,
        "--batch",
        "256",
        "--concurrency",
        args.ceiling_concurrency,
        "--duration",
        args.duration,
    ]
    say(f"Flow ceiling: {' '.join(str(c) for c in cmd)}")
    out = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if not out.stdout.strip():
        raise SystemExit(f"bench: flow_ceiling.py printed nothing: {out.stderr[-2000:]}")
    results["flow_ceiling"] = json.loads(out.stdout.strip().splitlines()[-1])
    say(f"Flow ceiling: {results['flow_ceiling']['docs_per_s']:.0f} docs/s")
    flow.stdin.close()
    stop(flow, grace=15)


def table(results):
    rows = []

    def row(metric, value, baseline, ratio, target, met):
        rows.append([metric, value, baseline, ratio, target, {True: "yes", False: "NO", None: "—"}[met]])

    if "flow_flowbridge" in results:
        fb = results["flow_flowbridge"]["ok_per_s"]
        sink = results["flow_python_sink"]["ok_per_s"]
        ceiling = results["flow_ceiling"]["docs_per_s"]
        r = fb / sink if sink else float("inf")
        row("real Flow: flowbridge vs per-event Python sink", f"{fb:,.0f} ev/s", f"{sink:,.0f} ev/s",
            f"{r:.1f}×", "≥ 20×", r >= 20)
        r = fb / ceiling if ceiling else 0
        row("real Flow: flowbridge vs Flow ceiling (256-doc batches)", f"{fb:,.0f} ev/s",
            f"{ceiling:,.0f} docs/s", f"{r:.0%}", "≥ 70%", r >= 0.70)
        if "flow_flowbridge_tuned" in results:
            tuned = results["flow_flowbridge_tuned"]
            t, c = tuned["ok_per_s"], tuned["gateway_concurrency"]
            r = t / sink if sink else float("inf")
            row(f"real Flow, gateway concurrency {c}: vs per-event Python sink", f"{t:,.0f} ev/s",
                f"{sink:,.0f} ev/s", f"{r:.1f}×", "≥ 20×", r >= 20)
            r = t / ceiling if ceiling else 0
            row(f"real Flow, gateway concurrency {c}: vs Flow ceiling", f"{t:,.0f} ev/s",
                f"{ceiling:,.0f} docs/s", f"{r:.0%}", "≥ 70%", r >= 0.70)
    if "null_max" in results:
        n = results["null_max"]["ok_per_s"]
        row(f"null gateway: throughput (c={results['null_max']['concurrency']})", f"{n:,.0f} ev/s",
            "—", "—", "≥ 30,000 ev/s", n >= 30000)
        fb, direct = results["null_rate"]["latency_ms"], results["direct_rate"]["latency_ms"]
        for p in ("p50", "p99"):
            added = fb[p] - direct[p]
            row(f"null gateway: added {p} latency at 1,000 ev/s (median of rounds)", f"{added:+.3f} ms",
                f"{direct[p]:.3f} ms direct", f"{fb[p]:.3f} ms total",
                "≤ 2 ms" if p == "p99" else "—", added <= 2.0 if p == "p99" else None)
        kept = results["null_rate"].get("kept_up")
        if kept is False:
            row("null gateway: loader kept 1,000 ev/s", "no", "—", "—", "yes", False)
    if "startup" in results:
        s = results["startup"]
        row("idle RSS", f"{s['idle_rss_mib']:.1f} MiB", "—", "—", "≤ 15 MB", s["idle_rss_mib"] * 1.048576 <= 15)
        if results.get("rss_under_load_mib"):
            u = results["rss_under_load_mib"]
            row("RSS under load (peak, null gateway max)", f"{u:.1f} MiB", f"{s['idle_rss_mib']:.1f} MiB idle",
                f"{u / s['idle_rss_mib']:.1f}×", "—", None)
        row("ready: exec → first accepted connection (median of 7)", f"{s['ready_connect_ms']:.1f} ms",
            f"{s['ready_readyz_ms']:.1f} ms to /readyz 200", "—", "≤ 20 ms", s["ready_connect_ms"] <= 20)

    header = ["metric", "value", "baseline", "ratio", "target", "met?"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def machine():
    model = ""
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                model = l.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "commit": commit,
        "load_avg_before": os.getloadavg(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=ROOT / "target/release/flowbridge")
    parser.add_argument("--null-gateway", default=ROOT / "target/release/examples/null_gateway")
    parser.add_argument("--duration", type=float, default=15, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up load")
    parser.add_argument("--concurrency", type=int, default=64, help="load workers for throughput runs")
    parser.add_argument("--latency-rate", type=int, default=1000)
    parser.add_argument("--latency-concurrency", type=int, default=32)
    parser.add_argument("--latency-rounds", type=int, default=3,
                        help="alternating flowbridge/direct rounds for the latency comparison")
    parser.add_argument("--ceiling-concurrency", type=int, default=4)
    parser.add_argument("--tuned-concurrency", type=int, default=2,
                        help="gateway concurrency of the second flowbridge run through the Flow")
    parser.add_argument("--rust-log", default="", help="RUST_LOG for flowbridge serve (default: its own)")
    parser.add_argument("--only", choices=["null", "flow"])
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    for f in LOGS.glob("*.log"):
        f.unlink()

    results = {"machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()}}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        if args.only in (None, "null"):
            null_gateway_section(args, results)
        if args.only in (None, "flow"):
            flow_section(args, results)
    finally:
        stop_all()
    results["wall_s"] = time.monotonic() - started
    m = results["machine"]
    print()
    print(f"flowbridge benchmarks — {m['date']}, commit {m['commit']}, {m['cpus']} CPUs ({m['cpu']}), "
          f"load {m['load_avg_before'][0]:.2f} before, {results['wall_s']:.0f} s")
    print(f"duration {args.duration:g} s per measurement, concurrency {args.concurrency}, "
          f"loader on the same machine")
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nall numbers: {args.json}")


if __name__ == "__main__":
    main()
