//! The demo as the README runs it: Rust market, Python strategy, OCaml risk and Rust book in one
//! process, on one bus.
//!
//! Needs mycelium_native installed in the venv and the dune-built OCaml object linked into the
//! binary, so it is `#[ignore]`d in a plain `cargo test`; scripts/test-demo.sh builds both and
//! runs it with `--ignored`. A missing part makes the demo exit with an error, and this test
//! fail with that error: it never skips.

mod common;

use common::{assert_pipeline_reconciles, run_demo};

#[test]
#[ignore = "needs the Python adapter and the OCaml object: scripts/test-demo.sh runs it with --ignored"]
fn python_orders_reach_ocaml_and_ocaml_decisions_reach_rust() {
    let report = run_demo(&["--duration", "2", "--rate", "20000"]);
    assert_pipeline_reconciles(
        &report,
        ["python-strategy", "ocaml-risk", "rust-book"],
        ["python", "ocaml", "rust"],
    );
}

#[test]
#[ignore = "needs the Python adapter and the OCaml object: scripts/test-demo.sh runs it with --ignored"]
fn guests_keep_up_under_drop_oldest_queues() {
    let report = run_demo(&[
        "--duration",
        "1",
        "--rate",
        "0",
        "--policy",
        "drop_oldest",
        "--capacity",
        "64",
    ]);
    assert_eq!(
        report["reconciled"], true,
        "problems: {}",
        report["problems"]
    );
    let risk = &report["stages"][1];
    assert_eq!(risk["language"], "ocaml");
    assert!(
        common::u(&risk["handled"]) > 0,
        "OCaml handled no order: {risk}"
    );
}
