//! The generated OCaml module against the golden vectors and the Rust decoder, for
//! contracts.yaml and for tests/fixtures/exotic.yaml. `tests/conformance/check_ocaml.ml`
//! (any schema) and `check_ocaml_encode.ml` (contracts.yaml only), compiled with the module
//! under warnings-as-errors, do the checking (see their headers). Skipped when ocamlfind or
//! yojson is missing, unless MYCELIUM_REQUIRE_OCAML=1 (set by tests/conformance/run_ocaml.sh,
//! which installs them).

mod support;

use std::path::Path;
use std::process::Command;

use support::{
    assert_all_passed, contracts, error_cases, exotic, repo_root, required, run, verdicts_json,
    works, Case, TempDir,
};

/// Every warning except the stylistic ones dune also leaves off (4 fragile match, 9
/// missing record fields in a pattern, 40-42 disambiguation, 44-45 open shadowing, 70
/// missing mli).
const WARNINGS: &str = "+a-4-9-40-41-42-44-45-70";

fn ocaml_available() -> bool {
    if works(Path::new("ocamlfind"), &["query", "yojson"]) {
        return true;
    }
    assert!(
        !required("MYCELIUM_REQUIRE_OCAML"),
        "MYCELIUM_REQUIRE_OCAML=1 but `ocamlfind query yojson` fails"
    );
    eprintln!(
        "skipped: ocamlfind or yojson missing (tests/conformance/run_ocaml.sh installs them)"
    );
    false
}

/// Generates `contracts.ml`/`.mli` with the CLI into `dir` and compiles `checkers` (file
/// names under tests/conformance) against them; returns the executables.
fn build(case: &Case, dir: &TempDir, checkers: &[&str]) -> Vec<std::path::PathBuf> {
    run(Command::new(env!("CARGO_BIN_EXE_mycelium"))
        .args(["codegen", "--lang", "ocaml", "--schema"])
        .arg(&case.path)
        .arg("--out")
        .arg(dir.path("contracts.ml")));
    assert!(
        dir.path("contracts.mli").exists(),
        "codegen --out contracts.ml writes contracts.mli too"
    );
    checkers
        .iter()
        .map(|checker| {
            std::fs::copy(
                repo_root().join("tests/conformance").join(checker),
                dir.path(checker),
            )
            .expect("copy checker");
            let exe = dir.path(checker.trim_end_matches(".ml"));
            run(Command::new("ocamlfind")
                .current_dir(&dir.0)
                .args(["ocamlopt", "-package", "yojson", "-linkpkg", "-w", WARNINGS])
                .args([
                    "-warn-error",
                    "+a",
                    "contracts.mli",
                    "contracts.ml",
                    checker,
                    "-o",
                ])
                .arg(&exe));
            exe
        })
        .collect()
}

fn check_vectors(case: &Case, dir: &TempDir, exe: &Path) {
    let vectors = case.vectors(dir);
    let verdicts = dir.path("verdicts.json");
    std::fs::write(&verdicts, verdicts_json(&case.schema, &vectors)).expect("write verdicts");
    let stdout = run(Command::new(exe)
        .arg(&vectors)
        .arg("--verdicts")
        .arg(&verdicts)
        .args(error_cases(case)));
    println!("{}: {stdout}", case.label);
    assert_all_passed(&stdout);
}

#[test]
fn contracts_module_matches_the_vectors_and_the_rust_decoder() {
    if !ocaml_available() {
        return;
    }
    let case = contracts();
    let dir = TempDir::new("ocaml-contracts");
    let exes = build(&case, &dir, &["check_ocaml.ml", "check_ocaml_encode.ml"]);
    check_vectors(&case, &dir, &exes[0]);
    let stdout = run(&mut Command::new(&exes[1]));
    println!("encode: {stdout}");
    assert_all_passed(&stdout);
}

#[test]
fn exotic_module_matches_the_vectors_and_the_rust_decoder() {
    if !ocaml_available() {
        return;
    }
    let case = exotic();
    let dir = TempDir::new("ocaml-exotic");
    let exes = build(&case, &dir, &["check_ocaml.ml"]);
    check_vectors(&case, &dir, &exes[0]);
}

/// A schema with services: the generated service modules compile under warnings-as-errors
/// (module aliases in both the .ml and the .mli) and name the right messages.
#[test]
fn service_modules_compile_and_name_their_messages() {
    if !ocaml_available() {
        return;
    }
    let dir = TempDir::new("ocaml-services");
    run(Command::new(env!("CARGO_BIN_EXE_mycelium"))
        .args(["codegen", "--lang", "ocaml", "--schema"])
        .arg(repo_root().join("rust/mycelium-contracts/tests/schemas/services.yaml"))
        .arg("--out")
        .arg(dir.path("contracts.ml")));
    let checker = r#"let () =
  assert (Contracts.Pricing.name = "Pricing");
  assert (Contracts.Pricing.Request.type_id = Contracts.Quote.type_id);
  assert (Contracts.Pricing.Reply.name = "Price");
  assert (Contracts.Audit.Request.type_id = 2 && Contracts.Audit.Reply.type_id = 1);
  let q = Contracts.Pricing.Request.default in
  (match Contracts.Quote.decode (Contracts.Pricing.Request.encode q) with
   | Ok q' -> assert (q' = q)
   | Error e -> failwith e);
  assert (Contracts.services = [ ("Audit", 2, 1); ("Pricing", 1, 2) ]);
  print_string "ok"
"#;
    std::fs::write(dir.path("check_services.ml"), checker).expect("write checker");
    let exe = dir.path("check_services");
    run(Command::new("ocamlfind")
        .current_dir(&dir.0)
        .args(["ocamlopt", "-package", "yojson", "-linkpkg", "-w", WARNINGS])
        .args([
            "-warn-error",
            "+a",
            "contracts.mli",
            "contracts.ml",
            "check_services.ml",
            "-o",
        ])
        .arg(&exe));
    assert_eq!(run(&mut Command::new(&exe)), "ok");
}
