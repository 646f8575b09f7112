"""The soak's analysis (bench/soak.py): what the Flow recorded against what was answered, the
targets table, and the chart (matplotlib, when the bench venv has it)."""

import math
import statistics

from soak_sender import GAVE_UP, OK, PENDING


def metric_sum(metrics, name):
    """Sum of every series of `name` (any labels), or None when there is none."""
    values = [v for k, v in metrics.items() if k == name or k.startswith(name + "{")]
    return sum(values) if values else None



# ---------------------------------------------------------------------------------------------
# Analysis


def read_record(path, prefix, total):
    """How many times the executor recorded each event (capped at 255), plus foreign lines."""
    counts = bytearray(total)
    foreign = 0
    tag = (prefix + "-").encode()
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line.startswith(tag):
                foreign += bool(line)
                continue
            try:
                k = int(line[len(tag):])
            except ValueError:
                foreign += 1
                continue
            if 0 <= k < total and counts[k] < 255:
                counts[k] += 1
    return counts, foreign


def window(rows, lo, hi, key):
    """Values of `key` sampled in [lo, hi] s while the load ran (warm-up included, drain not)."""
    return [r[key] for r in rows if lo <= r["t_s"] <= hi and r["phase"] != "drain" and r[key] != ""]


def analyse(args, rows, sender, counts, foreign, marks, restarts, reloads, final, state, planned_n):
    duration = args.minutes * 60
    warmup = args.warmup_minutes * 60
    res = {"checks": []}

    def check(name, value, target, met):
        res["checks"].append({"metric": name, "value": value, "target": target, "met": met})

    # RSS: median of ±5 s around the end of the warm-up vs median of the last 10 s of the load.
    rss_start = window(rows, warmup - 5, warmup + 5, "rss_mib")
    rss_end = window(rows, duration - 10, duration, "rss_mib")
    if rss_start and rss_end:
        a, b = statistics.median(rss_start), statistics.median(rss_end)
        growth = (b - a) / a * 100
        res.update(rss_start_mib=a, rss_end_mib=b, rss_growth_pct=growth)
        check(f"RSS at minute {args.warmup_minutes:g} → end (median of 10 s each)",
              f"{a:.1f} → {b:.1f} MiB ({growth:+.1f} %)", f"≤ +{args.rss_growth_max:g} %",
              growth <= args.rss_growth_max)
    else:
        check("RSS samples", "missing", "present", False)
    rss_all = window(rows, warmup, duration, "rss_mib")
    if rss_all:
        res["rss_max_mib"] = max(rss_all)

    # fds and tasks: the floor (minimum) of the first and the last window after warm-up.
    span = duration - warmup
    w = min(60.0, span / 4)
    task_name = "tasks" if state.get("tasks_source") == "flowbridge_runtime_tasks" else \
        "threads (flowbridge_runtime_tasks not exported by this binary)"
    for key, label, slack_abs, slack_rel in (("fds", "open fds", 2, 0.02),
                                             ("tasks", task_name, 3, 0.05)):
        after = window(rows, warmup, duration, key)
        first = window(rows, warmup, warmup + w, key)
        last = window(rows, duration - w, duration, key)
        if not (after and first and last):
            check(label, "no samples", "flat", False)
            continue
        slack = max(slack_abs, math.ceil(slack_rel * min(first)))
        res[f"{key}_min"], res[f"{key}_max"] = min(after), max(after)
        res[f"{key}_floor_first"], res[f"{key}_floor_last"] = min(first), min(last)
        check(f"{label}: min/max after warm-up; floor first {w:.0f} s → last {w:.0f} s",
              f"{min(after)}/{max(after)}; {min(first)} → {min(last)}",
              f"flat (floor +≤ {slack})", min(last) <= min(first) + slack)

    # Events.
    ok = sum(1 for o in sender.outcome if o == OK)
    gave_up = sum(1 for o in sender.outcome if o == GAVE_UP)
    unfinished = sum(1 for o in sender.outcome if o == PENDING)
    unsent = sender.total - sender.next
    lost = sum(1 for o, c in zip(sender.outcome, counts) if o == OK and c == 0)
    duplicates = sum(c - 1 for c in counts if c > 1)
    recorded_not_ok = sum(1 for o, c in zip(sender.outcome, counts) if o != OK and c > 0)
    non2xx = {str(s): n for s, n in sorted(sender.status.items()) if not 200 <= s < 300}
    res.update(events_planned=sender.total, events_sent=sender.next, events_2xx=ok,
               gave_up=gave_up, unfinished=unfinished, unsent=unsent, lost=lost,
               retried_events=sender.retried_events, retries=sender.retries,
               max_attempts=sender.max_attempts, attempt_status={str(k): v for k, v in
                                                                 sorted(sender.status.items())},
               transport_errors=dict(sender.transport),
               first_transport_error=sender.first_transport_error,
               flow_duplicates=duplicates, recorded_not_2xx=recorded_not_ok, foreign_records=foreign,
               max_lag_s=sender.max_lag_s, sent_by_end=sender.sent_by_end)
    sent_by_end = sender.sent_by_end or 0
    sent_share = sent_by_end / max(1, sender.total)
    check("load kept: events sent by the end of the run / planned",
          f"{sent_by_end:,} / {sender.total:,} ({sent_share:.1%}), max lag {sender.max_lag_s:.1f} s",
          "≥ 95 %", sent_share >= 0.95)
    check("events: sent / 2xx / needed a retry",
          f"{sender.next:,} / {ok:,} / {sender.retried_events:,}", "—", None)
    attempts_non2xx = sum(non2xx.values()) + sum(sender.transport.values())
    by_kind = lambda counts: f" {counts}" if counts else ""
    check("attempts answered non-2xx (then retried) / transport errors",
          f"{sum(non2xx.values()):,}{by_kind(non2xx)} / {sum(sender.transport.values()):,}"
          f"{by_kind(dict(sender.transport))}", "reported", None)
    res["attempts_failed"] = attempts_non2xx
    check("lost: answered 2xx, never recorded by the executor", f"{lost:,}", "0", lost == 0)
    check("undelivered: gave up / unfinished / never sent", f"{gave_up} / {unfinished} / {unsent}",
          "0 / 0 / 0", gave_up + unfinished + unsent == 0)
    check("executor saw an event more than once (at-least-once, after a retry)", f"{duplicates:,}",
          "reported", None)

    # Restarts and reloads.
    downs = ", ".join(f"{r['down_s']:.1f} s{' (SIGKILL)' if r.get('killed') else ''}"
                      for r in restarts if r.get("down_s") is not None)
    check("Flow restarts done (time without a Flow each; SIGKILL: no exit within 5 s of SIGTERM)",
          f"{sum(1 for r in restarts if r.get('ok'))} / {planned_n['restarts']}" + (f": {downs}" if downs else ""),
          f"{planned_n['restarts']}", sum(1 for r in restarts if r.get("ok")) == planned_n["restarts"])
    applied = sum(1 for r in reloads if r.get("applied"))
    slowest = max((r["apply_s"] for r in reloads if r.get("applied")), default=0)
    generation = final.get("flowbridge_config_generation")
    check("config reloads applied (generation advanced, new hash active)",
          f"{applied} / {planned_n['reloads']} (slowest {slowest:.1f} s), final generation "
          + (f"{generation:.0f}" if generation is not None else "?"),
          f"{planned_n['reloads']}", applied == planned_n["reloads"])
    failures = metric_sum(final, 'flowbridge_config_reloads_total{outcome="failure"}') or 0
    check("config reloads failed (flowbridge_config_reloads_total{outcome=\"failure\"})", f"{failures:.0f}",
          "0", failures == 0)
    alive = "flowbridge_died_at" not in state
    check("flowbridge alive to the end, no panic in its log",
          "yes" if alive and not state.get("panics") else
          f"died at {state.get('flowbridge_died_at')}" if not alive else f"{state['panics']} panic line(s)",
          "yes", alive and not state.get("panics"))
    res["restarts"], res["reloads"] = restarts, reloads
    res["ok"] = all(c["met"] is not False for c in res["checks"])
    return res


def table(checks):
    rows = [[c["metric"], c["value"], c["target"], {True: "yes", False: "NO", None: "—"}[c["met"]]]
            for c in checks]
    header = ["metric", "value", "target", "met?"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [line(r) for r in rows])


# ---------------------------------------------------------------------------------------------
# Chart


def chart(rows, marks, args, state, png):
    """RSS, fds, tasks and events/s over time; restarts (red) and reloads (blue) as lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"skipped: matplotlib is not importable ({e}); the CSV has every sample"
    t = [r["t_s"] for r in rows]
    num = lambda key: [float(r[key]) if r[key] != "" else float("nan") for r in rows]
    tasks_label = ("tokio tasks" if state.get("tasks_source") == "flowbridge_runtime_tasks"
                   else "threads (no tasks gauge)")
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True)
    panels = [("RSS (MiB)", [("rss_mib", "RSS")]), ("open fds", [("fds", "fds")]),
              (tasks_label, [("tasks", "tasks")] if state.get("tasks_source") else [("threads", "threads")]),
              ("events/s", [("ok_per_s", "2xx/s"), ("non2xx_per_s", "non-2xx/s"),
                            ("transport_errors_per_s", "transport errors/s")])]
    for ax, (title, series) in zip(axes, panels):
        for key, label in series:
            ax.plot(t, num(key), label=label, linewidth=1)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.axvspan(0, args.warmup_minutes * 60, color="grey", alpha=0.12)
        for m in marks:
            if m["kind"] == "restart":
                ax.axvline(m["t"], color="red", linestyle="--", linewidth=0.9)
            elif m["kind"] == "flow_ready":
                ax.axvline(m["t"], color="red", linestyle=":", linewidth=0.9)
            elif m["kind"] == "reload":
                ax.axvline(m["t"], color="tab:blue", linestyle=":", linewidth=0.8, alpha=0.7)
        if len(series) > 1:
            ax.legend(loc="upper left", fontsize=8)
    lat = axes[3].twinx()
    lat.plot(t, num("p99_ms"), color="purple", linewidth=0.8, alpha=0.6, label="p99 ms")
    lat.set_ylabel("p99 latency (ms)")
    lat.set_yscale("log")
    lat.legend(loc="upper right", fontsize=8)
    for ax in axes:
        ax.axvline(args.minutes * 60, color="black", linewidth=0.8)
    axes[-1].set_xlabel("seconds (grey: warm-up; red dashed: Flow stopped, red dotted: Flow ready; "
                        "blue dotted: config reload; black: planned end, then drain)")
    fig.suptitle(f"flowbridge soak: {args.rate:g} events/s for {args.minutes:g} min, Flow restart every "
                 f"{args.restart_every:g} s, config reload every {args.reload_every:g} s")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return str(png)


