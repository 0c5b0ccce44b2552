//! Links the OCaml half of the sample, `ocaml/embed/embed_ocaml.exe.o`, built by dune with
//! `-output-complete-obj` (the OCaml code, the OCaml runtime, mycelium_native and its stubs).
//!
//! That object carries its own copy of Rust's std and of mycelium-ffi (inside the stubs), and
//! this crate links another: every global symbol of the object except the OCaml entry points
//! the host calls is made local (`objcopy --keep-global-symbols`), so the two copies cannot
//! clash. They still share handles, which is what the C ABI's function table is for.
//!
//! Without the object (plain `cargo test` on a machine that did not run dune) the crate builds
//! with the `mycelium_ocaml_embedded` cfg unset, and the host reports the object as missing at
//! run time, so the (ignored by default) test fails instead of silently passing.

use std::path::PathBuf;
use std::process::Command;

/// The only symbols of the object the host uses; see `src/ocaml.rs`.
const ENTRY_POINTS: &[&str] = &[
    "caml_startup",
    "caml_named_value",
    "caml_callback_exn",
    "caml_copy_nativeint",
    "caml_enter_blocking_section",
    "caml_leave_blocking_section",
    "caml_format_exception",
    "caml_stat_free",
    // COMDAT-grouped pointers to the unwinder's personality routine: the linker keeps one copy
    // of each group, so references must stay global to reach the copy it kept.
    "DW.ref.*",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mycelium_ocaml_embedded)");
    println!("cargo:rerun-if-env-changed=MYCELIUM_OCAML_EMBED_OBJ");
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let object = std::env::var_os("MYCELIUM_OCAML_EMBED_OBJ")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../ocaml/_build/default/embed/embed_ocaml.exe.o"));
    println!("cargo:rerun-if-changed={}", object.display());
    let missing = object.display().to_string();
    println!("cargo:rustc-env=MYCELIUM_OCAML_EMBED_OBJ_PATH={missing}");
    if !object.exists() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let keep = out.join("entry_points.txt");
    std::fs::write(&keep, ENTRY_POINTS.join("\n")).expect("write the objcopy symbol list");
    let local = out.join("embed_ocaml.o");
    run(Command::new("objcopy")
        .arg("--wildcard")
        .arg(format!("--keep-global-symbols={}", keep.display()))
        .arg(&object)
        .arg(&local));
    // Passed as an object rather than an archive: building the archive's symbol index makes
    // `ar` read the embedded LLVM bitcode of the Rust half, which some binutils builds reject.
    println!("cargo:rustc-link-arg={}", local.display());
    println!("cargo:rustc-link-arg=-lm");
    println!("cargo:rustc-cfg=mycelium_ocaml_embedded");
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); install binutils"));
    assert!(status.success(), "{cmd:?} failed with {status}");
}
