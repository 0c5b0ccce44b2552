#!/usr/bin/env bash
# Fuzz suite: builds the cargo-fuzz targets in fuzz/ (libFuzzer, nightly toolchain) and runs
# each for a bounded time from its seed corpus (fuzz/corpus/<target>). Fails if any target
# finds a crash, a timeout or an out-of-memory input, printing the reproducer's path and the
# command that replays it. docs/testing.md lists the targets.
#   FUZZ_SECONDS   seconds per target (default 45: build + 6 targets stay under 8 min on 2 cores)
#   FUZZ_TARGETS   space-separated subset of the targets (default: all)
# New inputs the fuzzer finds go to target/fuzz/corpus/<target> (kept between runs, not
# committed); reproducers to target/fuzz/artifacts/<target>/.
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"

seconds="${FUZZ_SECONDS:-45}"
export CARGO_TARGET_DIR="$MYCELIUM_ROOT/target/fuzz"

command -v rustup >/dev/null || die "rustup not found: cargo fuzz needs a nightly toolchain (https://rustup.rs)"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  step "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list --fuzz-dir fuzz | tr '\n' ' ')}"
step "cargo fuzz build ($targets)"
build_start=$SECONDS
if [ -z "${FUZZ_TARGETS:-}" ]; then
  cargo +nightly fuzz build --fuzz-dir fuzz
else
  for t in $targets; do cargo +nightly fuzz build --fuzz-dir fuzz "$t"; done
fi
echo "built in $((SECONDS - build_start)) s"

failed=()
for t in $targets; do
  step "fuzz $t for ${seconds} s"
  work="$CARGO_TARGET_DIR/corpus/$t"
  artifacts="$CARGO_TARGET_DIR/artifacts/$t"
  log="$CARGO_TARGET_DIR/logs/$t.log"
  rm -rf "$artifacts"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  # The first corpus directory receives new inputs, so the committed seeds stay untouched.
  # -timeout: an input taking 10 s is a hang worth a reproducer (inputs are a few KB).
  if cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$work" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" || tail -n 3 "$log"
  else
    tail -n 40 "$log"
    failed+=("$t")
    found=0
    for repro in "$artifacts"/*; do
      [ -e "$repro" ] || continue
      found=1
      echo "REPRODUCER: $repro"
      echo "  replay: CARGO_TARGET_DIR=target/fuzz cargo +nightly fuzz run --fuzz-dir fuzz $t $repro"
    done
    [ "$found" = 1 ] || echo "$t failed without a reproducer (a build error?): see $log"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  die "fuzz targets failed: ${failed[*]} (see above; each reproducer becomes a regression test)"
fi
echo "all fuzz targets ran ${seconds} s without a finding: $targets"
