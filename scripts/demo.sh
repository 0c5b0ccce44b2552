#!/usr/bin/env bash
# README's main job: builds and runs the demo. Extra arguments go to the demo (try --help).
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
step "building the demo (release)"
cargo build --release -q -p mycelium-demo
step "running: mycelium-demo $*"
exec "$MYCELIUM_ROOT/target/release/mycelium-demo" "$@"
