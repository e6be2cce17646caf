//! Progress: an `indicatif` bar (rows, rows/s, ETA) when stderr is a terminal; otherwise a plain
//! line to stderr at most every [`PLAIN_EVERY`], and one at the end. Messages about rows are
//! printed above the bar (or as plain lines), so they never garble it.
//!
//! The numbers of the plain lines come from [`Rate`], which takes time as a parameter.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Throughput and ETA of `done` out of `total` rows since `start`.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub start: Instant,
    pub total: u64,
}

impl Rate {
    /// Rows per second so far (0 before any time has passed).
    pub fn per_sec(&self, done: u64, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(self.start).as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            done as f64 / secs
        }
    }

    /// Time left at the rate so far; `None` before the first row.
    pub fn eta(&self, done: u64, now: Instant) -> Option<Duration> {
        let rate = self.per_sec(done, now);
        (done > 0 && rate > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(done) as f64 / rate))
    }

    /// `120/1000 rows, 3 failed, 8.5 rows/s, ETA 1m43s`.
    pub fn line(&self, done: u64, failed: u64, now: Instant) -> String {
        let eta = match self.eta(done, now) {
            Some(d) => human(d),
            None => "unknown".into(),
        };
        format!(
            "{done}/{} rows, {failed} failed, {:.1} rows/s, ETA {eta}",
            self.total,
            self.per_sec(done, now)
        )
    }
}

/// `45s`, `1m43s`, `2h05m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    rate: Rate,
    label: String,
    done: u64,
    failed: u64,
    last_plain: Instant,
}

impl Progress {
    /// `label` starts every plain line (e.g. `batch translate`).
    pub fn new(label: &str, total: u64) -> Progress {
        let now = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} rows  {rate}  ETA {eta}  {msg}",
                )
                .expect("a valid template")
                .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1} rows/s", s.per_sec());
                }),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Progress {
            bar,
            rate: Rate { start: now, total },
            label: label.to_string(),
            done: 0,
            failed: 0,
            last_plain: now,
        }
    }

    /// A message about a row or the run, kept clear of the bar.
    pub fn say(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// One more row finished (`ok` or failed).
    pub fn row(&mut self, ok: bool) {
        self.done += 1;
        if !ok {
            self.failed += 1;
        }
        let now = Instant::now();
        match &self.bar {
            Some(b) => {
                b.inc(1);
                if self.failed > 0 {
                    b.set_message(format!("{} failed", self.failed));
                }
            }
            None if now.duration_since(self.last_plain) >= PLAIN_EVERY => {
                self.last_plain = now;
                eprintln!(
                    "{}: {}",
                    self.label,
                    self.rate.line(self.done, self.failed, now)
                );
            }
            None => {}
        }
    }

    /// Removes the bar; prints a last plain line when there is no bar.
    pub fn finish(&self) {
        match &self.bar {
            Some(b) => b.finish_and_clear(),
            None => eprintln!(
                "{}: {}",
                self.label,
                self.rate.line(self.done, self.failed, Instant::now())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta() {
        let t0 = Instant::now();
        let r = Rate {
            start: t0,
            total: 100,
        };
        assert_eq!(r.eta(0, t0 + Duration::from_secs(5)), None, "no row yet");
        assert_eq!(r.per_sec(10, t0), 0.0, "no time yet");
        let now = t0 + Duration::from_secs(10);
        assert_eq!(r.per_sec(25, now), 2.5);
        assert_eq!(r.eta(25, now), Some(Duration::from_secs(30)));
        assert_eq!(r.eta(100, now), Some(Duration::ZERO));
        assert_eq!(
            r.line(25, 2, now),
            "25/100 rows, 2 failed, 2.5 rows/s, ETA 30s"
        );
        assert!(r.line(0, 0, now).ends_with("ETA unknown"));
    }

    #[test]
    fn human_durations() {
        for (s, want) in [
            (0, "0s"),
            (59, "59s"),
            (103, "1m43s"),
            (3600, "1h00m"),
            (7501, "2h05m"),
        ] {
            assert_eq!(human(Duration::from_secs(s)), want);
        }
    }
}
