//! The Python strategy: `examples/python/strategy.py` running in this process's interpreter.
//!
//! CPython starts on first use (PyO3's `auto-initialize`); `mycelium-embed-python` makes the
//! venv's `mycelium_native` and the generated `contracts` module importable. The strategy
//! attaches to the bus through the address of our C ABI handle, and from then on its callback
//! runs on a delivery thread of its subscription, taking the GIL per batch. This thread takes
//! the GIL only to read the strategy's counters and to close it.

use std::path::{Path, PathBuf};

use mycelium_embed_python::{default_venv, site_packages, write_python_module, PythonGuest};
use mycelium_protocol::Schema;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{Counts, Language, QueueSettings, Stage};
use crate::error::DemoError;

pub struct PythonStrategy {
    /// The `Strategy` object `start` returned; `None` once closed.
    strategy: Option<Py<PyAny>>,
    /// Where the generated `contracts` module was written (removed on drop).
    module_dir: PathBuf,
}

impl PythonStrategy {
    /// Loads `file` (a module with `start(address, *, order_every, capacity, policy)`) and
    /// starts it on the bus behind `address`.
    pub fn start(
        file: &Path,
        schema: &Schema,
        address: usize,
        queue: QueueSettings,
        order_every: u64,
    ) -> Result<PythonStrategy, DemoError> {
        let (dir, module) = split_module_path(file)?;
        let site_packages = site_packages(&default_venv())?;
        let module_dir = std::env::temp_dir().join(format!("mycelium-demo-{}", std::process::id()));
        write_python_module(schema, &module_dir, "contracts")?;
        let mut stage = PythonStrategy {
            strategy: None,
            module_dir,
        };
        let guest = PythonGuest {
            site_packages,
            module_dir: stage.module_dir.clone(),
        };
        let strategy = Python::attach(|py| -> Result<Py<PyAny>, DemoError> {
            guest.prepare(py)?;
            let run = || -> PyResult<Py<PyAny>> {
                let sys_path = py.import("sys")?.getattr("path")?;
                sys_path.call_method1("insert", (0, dir.to_string_lossy().as_ref()))?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("order_every", order_every)?;
                kwargs.set_item("capacity", queue.capacity)?;
                kwargs.set_item("policy", queue.policy.python_name())?;
                let started =
                    py.import(module.as_str())?
                        .call_method("start", (address,), Some(&kwargs))?;
                Ok(started.unbind())
            };
            run().map_err(|e| python_error(py, &e))
        })?;
        stage.strategy = Some(strategy);
        Ok(stage)
    }
}

impl Stage for PythonStrategy {
    fn label(&self) -> &'static str {
        "python-strategy"
    }

    fn language(&self) -> Language {
        Language::Python
    }

    fn counts(&mut self) -> Result<Counts, DemoError> {
        let Some(strategy) = &self.strategy else {
            return Err(DemoError::Closed(self.label()));
        };
        Python::attach(|py| {
            let (handled, sent): (u64, u64) = strategy
                .call_method0(py, "stats")
                .and_then(|v| v.extract(py))
                .map_err(|e| python_error(py, &e))?;
            Ok(Counts { handled, sent })
        })
    }

    fn close(&mut self) -> Result<(), DemoError> {
        let Some(strategy) = self.strategy.take() else {
            return Ok(());
        };
        // close() releases the GIL while it waits for a running callback.
        Python::attach(|py| {
            strategy
                .call_method0(py, "close")
                .map(drop)
                .map_err(|e| python_error(py, &e))
        })
    }
}

impl Drop for PythonStrategy {
    fn drop(&mut self) {
        let _ = self.close();
        let _ = std::fs::remove_dir_all(&self.module_dir);
    }
}

/// `dir/name.py` -> (`dir`, `name`), the sys.path entry and the module to import.
fn split_module_path(file: &Path) -> Result<(PathBuf, String), DemoError> {
    let bad = |why: &str| DemoError::StrategyFile {
        path: file.to_path_buf(),
        why: why.to_owned(),
    };
    if !file.is_file() {
        return Err(bad("no such file"));
    }
    if file.extension().and_then(|e| e.to_str()) != Some("py") {
        return Err(bad("not a .py file"));
    }
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
        .ok_or_else(|| bad("its name is not a Python module name"))?;
    let dir = file
        .canonicalize()
        .ok()
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .ok_or_else(|| bad("cannot resolve its directory"))?;
    Ok((dir, name.to_owned()))
}

/// The exception with its traceback, as Python would print it.
fn python_error(py: Python<'_>, e: &PyErr) -> DemoError {
    let traceback = e
        .traceback(py)
        .and_then(|t| t.format().ok())
        .unwrap_or_default();
    DemoError::Python(format!("{traceback}{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strategy_file_must_be_an_existing_python_module() {
        let dir = std::env::temp_dir().join(format!("mycelium-demo-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let good = dir.join("my_strategy.py");
        std::fs::write(&good, "").expect("write");
        let (d, name) = split_module_path(&good).expect("a module path");
        assert_eq!(name, "my_strategy");
        assert_eq!(d, dir.canonicalize().expect("canonical"));

        let dashed = dir.join("my-strategy.py");
        std::fs::write(&dashed, "").expect("write");
        let err = split_module_path(&dashed)
            .expect_err("not importable")
            .to_string();
        assert!(err.contains("module name"), "{err}");
        let err = split_module_path(&dir.join("absent.py"))
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("absent.py") && err.contains("no such file"),
            "{err}"
        );
        let txt = dir.join("notes.txt");
        std::fs::write(&txt, "").expect("write");
        assert!(split_module_path(&txt).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
