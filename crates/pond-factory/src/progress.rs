//! A one-line progress display on stderr for long one-shot runs (a first sync, a backfill).
//!
//! Drawn only when stderr is a terminal (and `TERM` is not `dumb`), only once a run has taken
//! more than a second (short runs stay silent), at most ten times a second, and erased when the
//! run ends (or when the [`Progress`] is dropped on an error path), so logs, pipes and cron mail
//! never see it.
//!
//! The drawing (terminal detection, line widths and wrapping, the rate and time-left estimate,
//! redraw limits, erasing) is `indicatif`'s; this module adds only the quiet first second, which
//! `indicatif` has no setting for: the bar starts on a hidden target and gets the terminal once
//! the second has passed. [`ProgressReader`] counts bytes read into the display.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::time::{Duration, Instant};

/// Runs shorter than this show nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// Redraws per second at most.
const REDRAWS_PER_SECOND: u8 = 10;
/// The line: `sync hl: 1.00 MiB of 4.00 MiB (25%), 512.00 KiB/s, 6s left`.
const TEMPLATE: &str = "{prefix}: {binary_bytes} of {binary_total_bytes} ({percent}%), {binary_bytes_per_sec}, {eta} left";

/// Progress of `total` bytes of work.
pub struct Progress {
    bar: ProgressBar,
    total: u64,
    done: u64,
    /// When the display may first be drawn.
    show_after: Instant,
    /// Where to draw once `show_after` has passed; `None` once handed to the bar, or when
    /// there is nowhere to draw (stderr is not a terminal).
    target: Option<ProgressDrawTarget>,
}

impl Progress {
    /// Progress of `total` bytes labelled `label`; drawn only if stderr is a terminal.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        // `indicatif` hides a stderr target that is not a terminal (or is a dumb one).
        let stderr = ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND);
        let target = (!stderr.is_hidden()).then_some(stderr);
        Self::with_target(label, total, target, Instant::now() + QUIET_FOR)
    }

    fn with_target(
        label: impl Into<String>,
        total: u64,
        target: Option<ProgressDrawTarget>,
        show_after: Instant,
    ) -> Self {
        // TEMPLATE is a constant that a test parses; the default bar is only a formality.
        let style =
            ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_style(style)
            .with_prefix(label.into())
            .with_finish(ProgressFinish::AndClear);
        Self {
            bar,
            total,
            done: 0,
            show_after,
            target,
        }
    }

    /// Counts `bytes` more as done, redrawing when due.
    pub fn add(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes);
        let show_after = self.show_after;
        if let Some(target) = self.target.take_if(|_| Instant::now() >= show_after) {
            self.bar.set_draw_target(target);
        }
        // The total is an estimate made before the run: the display stops at 100%.
        self.bar.set_position(self.done.min(self.total));
    }

    /// Erases the display, if it was drawn; nothing is drawn after this.
    pub fn finish(&mut self) {
        self.target = None;
        self.bar.finish_and_clear();
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
    #![allow(clippy::unwrap_used)]

    use super::*;
    use indicatif::TermLike;
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    /// A one-line terminal, 120 columns wide, that keeps what is on screen and every write.
    #[derive(Debug, Clone, Default)]
    struct Screen {
        line: Arc<Mutex<String>>,
        writes: Arc<Mutex<usize>>,
    }

    impl Screen {
        fn shown(&self) -> String {
            self.line.lock().unwrap().trim_end().to_string()
        }
        fn writes(&self) -> usize {
            *self.writes.lock().unwrap()
        }
        fn target(&self) -> Option<ProgressDrawTarget> {
            Some(ProgressDrawTarget::term_like(Box::new(self.clone())))
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            *self.writes.lock().unwrap() += 1;
            let mut line = self.line.lock().unwrap();
            match s.rsplit_once('\r') {
                Some((_, after)) => *line = after.to_string(),
                None => line.push_str(s),
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.line.lock().unwrap().clear();
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A run past its quiet second: a progress whose display may be drawn already.
    fn long_run(label: &str, total: u64, screen: &Screen) -> Progress {
        Progress::with_target(label, total, screen.target(), Instant::now())
    }

    /// The line shows done, total, percent, rate and time left; done never exceeds the total.
    #[test]
    fn line_shows_done_total_rate_and_time_left() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let screen = Screen::default();
        let mut p = long_run("sync hl", 4 << 20, &screen);
        p.add(1 << 20);
        let shown = screen.shown();
        assert!(
            shown.starts_with("sync hl: 1.00 MiB of 4.00 MiB (25%), ")
                && shown.contains("/s, ")
                && shown.ends_with(" left"),
            "{shown}"
        );
        p.add(10 << 20);
        let shown = screen.shown();
        assert!(
            shown.starts_with("sync hl: 4.00 MiB of 4.00 MiB (100%), "),
            "{shown}"
        );
        assert_eq!(p.done, 11 << 20);
    }

    /// Nothing is drawn during the first second, nor ever without a terminal.
    #[test]
    fn short_runs_and_non_terminals_draw_nothing() {
        let screen = Screen::default();
        let mut short = Progress::with_target("x", 10, screen.target(), Instant::now() + QUIET_FOR);
        short.add(5);
        short.finish();
        assert_eq!(screen.writes(), 0);

        let mut piped = Progress::with_target("x", 10, None, Instant::now());
        piped.add(5);
        assert!(piped.bar.is_hidden());
    }

    /// Finishing erases the line, and a later add draws nothing; so does dropping.
    #[test]
    fn finish_and_drop_erase_the_line() {
        let screen = Screen::default();
        let mut p = long_run("sync hl", 100, &screen);
        p.add(10);
        assert!(screen.shown().starts_with("sync hl: 10 B of 100 B"));
        p.finish();
        assert_eq!(screen.shown(), "");
        p.add(10);
        assert_eq!(screen.shown(), "");

        let dropped = Screen::default();
        let mut p = long_run("sync hl", 100, &dropped);
        p.add(10);
        assert!(!dropped.shown().is_empty());
        drop(p);
        assert_eq!(dropped.shown(), "");
    }

    /// Reading through a ProgressReader counts every byte and passes them through unchanged.
    #[test]
    fn reader_counts_bytes() {
        let screen = Screen::default();
        let mut p = long_run("x", 10, &screen);
        let mut out = Vec::new();
        ProgressReader {
            inner: &b"0123456789"[..],
            progress: &mut p,
        }
        .read_to_end(&mut out)
        .unwrap_or_default();
        assert_eq!(out, b"0123456789");
        assert_eq!(p.done, 10);
        assert_eq!(p.bar.position(), 10);
    }
}
