//! The end of the run: reconciling the counts, and the metrics table or JSON document.

use std::fmt::Write as _;
use std::time::Duration;

use mycelium_transport::{MetricsSnapshot, ServiceMetrics, SubscriberMetrics, TypeMetrics};
use serde::Serialize;

use crate::pipeline::{StageSummary, BOOK, RISK, STRATEGY};
use crate::progress::human;

/// What the run counted, gathered after the pipeline drained.
pub struct RunFacts {
    pub elapsed: Duration,
    pub market_published: u64,
    pub market_failed: u64,
    /// Whether Ctrl-C stopped the market before its time.
    pub interrupted: bool,
    pub stages: Vec<StageSummary>,
    /// Decisions the book saw: (approved, refused).
    pub approvals: (u64, u64),
    pub snapshot: MetricsSnapshot,
    /// Why draining failed, if it did (the counts are then incomplete).
    pub drain_error: Option<String>,
}

fn published(snapshot: &MetricsSnapshot, type_id: u16) -> u64 {
    snapshot.type_metrics(type_id).map_or(0, |t| t.published)
}

fn subscribers_of(
    snapshot: &MetricsSnapshot,
    type_id: u16,
) -> impl Iterator<Item = &SubscriberMetrics> {
    snapshot
        .subscribers
        .iter()
        .filter(move |s| s.type_id == type_id)
}

fn by_label<'a>(snapshot: &'a MetricsSnapshot, label: &str) -> Option<&'a SubscriberMetrics> {
    snapshot
        .subscribers
        .iter()
        .find(|s| s.label.as_deref() == Some(label))
}

/// Everything that does not add up. Empty when every message the market published reached the
/// strategy, every order the strategy sent reached risk, and every decision reached the book
/// (each handled, or dropped by an overflow policy that drops), with no handler failing.
pub fn reconcile(f: &RunFacts) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = &f.drain_error {
        problems.push(format!("the pipeline did not drain: {e}"));
    }
    if f.market_failed > 0 {
        problems.push(format!("{} market publishes failed", f.market_failed));
    }
    let ticks = published(&f.snapshot, STRATEGY.takes.0);
    if ticks != f.market_published {
        problems.push(format!(
            "the market published {} ticks but the bus counted {ticks}",
            f.market_published
        ));
    }
    for s in &f.stages {
        if let Some(pair) = s.role.serves {
            reconcile_service(f, s, pair, &mut problems);
            continue;
        }
        let (type_id, name) = s.role.takes;
        let arrived = published(&f.snapshot, type_id);
        let Some(sub) = by_label(&f.snapshot, s.label) else {
            problems.push(format!("{} has no subscription on the bus", s.label));
            continue;
        };
        let failed = sub.handler_errors + sub.decode_errors;
        if failed > 0 {
            problems.push(format!(
                "{}: {failed} {name} handler calls failed (last error: {})",
                s.label,
                sub.last_error.as_deref().unwrap_or("not recorded")
            ));
        }
        let done = s.counts.handled + sub.dropped + failed;
        if done != arrived {
            problems.push(format!(
                "{} handled {}, failed {failed} and dropped {} of {arrived} {name} messages",
                s.label, s.counts.handled, sub.dropped
            ));
        }
        if let Some((type_id, name)) = s.role.sends {
            let counted = published(&f.snapshot, type_id);
            if counted != s.counts.sent {
                problems.push(format!(
                    "{} sent {} {name} messages but the bus counted {counted}",
                    s.label, s.counts.sent
                ));
            }
        }
    }
    if let Some(book) = f.stages.iter().find(|s| s.role == BOOK) {
        let (approved, refused) = f.approvals;
        if approved + refused != book.counts.handled {
            problems.push(format!(
                "the book counted {approved} approvals and {refused} refusals for {} decisions",
                book.counts.handled
            ));
        }
    }
    problems
}

/// A stage that serves requests: every request the bus counted was answered by it, none
/// failed, and the strategy published one decision per answer.
fn reconcile_service(f: &RunFacts, s: &StageSummary, pair: (u16, u16), problems: &mut Vec<String>) {
    let Some(svc) = service_metrics(&f.snapshot, pair) else {
        problems.push(format!(
            "{} serves no {} service on the bus",
            s.label, s.role.takes.1
        ));
        return;
    };
    let failed = svc.responder_failures + svc.timeouts + svc.no_responder;
    if failed > 0 {
        problems.push(format!(
            "{}: {failed} of {} requests failed ({} responder failures, {} timeouts, {} without a responder)",
            s.label, svc.requests, svc.responder_failures, svc.timeouts, svc.no_responder
        ));
    }
    if s.counts.handled != svc.requests || s.counts.sent != svc.replies {
        problems.push(format!(
            "{} answered {} and replied {} times, but the bus counted {} requests and {} replies",
            s.label, s.counts.handled, s.counts.sent, svc.requests, svc.replies
        ));
    }
    if let Some(strategy) = sent_by(f, STRATEGY) {
        if strategy.counts.sent != svc.replies {
            problems.push(format!(
                "{} published {} decisions for {} answers of {}",
                strategy.label, strategy.counts.sent, svc.replies, s.label
            ));
        }
    }
}

fn service_metrics(
    snapshot: &MetricsSnapshot,
    (request, reply): (u16, u16),
) -> Option<&ServiceMetrics> {
    snapshot
        .services
        .iter()
        .find(|m| m.request_type == request && m.reply_type == reply)
}

fn sent_by(f: &RunFacts, role: crate::pipeline::Role) -> Option<&StageSummary> {
    f.stages.iter().find(|s| s.role == role)
}

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// The human-readable report.
pub fn table(f: &RunFacts, problems: &[String]) -> String {
    let mut out = String::new();
    let seconds = f.elapsed.as_secs_f64().max(1e-9);
    let _ = write!(
        out,
        "\nmarket (rust) published {} ticks in {:.2} s ({}/s)",
        f.market_published,
        seconds,
        human(f.market_published as f64 / seconds)
    );
    if f.interrupted {
        out.push_str(" (stopped early by Ctrl-C)");
    }
    if let Some(s) = sent_by(f, STRATEGY) {
        let _ = write!(
            out,
            "; {} strategy asked about {} orders",
            s.language.name(),
            s.counts.sent
        );
    }
    if let Some(s) = sent_by(f, RISK) {
        let _ = write!(
            out,
            "; {} risk (RiskCheck service) answered {}",
            s.language.name(),
            s.counts.sent
        );
    }
    if let Some(s) = sent_by(f, BOOK) {
        let _ = write!(
            out,
            "; {} book received {} approved, {} refused",
            s.language.name(),
            f.approvals.0,
            f.approvals.1
        );
    }
    let _ = writeln!(out, "\n");
    let _ = writeln!(
        out,
        "{:<14} {:>10}  {:<16} {:<6} {:>10} {:>8} {:>7} {:>9} {:>9} {:>9}",
        "message",
        "published",
        "subscriber",
        "lang",
        "delivered",
        "dropped",
        "errors",
        "p50 us",
        "p99 us",
        "max us"
    );
    for role in [STRATEGY, BOOK] {
        let (type_id, name) = role.takes;
        let t = f.snapshot.type_metrics(type_id);
        let latency = |pick: fn(&TypeMetrics) -> u64| t.map_or("-".to_owned(), |t| micros(pick(t)));
        let rows: Vec<_> = subscribers_of(&f.snapshot, type_id).collect();
        let published = t.map_or(0, |t| t.published);
        if rows.is_empty() {
            let _ = writeln!(out, "{name:<14} {published:>10}  {:<16}", "(no subscriber)");
        }
        for s in rows {
            let label = s.label.clone().unwrap_or_else(|| format!("#{}", s.id));
            let lang = f
                .stages
                .iter()
                .find(|st| st.label == label)
                .map(|st| st.language.name())
                // The NATS join's forwarder (--nats): it sends the type out to NATS.
                .or_else(|| label.starts_with("nats:").then_some("nats"))
                .unwrap_or("?");
            let _ = writeln!(
                out,
                "{name:<14} {published:>10}  {label:<16} {lang:<6} {:>10} {:>8} {:>7} {:>9} {:>9} {:>9}",
                s.delivered,
                s.dropped,
                s.handler_errors + s.decode_errors,
                latency(|t| t.latency.p50_ns),
                latency(|t| t.latency.p99_ns),
                latency(|t| t.latency.max_ns),
            );
        }
    }
    if let (Some(pair), Some(risk)) = (RISK.serves, sent_by(f, RISK)) {
        if let Some(svc) = service_metrics(&f.snapshot, pair) {
            let _ = writeln!(
                out,
                "{:<14} {:>10}  {:<16} {:<6} {:>10} requests, {} failed, {} timed out",
                "RiskCheck",
                svc.requests,
                risk.label,
                risk.language.name(),
                svc.replies,
                svc.responder_failures,
                svc.timeouts
            );
        }
    }
    let _ = writeln!(
        out,
        "\nlatency: from publish to the subscriber taking the message off its queue, sampled (each \
         subscriber's first message and every 16th); RiskCheck is a service (Order -> \
         OrderDecision), its row counts requests and replies."
    );
    if problems.is_empty() {
        let _ = writeln!(
            out,
            "counts reconcile: every tick and decision published was handled by its subscriber{}, every order answered by the risk service.",
            if f.snapshot.types.iter().any(|t| t.dropped > 0) { " or dropped by its overflow policy" } else { "" }
        );
    } else {
        let _ = writeln!(out, "counts do NOT reconcile:");
        for p in problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    out
}

#[derive(Serialize)]
struct JsonStage<'a> {
    role: &'static str,
    label: &'static str,
    language: crate::stages::Language,
    handled: u64,
    sent: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<&'a SubscriberMetrics>,
    /// For the stage that serves requests (risk): its service's counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a ServiceMetrics>,
}

#[derive(Serialize)]
struct JsonMarket {
    published: u64,
    failed: u64,
    interrupted: bool,
    elapsed_s: f64,
}

#[derive(Serialize)]
struct JsonBook {
    approved: u64,
    refused: u64,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    market: JsonMarket,
    stages: Vec<JsonStage<'a>>,
    book: JsonBook,
    reconciled: bool,
    problems: &'a [String],
    bus: &'a MetricsSnapshot,
}

/// The machine-readable report (`--json`).
pub fn json(f: &RunFacts, problems: &[String]) -> String {
    let report = JsonReport {
        market: JsonMarket {
            published: f.market_published,
            failed: f.market_failed,
            interrupted: f.interrupted,
            elapsed_s: f.elapsed.as_secs_f64(),
        },
        stages: f
            .stages
            .iter()
            .map(|s| JsonStage {
                role: s.role.name,
                label: s.label,
                language: s.language,
                handled: s.counts.handled,
                sent: s.counts.sent,
                subscription: by_label(&f.snapshot, s.label),
                service: s
                    .role
                    .serves
                    .and_then(|pair| service_metrics(&f.snapshot, pair)),
            })
            .collect(),
        book: JsonBook {
            approved: f.approvals.0,
            refused: f.approvals.1,
        },
        reconciled: problems.is_empty(),
        problems,
        bus: &f.snapshot,
    };
    // Plain numbers, strings and lists: serialization cannot fail; the fallback keeps this total.
    serde_json::to_string_pretty(&report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize the report: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mycelium_contracts::{Order, OrderDecision, RiskCheck, TradeTick};
    use mycelium_protocol::Message;
    use mycelium_transport::{
        MessageBus, OverflowPolicy, RawSubscription, ServeGuard, SubscribeOptions,
    };

    use super::*;
    use crate::stages::{Counts, Language};

    /// A bus that carried 10 ticks, 2 RiskCheck requests answered by a service, and the 2
    /// decisions published for the book, each taken by its subscriber; and the stages' counters
    /// that match it.
    struct Run {
        facts: RunFacts,
        _subs: Vec<RawSubscription>,
        _risk: ServeGuard,
    }

    fn run(after_publishing: impl FnOnce(&[RawSubscription])) -> Run {
        let bus = MessageBus::new();
        let opts = |label: &str| SubscribeOptions::new(64, OverflowPolicy::Block).with_label(label);
        let subs = vec![
            bus.subscribe_raw(TradeTick::TYPE_ID, opts("python-strategy")),
            bus.subscribe_raw(OrderDecision::TYPE_ID, opts("rust-book")),
        ];
        let risk = bus.serve_service::<RiskCheck, _>(|o: Order| {
            Ok(OrderDecision {
                order_id: o.order_id,
                ..Default::default()
            })
        });
        for _ in 0..10 {
            bus.publish(&TradeTick::default()).expect("publish a tick");
        }
        for _ in 0..2 {
            let decision = bus
                .call::<RiskCheck>(&Order::default(), Duration::from_secs(30))
                .expect("the service answers");
            bus.publish(&decision).expect("publish a decision");
        }
        for s in &subs {
            while s.try_recv().is_ok() {}
        }
        after_publishing(&subs);
        let stage = |role, label, language, handled, sent| StageSummary {
            role,
            label,
            language,
            counts: Counts { handled, sent },
        };
        Run {
            facts: RunFacts {
                elapsed: Duration::from_secs(2),
                market_published: 10,
                market_failed: 0,
                interrupted: false,
                stages: vec![
                    stage(STRATEGY, "python-strategy", Language::Python, 10, 2),
                    stage(RISK, "ocaml-risk", Language::OCaml, 2, 2),
                    stage(BOOK, "rust-book", Language::Rust, 2, 0),
                ],
                approvals: (1, 1),
                snapshot: bus.metrics(),
                drain_error: None,
            },
            _subs: subs,
            _risk: risk,
        }
    }

    #[test]
    fn a_complete_run_reconciles_and_the_table_names_every_subscriber_and_language() {
        let r = run(|_| {});
        let problems = reconcile(&r.facts);
        assert!(problems.is_empty(), "{problems:?}");
        let t = table(&r.facts, &problems);
        for row in [
            ("TradeTick", "10", "python-strategy", "python"),
            ("RiskCheck", "2", "ocaml-risk", "ocaml"),
            ("OrderDecision", "2", "rust-book", "rust"),
        ] {
            let line = t
                .lines()
                .find(|l| l.split_whitespace().next() == Some(row.0))
                .unwrap_or_else(|| panic!("no {} row in\n{t}", row.0));
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(&cells[..5], &[row.0, row.1, row.2, row.3, row.1], "{line}");
        }
        assert!(t.contains("python strategy asked about 2 orders"), "{t}");
        assert!(
            t.contains("ocaml risk (RiskCheck service) answered 2"),
            "{t}"
        );
        assert!(
            t.contains("rust book received 1 approved, 1 refused"),
            "{t}"
        );
        assert!(t.contains("counts reconcile"), "{t}");
        assert!(!t.contains("Ctrl-C"), "{t}");
        let mut r = r;
        r.facts.interrupted = true;
        assert!(table(&r.facts, &[]).contains("(stopped early by Ctrl-C)"));
    }

    #[test]
    fn every_mismatch_is_named() {
        let mut r = run(|_| {});
        r.facts.market_published = 11;
        r.facts.stages[0].counts.handled = 9;
        r.facts.stages[1].counts.sent = 3;
        r.facts.approvals = (2, 1);
        let problems = reconcile(&r.facts);
        let all = problems.join("\n");
        assert_eq!(problems.len(), 4, "{all}");
        assert!(
            all.contains("market published 11 ticks but the bus counted 10"),
            "{all}"
        );
        assert!(
            all.contains("python-strategy handled 9, failed 0 and dropped 0 of 10 TradeTick"),
            "{all}"
        );
        assert!(
            all.contains(
                "ocaml-risk answered 2 and replied 3 times, but the bus counted 2 requests and 2 replies"
            ),
            "{all}"
        );
        assert!(
            all.contains("2 approvals and 1 refusals for 2 decisions"),
            "{all}"
        );
        assert!(table(&r.facts, &problems).contains("do NOT reconcile"));
    }

    #[test]
    fn failed_handlers_are_reported_with_their_last_error() {
        let mut r = run(|subs| subs[1].record_handler_failure("Failure(\"boom\")"));
        // The decision whose handler failed is not counted as handled by the stage.
        r.facts.stages[2].counts.handled = 1;
        r.facts.approvals = (1, 0);
        let problems = reconcile(&r.facts);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("rust-book: 1 OrderDecision handler calls failed"),
            "{problems:?}"
        );
        assert!(problems[0].contains("boom"), "{problems:?}");
    }

    #[test]
    fn the_json_report_carries_the_stages_the_verdict_and_the_bus_metrics() {
        let r = run(|_| {});
        let doc: serde_json::Value =
            serde_json::from_str(&json(&r.facts, &[])).expect("valid JSON");
        assert_eq!(doc["reconciled"], true);
        assert_eq!(doc["market"]["published"], 10);
        assert_eq!(doc["market"]["interrupted"], false);
        assert_eq!(doc["stages"][0]["language"], "python");
        assert_eq!(doc["stages"][1]["language"], "ocaml");
        assert_eq!(doc["stages"][1]["service"]["requests"], 2);
        assert_eq!(doc["stages"][2]["subscription"]["label"], "rust-book");
        assert_eq!(doc["stages"][2]["handled"], 2);
        assert_eq!(doc["book"]["refused"], 1);
        let types = doc["bus"]["types"].as_array().expect("bus types");
        assert!(types
            .iter()
            .any(|t| t["name"] == "OrderDecision" && t["published"] == 2));
    }
}
