//! Progress of a long command, drawn on one line of stderr while stderr is a terminal, and
//! not at all when it is piped or redirected: scripts and log files get only the result.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::domain::progress::Progress;

/// Least time between two redraws: often enough to look alive, rarely enough to cost
/// nothing beside the work.
const REDRAW: Duration = Duration::from_millis(100);

/// Draws a command's progress: entries done, the rate, and the time left when the total
/// is known.
pub struct Meter {
    label: &'static str,
    /// Where to draw; `None` when nobody watches a terminal.
    out: Option<Box<dyn Write + Send>>,
    started: Instant,
    last_drawn: Option<Instant>,
}

impl Meter {
    /// A meter for `label` (e.g. `verify`) that draws on stderr when stderr is a terminal.
    /// `stdout_shares_the_terminal` keeps it quiet while the command's own output goes to
    /// the same screen, where a redrawn line would be mixed into it.
    pub fn on_stderr(label: &'static str, stdout_shares_the_terminal: bool) -> Self {
        let draw = std::io::stderr().is_terminal() && !stdout_shares_the_terminal;
        let out = draw.then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>);
        Meter::new(label, out)
    }

    fn new(label: &'static str, out: Option<Box<dyn Write + Send>>) -> Self {
        Meter {
            label,
            out,
            started: Instant::now(),
            last_drawn: None,
        }
    }

    /// Takes the latest progress, and redraws if the last drawing is old enough or the
    /// work is complete.
    pub fn update(&mut self, progress: Progress) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let now = Instant::now();
        let complete = progress.total == Some(progress.done);
        if !complete && self.last_drawn.is_some_and(|at| now - at < REDRAW) {
            return;
        }
        let line = render(self.label, progress, now - self.started);
        // A terminal that cannot be written to is no reason to fail the work.
        let _ = write!(out, "\r{line}\x1b[K").and_then(|()| out.flush());
        self.last_drawn = Some(now);
    }

    /// Clears the meter's line, so what the command prints next starts on a clean line.
    pub fn finish(&mut self) {
        if let (Some(out), Some(_)) = (self.out.as_mut(), self.last_drawn) {
            let _ = write!(out, "\r\x1b[K").and_then(|()| out.flush());
        }
        self.last_drawn = None;
    }
}

impl Drop for Meter {
    /// A command that stops early (an error) leaves no half-drawn line behind either.
    fn drop(&mut self) {
        self.finish();
    }
}

/// One line of progress, e.g. `verify: 12000 of 48000 entries (25%), 6000 entries/s,
/// 6 s left`.
fn render(label: &str, progress: Progress, elapsed: Duration) -> String {
    let Progress { done, total } = progress;
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    match total {
        Some(total) if total > 0 => {
            let percent = (done.min(total) as f64 * 100.0 / total as f64).floor();
            let left = if done >= total {
                "done".to_owned()
            } else if rate > 0.0 {
                format!("{} left", duration_words((total - done) as f64 / rate))
            } else {
                "time left unknown".to_owned()
            };
            format!("{label}: {done} of {total} entries ({percent}%), {rate:.0} entries/s, {left}")
        }
        _ => format!("{label}: {done} entries, {rate:.0} entries/s"),
    }
}

/// A duration in the largest two units that matter: `2 h 05 min`, `3 min 07 s`, `9 s`.
fn duration_words(seconds: f64) -> String {
    let seconds = seconds.ceil() as u64;
    match (seconds / 3600, (seconds % 3600) / 60, seconds % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s:02} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A terminal stand-in that keeps what was drawn.
    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl Write for Screen {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("screen").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screen {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("screen")).into_owned()
        }
    }

    #[test]
    fn a_line_names_entries_done_the_rate_and_the_time_left() {
        let at = |done, total| Progress { done, total };
        assert_eq!(
            render("verify", at(12_000, Some(48_000)), Duration::from_secs(2)),
            "verify: 12000 of 48000 entries (25%), 6000 entries/s, 6 s left"
        );
        assert_eq!(
            render("export", at(48_000, Some(48_000)), Duration::from_secs(8)),
            "export: 48000 of 48000 entries (100%), 6000 entries/s, done"
        );
        assert_eq!(
            render("verify", at(500, None), Duration::from_secs(1)),
            "verify: 500 entries, 500 entries/s"
        );
        assert_eq!(
            render("verify", at(0, Some(10)), Duration::ZERO),
            "verify: 0 of 10 entries (0%), 0 entries/s, time left unknown"
        );
        assert_eq!(duration_words(9.2), "10 s");
        assert_eq!(duration_words(187.0), "3 min 07 s");
        assert_eq!(duration_words(7_500.0), "2 h 05 min");
    }

    #[test]
    fn a_meter_redraws_one_line_at_most_every_tenth_of_a_second_and_clears_it() {
        let screen = Screen::default();
        let mut meter = Meter::new("verify", Some(Box::new(screen.clone())));
        meter.update(Progress {
            done: 1,
            total: Some(3),
        });
        // Straight after: too soon to redraw, unless the work is complete.
        meter.update(Progress {
            done: 2,
            total: Some(3),
        });
        meter.update(Progress {
            done: 3,
            total: Some(3),
        });
        meter.finish();
        let text = screen.text();
        assert_eq!(text.matches('\r').count(), 3, "{text:?}");
        assert!(text.contains("1 of 3 entries"), "{text:?}");
        assert!(!text.contains("2 of 3 entries"), "{text:?}");
        assert!(text.contains("3 of 3 entries (100%)"), "{text:?}");
        assert!(text.ends_with("\r\x1b[K"), "{text:?}");
    }

    #[test]
    fn a_meter_with_nowhere_to_draw_does_nothing() {
        let mut meter = Meter::new("verify", None);
        meter.update(Progress {
            done: 1,
            total: Some(1),
        });
        meter.finish();
        assert!(meter.last_drawn.is_none());
    }
}
