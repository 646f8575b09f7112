#!/usr/bin/env bash
# The flowbridge demo: a real Jina Flow (HeavyExecutor, short sleep) behind flowbridge, fed with
# CloudEvents by `flowbridge send`; prints what happened, including a reply event built from the
# Flow's result, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOW_PORT=54321 # the gateway port config/demo.yaml points at
PORT="${FLOWBRIDGE_DEMO_PORT:-8080}"
VENV="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"
export FLOWBRIDGE_JINA_VENV="$VENV"
LOGS="$(mktemp -d)"
pids=()

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_for() { # wait_for <what> <seconds> <command...>
  local what=$1 secs=$2
  shift 2
  for _ in $(seq 1 $((secs * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "error: $what did not come up within ${secs}s; logs in $LOGS" >&2
  tail -n 30 "$LOGS"/*.log >&2 || true
  exit 1
}

step "1/5 Jina environment (Python venv with jina 3.34 + docarray 0.21, cached in $VENV)"
./scripts/jina-env.sh v1

step "2/5 building flowbridge"
cargo build --quiet
BIN=target/debug/flowbridge

step "3/5 starting the example Flow (HeavyExecutor) on grpc://127.0.0.1:$FLOW_PORT"
setsid "$VENV/bin/python" scripts/demo_flow.py --port "$FLOW_PORT" >"$LOGS/flow.log" 2>&1 </dev/null &
pids+=($!)
wait_for "the Flow" 180 grep -q "FLOW READY" "$LOGS/flow.log"
echo "Flow ready"

step "4/5 starting flowbridge on http://127.0.0.1:$PORT with config/demo.yaml"
"$BIN" check --config config/demo.yaml
setsid "$BIN" serve --config config/demo.yaml --port "$PORT" --log-format text >"$LOGS/flowbridge.log" 2>&1 </dev/null &
pids+=($!)
wait_for "flowbridge" 30 curl -fsS "http://127.0.0.1:$PORT/readyz"

step "5/5 sending CloudEvents"
echo "-- an event without Prefer: reply (like PingSource sends): expect 202"
"$BIN" send "http://127.0.0.1:$PORT" --type com.example.demo.order --source /shop/eu \
  --subject order-1 --data '{"text": "two apples", "lang": "en"}' --no-reply
echo "-- an event with Prefer: reply (like a Broker Trigger sends): expect 200 and a reply event"
"$BIN" send "http://127.0.0.1:$PORT" --type com.example.demo.order --source /shop/eu \
  --subject order-2 --data '{"text": "three pears", "lang": "en"}'
echo "-- an event that is not a CloudEvent: expect 415"
curl -sS -w ' -> HTTP %{http_code}\n' -X POST -H 'content-type: application/json' \
  --data '{"hello": 1}' "http://127.0.0.1:$PORT/" || true

step "flowbridge log"
cat "$LOGS/flowbridge.log"
step "done; stopping the Flow and flowbridge"
