//! The demo binary embeds CPython (PyO3) and links the OCaml risk engine,
//! `ocaml/demo/risk.exe.o`, when dune has built it (scripts/demo.sh does). Without the object
//! the demo still builds (a plain `cargo build --workspace`) and refuses `--risk ocaml` with a
//! message saying how to get it.

use std::path::PathBuf;

use mycelium_ocaml_guest::link::ObjectLink;

fn main() {
    // The rpath lets the binary find libpython when it is not in the system library path (a
    // pyenv interpreter's, say).
    pyo3_build_config::add_libpython_rpath_link_args();
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    // Two levels up: the repository root, named plainly in messages.
    let repo = manifest.ancestors().nth(2).unwrap_or(&manifest);
    let link = ObjectLink {
        env_override: "MYCELIUM_OCAML_DEMO_OBJ",
        default_path: repo.join("ocaml/_build/default/demo/risk.exe.o"),
        how_to_build: "`bash scripts/demo.sh` builds it with dune and rebuilds the demo \
                       (or run the demo with --risk rust)",
    };
    if let Err(e) = link.emit() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
