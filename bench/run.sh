#!/usr/bin/env bash
# flowbridge benchmarks, one command: builds what they need, runs every measurement in the same
# run and prints the ratio table (see docs/benchmarks.md).
#
#   bench/run.sh                       # everything, 15 s per measurement (about 8 minutes)
#   bench/run.sh --duration 5          # quicker, noisier (any duration, fractions included)
#   bench/run.sh --only null           # null gateway, low load, startup and RSS only (no Python)
#   bench/run.sh --only cpu            # CPU per event: flowbridge vs a bare axum 202 handler
#   bench/run.sh --json out.json       # also keep every number
#
# 1. scripts/jina-env.sh: the Jina venv (cached) — the real Flow, the Python sink and the
#    Flow's ceiling run in it.
# 2. cargo build --release of the flowbridge binary, the null gateway example and the bare axum
#    sink (examples/bare_sink.rs), in one build
#    with the feature null-gateway (it only adds the null gateway module, which the binary never
#    calls: `serve` and `load` are the same code as in the default build).
# 3. bench/bench.py with the venv's Python.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export JINA_OPTOUT_TELEMETRY=1
venv="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"

./scripts/jina-env.sh v1
echo "bench: building release binaries (the first build takes a few minutes)" >&2
cargo build --release --quiet --features null-gateway --bin flowbridge --example null_gateway --example bare_sink

"$venv/bin/python" bench/bench.py "$@"

# CESQL filter evaluation vs exact/prefix filters (pure, in-process; docs/benchmarks.md).
if [[ " $* " != *" --only "* ]]; then
    echo >&2
    echo "bench: CESQL filter evaluation (cargo bench --bench cesql)" >&2
    cargo bench --quiet --bench cesql
fi
