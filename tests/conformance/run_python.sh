#!/usr/bin/env bash
# Python conformance of `mycelium codegen --lang python`, for the Python suite (works on its
# own too). Ensures the project venv (with mypy), then runs the Rust test that generates the
# module for contracts.yaml and rust/mycelium-codegen/tests/fixtures/exotic.yaml, runs
# tests/conformance/check_python.py on it (golden vectors, hostile input, the Rust decoder's
# verdicts on mutated payloads) and `mypy --strict`, which may not be skipped here.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
ensure_venv
step "Python codegen conformance"
MYCELIUM_REQUIRE_MYPY=1 cargo test -p mycelium-codegen --test python_conformance -- --nocapture
