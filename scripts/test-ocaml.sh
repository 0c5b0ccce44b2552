#!/usr/bin/env bash
# OCaml suite: the mycelium_native adapter built with dune (its Rust/C stubs through cargo), its
# alcotest suite, the same test executable under valgrind memcheck, and the embedding test (a
# Rust host running OCaml code in-process, sharing one bus).
source "$(dirname "$0")/lib.sh"
cd "$MYCELIUM_ROOT"
ensure_rust
ensure_ocaml
ensure_apt libyojson-ocaml-dev valgrind binutils gcc

step "dune build (stubs via cargo, generated contracts, library, tests, embedding object)"
(cd ocaml && dune build @install ./test/test_main.exe ./embed/embed_ocaml.exe.o)

step "generated opam file is up to date"
(cd ocaml && dune build ./mycelium_native.opam)
git diff --exit-code -- ocaml/mycelium_native.opam \
  || die "ocaml/mycelium_native.opam differs from what dune generates from dune-project; commit the regenerated file"

step "codegen conformance: generated OCaml vs the golden vectors and the Rust decoder"
bash tests/conformance/run_ocaml.sh

step "dune test (alcotest)"
(cd ocaml && dune test --force)

step "the OCaml test executable under valgrind memcheck"
# Suppressions cover OCaml 4.13 runtime noise only; ocaml/test/valgrind.supp explains each.
(cd ocaml/_build/default/test && valgrind -q --error-exitcode=3 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --suppressions="$MYCELIUM_ROOT/ocaml/test/valgrind.supp" ./test_main.exe)

step "embedding: Rust host + OCaml in one process (tests/embed-ocaml)"
# Ignored in plain `cargo test` because it needs the dune-built object; it fails, never skips,
# when the object is missing.
cargo test -p mycelium-embed-ocaml --test embed -- --ignored
