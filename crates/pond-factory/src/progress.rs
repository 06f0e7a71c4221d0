//! A one-line progress display on stderr for long one-shot runs (a first sync, a backfill).
//!
//! Drawn only when stderr is a terminal, only once a run has taken more than a second (short
//! runs stay silent), at most ten times a second, and erased when the run ends, so logs, pipes
//! and cron mail never see it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Runs shorter than this show nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// Time between two redraws.
const REDRAW: Duration = Duration::from_millis(100);

/// Progress of `total` bytes of work.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    drawn_at: Option<Instant>,
    enabled: bool,
}

fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Progress {
    /// Progress of `total` bytes labelled `label`; drawn only if stderr is a terminal.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Self::with_display(label, total, std::io::stderr().is_terminal())
    }

    fn with_display(label: impl Into<String>, total: u64, enabled: bool) -> Self {
        Self {
            label: label.into(),
            total,
            done: 0,
            started: Instant::now(),
            drawn_at: None,
            enabled,
        }
    }

    /// Counts `bytes` more as done, redrawing when due.
    pub fn add(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes);
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        if elapsed < QUIET_FOR
            || self
                .drawn_at
                .is_some_and(|at| now.duration_since(at) < REDRAW)
        {
            return;
        }
        self.drawn_at = Some(now);
        let line = self.line(elapsed);
        let mut err = std::io::stderr().lock();
        // A failed write to the terminal only loses the display.
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// The text of the display after `elapsed`.
    fn line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let done = self.done.min(self.total);
        let percent = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let eta = if rate > 0.0 && self.total > done {
            format!(", {:.0} s left", (self.total - done) as f64 / rate)
        } else {
            String::new()
        };
        format!(
            "{}: {} of {} ({percent:.0}%), {}/s{eta}",
            self.label,
            human(done as f64),
            human(self.total as f64),
            human(rate)
        )
    }

    /// Erases the display, if it was drawn (it may be drawn again by a later [`Progress::add`]).
    pub fn finish(&mut self) {
        if self.drawn_at.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// A reader that counts what it reads into a [`Progress`].
pub struct ProgressReader<'p, R> {
    pub inner: R,
    pub progress: &'p mut Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The line shows done, total, percent, rate and time left; done never exceeds the total.
    #[test]
    fn line_shows_done_total_rate_and_time_left() {
        let mut p = Progress::with_display("sync hl", 4 << 20, false);
        p.add(1 << 20);
        assert_eq!(
            p.line(Duration::from_secs(2)),
            "sync hl: 1.0 MiB of 4.0 MiB (25%), 512.0 KiB/s, 6 s left"
        );
        p.add(10 << 20);
        assert_eq!(
            p.line(Duration::from_secs(1)),
            "sync hl: 4.0 MiB of 4.0 MiB (100%), 11.0 MiB/s"
        );
    }

    /// Reading through a ProgressReader counts every byte and passes them through unchanged.
    #[test]
    fn reader_counts_bytes() {
        let mut p = Progress::with_display("x", 10, false);
        let mut out = Vec::new();
        ProgressReader {
            inner: &b"0123456789"[..],
            progress: &mut p,
        }
        .read_to_end(&mut out)
        .unwrap_or_default();
        assert_eq!(out, b"0123456789");
        assert_eq!(p.done, 10);
        assert_eq!(human(999.0), "999 B");
    }
}
