//! The host binaries embed libpython; the rpath lets them find it when it is not in the system
//! library path (a pyenv or venv interpreter's, say).
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
