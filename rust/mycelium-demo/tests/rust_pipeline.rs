//! The Rust-only pipeline end to end, through the binary (runs in every `cargo test`).

mod common;

use common::{assert_pipeline_reconciles, run_demo};

#[test]
fn the_rust_only_pipeline_reconciles() {
    let report = run_demo(&[
        "--strategy",
        "rust",
        "--risk",
        "rust",
        "--duration",
        "1",
        "--rate",
        "20000",
    ]);
    assert_pipeline_reconciles(
        &report,
        ["rust-strategy", "rust-risk", "rust-book"],
        ["rust", "rust", "rust"],
    );
}

#[test]
fn dropped_ticks_are_accounted_for() {
    // As fast as possible into queues of 16 that drop their oldest message: the strategy cannot
    // keep up with the market, and what it lost is counted, so the run still reconciles.
    let report = run_demo(&[
        "--strategy",
        "rust",
        "--risk",
        "rust",
        "--duration",
        "0.5",
        "--rate",
        "0",
        "--policy",
        "drop_oldest",
        "--capacity",
        "16",
    ]);
    assert_eq!(
        report["reconciled"], true,
        "problems: {}",
        report["problems"]
    );
    let strategy = &report["stages"][0];
    let handled = common::u(&strategy["handled"]);
    let dropped = common::u(&strategy["subscription"]["dropped"]);
    assert_eq!(handled + dropped, common::u(&report["market"]["published"]));
}

/// A binary built without the dune object refuses `--risk ocaml` up front, saying how to get it.
#[cfg(not(mycelium_ocaml_embedded))]
#[test]
fn without_the_ocaml_object_risk_ocaml_is_refused_with_the_way_to_get_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mycelium-demo"))
        .args(["--risk", "ocaml", "--strategy", "rust", "--duration", "0.1"])
        .output()
        .expect("start the demo binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("risk.exe.o"), "{stderr}");
    assert!(stderr.contains("scripts/demo.sh"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran, nothing reported");
}
