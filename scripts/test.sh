#!/usr/bin/env bash
# Everything the tests need, then fmt, clippy and all tests (the real-Flow ones included).
#
#   ./scripts/test.sh
#
# 1. scripts/jina-env.sh: the two Python 3.11 venvs with jina, docarray and the cloudevents SDK,
#    created once and cached: docarray v1 in ${FLOWBRIDGE_JINA_VENV:-~/.cache/flowbridge/jina-venv},
#    docarray v2 in ${FLOWBRIDGE_JINA_V2_VENV:-~/.cache/flowbridge/jina-v2-venv}.
#    Then the JavaScript CloudEvents SDK for tests/interop/js/send_js.mjs (`npm ci`, pinned by
#    its package-lock.json; skipped when node_modules is already there). Then redis-server for
#    tests/shared_state.rs (Debian's package with apt-get when missing; the tests start their
#    own on a free loopback port), and Debian's prometheus package for `promtool`
#    (tests/prometheus.rs checks the alert rules and a scrape with it), tmux
#    (tests/top.rs drives `flowbridge top` in it), and buildah, skopeo and umoci
#    (tests/image.rs builds the container image and unpacks it).
# 2. cargo fmt --check
# 3. cargo clippy --all-targets -- -D warnings, and again with the feature null-gateway (the
#    benchmarks' null gateway, examples/null_gateway.rs), so the bench harness keeps compiling.
# 4. cargo build --release --bin flowbridge: the binary users run, for the two runs whose figures
#    are about it (tests/hostile.rs and the soak); then the image's static binary
#    (scripts/image.sh --binary-only) for tests/image.rs.
# 5. cargo test --no-fail-fast (unit, integration and doc tests; tests/hostile.rs on the release
#    binary).
# 6. bench/soak.sh, its 2-minute variant (about 2.5 minutes): 200 events/s through the real Flow
#    with three Flow restarts and five config reloads, on the release binary; fails on lost
#    events, RSS growth over 10 % or growing fds/tasks (FLOWBRIDGE_SKIP_SOAK=1 skips it).
#
# The integration tests share one real Jina Flow per test binary, which needs all tests of a
# binary in one process: that is `cargo test`. cargo-nextest runs each test in its own process,
# so every real-Flow test would start its own Flow; it is used only when asked for with
# FLOWBRIDGE_TEST_RUNNER=nextest (then doc tests run separately with `cargo test --doc`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export FLOWBRIDGE_JINA_VENV="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"
export FLOWBRIDGE_JINA_V2_VENV="${FLOWBRIDGE_JINA_V2_VENV:-$HOME/.cache/flowbridge/jina-v2-venv}"
export JINA_OPTOUT_TELEMETRY=1

now() { date +%s.%N; }
timings=()
step() {
    local name="$1"
    shift
    echo
    echo "==> $name: $*"
    local start
    start="$(now)"
    "$@"
    local took
    took="$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
    echo "<== $name: ok in ${took}s"
    timings+=("$(printf '%-8s %7ss' "$name" "$took")")
}

total_start="$(now)"
step jina-env ./scripts/jina-env.sh all
js_env() {
    if [[ -d tests/interop/js/node_modules/cloudevents ]]; then
        echo "js-env: tests/interop/js/node_modules ready"
        return
    fi
    command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 18+ with npm" >&2; return 1; }
    npm ci --prefix tests/interop/js --no-audit --no-fund
}
step js-env js_env
# A tool from a Debian package: print its version when it is there, else install the package
# with apt-get (through sudo when not root).
#   debian_tool TOOL PACKAGE HINT VERSION-COMMAND...
debian_tool() {
    local tool="$1" package="$2" hint="$3"
    shift 3
    if command -v "$tool" >/dev/null 2>&1; then
        echo "$tool: $("$@" 2>&1 | head -1)"
        return
    fi
    command -v apt-get >/dev/null 2>&1 ||
        { echo "$tool not found and no apt-get: $hint" >&2; return 1; }
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq || true
    "${sudo[@]}" apt-get install -y -qq "$package" ||
        { echo "apt-get could not install $package" >&2; return 1; }
}
step redis-env debian_tool redis-server redis-server \
    "install Redis 6.2+ (or Valkey's redis-server)" redis-server --version
step prometheus-env debian_tool promtool prometheus \
    "install Prometheus 2.x (its promtool)" promtool --version
step tmux-env debian_tool tmux tmux \
    "install tmux (tests/top.rs drives flowbridge top in it)" tmux -V
step buildah-env debian_tool buildah buildah \
    "install buildah (tests/image.rs builds the image with scripts/image.sh)" buildah --version
step skopeo-env debian_tool skopeo skopeo \
    "install skopeo (tests/image.rs reads the image archive with it)" skopeo --version
step umoci-env debian_tool umoci umoci \
    "install umoci (tests/image.rs unpacks the image with it)" umoci --version
step fmt cargo fmt --check
step clippy cargo clippy --all-targets -- -D warnings
step clippy-bench cargo clippy --all-targets --features null-gateway -- -D warnings
step release cargo build --release --quiet --bin flowbridge
export FLOWBRIDGE_RELEASE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/flowbridge"
# The image's static binary, built once here for tests/image.rs.
static_binary() {
    FLOWBRIDGE_STATIC_BIN="$(./scripts/image.sh --binary-only)"
    export FLOWBRIDGE_STATIC_BIN
    echo "static binary: $FLOWBRIDGE_STATIC_BIN"
}
step static static_binary
if [[ "${FLOWBRIDGE_TEST_RUNNER:-cargo}" == nextest ]]; then
    command -v cargo-nextest >/dev/null 2>&1 ||
        { echo "FLOWBRIDGE_TEST_RUNNER=nextest but cargo-nextest is not installed" >&2; exit 1; }
    step tests cargo nextest run --no-fail-fast
    step doctests cargo test --doc
else
    step tests cargo test --no-fail-fast
fi
if [[ "${FLOWBRIDGE_SKIP_SOAK:-0}" == 1 ]]; then
    echo
    echo "==> soak: skipped (FLOWBRIDGE_SKIP_SOAK=1)"
else
    step soak bench/soak.sh --minutes 2 --rate 200 --restart-every 25 --reload-every 20
fi

echo
echo "All steps passed:"
printf '  %s\n' "${timings[@]}"
echo "  total    $(awk -v a="$total_start" -v b="$(now)" 'BEGIN { printf "%7.1f", b - a }')s"
