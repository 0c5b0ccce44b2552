//! The live progress line and the final metrics table.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mycelium_transport::{MessageBus, MetricsSnapshot};

use crate::stages::{Counters, Pipeline};

pub struct Progress {
    bus: MessageBus,
    enabled: bool,
    tty: bool,
    started: Instant,
    last: std::cell::Cell<(Instant, u64, u64)>,
}

impl Progress {
    pub fn new(bus: &MessageBus, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            bus: bus.clone(),
            enabled,
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: std::cell::Cell::new((now, 0, 0)),
        }
    }

    /// Rewrites the progress line: rates since the previous tick.
    pub fn tick(&self, pipeline: &Pipeline) {
        if !self.enabled {
            return;
        }
        let snap = self.bus.metrics();
        let published: u64 = snap.types.iter().map(|t| t.published).sum();
        let delivered: u64 = snap.types.iter().map(|t| t.delivered).sum();
        let (t0, p0, d0) = self.last.get();
        let dt = t0.elapsed().as_secs_f64().max(1e-9);
        let c = &pipeline.counters;
        // A terminal gets one line rewritten in place; a log gets one line per tick.
        let (start, end) = if self.tty { ("\r", "   ") } else { ("", "\n") };
        eprint!(
            "{start}[{:>5.1}s] bus: publish {:>9}/s deliver {:>9}/s | orders {:>8} decisions {:>8} approved {:>8}{end}",
            self.started.elapsed().as_secs_f64(),
            human((published - p0) as f64 / dt),
            human((delivered - d0) as f64 / dt),
            c.orders_sent.load(Ordering::Relaxed),
            c.decisions_sent.load(Ordering::Relaxed),
            c.approvals_seen.load(Ordering::Relaxed),
        );
        let _ = std::io::stderr().flush();
        self.last.set((Instant::now(), published, delivered));
    }

    pub fn finish(&self) {
        if self.enabled && self.tty {
            eprintln!();
        }
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

pub fn print_summary(snap: &MetricsSnapshot, ticks: u64, elapsed: Duration, c: &Counters) {
    println!(
        "\nmarket published {ticks} ticks in {:.2}s; strategy sent {} orders; risk sent {} decisions; book saw {} approved, {} rejected",
        elapsed.as_secs_f64(),
        c.orders_sent.load(Ordering::Relaxed),
        c.decisions_sent.load(Ordering::Relaxed),
        c.approvals_seen.load(Ordering::Relaxed),
        c.rejections_seen.load(Ordering::Relaxed),
    );
    println!(
        "\n{:<16} {:>10} {:>10} {:>8} {:>12} {:>10} {:>10} {:>10}",
        "message", "published", "delivered", "dropped", "bytes", "p50 us", "p99 us", "max us"
    );
    for t in &snap.types {
        println!(
            "{:<16} {:>10} {:>10} {:>8} {:>12} {:>10} {:>10} {:>10}",
            t.name
                .clone()
                .unwrap_or_else(|| format!("type {}", t.type_id)),
            t.published,
            t.delivered,
            t.dropped,
            t.published_bytes,
            micros(t.latency.p50_ns),
            micros(t.latency.p99_ns),
            micros(t.latency.max_ns),
        );
    }
    println!(
        "\n{:<16} {:<6} {:>10} {:>8} {:>8} {:>8}",
        "subscriber", "lang", "delivered", "dropped", "errors", "queued"
    );
    for s in &snap.subscribers {
        let label = s.label.clone().unwrap_or_else(|| format!("#{}", s.id));
        let lang = label.split('-').next().unwrap_or("?").to_string();
        println!(
            "{:<16} {:<6} {:>10} {:>8} {:>8} {:>8}",
            label, lang, s.delivered, s.dropped, s.handler_errors, s.queue_depth
        );
    }
}
