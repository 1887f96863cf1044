//! Human output: progress bars on a terminal, plain lines elsewhere, a final table.
//!
//! Owns the look of a run for people. It must not decide outcomes; it renders events.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::{Layers, Overall};
use super::{human_bytes, Reporter, Tally};
use crate::event::{Event, JobId, LayerStatus, Outcome};

/// Renders events for people: bars when `bars` is set (a TTY), plain lines otherwise.
pub struct HumanReporter<W: Write + Send> {
    out: W,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    /// The whole run, above the bars of the running images.
    overall: ProgressBar,
    progress: Overall,
    jobs: HashMap<JobId, JobBar>,
}

struct JobBar {
    bar: ProgressBar,
    layers: Layers,
}

/// Most copies the end table lists one by one (the JSON report has them all).
pub const LISTED_COPIES: usize = 200;

impl<W: Write + Send> HumanReporter<W> {
    /// Plain lines to `out`, one per finished job, retry and layer.
    pub fn plain(out: W) -> Self {
        HumanReporter { out, bars: None }
    }

    /// Live progress bars on stderr; finished jobs and the summary go to `out`.
    pub fn with_bars(out: W) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(overall_style());
        overall.set_prefix("images");
        HumanReporter {
            out,
            bars: Some(Bars {
                multi,
                overall,
                progress: Overall::default(),
                jobs: HashMap::new(),
            }),
        }
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        let text = super::printable(text);
        match &self.bars {
            Some(bars) => bars.multi.suspend(|| writeln!(self.out, "{text}")),
            None => writeln!(self.out, "{text}"),
        }
    }
}

impl<W: Write + Send> Reporter for HumanReporter<W> {
    fn event(&mut self, event: &Event, tally: &Tally) -> io::Result<()> {
        if let Some(bars) = &mut self.bars {
            bars.progress.apply(event);
            bars.overall.set_length(bars.progress.total() as u64);
            bars.overall.set_position(bars.progress.done() as u64);
            bars.overall.set_message(bars.progress.message());
        }
        match event {
            Event::Planned { .. } => Ok(()),
            Event::Started { job, source, .. } => {
                if let Some(bars) = &mut self.bars {
                    let bar = bars.multi.add(ProgressBar::new(0));
                    bar.set_style(bar_style());
                    bar.set_prefix(source.clone());
                    bars.jobs.insert(
                        *job,
                        JobBar {
                            bar,
                            layers: Layers::default(),
                        },
                    );
                }
                Ok(())
            }
            Event::Layer {
                job,
                layer,
                status,
                current,
                total,
            } => {
                if let Some(bars) = &mut self.bars {
                    if let Some(job_bar) = bars.jobs.get_mut(job) {
                        job_bar.update(layer, *status, *current, *total);
                    }
                    return Ok(());
                }
                let finished = matches!(
                    status,
                    LayerStatus::Done | LayerStatus::AlreadyExists | LayerStatus::Mounted
                );
                if !finished {
                    return Ok(());
                }
                let source = tally.job(*job).map_or("", |r| r.source.as_str());
                let size = total.map(human_bytes).unwrap_or_default();
                let status = serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                self.line(&format!(
                    "  layer {} {status} {size}  [{source}]",
                    short(layer)
                ))
            }
            Event::Retrying {
                job,
                attempt,
                wait,
                cause,
            } => {
                let source = tally.subject(*job);
                self.line(&format!(
                    "retry   {source} (attempt {attempt} in {}): {cause}",
                    seconds(*wait)
                ))
            }
            Event::Log { job, line } => {
                if let Some(bars) = &mut self.bars {
                    if let Some(job_bar) = bars.jobs.get_mut(job) {
                        job_bar.bar.set_message(line.clone());
                    }
                    return Ok(());
                }
                self.line(&format!("  | {line}"))
            }
            Event::Finished {
                job,
                outcome,
                elapsed,
            } => {
                if let Some(bars) = &mut self.bars {
                    if let Some(job_bar) = bars.jobs.remove(job) {
                        job_bar.bar.finish_and_clear();
                        bars.multi.remove(&job_bar.bar);
                    }
                }
                let Some(record) = tally.job(*job) else {
                    return Ok(());
                };
                let text = match outcome {
                    Outcome::Copied { bytes, note, .. } => format!(
                        "copied  {} -> {}  {} in {}{}",
                        record.source,
                        record.target,
                        human_bytes(*bytes),
                        seconds(*elapsed),
                        note.as_ref()
                            .map(|n| format!("  ({n})"))
                            .unwrap_or_default()
                    ),
                    Outcome::Skipped { reason } => {
                        format!("skipped {} -> {}  ({reason})", record.source, record.target)
                    }
                    // The error names source, target and cause already.
                    Outcome::Failed { error } => format!("FAILED  {error}"),
                };
                self.line(&text)
            }
        }
    }

    fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        if let Some(bars) = &self.bars {
            bars.overall.finish_and_clear();
            bars.multi.clear()?;
        }
        let totals = tally.totals();
        writeln!(self.out)?;
        writeln!(self.out, "{:<8} {:>8}", "copied", totals.copied)?;
        writeln!(self.out, "{:<8} {:>8}", "skipped", totals.skipped)?;
        writeln!(self.out, "{:<8} {:>8}", "failed", totals.failed)?;
        writeln!(self.out, "{:<8} {:>8}", "bytes", human_bytes(totals.bytes))?;
        writeln!(self.out, "{:<8} {:>8}", "time", seconds(tally.elapsed()))?;
        // Copies and failures one by one; skips only counted (they are most of a
        // scheduled run, and each had its line above).
        let copies: Vec<String> = tally
            .jobs()
            .filter_map(|r| match &r.outcome {
                Some(Outcome::Copied { bytes, .. }) => Some(format!(
                    "{} -> {}  {}",
                    r.source,
                    r.target,
                    human_bytes(*bytes)
                )),
                _ => None,
            })
            .collect();
        if !copies.is_empty() {
            writeln!(self.out, "\ncopied:")?;
            for line in copies.iter().take(LISTED_COPIES) {
                writeln!(self.out, "  {line}")?;
            }
            if copies.len() > LISTED_COPIES {
                let more = copies.len() - LISTED_COPIES;
                writeln!(
                    self.out,
                    "  … and {more} more (--report FILE lists every job)"
                )?;
            }
        }
        let failures: Vec<_> = tally
            .jobs()
            .filter_map(|r| match &r.outcome {
                Some(Outcome::Failed { error }) => Some(error),
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            writeln!(self.out, "\nfailed:")?;
            for error in failures {
                writeln!(self.out, "  {error}")?;
            }
        }
        if !tally.pulls().is_empty() {
            writeln!(
                self.out,
                "\npulls spent (source manifest GETs; HEADs are free):"
            )?;
            for budget in tally.pulls() {
                let left = match (budget.remaining, budget.limit) {
                    (Some(n), Some(limit)) => format!("  (remaining {n} of {limit})"),
                    (Some(n), None) => format!("  (remaining {n})"),
                    _ => String::new(),
                };
                writeln!(
                    self.out,
                    "  {:<30} {:>6}{left}",
                    budget.registry, budget.pulls
                )?;
            }
        }
        for line in tally.deferrals() {
            writeln!(self.out, "{line}")?;
        }
        self.out.flush()
    }
}

impl JobBar {
    fn update(&mut self, layer: &str, status: LayerStatus, current: u64, total: Option<u64>) {
        self.layers.update(layer, status, current, total);
        let (done, all) = self.layers.sums();
        self.bar.set_length(all);
        self.bar.set_position(done);
        self.bar
            .set_message(format!("{} layers", self.layers.count()));
    }
}

fn overall_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>6} {bar:30} {pos}/{len} done  {msg}  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:40!} {bar:30} {bytes:>10}/{total_bytes:10} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn short(layer: &str) -> &str {
    let hex = layer.strip_prefix("sha256:").unwrap_or(layer);
    &hex[..hex.len().min(12)]
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{large_events, render, render_events};

    #[test]
    fn plain_output_has_one_line_per_outcome_and_a_table() {
        let mut out = Vec::new();
        render(HumanReporter::plain(&mut out));
        let text = String::from_utf8(out).expect("utf-8");
        insta::assert_snapshot!("human_plain_sample", text);
    }

    #[test]
    fn plain_output_shows_log_lines_indented() {
        let mut out = Vec::new();
        let mut reporter = HumanReporter::plain(&mut out);
        let event = Event::Log {
            job: 0,
            line: "Step 2/3 : COPY hello.txt /hello.txt".into(),
        };
        reporter
            .event(&event, &Tally::default())
            .expect("render a log line");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text, "  | Step 2/3 : COPY hello.txt /hello.txt\n");
    }

    #[test]
    fn the_end_table_of_a_large_run_lists_copies_and_failures_and_counts_skips() {
        let mut out = Vec::new();
        render_events(HumanReporter::plain(&mut out), large_events());
        let text = String::from_utf8(out).expect("utf-8");
        let (_, table) = text.split_once("\n\n").expect("a table after the lines");
        assert!(
            !table.contains("unchanged"),
            "skips are counted, not listed"
        );
        insta::assert_snapshot!("human_end_table_large", table);
    }
}
