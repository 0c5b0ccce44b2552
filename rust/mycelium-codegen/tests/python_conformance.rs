//! The generated Python module against the golden vectors and the Rust decoder, for
//! contracts.yaml and for tests/fixtures/exotic.yaml: `tests/conformance/check_python.py`
//! does the checking (see its docstring), and `mypy --strict` must accept the module (when
//! the project venv has mypy; the Python suite sets MYCELIUM_REQUIRE_MYPY=1 so that it is
//! never skipped there).

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{
    assert_all_passed, contracts, error_cases, exotic, repo_root, required, run, verdicts_json,
    works, Case, TempDir,
};

fn python() -> PathBuf {
    std::env::var_os("MYCELIUM_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

/// Generates the module with the CLI, then runs the checker with vectors and verdicts.
fn check(case: &Case) {
    let dir = TempDir::new(&format!("python-{}", case.label));
    let module = dir.path(&format!("{}.py", case.label));
    run(Command::new(env!("CARGO_BIN_EXE_mycelium"))
        .args(["codegen", "--lang", "python", "--schema"])
        .arg(&case.path)
        .arg("--out")
        .arg(&module));
    let vectors = case.vectors(&dir);
    let verdicts = dir.path("verdicts.json");
    std::fs::write(&verdicts, verdicts_json(&case.schema, &vectors)).expect("write verdicts");
    let stdout = run(Command::new(python())
        .arg(repo_root().join("tests/conformance/check_python.py"))
        .arg(&module)
        .arg(&vectors)
        .arg("--verdicts")
        .arg(&verdicts)
        .args(error_cases(case)));
    println!("{}: {stdout}", case.label);
    assert_all_passed(&stdout);
}

#[test]
fn contracts_module_matches_the_vectors_and_the_rust_decoder() {
    check(&contracts());
}

#[test]
fn exotic_module_matches_the_vectors_and_the_rust_decoder() {
    check(&exotic());
}

#[test]
fn generated_modules_pass_mypy_strict() {
    // MYCELIUM_MYPY_PYTHON: an interpreter with mypy that is not the repository's venv (a Nix
    // check has no venv; scripts/lib.sh sets it there).
    let venv_python = std::env::var_os("MYCELIUM_MYPY_PYTHON")
        .map_or_else(|| repo_root().join(".venv/bin/python"), PathBuf::from);
    if !works(&venv_python, &["-c", "import mypy"]) {
        assert!(
            !required("MYCELIUM_REQUIRE_MYPY"),
            "MYCELIUM_REQUIRE_MYPY=1 but {} cannot import mypy",
            venv_python.display()
        );
        eprintln!(
            "skipped: no mypy in {} (scripts/lib.sh ensure_venv installs it)",
            venv_python.display()
        );
        return;
    }
    let dir = TempDir::new("python-mypy");
    let mut modules = Vec::new();
    for case in [contracts(), exotic()] {
        let module = dir.path(&format!("{}.py", case.label));
        std::fs::write(&module, mycelium_codegen::generate_python(&case.schema))
            .expect("write module");
        modules.push(module);
    }
    let stdout = run(Command::new(&venv_python)
        .args(["-m", "mypy", "--strict", "--no-incremental"])
        .arg("--cache-dir")
        .arg(dir.path("mypy-cache"))
        .args(&modules));
    assert!(stdout.contains("Success"), "mypy: {stdout}");
}

#[test]
fn generated_modules_are_python_3_9_syntax() {
    // The wheel supports Python 3.9; a newer parser can still reject syntax added after 3.9.
    let dir = TempDir::new("python-syntax");
    for case in [contracts(), exotic()] {
        let module = dir.path(&format!("{}.py", case.label));
        std::fs::write(&module, mycelium_codegen::generate_python(&case.schema))
            .expect("write module");
        run(Command::new(python())
            .arg("-c")
            .arg("import ast, sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3, 9))")
            .arg(&module));
    }
}
