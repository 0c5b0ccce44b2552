#!/usr/bin/env bash
# Hardening stage (issue 12): libFuzzer on the parsers (scripts/test-fuzz.sh), loom on the
# concurrent core, stress races in release and under AddressSanitizer (scripts/stress.sh). Run by
# scripts/test-all.sh after the suites, as a CI-only stage: it needs a nightly toolchain and
# cargo-fuzz from crates.io, which no Nix check has (docs/nix.md, docs/testing.md).
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust

step "fuzz every target for ${FUZZ_SECONDS:=10} s (scripts/test-fuzz.sh)"
FUZZ_SECONDS="$FUZZ_SECONDS" bash scripts/test-fuzz.sh
# test-all.sh sets MYCELIUM_PRUNE=1: a passed step's build goes (disk; a failure's stays to look at)
prune() { if [ "${MYCELIUM_PRUNE:-0}" = 1 ]; then rm -rf "$@"; fi; }
# (the builds only: target/fuzz/corpus keeps what the fuzzer found between runs)
prune target/fuzz/release target/fuzz/x86_64-unknown-linux-gnu

step "loom model checks (scripts/test-loom.sh)"
bash scripts/test-loom.sh
[ -n "${MYCELIUM_LOOM_TARGET:-}" ] || prune target/loom

# Issue 12's races through the C ABI, bounded for CI (scripts/stress.sh runs 100 000 by hand).
step "stress races, release, ${STRESS_ITERATIONS:=5000} iterations each (scripts/stress.sh)"
bash scripts/stress.sh --release --iterations "$STRESS_ITERATIONS"

step "stress races under AddressSanitizer, ${STRESS_ASAN_ITERATIONS:=1000} iterations each"
bash scripts/stress.sh --asan --iterations "$STRESS_ASAN_ITERATIONS"
