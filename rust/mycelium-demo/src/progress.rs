//! The live progress line: messages/s per stage and language, on stderr.
//!
//! On a terminal one line is rewritten in place four times a second; otherwise (a log, CI) one
//! line is printed per second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::error::DemoError;
use crate::pipeline::{Pipeline, StageSummary};

pub struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    interval: Duration,
    /// When the previous line was printed and what was counted then.
    last: (Instant, u64, Vec<StageSummary>),
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let now = Instant::now();
        Progress {
            enabled,
            tty,
            started: now,
            interval: Duration::from_millis(if tty { 250 } else { 1000 }),
            last: (now, 0, Vec::new()),
        }
    }

    /// Prints a line if one is due.
    pub fn update(
        &mut self,
        market_published: u64,
        pipeline: &mut Pipeline,
    ) -> Result<(), DemoError> {
        if !self.enabled || self.last.0.elapsed() < self.interval {
            return Ok(());
        }
        let now = Instant::now();
        let stages = pipeline.summaries()?;
        let seconds = now.duration_since(self.last.0).as_secs_f64();
        let line = render(
            now.duration_since(self.started).as_secs_f64(),
            seconds,
            (self.last.1, market_published),
            &self.last.2,
            &stages,
        );
        let mut err = std::io::stderr().lock();
        // A closed stderr only loses the progress line; the report goes to stdout.
        let _ = if self.tty {
            // A line wider than the terminal would wrap, and `\r` would then rewrite only its
            // last row: cut it instead (the report at the end has everything).
            let line = fit(&line, terminal_columns());
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.last = (now, market_published, stages);
        Ok(())
    }

    /// Ends the rewritten line so that what follows starts on a line of its own.
    pub fn finish(&self) {
        if self.enabled && self.tty {
            eprintln!();
        }
    }
}

/// `[  2.5s] rust market 50.0k/s | python strategy 50.0k/s in, 9.8k/s out | ...`: rates over
/// the last `seconds`, from the counts before (`previous`, empty at the start) and now.
fn render(
    elapsed: f64,
    seconds: f64,
    (market_before, market_now): (u64, u64),
    previous: &[StageSummary],
    stages: &[StageSummary],
) -> String {
    let seconds = seconds.max(1e-9);
    let rate = |before: u64, now: u64| human(now.saturating_sub(before) as f64 / seconds);
    let mut line = format!(
        "[{elapsed:>6.1}s] rust market {}/s",
        rate(market_before, market_now)
    );
    for (i, s) in stages.iter().enumerate() {
        let before = previous.get(i).map(|p| p.counts).unwrap_or_default();
        let verb = if s.role.serves.is_some() {
            "answered"
        } else {
            "in"
        };
        line.push_str(&format!(
            " | {} {} {}/s {verb}",
            s.language.name(),
            s.role.name,
            rate(before.handled, s.counts.handled)
        ));
        if s.role.sends.is_some() {
            line.push_str(&format!(", {}/s out", rate(before.sent, s.counts.sent)));
        }
    }
    line
}

/// At most `columns - 1` characters (the last column would make some terminals wrap).
fn fit(line: &str, columns: Option<usize>) -> &str {
    match columns {
        Some(c) if line.len() >= c => {
            let end = (0..=c.saturating_sub(1))
                .rev()
                .find(|&i| line.is_char_boundary(i))
                .unwrap_or(0);
            &line[..end]
        }
        _ => line,
    }
}

/// The width of the terminal on stderr, if it is one and says.
fn terminal_columns() -> Option<usize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
    // writable `winsize` for the duration of the call.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// 950, 12.3k, 1.25M
pub fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{BOOK, RISK, STRATEGY};
    use crate::stages::{Counts, Language};

    fn summary(
        role: crate::pipeline::Role,
        label: &'static str,
        language: Language,
        handled: u64,
        sent: u64,
    ) -> StageSummary {
        StageSummary {
            role,
            label,
            language,
            counts: Counts { handled, sent },
        }
    }

    #[test]
    fn rates_are_per_stage_and_language_over_the_interval() {
        let before = [
            summary(STRATEGY, "python-strategy", Language::Python, 1_000, 100),
            summary(RISK, "ocaml-risk", Language::OCaml, 100, 0),
            summary(BOOK, "rust-book", Language::Rust, 100, 0),
        ];
        let now = [
            summary(STRATEGY, "python-strategy", Language::Python, 51_000, 5_100),
            summary(RISK, "ocaml-risk", Language::OCaml, 4_100, 4_000),
            summary(BOOK, "rust-book", Language::Rust, 3_100, 0),
        ];
        let line = render(12.34, 2.0, (2_000, 102_000), &before, &now);
        assert_eq!(
            line,
            "[  12.3s] rust market 50.0k/s | python strategy 25.0k/s in, 2.5k/s out \
             | ocaml risk 2.0k/s answered | rust book 1.5k/s in"
        );
    }

    #[test]
    fn the_first_line_counts_from_zero() {
        let now = [summary(STRATEGY, "rust-strategy", Language::Rust, 500, 50)];
        let line = render(1.0, 1.0, (0, 700), &[], &now);
        assert_eq!(
            line,
            "[   1.0s] rust market 700/s | rust strategy 500/s in, 50/s out"
        );
    }

    #[test]
    fn lines_are_cut_to_the_terminal_width() {
        assert_eq!(fit("abcdef", Some(4)), "abc");
        assert_eq!(fit("abcdef", Some(7)), "abcdef");
        assert_eq!(fit("abcdef", Some(6)), "abcde");
        assert_eq!(fit("abcdef", None), "abcdef");
        assert_eq!(fit("aé", Some(3)), "a", "never inside a character");
    }

    #[test]
    fn human_scales() {
        assert_eq!(human(950.4), "950");
        assert_eq!(human(12_345.0), "12.3k");
        assert_eq!(human(1_250_000.0), "1.25M");
    }
}
