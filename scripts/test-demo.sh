#!/usr/bin/env bash
# Demo suite: README's main job end to end. Builds the demo's Python and OCaml parts as
# scripts/demo.sh does, type-checks the Python strategy, and runs the polyglot test: Rust ticks
# reach the Python strategy, its orders reach the OCaml risk engine, its decisions reach the Rust
# book, and every count reconciles with the bus metrics. A missing part (adapter not installed,
# OCaml object not linked) fails the suite with the demo's own error message; nothing is skipped.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-demo.sh"
cd "$MYCELIUM_ROOT"
ensure_demo_tools
build_demo_parts dev

step "the Python strategy under mypy --strict (against the generated contracts module)"
contracts_dir="$MYCELIUM_ROOT/target/python-contracts"
mkdir -p "$contracts_dir"
cargo run -q -p mycelium-codegen -- codegen --lang python --schema contracts.yaml \
  --out "$contracts_dir/contracts.py"
MYPYPATH="$contracts_dir" "$MYCELIUM_PY" -m mypy --strict --no-incremental \
  examples/python/strategy.py

step "polyglot pipeline: Rust market -> Python strategy -> OCaml risk -> Rust book (ignored tests, run here)"
MYCELIUM_VENV="$MYCELIUM_VENV" cargo test -p mycelium-demo --test polyglot -- --ignored

step "the demo binary with its defaults, briefly (it exits non-zero unless the counts reconcile)"
MYCELIUM_VENV="$MYCELIUM_VENV" cargo run -q -p mycelium-demo -- --duration 1

step "the demo over NATS: Python strategy in one process, OCaml risk in another (run_demo_over_nats; both must reconcile)"
cargo build -q -p mycelium-demo
(run_demo_over_nats "$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/mycelium-demo" --duration 1 --quiet)

step "the demo's rate: --rate 10 --duration 1 publishes exactly 10 ticks (was 9: off by one)"
published=$(cargo run -q -p mycelium-demo -- --rate 10 --duration 1 --strategy rust --risk rust \
  --json --quiet | python3 -c 'import json, sys; print(json.load(sys.stdin)["market"]["published"])')
[ "$published" = 10 ] || die "--rate 10 --duration 1 published $published ticks, not 10"

step "bash scripts/demo.sh --help needs no venv, OCaml or dune (it printed help only after building them all)"
help=$(MYCELIUM_VENV=/nonexistent/venv bash scripts/demo.sh --help 2>/dev/null)
grep -q -- "--rate" <<<"$help" || die "scripts/demo.sh --help did not print the demo's flags"
[ ! -e /nonexistent/venv ] || die "scripts/demo.sh --help made a venv"
