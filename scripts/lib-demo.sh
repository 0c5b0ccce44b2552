# The demo's Python and OCaml parts: shared by demo.sh (the main job) and test-demo.sh (its
# end-to-end test). Sourced after lib.sh, not run.

# ensure_demo_tools: installs what building the parts needs (Debian packages, the venv).
ensure_demo_tools() {
  ensure_rust
  ensure_venv
  ensure_ocaml
  # libpython3-dev: the demo binary links libpython (PyO3); binutils: objcopy for the OCaml
  # object (rust/mycelium-ocaml-guest); gcc: the C compiler dune and cargo link with.
  ensure_apt libpython3-dev binutils gcc
}

# build_demo_parts PROFILE: builds mycelium_native into the venv (in Nix: uses the flake's) (the Python strategy imports
# it) and the OCaml risk engine's object (ocaml/demo/risk.exe.o, linked into the demo binary
# by its build script). PROFILE (dev or release) is the cargo profile of the OCaml stubs.
build_demo_parts() {
  local profile="$1"
  install_python_extension
  step "OCaml: the risk engine object (dune build ./demo/risk.exe.o, stubs in cargo profile $profile)"
  (cd "$MYCELIUM_ROOT/ocaml" && MYCELIUM_CARGO_PROFILE="$profile" dune build ./demo/risk.exe.o)
}
