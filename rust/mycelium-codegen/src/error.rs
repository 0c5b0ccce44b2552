//! Errors of the generators and the build-script helper.

use std::path::PathBuf;

use mycelium_protocol::SchemaError;

/// Why code could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The schema could not be read or is invalid; the message names the file.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The schema is valid but cannot be expressed in the target language.
    #[error("{}: cannot generate {lang} code:\n  - {}", schema.display(), problems.join("\n  - "))]
    Unsupported {
        schema: PathBuf,
        lang: &'static str,
        problems: Vec<String>,
    },
    /// `build_rs_generate` was called outside a build script.
    #[error("OUT_DIR is not set: build_rs_generate({}) must be called from a build script (build.rs)", schema.display())]
    NoOutDir { schema: PathBuf },
    /// The output name would escape OUT_DIR or is not a file name.
    #[error("output file name '{0}' must be a plain file name such as \"contracts.rs\" (no directories)")]
    BadOutFileName(String),
    /// Writing the generated file failed.
    #[error("cannot write code generated from {} to {}: {source}", schema.display(), path.display())]
    Write {
        schema: PathBuf,
        path: PathBuf,
        source: std::io::Error,
    },
}
