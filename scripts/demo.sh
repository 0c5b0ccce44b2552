#!/usr/bin/env bash
# README's main job. Installs what is missing (Debian packages, the Python venv with maturin,
# OCaml and dune), builds the demo's Python and OCaml parts and the demo itself (release), and
# runs it: a Rust service whose bus carries trade ticks to a Python strategy, orders to OCaml
# risk logic and decisions back to Rust, all in one process.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --duration 10 --rate 100000`;
# `bash scripts/demo.sh --help` lists them. `--over-nats` (this script's own flag) runs it in
# two processes joined over a NATS server it starts: the risk service in one, the rest in the
# other (run_demo_over_nats in scripts/lib-demo.sh).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-demo.sh"
cd "$MYCELIUM_ROOT"
# --help/--version need only the demo binary (it builds without the Python and OCaml parts), not
# the venv, OCaml and dune; an unoptimised build is the quickest to make.
for arg in "$@"; do
  case "$arg" in
    -h|--help|-V|--version)
      { ensure_rust; ensure_apt libpython3-dev gcc; cargo build -q -p mycelium-demo; } >&2
      exec "${CARGO_TARGET_DIR:-$MYCELIUM_ROOT/target}/debug/mycelium-demo" "$@" ;;
  esac
done
over_nats=0
demo_args=()
for arg in "$@"; do
  if [ "$arg" = --over-nats ]; then over_nats=1; else demo_args+=("$arg"); fi
done
# Build chatter goes to stderr: stdout carries only the demo's report (`--json | jq` works).
{
  ensure_demo_tools
  build_demo_parts release
  step "building the demo (cargo build --release -p mycelium-demo)"
  cargo build --release -q -p mycelium-demo
  [ "$over_nats" = 1 ] || step "running: mycelium-demo $*"
} >&2
if [ "$over_nats" = 1 ]; then
  run_demo_over_nats "$MYCELIUM_ROOT/target/release/mycelium-demo" ${demo_args[@]+"${demo_args[@]}"}
  exit 0
fi
MYCELIUM_VENV="$MYCELIUM_VENV" exec "$MYCELIUM_ROOT/target/release/mycelium-demo" "$@"
