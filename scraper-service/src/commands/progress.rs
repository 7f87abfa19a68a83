//! The command line's progress display, on stderr: on a terminal a bar with the rate and the
//! time left, redrawn in place; otherwise (logs, CI) a plain line every ten seconds.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::store::runs::Run;

/// Redraws on a terminal at most this often.
const TTY_EVERY: Duration = Duration::from_millis(100);
/// Writes a line elsewhere at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// Width of the bar, in characters.
const WIDTH: usize = 30;

/// The progress display of one run.
pub struct ProgressBar {
    tty: bool,
    started: Instant,
    /// Pages the run had processed before this process took it (a resumed run).
    processed_before: i64,
    last: Instant,
}

impl ProgressBar {
    /// Starts showing the progress of `run`.
    pub fn new(run: &Run) -> Self {
        let now = Instant::now();
        Self {
            tty: std::io::stderr().is_terminal(),
            started: now,
            processed_before: run.processed,
            last: now,
        }
    }

    /// Shows `run` after a batch, unless the display was refreshed just now.
    pub fn update(&mut self, run: &Run) {
        let every = if self.tty { TTY_EVERY } else { PLAIN_EVERY };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        self.draw(run);
    }

    /// Shows `run` as it ended, on a line of its own, with the elapsed time.
    pub fn finish(&mut self, run: &Run) {
        self.draw(run);
        let secs = self.started.elapsed().as_secs_f64();
        let pages = run.processed - self.processed_before;
        let end = if self.tty { "\n" } else { "" };
        eprintln!(
            "{end}{} pages in {:.1} s: {:.0} pages/s ({} succeeded, {} failed in all)",
            pages,
            secs,
            pages as f64 / secs.max(1e-9),
            run.succeeded,
            run.failed
        );
    }

    fn draw(&self, run: &Run) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = (run.processed - self.processed_before) as f64 / secs.max(1e-9);
        let line = render(run.processed, run.total, run.failed, rate);
        let mut err = std::io::stderr().lock();
        // A terminal gets the line redrawn in place (and the rest of the old one cleared).
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// One progress line: bar, percentage, counts, rate and time left.
fn render(processed: i64, total: i64, failed: i64, rate: f64) -> String {
    let total = total.max(processed).max(1);
    let done = processed as f64 / total as f64;
    let filled = ((done * WIDTH as f64) as usize).min(WIDTH);
    let eta = if rate > 0.0 {
        eta((total - processed) as f64 / rate)
    } else {
        "?".into()
    };
    format!(
        "[{}{}] {:5.1}% {processed}/{total} pages, {failed} failed, {rate:.0} pages/s, ETA {eta}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        done * 100.0,
    )
}

/// `secs` as `1h02m03s`, `2m03s` or `3s`.
fn eta(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_the_bar_counts_rate_and_time_left() {
        assert_eq!(
            render(45_000, 100_000, 12, 500.0),
            "[#############-----------------]  45.0% 45000/100000 pages, 12 failed, 500 pages/s, ETA 1m50s"
        );
        assert!(render(0, 0, 0, 0.0).ends_with("ETA ?"));
        assert_eq!(eta(3.2), "3s");
        assert_eq!(eta(3723.0), "1h02m03s");
    }
}
