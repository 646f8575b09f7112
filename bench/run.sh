#!/usr/bin/env bash
# flowbridge benchmarks, one command: builds what they need, runs every measurement in the same
# run and prints the ratio table (see bench/README.md and docs/benchmarks.md).
#
#   bench/run.sh                       # everything, 15 s per measurement (about 3–4 minutes)
#   bench/run.sh --duration 5          # quicker, noisier
#   bench/run.sh --only null           # null gateway, startup and RSS only (no Python needed)
#   bench/run.sh --json out.json       # also keep every number
#
# 1. scripts/jina-env.sh: the Jina venv (cached) — the real Flow, the Python sink and the
#    Flow's ceiling run in it.
# 2. cargo build --release: the null gateway example (feature null-gateway), then the
#    flowbridge binary itself without that feature, exactly as shipped.
# 3. bench/bench.py with the venv's Python.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export JINA_OPTOUT_TELEMETRY=1
venv="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"

./scripts/jina-env.sh
echo "bench: building release binaries (the first build takes a few minutes)" >&2
cargo build --release --quiet --features null-gateway --example null_gateway
cargo build --release --quiet --bin flowbridge

exec "$venv/bin/python" bench/bench.py "$@"
