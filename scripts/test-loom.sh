#!/usr/bin/env bash
# Loom model checks of the concurrent core (issue 12): every interleaving of the modelled threads,
# up to LOOM_MAX_PREEMPTIONS preemptions (default 2; 3 takes minutes per model on 2 cores).
#   - mycelium-wait-graph, src/loom_model.rs: the subscription lifecycle of the C ABI (callbacks
#     unsubscribing each other, a callback destroying the runtime, unsubscribe from an
#     application thread). A crate of its own so that this build is seconds, not the whole C ABI.
#   - mycelium-transport, tests/loom.rs: the doorbell (publish vs sleeper, close vs sleeper) and
#     the DropOldest queue's eviction and unsubscribe racing close (~4 s at 2 preemptions, ~70 s
#     at 3).
# Built with --cfg mycelium_loom (not cfg(loom): that also switches tokio into its own loom mode)
# in its own target directory, so the ordinary build is not rebuilt with other flags.
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust

export RUSTFLAGS="--cfg mycelium_loom"
export CARGO_TARGET_DIR="${MYCELIUM_LOOM_TARGET:-$MYCELIUM_ROOT/target/loom}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

step "loom: the subscription lifecycle (mycelium-wait-graph src/loom_model.rs, preemptions ≤ $LOOM_MAX_PREEMPTIONS)"
cargo test -p mycelium-wait-graph --release

step "loom: the doorbell and the subscriber queue's close/eviction (mycelium-transport tests/loom.rs, preemptions ≤ $LOOM_MAX_PREEMPTIONS)"
cargo test -p mycelium-transport --release --test loom
