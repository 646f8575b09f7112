"""What tracing costs per event, against the null gateway (docs/benchmarks.md, "Tracing off").

    python3 bench/tracing_cost.py --base OLD_DIR --new NEW_DIR [--rounds 3] [--duration 8]

OLD_DIR and NEW_DIR each hold a release `flowbridge` and `null_gateway` (e.g. the commit before
tracing and this one, built with the same profile). One null gateway (NEW_DIR's) serves every run.
In each round, in turn: OLD flowbridge, NEW flowbridge with tracing off, NEW flowbridge with
tracing on (OTLP/HTTP to a null collector in this script that answers 200 to every export;
sampler always_on, so every event makes and exports two spans). Each run: warm-up, then a
closed-loop `flowbridge load` at --concurrency (events/s), then an open-loop run at --rate
(latency percentiles). The same `flowbridge load` (NEW_DIR's) drives every run. Alternating the
variants in rounds spreads the machine's noise over all three; the table gives medians over
rounds and ratios against OLD. Only loopback addresses are used.
"""

import argparse
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def spawn(cmd, env=None):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.Popen(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=full,
        start_new_session=True,
    )


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class NullCollector(http.server.BaseHTTPRequestHandler):
    exports = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        NullCollector.exports += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def load(loader, url, args, rate=None):
    cmd = [loader, "load", url, "--concurrency", args.concurrency, "--duration",
           f"{args.duration}s", "--json", "--quiet"]
    if rate:
        cmd += ["--rate", rate]
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rate", type=int, default=1000)
    args = p.parse_args()

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NullCollector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    loader = os.path.join(args.new, "flowbridge")
    gw_port = free_port()
    gw = spawn([os.path.join(args.new, "null_gateway"), "serve", gw_port])
    wait_port(gw_port)
    variants = [
        ("before tracing", args.base, {}),
        ("tracing off", args.new, {}),
        ("tracing on", args.new, otel),
    ]
    results = {name: [] for name, _, _ in variants}
    try:
        for r in range(args.rounds):
            for name, bindir, env in variants:
                port = free_port()
                env = {**env, "RUST_LOG": "warn"}
                proc = spawn([os.path.join(bindir, "flowbridge"), "serve", "--gateway",
                              f"grpc://127.0.0.1:{gw_port}", "--port", port,
                              "--admin-listen", "off"], env)
                wait_port(port)
                url = f"http://127.0.0.1:{port}/"
                warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
                load(loader, url, warm)
                closed = load(loader, url, args)
                opened = load(loader, url, args, rate=args.rate)
                stop(proc)
                row = {
                    "events_per_s": closed["ok_per_s"],
                    "status": closed["status"],
                    "p50_ms": opened["latency_ms"]["p50"],
                    "p99_ms": opened["latency_ms"]["p99"],
                }
                results[name].append(row)
                print(f"round {r + 1} {name}: {row}", file=sys.stderr, flush=True)
    finally:
        stop(gw)
    base = {k: statistics.median(x[k] for x in results["before tracing"])
            for k in ("events_per_s", "p50_ms", "p99_ms")}
    print(f"| variant | events/s (closed loop, {args.concurrency}) | ratio | "
          f"p50 ms at {args.rate}/s | ratio | p99 ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, _, _ in variants:
        m = {k: statistics.median(x[k] for x in results[name])
             for k in ("events_per_s", "p50_ms", "p99_ms")}
        print(f"| {name} | {m['events_per_s']:.0f} | {m['events_per_s'] / base['events_per_s']:.3f} | "
              f"{m['p50_ms']:.3f} | {m['p50_ms'] / base['p50_ms']:.3f} | "
              f"{m['p99_ms']:.3f} | {m['p99_ms'] / base['p99_ms']:.3f} |")
    print(f"(null collector received {NullCollector.exports} OTLP exports)")


if __name__ == "__main__":
    main()
