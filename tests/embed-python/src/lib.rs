//! Helpers for a Rust host that runs Python code in-process on its own `MessageBus`.
//!
//! The host makes a `mycelium_ffi::Runtime` from its bus, starts CPython (PyO3's
//! `auto-initialize`), makes the pip-installed `mycelium_native` package and the generated
//! messages importable ([`PythonGuest::prepare`]), and hands `runtime.address()` to
//! `mycelium_native.Runtime.attach`. From then on Rust and Python see each other's messages.
//!
//! Used by the embedding test (`tests/embed.rs`) and the example (`examples/embed_python.rs`).

use std::path::{Path, PathBuf};

use mycelium_protocol::Schema;
use pyo3::prelude::*;

/// Why the Python side could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("the Python venv {0} has no lib/python3.*/site-packages; create it with scripts/test-python.sh")]
    NoSitePackages(PathBuf),
    #[error(
        "mycelium_native is not importable from {site_packages}: build and install it into that venv \
         first (scripts/test-python.sh runs `maturin develop`). Python said: {cause}"
    )]
    AdapterMissing {
        site_packages: PathBuf,
        cause: String,
    },
    #[error("could not write the generated Python module to {path}: {source}")]
    WriteModule {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read the schema {path}: {message}")]
    Schema { path: PathBuf, message: String },
    #[error("Python error: {0}")]
    Python(#[from] PyErr),
}

/// The repository root (this crate lives in `tests/embed-python`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example schema, `contracts.yaml` at the repository root.
pub fn load_contracts() -> Result<Schema, EmbedError> {
    let path = repo_root().join("contracts.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| EmbedError::Schema {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Schema::from_yaml_str(&text).map_err(|e| EmbedError::Schema {
        path,
        message: e.to_string(),
    })
}

/// The venv `mycelium_native` is installed in: `$MYCELIUM_VENV`, else `<repo>/.venv` (where
/// scripts/lib.sh creates it).
pub fn default_venv() -> PathBuf {
    std::env::var_os("MYCELIUM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// `<venv>/lib/python3.X/site-packages`.
pub fn site_packages(venv: &Path) -> Result<PathBuf, EmbedError> {
    let lib = venv.join("lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages"))
        .find(|p| {
            p.is_dir()
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
        });
    found.ok_or_else(|| EmbedError::NoSitePackages(venv.to_path_buf()))
}

/// Writes the Python module generated from `schema` as `<dir>/<module>.py`.
pub fn write_python_module(
    schema: &Schema,
    dir: &Path,
    module: &str,
) -> Result<PathBuf, EmbedError> {
    let path = dir.join(format!("{module}.py"));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, mycelium_codegen::generate_python(schema)))
        .map_err(|source| EmbedError::WriteModule {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// What the embedded interpreter needs to find.
pub struct PythonGuest {
    pub site_packages: PathBuf,
    pub module_dir: PathBuf,
}

impl PythonGuest {
    /// Adds the venv's site-packages (processing its `.pth` files, which is how an editable
    /// `maturin develop` install is found) and `module_dir` to `sys.path`, then imports
    /// `mycelium_native` so that a missing adapter fails here, with a clear message.
    pub fn prepare(&self, py: Python<'_>) -> Result<(), EmbedError> {
        let site = py.import("site")?;
        site.call_method1(
            "addsitedir",
            (self.site_packages.to_string_lossy().as_ref(),),
        )?;
        let sys_path = py.import("sys")?.getattr("path")?;
        sys_path.call_method1("insert", (0, self.module_dir.to_string_lossy().as_ref()))?;
        py.import("mycelium_native")
            .map_err(|e| EmbedError::AdapterMissing {
                site_packages: self.site_packages.clone(),
                cause: e.to_string(),
            })?;
        Ok(())
    }
}
