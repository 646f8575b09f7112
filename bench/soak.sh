#!/usr/bin/env bash
# flowbridge soak test, one command (issue 17 item 4). Not part of CI in its full form; a
# 2-minute variant runs as the last step of scripts/test.sh.
#
#   bench/soak.sh                     # 1,000 events/s for 15 min, Flow restart every 5 min,
#                                     # config reload every minute (about 17 minutes with setup)
#   bench/soak.sh --minutes 2 --rate 200 --restart-every 25 --reload-every 20
#                                     # the CI variant (about 2.5 minutes; see below)
#
# Options (all but --debug go to bench/soak.py, whose docstring says what runs and what is
# measured):
#   --minutes M          run length (default 15)
#   --rate R             events per second (default 1000), open loop
#   --restart-every S    seconds between Flow restarts (default 300; 0: none); none in the last 30 s
#   --reload-every S     seconds between config reloads (default 60; 0: none); none in the last 5 s
#   --warmup-minutes W   RSS growth and the fd/task floors are measured from minute W (default 2;
#                        a quarter of the run when it is shorter than 8 minutes: 0.5 for 2 minutes)
#   --connections N      sender's keep-alive connections (default 64)
#   --out DIR            soak.csv, soak.png, summary.json, logs (default $CARGO_TARGET_DIR/soak,
#                        else target/soak)
#   --debug              use the debug binary (cargo build, which CI's tests already built)
#                        instead of a release build; FLOWBRIDGE_BIN=path uses that binary as is
#
# Targets (exit 1 when one is missed; 2 when the soak could not run): RSS growth ≤ 10 % from
# minute W to the end; open fds and tasks flat (their floor in the last minute no higher than in
# the first minute after warm-up, plus a slack of 2 fds / 3 tasks or 2 % / 5 %); 0 events lost
# (answered 2xx but never recorded by the executor); 0 undelivered (the sender retries non-2xx
# answers like a Knative Broker until it gets a 2xx); every reload applied; every restart done;
# flowbridge alive with no panic; the sender kept the rate. Tasks are the
# flowbridge_runtime_tasks gauge from /metrics, or flowbridge's threads (marked as such) when the
# binary does not export it.
#
# The CI variant (scripts/test.sh) measures the same things over 2 minutes at 200 events/s on the
# release binary (built by scripts/test.sh before the tests): three Flow restarts (at 25, 50 and
# 75 s) and five reloads (every 20 s). Its warm-up is the first 30 s and includes the first
# restart, so the one-time growth of the first
# reconnect and catch-up burst (about 1.5 MiB on an 18 MiB release binary) is in the baseline; RSS
# growth is then measured from 0.5 minutes to the end (the two later restarts, four reloads and
# 18,000 events must not add 10 %), and the fd/task floors of the first and the last 22 s after
# warm-up are compared. It catches a large leak per event, per reload or per restart; slow growth
# needs the full run.
#
# 1. scripts/jina-env.sh v1: the Jina venv (cached) the Flow runs in.
# 2. the bench venv ${FLOWBRIDGE_BENCH_VENV:-~/.cache/flowbridge/bench-venv}: Python 3.11 with
#    matplotlib for the chart, pinned by bench/soak-requirements.txt (cached; without it the
#    soak still runs and says the chart was skipped).
# 3. cargo build [--release] --bin flowbridge (CARGO_TARGET_DIR is honoured).
# 4. bench/soak.py (children, sampling, restarts and reloads; its sender is bench/soak_sender.py,
#    its analysis, table and chart bench/soak_report.py); every child runs in its own process
#    group and is killed when the soak ends, is interrupted (Ctrl-C, SIGTERM) or fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "soak: $*" >&2; }
die() {
    say "error: $*"
    exit 2
}

profile=release
args=()
for arg in "$@"; do
    case "$arg" in
        --debug) profile=debug ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) args+=("$arg") ;;
    esac
done

export JINA_OPTOUT_TELEMETRY=1
jina_venv="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"
bench_venv="${FLOWBRIDGE_BENCH_VENV:-$HOME/.cache/flowbridge/bench-venv}"
target_dir="${CARGO_TARGET_DIR:-target}"

./scripts/jina-env.sh v1 || die "scripts/jina-env.sh v1 failed: the soak needs the Jina venv"

# The bench venv: created once, reused while the stamp matches the pin list.
bench_env() {
    local req=bench/soak-requirements.txt stamp="$bench_venv/.flowbridge-requirements.sha256" sum
    sum="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ -x "$bench_venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]] &&
        "$bench_venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
        return 0
    fi
    local python
    python="$(command -v python3.11 || command -v python3 || true)"
    [[ -n "$python" ]] || { say "no python3.11 found"; return 1; }
    say "creating the bench venv $bench_venv (matplotlib, pinned by $req)"
    "$python" -m venv "$bench_venv" &&
        "$bench_venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
            --no-deps -r "$req" &&
        echo "$sum" >"$stamp"
}
if bench_env; then
    python="$bench_venv/bin/python"
else
    say "warning: the bench venv could not be made; running without the chart (CSV only)"
    python="$jina_venv/bin/python"
fi

if [[ -n "${FLOWBRIDGE_BIN:-}" ]]; then
    bin="$FLOWBRIDGE_BIN"
    [[ -x "$bin" ]] || die "FLOWBRIDGE_BIN=$bin is not an executable"
elif [[ "$profile" == debug ]]; then
    say "building the debug binary (cargo build --bin flowbridge)"
    cargo build --quiet --bin flowbridge || die "cargo build failed"
    bin="$target_dir/debug/flowbridge"
else
    say "building the release binary (cargo build --release --bin flowbridge; the first build takes minutes)"
    cargo build --release --quiet --bin flowbridge || die "cargo build --release failed"
    bin="$target_dir/release/flowbridge"
fi

# bench/soak.py runs in the background so that this shell can forward SIGINT/SIGTERM to it (a
# foreground child would hold the trap back until it ends); it stops its own children.
child=
forward() {
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    exit 130
}
trap forward INT TERM
trap '[[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null; true' EXIT

# --out first: a --out among the arguments comes later and wins.
"$python" bench/soak.py --out "$target_dir/soak" --bin "$bin" --flow-python "$jina_venv/bin/python" \
    ${args[@]+"${args[@]}"} &
child=$!
rc=0
wait "$child" || rc=$?
child=
exit "$rc"
