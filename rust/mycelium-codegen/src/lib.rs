//! Mycelium code generators and the pieces of the `mycelium` CLI that other crates reuse.
//!
//! - [`generate_rust`]: Rust structs implementing `mycelium_protocol::Message`.
//! - [`build_rs_generate`]: the one-call helper for a `build.rs`.
//! - [`vectors`]: the deterministic conformance test vectors (`tests/vectors/contracts.json`).
//! - [`Lang`]: the target languages; Python and OCaml generators are planned
//!   (`python_gen.rs`, `ocaml_gen.rs`) and rejected as "not built yet" until then.

mod build_support;
mod code_writer;
mod error;
mod lang;
mod rust_gen;

pub use build_support::{build_rs_generate, generate_into};
pub use error::CodegenError;
pub use lang::{Lang, LangError};
pub use rust_gen::{generate_rust, rust_name_problems};

/// Generates code for `schema` in `lang`. Check [`name_problems`] first: a schema with
/// problems yields code that refuses to compile.
pub fn generate(lang: Lang, schema: &mycelium_protocol::Schema) -> String {
    match lang {
        Lang::Rust => generate_rust(schema),
    }
}

/// Names in a valid schema that `lang` cannot use (e.g. a message called `Self` in
/// Rust); empty when [`generate`] will produce working code.
pub fn name_problems(lang: Lang, schema: &mycelium_protocol::Schema) -> Vec<String> {
    match lang {
        Lang::Rust => rust_name_problems(schema),
    }
}

pub mod vectors;
