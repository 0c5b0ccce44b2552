#!/usr/bin/env bash
# Builds the Rust half of mycelium_native (ocaml/stubs) with cargo in the repository's workspace
# and copies the archive where dune expects it (the current directory, inside _build).
# dune runs this from _build/default/src; the repository root is four levels up unless
# MYCELIUM_ROOT says otherwise.
set -euo pipefail
out="$PWD"
root="${MYCELIUM_ROOT:-$(cd ../../../.. && pwd)}"
[ -f "$root/ocaml/stubs/Cargo.toml" ] || { echo "build_stubs.sh: $root is not the Mycelium repository (set MYCELIUM_ROOT)" >&2; exit 1; }
profile="${MYCELIUM_CARGO_PROFILE:-dev}"
dir=debug
[ "$profile" = dev ] || dir="$profile"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --quiet --profile "$profile" -p mycelium-ocaml-stubs)
cp "$target/$dir/libmycelium_ocaml_stubs.a" "$out/libmycelium_ocaml_stubs.a"
