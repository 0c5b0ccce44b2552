//! Compiles the C half of the stubs (`c/mycelium_native_threads.c`: thread registration, the
//! runtime lock on delivery threads, GC roots) into this crate, so that the staticlib dune links
//! and the rlib a Rust host links both carry it and no link order can separate the two halves.

use std::path::PathBuf;
use std::process::Command;

/// The OCaml standard library directory, which holds the `caml/*.h` headers.
fn ocaml_where() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("OCAML_WHERE_PATH") {
        return Ok(PathBuf::from(path));
    }
    let ocamlc = std::env::var("OCAMLC").unwrap_or_else(|_| "ocamlc".to_string());
    let out = Command::new(&ocamlc)
        .arg("-where")
        .output()
        .map_err(|e| format!("cannot run `{ocamlc} -where` ({e}); install OCaml (scripts/lib.sh: ensure_ocaml) or set OCAML_WHERE_PATH"))?;
    if !out.status.success() {
        return Err(format!(
            "`{ocamlc} -where` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn main() {
    println!("cargo:rerun-if-changed=c/mycelium_native_threads.c");
    println!("cargo:rerun-if-env-changed=OCAML_WHERE_PATH");
    println!("cargo:rerun-if-env-changed=OCAMLC");
    let include = match ocaml_where() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    cc::Build::new()
        .file("c/mycelium_native_threads.c")
        .include(&include)
        .flag_if_supported("-Wextra")
        .warnings_into_errors(true)
        .compile("mycelium_native_threads");
}
