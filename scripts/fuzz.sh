#!/usr/bin/env bash
# A bounded fuzzing run of every cargo-fuzz target in fuzz/ (docs/fuzzing.md). Too slow for CI
# (.ci/run does not call it); the invariants run in CI through tests/fuzz_regressions.rs.
#
#   ./scripts/fuzz.sh [seconds] [target...]      # default: 60 s per target, every target
#   FUZZ_SANITIZER=none ./scripts/fuzz.sh 120    # no AddressSanitizer (a separate full build)
#
# Prints, per target, the executions, executions per second, corpus size and crashes; exits 1 when
# a target crashed (the input is in fuzz/artifacts/<target>/; see docs/fuzzing.md for turning it
# into a regression test).
#
# Toolchain: cargo-fuzz builds with rustc flags that only nightly accepts (-Zsanitizer=address,
# -Cpasses=sancov-module, -Zfuzzer...). This project pins stable Rust, so the script sets
# RUSTC_BOOTSTRAP=1, which makes the stable compiler accept them; stable Rust ships the ASan
# runtime (librustc-stable_rt.asan.a), so the default `-s address` works there (checked with
# Rust 1.95). RUSTC_BOOTSTRAP only reaches cargo-fuzz's own build (target dir fuzz/target/), not
# the normal build. A nightly toolchain works as well: FUZZ_TOOLCHAIN=nightly.
#
# Each run reads the committed seeds fuzz/corpus/<target>/ (never written to) and grows a
# working corpus in fuzz/corpus-work/<target>/ (ignored by git), which later runs start from.
# Run options: -timeout=10 (an input slower than 10 s is reported as a crash: the "no unbounded
# time" check), -rss_limit_mb=2048, the target's dictionary from fuzz/dicts/. Builds use
# --debug-assertions, so integer overflow panics instead of wrapping.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
shift || true
all_targets=(binding_headers binding_json config_yaml rules_eval)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all_targets[@]}")
fi
sanitizer="${FUZZ_SANITIZER:-address}"
toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    toolchain=("+${FUZZ_TOOLCHAIN}")
else
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

dict_of() {
    case "$1" in
        binding_*) echo fuzz/dicts/binding.dict ;;
        config_yaml) echo fuzz/dicts/config.dict ;;
        rules_eval) echo fuzz/dicts/rules.dict ;;
    esac
}

build=(cargo "${toolchain[@]}" fuzz build --fuzz-dir fuzz -a -s "$sanitizer")
echo "==> ${build[*]}"
"${build[@]}"

mkdir -p fuzz/target/logs
summary=()
failed=0
for target in "${targets[@]}"; do
    work="fuzz/corpus-work/$target"
    mkdir -p "$work" "fuzz/artifacts/$target"
    log="fuzz/target/logs/$target.log"
    run=(cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz -a -s "$sanitizer" "$target"
        "$work" "fuzz/corpus/$target" --
        "-max_total_time=$seconds" -timeout=10 -rss_limit_mb=2048
        "-dict=$(dict_of "$target")" -print_final_stats=1)
    echo
    echo "==> ${run[*]}"
    before="$(find "fuzz/artifacts/$target" -type f | wc -l)"
    status=0
    "${run[@]}" >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    per_sec="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    corpus="$(find "$work" -type f | wc -l)"
    crashes=$(($(find "fuzz/artifacts/$target" -type f | wc -l) - before))
    if [[ $status -ne 0 ]]; then
        failed=1
        # The run stopped at a crash (or a timeout / out-of-memory) before writing its stats.
        execs="${execs:-$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')}"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|thread .* panicked|ALARM|.*deadly signal|.*out-of-memory)' \
            "$log" | head -5 || true
        echo "    artifact: $(sed -n 's/.*Test unit written to //p' "$log" | tail -1)"
    fi
    line="$(printf '%-16s %10s execs  %7s/s  corpus %5s  crashes %s%s' "$target" "${execs:-?}" \
        "${per_sec:-?}" "$corpus" "$crashes" "$([[ $status -eq 0 ]] || echo " (exit $status, see $log)")")"
    echo "<== $line"
    summary+=("$line")
done

echo
echo "Fuzzed ${seconds}s per target (sanitizer: $sanitizer):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
