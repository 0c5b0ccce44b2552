#!/usr/bin/env bash
# Generates contracts.ml and contracts.mli (in the current directory, inside _build) from the repository's
# contracts.yaml with the `mycelium` CLI. dune runs this from _build/default/contracts.
set -euo pipefail
out="$PWD/contracts.ml"
root="${MYCELIUM_ROOT:-$(cd ../../../.. && pwd)}"
[ -f "$root/contracts.yaml" ] || { echo "gen_contracts.sh: $root has no contracts.yaml (set MYCELIUM_ROOT)" >&2; exit 1; }
(cd "$root" && cargo run --quiet -p mycelium-codegen --bin mycelium -- \
  codegen --lang ocaml --schema "$root/contracts.yaml" --out "$out")
