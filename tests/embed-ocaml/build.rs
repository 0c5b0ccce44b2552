//! Links the OCaml half of the sample, `ocaml/embed/embed_ocaml.exe.o`, built by dune with
//! `-output-complete-obj` (the OCaml code, the OCaml runtime, mycelium_native and its stubs);
//! `mycelium_ocaml_guest::link` explains how. Without the object the crate builds with the
//! `mycelium_ocaml_embedded` cfg unset and the host reports the object as missing at run time,
//! so the (ignored by default) test fails instead of silently passing.

use std::path::PathBuf;

use mycelium_ocaml_guest::link::ObjectLink;

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    // Two levels up: the repository root, named plainly in messages.
    let repo = manifest.ancestors().nth(2).unwrap_or(&manifest);
    let link = ObjectLink {
        env_override: "MYCELIUM_OCAML_EMBED_OBJ",
        default_path: repo.join("ocaml/_build/default/embed/embed_ocaml.exe.o"),
        how_to_build:
            "in ocaml/ run `dune build ./embed/embed_ocaml.exe.o` (scripts/test-ocaml.sh does), then rebuild this crate",
    };
    if let Err(e) = link.emit() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
