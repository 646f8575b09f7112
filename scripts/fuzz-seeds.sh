#!/usr/bin/env bash
# Regenerate the committed fuzz seed corpora fuzz/corpus/<target>/ from the fixtures
# (tests/fixtures/conformance, tests/fixtures/cesql-tck, config/*.yaml, fuzz/src/rules.yaml).
#
#   ./scripts/fuzz-seeds.sh
#
# The generator is the test `seed_corpora_are_generated_from_the_fixtures` in
# tests/fuzz_regressions.rs: with FLOWBRIDGE_UPDATE_FUZZ_CORPUS=1 it rewrites the directories,
# without it (plain `cargo test`) it fails when the committed seeds are stale.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FLOWBRIDGE_UPDATE_FUZZ_CORPUS=1 cargo test --test fuzz_regressions \
    seed_corpora_are_generated_from_the_fixtures -- --nocapture
