"""flowbridge soak: steady load through the real Flow, with Flow restarts and config reloads.

    bench/soak.sh [--minutes 15] [--rate 1000] [--restart-every 300] [--reload-every 60] [--out DIR]

(soak.sh builds the binary and the venvs, then runs this file; see its header for every option.)

What runs, all on loopback, each child in its own process group and killed when this exits:

* the Flow: bench/soak_flow.py (jina 3.34, gRPC gateway, one executor that appends the id of
  every document it receives to ``record.txt``), restarted every ``--restart-every`` s on the
  same port (SIGTERM, then a new Flow; the record file survives);
* ``flowbridge serve --config soak.yaml`` (one gateway, one route; defaults for everything
  else), whose config is rewritten every ``--reload-every`` s with a harmless change (the
  comment line and the route's ``parameters``): odd reloads are picked up by the file watcher,
  even ones are also signalled with SIGHUP; each counts as applied once ``/metrics`` shows
  ``flowbridge_config_info{hash=…}`` with the new file's hash;
* the sender (here, asyncio, stdlib only): open loop at ``--rate`` events/s over
  ``--connections`` keep-alive HTTP/1.1 connections (a fixed pool, so open fds on flowbridge's
  side stay put), event ``k`` due at ``start + k / rate``, unique ids ``<run>-<k>``. A non-2xx
  answer or a transport error is retried with the same id after a full-jitter backoff (100 ms
  doubling to 2 s, or Retry-After), like a Knative Broker, until ``--give-up`` s after the
  first attempt. Every attempt's status is counted.
* the sampler, once a second: flowbridge's RSS (VmRSS), open fds (/proc/PID/fd), threads, and
  tasks (the ``flowbridge_runtime_tasks`` gauge from /metrics; threads instead, marked as such,
  when the binary does not export it), config generation, pending events, open connections
  (``flowbridge_connections_open``), and the sender's events/s, non-2xx/s and latency p50/p99
  of that second. One CSV row per second (``soak.csv``), then a chart (``soak.png``, matplotlib
  from the bench venv) with the restarts and reloads as vertical lines.

At the end the record file is compared with the sender's outcomes: *lost* = an event answered 2xx
whose id the executor never recorded; *undelivered* = an event that never got a 2xx (gave up,
unfinished or never sent). Targets (exit 1 when one is missed): RSS growth ≤ 10 % from the end
of the warm-up to the end, open fds and tasks flat (the minimum of the last window no higher than
the minimum of the first window after warm-up plus a small slack: transient fds and tasks only
add, a leak raises the floor), 0 lost, 0 undelivered, every reload applied, every planned restart
done, flowbridge alive and no panic in its log, and the sender kept the rate (≥ 95 % of the
planned events sent by the end).
"""

import argparse
import asyncio
import csv
import hashlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# Beside this file (a script's own directory is on the import path).
from soak_report import analyse, chart, metric_sum, read_record, table
from soak_sender import EVENT_TYPE, Second, Sender

ROOT = Path(__file__).resolve().parent.parent
CHILDREN = []
CHILDREN_LOCK = threading.Lock()
SHUTTING_DOWN = threading.Event()


class SoakError(Exception):
    """A failure that stops the soak (a child did not start, flowbridge died…)."""


def say(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def free_port():
    # Loopback only: nothing here listens on another interface.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------------------------
# Child processes


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies (even by SIGKILL), so a killed
    soak leaves no flowbridge behind. Linux only; elsewhere nothing happens."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(args, log, env=None, stdin=subprocess.DEVNULL, stdout=None, die_with_parent=False):
    logf = open(log, "ab")
    proc = subprocess.Popen(
        [str(a) for a in args],
        stdin=stdin,
        stdout=stdout if stdout is not None else logf,
        stderr=logf,
        env={**os.environ, **(env or {})},
        # PDEATHSIG follows the thread that forked: only for children spawned by the main
        # thread (flowbridge). The Flow is restarted from another thread and relies on
        # --watch-stdin instead.
        preexec_fn=_die_with_parent if die_with_parent else None,
        start_new_session=not die_with_parent,
    )
    logf.close()
    with CHILDREN_LOCK:
        CHILDREN.append(proc)
    return proc


def stop(proc, grace=10.0):
    """SIGTERM to the child's process group, SIGKILL after `grace` s; returns the exit code."""
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
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (jina's executors)
    except (ProcessLookupError, PermissionError):
        pass
    code = proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe:
            try:
                pipe.close()
            except OSError:
                pass
    with CHILDREN_LOCK:
        if proc in CHILDREN:
            CHILDREN.remove(proc)
    return code


def stop_all():
    SHUTTING_DOWN.set()
    with CHILDREN_LOCK:
        procs = list(CHILDREN)
    for proc in procs:
        stop(proc, grace=5.0)


class Flow:
    """bench/soak_flow.py on a fixed port; start() again after stop() is a Flow restart."""

    def __init__(self, python, port, record, log):
        self.python, self.port, self.record, self.log = python, port, record, log
        self.proc = None

    def start(self, timeout=180.0):
        if SHUTTING_DOWN.is_set():
            raise SoakError("shutting down")
        started = time.monotonic()
        self.proc = spawn(
            [self.python, ROOT / "bench" / "soak_flow.py", "--port", self.port,
             "--record", self.record, "--watch-stdin"],
            self.log,
            env={"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore", "JINA_OPTOUT_TELEMETRY": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        ready = threading.Event()
        proc, log = self.proc, self.log

        def pump():
            # Wait for the marker, then keep draining stdout into the log (a full pipe would
            # block the Flow).
            with open(log, "ab") as out:
                for line in proc.stdout:
                    out.write(line)
                    out.flush()
                    if line.startswith(b"FLOW READY"):
                        ready.set()

        threading.Thread(target=pump, daemon=True).start()
        while not ready.wait(0.2):
            if proc.poll() is not None:
                raise SoakError(f"the Flow exited with {proc.returncode} before FLOW READY "
                                f"(port {self.port}); log {log}:\n{log_tail(log)}")
            if time.monotonic() - started > timeout:
                stop(proc)
                raise SoakError(f"the Flow printed no FLOW READY within {timeout:.0f}s; log {log}:\n"
                                f"{log_tail(log)}")
        return time.monotonic() - started

    def stop(self):
        """SIGTERM (the whole group: gateway and executor too), SIGKILL after 5 s; returns the
        leader's exit code (-9: it had to be killed).

        5 s, not more: jina 3.34's gateway sometimes hangs in its own shutdown when requests
        keep arriving (its executor is gone first: "TypeError: object NoneType can't be used in
        'await' expression", then "Connections cannot be used"), and every second of that hang
        is a second without a Flow, whose backlog then arrives at once. It usually exits in
        0.3 s."""
        code = None
        if self.proc is not None:
            code = stop(self.proc, grace=5.0)
            self.proc = None
        return code


# ---------------------------------------------------------------------------------------------
# Admin endpoint


def parse_metrics(text):
    """Prometheus text → {series: value} (series with labels as written)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and " " in line:
            name, value = line.rsplit(" ", 1)
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out



def scrape(port, timeout=3.0):
    """GET /metrics on the admin port (blocking), or {} when it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    except OSError:
        return {}
    return parse_metrics(data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace"))


async def scrape_async(port, timeout=2.0):
    async def get():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            return await reader.read()
        finally:
            writer.close()

    try:
        data = await asyncio.wait_for(get(), timeout)
    except (OSError, asyncio.TimeoutError):
        return {}
    return parse_metrics(data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace"))


def readyz(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def proc_status(pid):
    """(VmRSS KiB, threads) of a live process; raises OSError when it is gone."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


# ---------------------------------------------------------------------------------------------
# Config and reloads



def config_text(n, trigger, listen, admin, flow_port):
    """Generation `n`'s config: the same gateway every time (its dispatcher is kept across
    reloads), the route's parameters and the comment change, so each reload is a real one."""
    return (
        f"# bench/soak.py: config reload {n} ({trigger})\n"
        f"listen: 127.0.0.1:{listen}\n"
        f"admin_listen: 127.0.0.1:{admin}\n"
        "unmatched: reject              # an event that misses the route is a 422, not a silent 202\n"
        "gateways:\n"
        "  flow:\n"
        f"    url: grpc://127.0.0.1:{flow_port}\n"
        "routes:\n"
        "  - name: soak\n"
        "    filters:\n"
        f"      - exact: {{ type: {EVENT_TYPE} }}\n"
        f"    parameters: '{{\"soak_reload\": {n}}}'\n"
    )


def write_atomically(path, text):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Sampler

CSV_FIELDS = [
    "t_s", "phase", "rss_mib", "fds", "tasks", "threads", "sent_per_s", "attempts_per_s", "ok_per_s",
    "non2xx_per_s", "transport_errors_per_s", "p50_ms", "p99_ms", "in_flight", "lag_s",
    "pending_events", "gateway_cold", "connections_open", "config_generation", "marks",
]


class Marks:
    """Restarts and reloads, with their time (s since start); thread-safe."""

    def __init__(self, t0):
        self.t0, self.lock, self.all, self.unsampled = t0, threading.Lock(), [], []

    def add(self, kind, text):
        mark = {"t": time.monotonic() - self.t0, "kind": kind, "text": text}
        with self.lock:
            self.all.append(mark)
            self.unsampled.append(mark)
        say(f"t={mark['t']:.1f}s {text}")

    def take(self):
        with self.lock:
            out, self.unsampled = self.unsampled, []
        return out


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(math.ceil(p / 100 * len(sorted_values))) - 1)]


async def sampler(pid, admin_port, sender, marks, t0, warmup, duration, csv_path, rows, done, state):
    """One row per second until `done` is set; raises SoakError when flowbridge is gone.

    `phase`: warmup, load (the planned run), drain (after the planned end, while the sender
    still works off a backlog or retries: charted, not measured). Sampling stops once the
    sender is done (its connections close)."""
    loop = asyncio.get_running_loop()
    with open(csv_path, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        out.writeheader()
        n = 1
        while not done.is_set():
            await asyncio.sleep(max(0.0, t0 + n - loop.time()))
            n += 1
            t = loop.time() - t0
            if sender.finished:
                break  # its connections are closed: nothing left to measure
            try:
                rss_kib, threads = proc_status(pid)
                fds = len(os.listdir(f"/proc/{pid}/fd"))  # before the scrape opens one more
            except OSError:
                state["flowbridge_died_at"] = t
                raise SoakError(f"flowbridge (pid {pid}) is gone at t={t:.0f}s")
            m = await scrape_async(admin_port)
            tasks = metric_sum(m, "flowbridge_runtime_tasks")
            if tasks is not None:
                state["tasks_source"] = "flowbridge_runtime_tasks"
            sec, sender.second = sender.second, Second()
            lat = sorted(sec.latencies)
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            row = {
                "t_s": round(t, 2),
                "phase": ("drain" if t >= duration else
                          "warmup" if t < warmup else "load"),
                "rss_mib": round(rss_kib / 1024, 2),
                "fds": fds,
                "tasks": int(tasks) if tasks is not None else threads,
                "threads": threads,
                "sent_per_s": sec.sent,
                "attempts_per_s": sec.attempts,
                "ok_per_s": sec.ok,
                "non2xx_per_s": sec.non2xx,
                "transport_errors_per_s": sec.transport,
                "p50_ms": round(p50 * 1000, 2) if p50 is not None else "",
                "p99_ms": round(p99 * 1000, 2) if p99 is not None else "",
                "in_flight": sender.in_flight,
                "lag_s": round(sender.lag_s, 3),
                "pending_events": metric_sum(m, "flowbridge_pending_events") if m else "",
                "gateway_cold": metric_sum(m, "flowbridge_gateway_cold") if m else "",
                "connections_open": m.get("flowbridge_connections_open", "") if m else "",
                "config_generation": m.get("flowbridge_config_generation", "") if m else "",
                "marks": "; ".join(x["text"] for x in marks.take()),
            }
            out.writerow(row)
            f.flush()
            rows.append(row)
            if n % 10 == 0:
                say(f"t={t:.0f}s rss {row['rss_mib']:.1f} MiB, fds {fds}, "
                    f"{'tasks' if tasks is not None else 'threads'} {row['tasks']}, {sec.ok} ok/s, "
                    f"{sec.non2xx} non-2xx/s, p99 {row['p99_ms']} ms, in flight {sender.in_flight}, "
                    f"lag {sender.lag_s:.1f}s")


# ---------------------------------------------------------------------------------------------
# Restarts and reloads (threads, so that a slow Flow start never delays a reload or a sample)


def every(period, duration, margin, t0, stop_event, action):
    """Calls action(n) at t0 + n × period for n = 1, 2, … while n × period ≤ duration − margin."""
    n = 1
    while period > 0 and n * period <= duration - margin:
        if stop_event.wait(max(0.0, t0 + n * period - time.monotonic())):
            return
        action(n)
        n += 1


def planned(period, duration, margin):
    return int((duration - margin) // period) if period > 0 and duration > margin else 0


# ---------------------------------------------------------------------------------------------
# Main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="the flowbridge binary")
    parser.add_argument("--flow-python", required=True, help="Python of the jina venv")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--rate", type=float, default=1000, help="events per second")
    parser.add_argument("--restart-every", type=float, default=300, help="s between Flow restarts (0: none)")
    parser.add_argument("--reload-every", type=float, default=60, help="s between config reloads (0: none)")
    parser.add_argument("--warmup-minutes", type=float,
                        help="RSS growth and the fd/task floors are measured from here (default: 2, "
                             "or a quarter of the run when it is shorter than 8 minutes)")
    parser.add_argument("--connections", type=int, default=64,
                        help="sender's keep-alive connections (events in flight at most)")
    parser.add_argument("--give-up", type=float, default=300,
                        help="s after an event's first attempt when the sender stops retrying it")
    parser.add_argument("--drain", type=float, default=180,
                        help="s the sender may keep going after the planned end (backlog, retries)")
    parser.add_argument("--rss-growth-max", type=float, default=10, help="RSS growth target (%%)")
    parser.add_argument("--out", default=ROOT / "target" / "soak", type=Path, help="output directory")
    args = parser.parse_args()
    if args.warmup_minutes is None:
        args.warmup_minutes = 2.0 if args.minutes >= 8 else args.minutes / 4
    duration = args.minutes * 60
    if args.rate <= 0 or duration <= 0 or args.warmup_minutes * 60 >= duration - 10:
        parser.error("need --rate > 0 and a run at least 10 s longer than the warm-up")

    for path, what in ((args.bin, "flowbridge binary (--bin)"), (args.flow_python, "jina venv Python (--flow-python)")):
        if not os.access(path, os.X_OK):
            parser.error(f"the {what} {path} is not an executable file")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("flowbridge.log", "flow.log", "record.txt", "soak.csv", "soak.png", "summary.json"):
        (out / name).unlink(missing_ok=True)

    def interrupted(signum, _frame):
        say(f"{signal.Signals(signum).name}: stopping every child")
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    try:
        code = run(args, out, duration)
    except SoakError as e:
        say(f"error: {e}")
        code = 2
    finally:
        stop_all()
    sys.exit(code)


def run(args, out, duration):
    flow_port, listen, admin = free_port(), free_port(), free_port()
    record = out / "record.txt"
    flow = Flow(args.flow_python, flow_port, record, out / "flow.log")
    say(f"starting the Flow (bench/soak_flow.py) on 127.0.0.1:{flow_port}")
    say(f"Flow ready in {flow.start():.1f}s")

    config = out / "soak.yaml"
    write_atomically(config, config_text(0, "start", listen, admin, flow_port))
    fb = spawn([args.bin, "serve", "--config", config, "--log-format", "text"], out / "flowbridge.log",
               die_with_parent=True)
    deadline = time.monotonic() + 30
    while not readyz(listen):
        if fb.poll() is not None:
            raise SoakError(f"flowbridge exited with {fb.returncode}; log {out / 'flowbridge.log'}:\n"
                            f"{log_tail(out / 'flowbridge.log')}")
        if time.monotonic() > deadline:
            raise SoakError(f"flowbridge not ready on 127.0.0.1:{listen} within 30 s")
        time.sleep(0.05)
    say(f"flowbridge (pid {fb.pid}) ready on 127.0.0.1:{listen}, admin 127.0.0.1:{admin}")

    prefix = f"soak{secrets.token_hex(3)}"
    total = int(round(args.rate * duration))
    sender = Sender(listen, args.rate, total, args.connections, prefix, args.give_up,
                    attempt_timeout_s=300)
    margin_restart, margin_reload = 30.0, 5.0
    planned_n = {"restarts": planned(args.restart_every, duration, margin_restart),
                 "reloads": planned(args.reload_every, duration, margin_reload)}
    say(f"{args.rate:g} events/s for {duration:.0f} s ({total:,} events, ids {prefix}-<n>) over "
        f"{args.connections} connections; {planned_n['restarts']} Flow restart(s), "
        f"{planned_n['reloads']} config reload(s); warm-up {args.warmup_minutes * 60:.0f} s; output {out}")

    t0 = time.monotonic()
    marks = Marks(t0)
    stop_event = threading.Event()
    restarts, reloads, state = [], [], {}

    def restart(n):
        entry = {"n": n, "t": time.monotonic() - t0, "ok": False}
        restarts.append(entry)
        marks.add("restart", f"Flow restart {n}: stopping")
        t_stop = time.monotonic()
        entry["exit_code"] = flow.stop()
        entry["killed"] = entry["exit_code"] == -signal.SIGKILL
        try:
            started = flow.start()
        except SoakError as e:
            entry["error"] = str(e)
            marks.add("restart_failed", f"Flow restart {n} failed: {e}")
            return
        entry.update(ok=True, stop_s=time.monotonic() - t_stop - started, start_s=started,
                     down_s=time.monotonic() - t_stop)
        marks.add("flow_ready", f"Flow restart {n}: ready again after {entry['down_s']:.1f}s (stop "
                                f"{entry['stop_s']:.1f}s{', SIGKILLed' if entry['killed'] else ''}, "
                                f"start {started:.1f}s)")

    def reload(n):
        trigger = "file change + SIGHUP" if n % 2 == 0 else "file change"
        text = config_text(n, trigger, listen, admin, flow_port)
        want = hashlib.sha256(text.encode()).hexdigest()[:16]
        before = scrape(admin).get("flowbridge_config_generation", 0)
        entry = {"n": n, "t": time.monotonic() - t0, "trigger": trigger, "hash": want,
                 "generation_before": before, "applied": False}
        reloads.append(entry)
        write_atomically(config, text)
        started = time.monotonic()
        if n % 2 == 0:
            os.kill(fb.pid, signal.SIGHUP)
        marks.add("reload", f"config reload {n} ({trigger})")
        while time.monotonic() - started < 15:
            m = scrape(admin)
            gen = m.get("flowbridge_config_generation", 0)
            if gen > before and any(f'hash="{want}"' in k for k in m if k.startswith("flowbridge_config_info")):
                entry.update(applied=True, apply_s=time.monotonic() - started, generation=gen)
                return
            time.sleep(0.1)
        marks.add("reload_failed", f"config reload {n}: generation/hash did not change within 15 s")

    threads = [
        threading.Thread(target=every, args=(args.restart_every, duration, margin_restart, t0, stop_event, restart),
                         daemon=True),
        threading.Thread(target=every, args=(args.reload_every, duration, margin_reload, t0, stop_event, reload),
                         daemon=True),
    ]
    for th in threads:
        th.start()

    rows = []

    async def drive():
        done = asyncio.Event()
        sampling = asyncio.create_task(
            sampler(fb.pid, admin, sender, marks, t0, args.warmup_minutes * 60, duration, out / "soak.csv",
                    rows, done, state))
        sending = asyncio.create_task(sender.run(t0))

        async def note_end():
            await asyncio.sleep(max(0.0, t0 + duration - time.monotonic()))
            sender.sent_by_end = sender.next
            say(f"planned end: {sender.next:,} of {total:,} events sent; draining (at most {args.drain:.0f} s)")

        ending = asyncio.create_task(note_end())
        try:
            limit = t0 + duration + args.drain
            finished, _ = await asyncio.wait({sending, sampling}, timeout=max(0.0, limit - time.monotonic()),
                                             return_when=asyncio.FIRST_COMPLETED)
            if sampling in finished:
                sampling.result()  # raises SoakError when flowbridge died
            elif sending not in finished:
                say(f"drain limit reached: {sender.in_flight} event(s) still in flight, "
                    f"{total - sender.next:,} not sent")
            if sender.sent_by_end is None:
                sender.sent_by_end = sender.next
        finally:
            done.set()
            for task in (sending, ending):
                task.cancel()
            await asyncio.gather(sending, ending, return_exceptions=True)
            await asyncio.gather(sampling, return_exceptions=True)

    try:
        asyncio.run(drive())
    except SoakError as e:
        state["error"] = str(e)
        say(f"error: {e}")
    stop_event.set()
    for th in threads:
        th.join(timeout=200)
    final = scrape(admin)
    (out / "metrics-final.txt").write_text("\n".join(f"{k} {v}" for k, v in sorted(final.items())) + "\n")
    stop(fb, grace=15)
    flow.stop()

    log = (out / "flowbridge.log").read_text(errors="replace")
    state["panics"] = sum(1 for line in log.splitlines() if "panicked" in line)
    counts, foreign = read_record(record, prefix, total)
    res = analyse(args, rows, sender, counts, foreign, marks, restarts, reloads, final, state, planned_n)
    res["chart"] = chart(rows, marks.all, args, state, out / "soak.png")
    res["settings"] = {k: str(v) for k, v in vars(args).items()}
    res["tasks_source"] = state.get("tasks_source", "threads")
    res["marks"] = marks.all
    res["error"] = state.get("error")
    (out / "summary.json").write_text(json.dumps(res, indent=2, default=str))

    print()
    print(f"flowbridge soak — {args.rate:g} events/s for {args.minutes:g} min, Flow restart every "
          f"{args.restart_every:g} s, config reload every {args.reload_every:g} s; RSS growth and fd/task "
          f"floors measured from minute {args.warmup_minutes:g}; "
          f"{'tasks = flowbridge_runtime_tasks' if res['tasks_source'] != 'threads' else 'tasks = threads (flowbridge_runtime_tasks not exported by this binary)'}")
    print()
    print(table(res["checks"]))
    print()
    print(f"per-second samples: {out / 'soak.csv'}")
    print(f"chart: {res['chart']}")
    print(f"summary: {out / 'summary.json'}; logs: {out / 'flowbridge.log'}, {out / 'flow.log'}")
    if state.get("error"):
        print(f"error: {state['error']}")
    print("soak: " + ("all targets met" if res["ok"] else "TARGETS MISSED"))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    main()
