#!/usr/bin/env bash
# OCaml conformance of `mycelium codegen --lang ocaml`, for the OCaml suite (works on its own
# too). Installs OCaml and yojson when missing, then runs the Rust test that generates the
# module for contracts.yaml and rust/mycelium-codegen/tests/fixtures/exotic.yaml, compiles
# tests/conformance/check_ocaml*.ml against it with warnings as errors, and checks it
# against the golden vectors and the Rust decoder's verdicts on mutated payloads.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
ensure_ocaml
ensure_apt libyojson-ocaml-dev
step "OCaml codegen conformance"
MYCELIUM_REQUIRE_OCAML=1 cargo test -p mycelium-codegen --test ocaml_conformance -- --nocapture
