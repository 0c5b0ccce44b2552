//! The helper a `build.rs` calls to turn a schema into an `include!`-able Rust file.

use std::path::{Component, Path, PathBuf};

use mycelium_protocol::Schema;

use crate::error::CodegenError;
use crate::rust_gen::{generate_rust_with, rust_name_problems, serde_problems, RustOptions};

/// Generates Rust code for the schema at `schema_path` into `$OUT_DIR/out_file_name`
/// and returns the written path. In `build.rs`:
///
/// ```no_run
/// use std::path::Path;
///
/// fn main() {
///     let schema = Path::new("../../contracts.yaml");
///     if let Err(error) = mycelium_codegen::build_rs_generate(schema, "contracts.rs") {
///         eprintln!("error: {error}");
///         std::process::exit(1);
///     }
/// }
/// ```
///
/// and in the crate (which must depend on `mycelium-protocol`):
/// `include!(concat!(env!("OUT_DIR"), "/contracts.rs"));`
///
/// When the crate running the build script has a `serde` feature and it is enabled
/// (`CARGO_FEATURE_SERDE`), the generated types also derive `serde::Serialize` and
/// `serde::Deserialize`; declare it as `serde = ["dep:serde"]` with
/// `serde = { version = "1", features = ["derive"], optional = true }`.
///
/// Prints `cargo:rerun-if-changed` for the schema first, so fixing a broken schema
/// triggers a rebuild. A relative `schema_path` is resolved against the package root
/// (cargo runs build scripts there). The file is only rewritten when its content
/// changes, which keeps incremental builds incremental.
///
/// # Errors
/// A missing or invalid schema (the error names the file), a schema Rust cannot
/// express, a non-plain `out_file_name`, no `OUT_DIR`, or a failed write.
pub fn build_rs_generate(schema_path: &Path, out_file_name: &str) -> Result<PathBuf, CodegenError> {
    println!("cargo:rerun-if-changed={}", schema_path.display());
    let out_dir = std::env::var_os("OUT_DIR").ok_or_else(|| CodegenError::NoOutDir {
        schema: schema_path.to_path_buf(),
    })?;
    let options = RustOptions {
        serde: std::env::var_os("CARGO_FEATURE_SERDE").is_some(),
    };
    generate_into_with(schema_path, Path::new(&out_dir), out_file_name, &options)
}

/// [`build_rs_generate`] with an explicit output directory (no environment, no cargo
/// directives), for tools and tests.
///
/// # Errors
/// As for [`build_rs_generate`], minus the `OUT_DIR` case.
pub fn generate_into(
    schema_path: &Path,
    out_dir: &Path,
    out_file_name: &str,
) -> Result<PathBuf, CodegenError> {
    generate_into_with(schema_path, out_dir, out_file_name, &RustOptions::default())
}

/// [`generate_into`] with explicit generator options.
///
/// # Errors
/// As for [`generate_into`], plus a schema the chosen options cannot express.
pub fn generate_into_with(
    schema_path: &Path,
    out_dir: &Path,
    out_file_name: &str,
    options: &RustOptions,
) -> Result<PathBuf, CodegenError> {
    if !is_plain_file_name(out_file_name) {
        return Err(CodegenError::BadOutFileName(out_file_name.to_owned()));
    }
    let schema = Schema::from_path(schema_path)?;
    let mut problems = rust_name_problems(&schema);
    if options.serde {
        problems.extend(serde_problems(&schema));
    }
    if !problems.is_empty() {
        return Err(CodegenError::Unsupported {
            schema: schema_path.to_path_buf(),
            lang: "Rust",
            problems,
        });
    }
    let code = generate_rust_with(&schema, options);
    let out_path = out_dir.join(out_file_name);
    let unchanged = std::fs::read(&out_path).is_ok_and(|old| old == code.as_bytes());
    if !unchanged {
        std::fs::write(&out_path, code).map_err(|source| CodegenError::Write {
            schema: schema_path.to_path_buf(),
            path: out_path.clone(),
            source,
        })?;
    }
    Ok(out_path)
}

fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.contains(['/', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mycelium-codegen-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const SCHEMA: &str =
        "schema: t\nversion: 1\nmessages:\n  Ping:\n    id: 1\n    fields:\n      - seq: u64\n";

    #[test]
    fn writes_generated_code_and_returns_its_path() {
        let dir = temp_dir("write");
        let schema = dir.join("s.yaml");
        std::fs::write(&schema, SCHEMA).unwrap();
        let path = generate_into(&schema, &dir, "out.rs").unwrap();
        assert_eq!(path, dir.join("out.rs"));
        let code = std::fs::read_to_string(&path).unwrap();
        assert!(code.contains("pub struct Ping {"), "{code}");
        // A second run with the same schema leaves the same content.
        generate_into(&schema, &dir, "out.rs").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), code);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn schema_errors_name_the_file() {
        let dir = temp_dir("bad");
        let schema = dir.join("broken.yaml");
        std::fs::write(&schema, SCHEMA.replace("u64", "u65")).unwrap();
        let err = generate_into(&schema, &dir, "out.rs")
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.yaml"), "{err}");
        assert!(err.contains("u65"), "{err}");
        let missing = generate_into(&dir.join("nope.yaml"), &dir, "out.rs")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.yaml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_output_names_that_leave_out_dir() {
        for name in ["", "../x.rs", "a/b.rs", "/abs.rs", ".", ".."] {
            assert!(
                matches!(
                    generate_into(Path::new("unused.yaml"), Path::new("."), name),
                    Err(CodegenError::BadOutFileName(_))
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn rust_reserved_message_names_are_reported() {
        let dir = temp_dir("reserved");
        let schema = dir.join("self.yaml");
        std::fs::write(&schema, SCHEMA.replace("Ping", "Self")).unwrap();
        let err = generate_into(&schema, &dir, "out.rs").unwrap_err();
        assert!(matches!(err, CodegenError::Unsupported { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("self.yaml") && text.contains("message Self"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
