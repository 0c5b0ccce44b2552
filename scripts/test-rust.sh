#!/usr/bin/env bash
# Rust suite: formatting, clippy with warnings as errors, every crate's tests (incl. proptest
# with >= 10k cases per property).
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
# the OCaml stubs crate (ocaml/stubs) runs ocamlopt/ocamlc from its build script
ensure_ocaml
# rust/mycelium-nats's tests start real NATS servers on loopback ports (Debian: /usr/sbin)
ensure_apt nats-server
# tests/auth.rs makes its TLS test certificates with openssl
ensure_apt openssl
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test (PROPTEST_CASES=${PROPTEST_CASES:=10000})"
export PROPTEST_CASES
cargo test --workspace --no-fail-fast
step "mycelium-transport without its default tokio feature (a sync-only user): no tokio in its tree, clippy clean, its sync tests pass"
if cargo tree -p mycelium-transport --no-default-features -e normal --prefix none | grep -E '^tokio '; then
  die "mycelium-transport --no-default-features still depends on tokio (above)"
fi
cargo clippy -p mycelium-transport --no-default-features --all-targets -- -D warnings
cargo test -p mycelium-transport --no-default-features
step "generated Rust types with the serde feature: derives compile clean, every vector round-trips through JSON"
cargo clippy -p mycelium-contracts --all-targets --features serde -- -D warnings
cargo test -p mycelium-contracts --features serde --test serde
step "sample examples/rust/pubsub.rs (exits non-zero unless it received what it published)"
cargo run -q -p mycelium-examples --example pubsub
step "sample examples/rust/request_reply.rs (serve and request; exits non-zero on a wrong answer)"
cargo run -q -p mycelium-examples --example request_reply
step "sample examples/rust/bridge.rs (two buses joined through a Unix socket)"
cargo run -q -p mycelium-examples --example bridge
