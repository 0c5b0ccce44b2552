//! Mycelium code generators and the pieces of the `mycelium` CLI that other crates reuse.
//!
//! - [`generate_rust`]: Rust structs implementing `mycelium_protocol::Message`.
//! - [`build_rs_generate`]: the one-call helper for a `build.rs`.
//! - [`vectors`]: the deterministic conformance test vectors (`tests/vectors/contracts.json`).
//! - [`generate_python`]: one standard-library-only Python module of dataclasses.
//! - [`generate_ocaml`] / [`generate_ocaml_interface`]: an OCaml `.ml` and its `.mli`.
//! - [`Lang`]: the target languages; [`generate`], [`companion_files`] and
//!   [`name_problems`] dispatch on it.

mod build_support;
mod code_writer;
mod error;
mod lang;
mod ocaml_gen;
mod python_gen;
mod rust_gen;
mod topo;

pub use build_support::{build_rs_generate, generate_into, generate_into_with};
pub use error::CodegenError;
pub use lang::{Lang, LangError};
pub use ocaml_gen::{generate_ocaml, generate_ocaml_interface, ocaml_name_problems};
pub use python_gen::{generate_python, python_name_problems};
pub use rust_gen::{
    generate_rust, generate_rust_with, rust_name_problems, serde_problems, RustOptions,
};

/// Generates code for `schema` in `lang`. Check [`name_problems`] first: a schema with
/// problems yields code that refuses to compile.
pub fn generate(lang: Lang, schema: &mycelium_protocol::Schema) -> String {
    match lang {
        Lang::Rust => generate_rust(schema),
        Lang::Python => generate_python(schema),
        Lang::OCaml => generate_ocaml(schema),
    }
}

/// Files that accompany the output of [`generate`], as `(extension, contents)`: the
/// interface (`mli`) for OCaml, nothing for the other languages. Written next to the main
/// file with its extension replaced.
pub fn companion_files(
    lang: Lang,
    schema: &mycelium_protocol::Schema,
) -> Vec<(&'static str, String)> {
    match lang {
        Lang::OCaml => vec![("mli", generate_ocaml_interface(schema))],
        Lang::Rust | Lang::Python => Vec::new(),
    }
}

/// Names in a valid schema that `lang` cannot use (e.g. a message called `Self` in
/// Rust); empty when [`generate`] will produce working code.
pub fn name_problems(lang: Lang, schema: &mycelium_protocol::Schema) -> Vec<String> {
    match lang {
        Lang::Rust => rust_name_problems(schema),
        Lang::Python => python_name_problems(schema),
        Lang::OCaml => ocaml_name_problems(schema),
    }
}

pub mod vectors;
