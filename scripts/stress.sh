#!/usr/bin/env bash
# Stress races of the concurrent core through the C ABI (issue 12; rust/mycelium-ffi/examples/
# stress.rs): unsubscribe while two threads publish, mutual unsubscribe from callbacks, close
# while receivers sleep, DropOldest eviction under contention, runtime destroy while callbacks
# run. Each iteration has a watchdog: past --timeout seconds the binary prints every thread's
# stack through gdb and exits 2; a broken invariant exits 1.
#
#   scripts/stress.sh [--iterations N] [--scenario NAME|all] [--asan|--release] [--timeout S]
#
# Defaults: 100000 iterations of every scenario, release build. --asan builds with
# AddressSanitizer (debug profile, nightly features through RUSTC_BOOTSTRAP, target/asan with
# the same flags as scripts/test-ffi.sh so the two share their build).
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
ensure_apt gdb

iterations=100000 scenario=all mode=release timeout=10
while [ $# -gt 0 ]; do
  case "$1" in
    --iterations) iterations="$2"; shift 2 ;;
    --scenario) scenario="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --asan) mode=asan; shift ;;
    --release) mode=release; shift ;;
    *) die "unknown option $1 (see the header of $0)" ;;
  esac
done

host=$(rustc -vV | sed -n "s/^host: //p")
if [ "$mode" = asan ]; then
  step "building the stress binary with AddressSanitizer (target/asan)"
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address -Clink-arg=-Wl,--export-dynamic" \
    CARGO_TARGET_DIR="$MYCELIUM_ROOT/target/asan" \
    cargo build -p mycelium-ffi --target "$host" --example stress
  bin="$MYCELIUM_ROOT/target/asan/$host/debug/examples/stress"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
else
  step "building the stress binary (release)"
  cargo build -p mycelium-ffi --release --example stress
  bin="$MYCELIUM_ROOT/target/release/examples/stress"
fi

step "stress ($mode): $scenario, $iterations iterations each, ${timeout} s per iteration"
exec "$bin" "$scenario" --iterations "$iterations" --timeout "$timeout"
