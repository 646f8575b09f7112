#!/usr/bin/env bash
# The autoscaling simulator, one command (docs/benchmarks.md "Autoscaling", docs/delivery.md):
# every scenario of bench/autoscale/scenarios/ with the direct per-event client and with
# flowbridge, the table (markdown) on stdout, JSON and PNG charts in the output directory
# (the charts elsewhere with --charts DIR).
#
#   bench/autoscale.sh                    # all scenarios → target/autoscale/ (about 2 minutes,
#                                         # most of it the 100k events/s one)
#   bench/autoscale.sh --charts docs      # the charts docs/benchmarks.md shows
#   bench/autoscale.sh bench/autoscale/scenarios/1-seed.yaml   # one scenario
#   bench/autoscale.sh --no-autoscale     # flowbridge not told the Flow's target and max-scale
#   bench/autoscale.sh --concurrency '{min: 14}'   # the gateway's `concurrency`, as in the config
#   bench/autoscale.sh --trust            # the model against the real Flow (needs the Jina venv)
#
# 1. cargo build of the simulator (`cargo bench --bench autoscale`, feature test-util).
# 2. the simulator: virtual time, flowbridge's own dispatcher against a modelled Knative
#    Service (bench/autoscale/{kpa,knative}.rs).
# 3. the charts, with matplotlib from the bench venv (created as bench/soak.sh does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "autoscale: $*" >&2; }

out=target/autoscale
charts=
trust=0
sim_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --out) out="$2"; shift 2 ;;
    --charts) charts="$2"; shift 2 ;;
    --trust) trust=1; shift ;;
    *) sim_args+=("$1"); shift ;;
    esac
done

say "building the simulator (cargo bench --bench autoscale --features test-util --no-run)"
sim="$(cargo bench --quiet --features test-util --bench autoscale --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "autoscale" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$sim" ]] || { say "the simulator did not build"; exit 1; }

if [[ "$trust" == 1 ]]; then
    ./scripts/jina-env.sh v1
    cargo build --release --quiet --bin flowbridge
    venv="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"
    JINA_OPTOUT_TELEMETRY=1 exec "$venv/bin/python" bench/autoscale/trust.py --simulator "$sim" "${sim_args[@]}"
fi

mkdir -p "$out"
"$sim" --out "$out" "${sim_args[@]}"

bench_venv="${FLOWBRIDGE_BENCH_VENV:-$HOME/.cache/flowbridge/bench-venv}"
if [[ ! -x "$bench_venv/bin/python" ]] || ! "$bench_venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    say "creating the bench venv $bench_venv (matplotlib, pinned by bench/soak-requirements.txt)"
    python3 -m venv "$bench_venv"
    "$bench_venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
        --no-deps -r bench/soak-requirements.txt
fi
"$bench_venv/bin/python" bench/autoscale/chart.py "$out" --out "${charts:-$out}"
