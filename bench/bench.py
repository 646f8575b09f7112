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
* low load: one sender, one event at a time, through flowbridge to the null gateway: documents
  per Flow request (every event must leave alone).
* CPU per event: flowbridge with ``concurrency: 1`` in front of the null gateway under the
  ``--concurrency`` closed loop (so requests carry dozens of events) against a bare axum handler
  answering 202 (``examples/bare_sink.rs``), each from ``/proc/<pid>/stat`` over the same load.
* real Jina Flow (``bench/flow_fast.py``, one trivial executor), at ``--flow-concurrency``
  outstanding events (enough to fill batches):
  - flowbridge with every default (``concurrency: auto``), and with the old fixed 16;
  - the per-event Python sink (``bench/python_sink.py``): same load, same concurrency;
  - the Flow's ceiling (``bench/flow_ceiling.py``): async jina.Client, batches of 64, 256 and
    1,024 docs (256 is the reference);
  - pinned (``taskset``): the Flow's processes on CPU 1, flowbridge and its loader (or the
    ceiling's client) on CPU 0, so each side gets the Flow's CPU to itself;
  - a slow executor (``--slow-request-ms`` + ``--slow-doc-ms`` per document, one request at a
    time, like a small GPU model) at ``--slow-concurrency`` outstanding events, against its own
    256-doc ceiling.

Each load runs after a short warm-up. Child processes run in their own process groups and are
killed when this script exits. Logs go to ``target/bench/``.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
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


def pinned(args, cpu):
    """`args` run on CPU `cpu` only (taskset), or as they are when cpu is None."""
    return args if cpu is None else ["taskset", "-c", str(cpu), *args]


def cpu_seconds(pid):
    """User + system CPU time of a process so far (its own threads, not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port):
    """GET /metrics on an admin port, as {series: value}."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    out = {}
    for line in data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").splitlines():
        if line and not line.startswith("#") and " " in line:
            name, value = line.rsplit(" ", 1)
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def spawn(args, log_name, env=None, stdin=None, stdout=None, cpu=None):
    args = pinned(args, cpu)
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


def serve(args, gateway, log_name, concurrency=None, cpu=None, admin=False):
    """`flowbridge serve` with the embedded default config (every default, `concurrency: auto`
    included), or with a one-route config whose gateway has the given `concurrency`. With
    `admin`, an admin listener on a free port (returned third, else None)."""
    port = free_port()
    target = ["--gateway", gateway]
    if concurrency is not None:
        config = LOGS / f"{log_name}.yaml"
        config.write_text(
            f"gateways:\n  flow: {{ url: {gateway}, concurrency: {concurrency} }}\n"
            "routes:\n  - name: all\n"
        )
        target = ["--config", config]
    admin_port = free_port() if admin else None
    # No admin listener unless asked: runs follow each other quickly and must not race for it.
    admin_arg = f"127.0.0.1:{admin_port}" if admin else "off"
    proc = spawn(
        [args.bin, "serve", *target, "--port", port, "--admin-listen", admin_arg],
        log_name,
        env={"RUST_LOG": args.rust_log} if args.rust_log else None,
        cpu=cpu,
    )
    wait_port(port, 30, proc, "flowbridge serve")
    return proc, port, admin_port


def load(args, url, concurrency, duration, rate=None, label="", cpu=None):
    # Whole milliseconds: any duration works (a fractional "2.6666666666666665s" did not parse).
    cmd = [
        args.bin,
        "load",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        f"{max(1, round(duration * 1000))}ms",
        "--json",
        "--quiet",
    ]
    if rate:
        cmd += ["--rate", str(rate)]
    cmd = pinned(cmd, cpu)
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

    proc, fb_port, _ = serve(args, gateway, "flowbridge-null.log")
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


def start_flow(args, log_name, extra=(), cpu=None):
    """bench/flow_fast.py on a free port (pinned to `cpu` with all its processes when given)."""
    port = free_port()
    flow = spawn(
        [sys.executable, ROOT / "bench" / "flow_fast.py", "--port", port, "--watch-stdin", *extra],
        log_name,
        env={"PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cpu=cpu,
    )
    say(f"starting the Jina Flow ({log_name}, cpu {cpu if cpu is not None else 'any'})…")
    say(wait_marker(flow, "FLOW READY", 180, "bench/flow_fast.py"))
    return flow, f"grpc://127.0.0.1:{port}"


def stop_flow(flow):
    flow.stdin.close()
    stop(flow, grace=15)


def ceiling(args, gateway, batch, label, cpu=None):
    """The Flow fed directly: `batch`-document requests, `--ceiling-concurrency` in flight."""
    cmd = [
        sys.executable, ROOT / "bench" / "flow_ceiling.py", "--gateway", gateway, "--batch", batch,
        "--concurrency", args.ceiling_concurrency, "--duration", args.duration,
    ]
    cmd = pinned([str(c) for c in cmd], cpu)
    say(f"{label}: {' '.join(cmd)}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if not out.stdout.strip():
        raise SystemExit(f"bench: flow_ceiling.py printed nothing: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    say(f"{label}: {result['docs_per_s']:.0f} docs/s")
    return result


def through_flowbridge(args, gateway, log_name, label, concurrency=None, cpu=None, load_concurrency=None):
    """flowbridge in front of `gateway`, loaded closed-loop; the load summary plus what the
    gateway's metrics say about batches and the concurrency limit at the end."""
    proc, fb_port, admin = serve(args, gateway, log_name, concurrency, cpu=cpu, admin=True)
    url = f"http://127.0.0.1:{fb_port}/"
    c = load_concurrency or args.flow_concurrency
    load(args, url, c, args.warmup, label=f"{label} warm-up", cpu=cpu)
    before = scrape(admin)
    summary = load(args, url, c, args.duration, label=label, cpu=cpu)
    after = scrape(admin)
    name = "flow" if concurrency is not None else "default"
    docs = lambda m: m.get(f'flowbridge_flow_request_docs_sum{{gateway="{name}"}}', 0)
    reqs = lambda m: m.get(f'flowbridge_flow_request_docs_count{{gateway="{name}"}}', 0)
    n = reqs(after) - reqs(before)
    summary["docs_per_request"] = (docs(after) - docs(before)) / n if n else None
    summary["limit_end"] = after.get(f'flowbridge_gateway_concurrency_limit{{gateway="{name}"}}')
    say(f"{label}: {summary['docs_per_request'] or 0:.1f} docs per Flow request, limit at the end "
        f"{summary['limit_end']}")
    stop(proc)
    return summary


def flow_section(args, results):
    python = sys.executable
    # 1. Unpinned, trivial executor: flowbridge's defaults, the old fixed default, the per-event
    #    Python sink, and the Flow's ceiling by batch size (what the max_docs default rests on).
    flow, gateway = start_flow(args, "flow_fast.log")
    results["flow_auto"] = through_flowbridge(args, gateway, "flowbridge-flow.log",
                                              "flowbridge (defaults) → Flow")
    results["flow_fixed16"] = through_flowbridge(args, gateway, "flowbridge-flow-16.log",
                                                 "flowbridge (concurrency 16) → Flow", concurrency=16)
    sink_port = free_port()
    sink = spawn(
        [python, ROOT / "bench" / "python_sink.py", "--port", sink_port, "--gateway", gateway],
        "python_sink.log",
        env={"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
    )
    wait_marker(sink, "SINK READY", 60, "bench/python_sink.py")
    sink_url = f"http://127.0.0.1:{sink_port}/"
    load(args, sink_url, args.flow_concurrency, args.warmup, label="sink warm-up")
    results["flow_python_sink"] = load(
        args, sink_url, args.flow_concurrency, args.duration, label="python sink → Flow"
    )
    stop(sink)
    results["flow_ceiling_by_batch"] = {
        b: ceiling(args, gateway, b, f"Flow ceiling, {b}-doc batches") for b in args.ceiling_batches
    }
    results["flow_ceiling"] = results["flow_ceiling_by_batch"][256]
    stop_flow(flow)

    # 2. Pinned: the Flow's processes on one CPU, flowbridge and its loader (or the direct
    #    client) on the other, so flowbridge and the ceiling each get the Flow's CPU to itself.
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        flow, gateway = start_flow(args, "flow_fast_pinned.log", cpu=1)
        results["flow_pinned_auto"] = through_flowbridge(
            args, gateway, "flowbridge-flow-pinned.log", "pinned: flowbridge (defaults) → Flow", cpu=0)
        results["flow_pinned_ceiling"] = ceiling(args, gateway, 256, "pinned: Flow ceiling", cpu=0)
        stop_flow(flow)
    else:
        say("taskset or a second CPU missing: no pinned rows")

    # 3. A slow executor (a small GPU model: request_ms + doc_ms per document, one request at a
    #    time), where batching decides everything; loader concurrency high enough to fill batches.
    flow, gateway = start_flow(args, "flow_slow.log",
                               extra=["--request-ms", args.slow_request_ms, "--doc-ms", args.slow_doc_ms])
    results["slow_auto"] = through_flowbridge(args, gateway, "flowbridge-slow.log",
                                              "slow executor: flowbridge (defaults) → Flow",
                                              load_concurrency=args.slow_concurrency)
    results["slow_ceiling"] = ceiling(args, gateway, 256, "slow executor: Flow ceiling")
    stop_flow(flow)


def cpu_section(args, results):
    """CPU time per event of flowbridge (batches of ≥ 32 against the null gateway: concurrency 1
    and 64 senders) and of a bare axum handler answering 202 (examples/bare_sink.rs), each
    measured from /proc/<pid>/stat over the same closed-loop load."""
    port = free_port()
    gw = spawn([args.null_gateway, "serve", port], "null_gateway_cpu.log", stdout=subprocess.PIPE)
    wait_marker(gw, "NULL GATEWAY READY", 30, "null gateway")
    gateway = f"grpc://127.0.0.1:{port}"

    def measure(proc, url, label):
        load(args, url, args.concurrency, args.warmup, label=f"{label} warm-up")
        t0 = cpu_seconds(proc.pid)
        summary = load(args, url, args.concurrency, args.duration, label=label)
        used = cpu_seconds(proc.pid) - t0
        events = summary["ok"]
        summary["cpu_us_per_event"] = used / events * 1e6 if events else None
        say(f"{label}: {summary['cpu_us_per_event']:.1f} µs CPU per event")
        return summary

    proc, fb_port, admin = serve(args, gateway, "flowbridge-cpu.log", concurrency=1, admin=True)
    fb = measure(proc, f"http://127.0.0.1:{fb_port}/", "CPU: flowbridge (concurrency 1) → null gateway")
    m = scrape(admin)
    n = m.get('flowbridge_flow_request_docs_count{gateway="flow"}', 0)
    fb["docs_per_request"] = m.get('flowbridge_flow_request_docs_sum{gateway="flow"}', 0) / n if n else None
    stop(proc)
    bare_port = free_port()
    bare = spawn([args.bare_sink, bare_port], "bare_sink.log", stdout=subprocess.PIPE)
    wait_marker(bare, "BARE SINK READY", 30, "bare sink")
    results["cpu_bare"] = measure(bare, f"http://127.0.0.1:{bare_port}/", "CPU: bare axum 202 handler")
    results["cpu_flowbridge"] = fb
    stop(bare)
    stop(gw)


def low_load_section(args, results):
    """One sender, one event at a time, through flowbridge to the null gateway: every event must
    leave alone (no batching without a queue)."""
    port = free_port()
    gw = spawn([args.null_gateway, "serve", port], "null_gateway_low.log", stdout=subprocess.PIPE)
    wait_marker(gw, "NULL GATEWAY READY", 30, "null gateway")
    proc, fb_port, admin = serve(args, f"grpc://127.0.0.1:{port}", "flowbridge-low.log", admin=True)
    summary = load(args, f"http://127.0.0.1:{fb_port}/", 1, min(args.duration, 5), label="low load: 1 sender")
    m = scrape(admin)
    n = m.get('flowbridge_flow_request_docs_count{gateway="default"}', 0)
    summary["docs_per_request"] = m.get('flowbridge_flow_request_docs_sum{gateway="default"}', 0) / n if n else None
    summary["requests"] = n
    results["low_load"] = summary
    stop(proc)
    stop(gw)


def table(results):
    rows = []

    def row(metric, value, baseline, ratio, target, met):
        rows.append([metric, value, baseline, ratio, target, {True: "yes", False: "NO", None: "—"}[met]])

    def flow_row(label, run, ceiling, target=None):
        fb = run["ok_per_s"]
        r = fb / ceiling if ceiling else 0
        extra = f" ({run['docs_per_request'] or 0:.0f} docs/req, limit {run.get('limit_end') or '—'})"
        row(label + extra, f"{fb:,.0f} ev/s", f"{ceiling:,.0f} docs/s", f"{r:.0%}",
            f"≥ {target:.0%}" if target else "—", (r >= target) if target else None)

    if "flow_auto" in results:
        sink = results["flow_python_sink"]["ok_per_s"]
        ceiling = results["flow_ceiling"]["docs_per_s"]
        fb = results["flow_auto"]["ok_per_s"]
        r = fb / sink if sink else float("inf")
        row("real Flow, unpinned: flowbridge (defaults) vs per-event Python sink", f"{fb:,.0f} ev/s",
            f"{sink:,.0f} ev/s", f"{r:.1f}×", "≥ 25×", r >= 25)
        flow_row("real Flow, unpinned: flowbridge (defaults) vs Flow ceiling", results["flow_auto"], ceiling)
        flow_row("real Flow, unpinned: flowbridge (fixed concurrency 16, the old default) vs ceiling",
                 results["flow_fixed16"], ceiling)
        for b, c in results["flow_ceiling_by_batch"].items():
            row(f"real Flow ceiling, direct client, {b}-doc batches", f"{c['docs_per_s']:,.0f} docs/s",
                "—", "—", "—", None)
    if "flow_pinned_auto" in results:
        flow_row("real Flow, pinned (Flow on CPU 1, the rest on CPU 0): flowbridge (defaults) vs ceiling",
                 results["flow_pinned_auto"], results["flow_pinned_ceiling"]["docs_per_s"], 0.90)
    if "slow_auto" in results:
        flow_row("slow executor (20 ms + 0.2 ms/doc): flowbridge (defaults) vs ceiling",
                 results["slow_auto"], results["slow_ceiling"]["docs_per_s"], 0.90)
    if "null_max" in results:
        n = results["null_max"]["ok_per_s"]
        row(f"null gateway: throughput (c={results['null_max']['concurrency']})", f"{n:,.0f} ev/s",
            "—", "—", "—", None)
        fb, direct = results["null_rate"]["latency_ms"], results["direct_rate"]["latency_ms"]
        for p, limit in (("p50", 0.3), ("p99", 1.0)):
            added = fb[p] - direct[p]
            row(f"null gateway: added {p} latency at 1,000 ev/s (median of rounds)", f"{added:+.3f} ms",
                f"{direct[p]:.3f} ms direct", f"{fb[p]:.3f} ms total", f"≤ {limit} ms", added <= limit)
        kept = results["null_rate"].get("kept_up")
        if kept is False:
            row("null gateway: loader kept 1,000 ev/s", "no", "—", "—", "yes", False)
    if "low_load" in results:
        low = results["low_load"]
        d = low.get("docs_per_request") or 0
        row("low load (1 sender): documents per Flow request", f"{d:.2f}", f"{low['requests']:.0f} requests",
            "—", "= 1", abs(d - 1.0) < 1e-9)
    if "cpu_flowbridge" in results:
        fb, bare = results["cpu_flowbridge"], results["cpu_bare"]
        r = fb["cpu_us_per_event"] / bare["cpu_us_per_event"] if bare["cpu_us_per_event"] else 0
        row(f"CPU per event: flowbridge at {fb.get('docs_per_request') or 0:.0f} docs/request (null gateway) "
            "vs bare axum 202 handler", f"{fb['cpu_us_per_event']:.1f} µs",
            f"{bare['cpu_us_per_event']:.1f} µs", f"{r:.2f}×", "≤ 1.5×", r <= 1.5)
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
    parser.add_argument("--ceiling-batches", type=lambda t: [int(x) for x in t.split(",")],
                        default=[64, 256, 1024], help="batch sizes of the direct ceiling runs")
    parser.add_argument("--flow-concurrency", type=int, default=512,
                        help="load workers through the Flow: enough outstanding events to fill batches")
    parser.add_argument("--slow-concurrency", type=int, default=1024,
                        help="load workers for the slow executor (Little's law: ceiling × latency)")
    parser.add_argument("--slow-request-ms", type=float, default=20.0)
    parser.add_argument("--slow-doc-ms", type=float, default=0.2)
    parser.add_argument("--bare-sink", default=ROOT / "target/release/examples/bare_sink")
    parser.add_argument("--rust-log", default="", help="RUST_LOG for flowbridge serve (default: its own)")
    parser.add_argument("--only", choices=["null", "flow", "cpu"])
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
            low_load_section(args, results)
        if args.only in (None, "cpu"):
            cpu_section(args, results)
        if args.only in (None, "flow"):
            flow_section(args, results)
    finally:
        stop_all()
    results["wall_s"] = time.monotonic() - started
    m = results["machine"]
    print()
    print(f"flowbridge benchmarks — {m['date']}, commit {m['commit']}, {m['cpus']} CPUs ({m['cpu']}), "
          f"load {m['load_avg_before'][0]:.2f} before, {results['wall_s']:.0f} s")
    print(f"duration {args.duration:g} s per measurement, concurrency {args.concurrency} "
          f"(through the Flow {args.flow_concurrency}, slow executor {args.slow_concurrency}), "
          f"loader on the same machine")
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nall numbers: {args.json}")


if __name__ == "__main__":
    main()
