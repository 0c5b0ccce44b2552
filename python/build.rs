//! `cargo test` links this crate's test binaries against libpython (maturin's extension-module
//! builds do not); the rpath lets them find a libpython outside the system library path, such
//! as a pyenv or venv interpreter's.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
