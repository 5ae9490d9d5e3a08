//! Progress for people: a step shows a spinner with its elapsed time on a terminal (a line every 30 s
//! elsewhere), and a timeline records when each step ended.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Whether stdout is a terminal (redraw in place) or a log (print lines).
pub(crate) fn interactive() -> bool {
    std::io::stdout().is_terminal()
}

/// Clears the current terminal line before a permanent line is printed over a redrawn one.
pub(crate) fn clear_line() {
    if interactive() {
        print!("\r\x1b[2K");
    }
}

/// One finished step of the timeline.
pub(crate) struct Milestone {
    /// What happened.
    pub(crate) label: String,
    /// When, from the start of the run.
    pub(crate) at: Duration,
    /// How long the step took.
    pub(crate) took: Duration,
}

/// The steps of a run with their times.
pub(crate) struct Timeline {
    started: Instant,
    milestones: Vec<Milestone>,
}

impl Timeline {
    /// A timeline starting now.
    pub(crate) fn new() -> Self {
        Timeline { started: Instant::now(), milestones: Vec::new() }
    }

    /// Records that `label` happened now, after a step that began at `since`.
    pub(crate) fn mark(&mut self, label: impl Into<String>, since: Instant) {
        self.milestones.push(Milestone { label: label.into(), at: self.started.elapsed(), took: since.elapsed() });
    }

    /// Runs `work` as a step with a progress indicator and records it.
    pub(crate) async fn step<T>(
        &mut self,
        label: &str,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let begun = Instant::now();
        let out = spin(label, work).await?;
        self.mark(label, begun);
        Ok(out)
    }

    /// Prints the timeline as a table.
    pub(crate) fn print(&self) {
        println!("\nTimeline (from the start of the command):");
        let width = self.milestones.iter().map(|m| m.label.chars().count()).max().unwrap_or(0);
        for m in &self.milestones {
            println!(
                "  {:>7}  {:<width$}  took {}",
                format!("{:.1}s", m.at.as_secs_f64()),
                m.label,
                seconds(m.took),
                width = width
            );
        }
    }
}

/// `12.3s` for short spans, `4m 05s` for long ones.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 { format!("{s:.1}s") } else { format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60) }
}

/// Runs `work` while showing `label` with a spinner and the elapsed time.
pub(crate) async fn spin<T>(label: &str, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let begun = Instant::now();
    let tty = interactive();
    if !tty {
        println!("  .. {label}");
    }
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(if tty { 100 } else { 30_000 }));
    tick.tick().await;
    let mut frame = 0usize;
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => {
                if tty {
                    frame += 1;
                    print!("\r\x1b[2K  {} {label}  {}", SPINNER[frame % SPINNER.len()], seconds(begun.elapsed()));
                } else {
                    println!("  .. {label} (still running, {})", seconds(begun.elapsed()));
                }
                let _ = std::io::stdout().flush();
            }
        }
    };
    clear_line();
    match &out {
        Ok(_) => println!("  ✓ {label} ({})", seconds(begun.elapsed())),
        Err(_) => println!("  ✗ {label} ({})", seconds(begun.elapsed())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_seconds_then_minutes() {
        assert_eq!(seconds(Duration::from_millis(12_345)), "12.3s");
        assert_eq!(seconds(Duration::from_secs(245)), "4m 05s");
    }

    #[tokio::test]
    async fn a_step_is_recorded_only_when_it_succeeds() {
        let mut t = Timeline::new();
        assert_eq!(t.step("works", async { Ok(7) }).await.ok(), Some(7));
        assert!(t.step("fails", async { Err::<(), _>(anyhow::anyhow!("no")) }).await.is_err());
        let labels: Vec<&str> = t.milestones.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["works"]);
    }
}
