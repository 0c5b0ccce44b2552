//! Runs the demo binary and reads its `--json` report.

use std::process::Command;

use serde_json::Value;

/// Runs `mycelium-demo --json --quiet ARGS`; panics with its stderr unless it succeeded.
pub fn run_demo(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mycelium-demo"))
        .args(["--json", "--quiet"])
        .args(args)
        .output()
        .expect("start the demo binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mycelium-demo {args:?} failed ({}):\n{stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The bus's published count for a message type.
pub fn published(report: &Value, name: &str) -> u64 {
    let types = report["bus"]["types"].as_array().expect("bus.types");
    types
        .iter()
        .find(|t| t["name"] == name)
        .map_or(0, |t| u(&t["published"]))
}

/// Checks the report of a run whose stages are `labels` (strategy, risk, book) in `languages`:
/// every tick reached the strategy, every order it sent reached risk, every decision risk sent
/// reached the book, and the bus's counters agree with the stages' own.
pub fn assert_pipeline_reconciles(report: &Value, labels: [&str; 3], languages: [&str; 3]) {
    assert_eq!(
        report["reconciled"], true,
        "problems: {}",
        report["problems"]
    );
    let stages = report["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    for (i, stage) in stages.iter().enumerate() {
        assert_eq!(stage["label"], labels[i]);
        assert_eq!(stage["language"], languages[i]);
        if i == 1 {
            // Risk is the RiskCheck service, not a subscriber.
            assert_eq!(u(&stage["service"]["responder_failures"]), 0, "{stage}");
            continue;
        }
        assert_eq!(stage["subscription"]["label"], labels[i], "{stage}");
        assert_eq!(u(&stage["subscription"]["handler_errors"]), 0, "{stage}");
    }
    let (strategy, risk, book) = (&stages[0], &stages[1], &stages[2]);

    let ticks = u(&report["market"]["published"]);
    assert!(ticks > 1_000, "the market published only {ticks} ticks");
    assert_eq!(published(report, "TradeTick"), ticks);
    assert_eq!(
        u(&strategy["handled"]),
        ticks,
        "the strategy handled every tick"
    );

    // The strategy asks the RiskCheck service about each order (request/reply: orders are not
    // published) and publishes each decision it gets for the book.
    let orders = u(&strategy["sent"]);
    assert!(orders > 0, "the strategy asked about no order");
    assert_eq!(published(report, "Order"), 0, "orders travel as requests");
    assert_eq!(u(&risk["handled"]), orders, "every order reached risk");
    assert_eq!(u(&risk["service"]["requests"]), orders);
    assert_eq!(u(&risk["service"]["replies"]), orders);

    let decisions = u(&risk["sent"]);
    assert_eq!(decisions, orders, "risk answered every order");
    assert_eq!(published(report, "OrderDecision"), decisions);
    assert_eq!(
        u(&book["handled"]),
        decisions,
        "every decision reached the book"
    );
    let (approved, refused) = (
        u(&report["book"]["approved"]),
        u(&report["book"]["refused"]),
    );
    assert_eq!(approved + refused, decisions);
    // Over thousands of orders both outcomes occur (see rules.rs / risk.ml for the limits).
    assert!(
        approved > 0 && refused > 0,
        "approved {approved}, refused {refused}"
    );
}
