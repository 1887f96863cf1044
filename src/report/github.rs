//! GitHub Actions: `::error`/`::warning` workflow commands and a step summary.
//!
//! Owns the escaping of workflow commands and the summary markdown. It must not write the
//! summary anywhere but the writer it was given (the `GITHUB_STEP_SUMMARY` file).

use std::io::{self, Write};

use super::{human_bytes, Reporter, Tally};
use crate::event::{Event, Outcome};

/// Annotations to `out` (stdout), the markdown summary to `summary` at the end.
pub struct GithubReporter<W: Write + Send, S: Write + Send> {
    out: W,
    summary: Option<S>,
}

impl<W: Write + Send, S: Write + Send> GithubReporter<W, S> {
    /// A reporter writing annotations to `out` and, when given, the step summary.
    pub fn new(out: W, summary: Option<S>) -> Self {
        GithubReporter { out, summary }
    }
}

impl<W: Write + Send, S: Write + Send> Reporter for GithubReporter<W, S> {
    fn event(&mut self, event: &Event, tally: &Tally) -> io::Result<()> {
        match event {
            Event::Finished {
                job,
                outcome: Outcome::Failed { error },
                ..
            } => {
                let source = tally.job(*job).map_or("", |r| r.source.as_str());
                writeln!(
                    self.out,
                    "::error title={}::{}",
                    escape_property(&format!("ferry: {source}")),
                    escape_data(error)
                )
            }
            Event::Retrying { job, cause, .. } => {
                let source = tally.subject(*job);
                writeln!(
                    self.out,
                    "::warning title={}::{}",
                    escape_property(&format!("ferry retry: {source}")),
                    escape_data(cause)
                )
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        self.out.flush()?;
        let Some(summary) = &mut self.summary else {
            return Ok(());
        };
        write_summary(summary, tally)?;
        summary.flush()
    }
}

/// Most skipped images the summary lists, folded in a `<details>` block.
pub const LISTED_SKIPS: usize = 200;
/// Most copied images the summary lists (the JSON report has them all).
pub const LISTED_COPIES: usize = 200;

/// The step summary: totals, every failure, the copies, and the skips counted and folded.
fn write_summary(summary: &mut impl Write, tally: &Tally) -> io::Result<()> {
    let totals = tally.totals();
    writeln!(summary, "### ferry\n")?;
    writeln!(summary, "| copied | skipped | failed | bytes | time |")?;
    writeln!(summary, "|---:|---:|---:|---:|---:|")?;
    writeln!(
        summary,
        "| {} | {} | {} | {} | {:.1}s |",
        totals.copied,
        totals.skipped,
        totals.failed,
        human_bytes(totals.bytes),
        tally.elapsed().as_secs_f64()
    )?;
    if !tally.pulls().is_empty() {
        writeln!(
            summary,
            "\n| source registry | pulls spent | remaining | deferred |"
        )?;
        writeln!(summary, "|---|---:|---:|---:|")?;
        for budget in tally.pulls() {
            let remaining = budget.remaining.map_or("-".to_owned(), |n| n.to_string());
            writeln!(
                summary,
                "| {} | {} | {remaining} | {} |",
                budget.registry, budget.pulls, budget.deferred
            )?;
        }
        for line in tally.deferrals() {
            writeln!(summary, "\n**{line}**")?;
        }
    }
    let of = |wanted: fn(&Outcome) -> bool| {
        tally
            .jobs()
            .filter(move |r| r.outcome.as_ref().is_some_and(wanted))
    };
    if totals.failed > 0 {
        writeln!(summary, "\n#### Failed ({})\n", totals.failed)?;
        writeln!(summary, "| source | target | cause |")?;
        writeln!(summary, "|---|---|---|")?;
        for record in of(|o| matches!(o, Outcome::Failed { .. })) {
            let Some(Outcome::Failed { error }) = &record.outcome else {
                continue;
            };
            let prefix = format!("{} -> {}: ", record.source, record.target);
            let cause = error.strip_prefix(&prefix).unwrap_or(error);
            row(summary, &record.source, &record.target, cause)?;
        }
    }
    if totals.copied > 0 {
        writeln!(summary, "\n#### Copied ({})\n", totals.copied)?;
        writeln!(summary, "| source | target | bytes |")?;
        writeln!(summary, "|---|---|---:|")?;
        for record in of(|o| matches!(o, Outcome::Copied { .. })).take(LISTED_COPIES) {
            let Some(Outcome::Copied { bytes, note, .. }) = &record.outcome else {
                continue;
            };
            let note = note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
            row(
                summary,
                &record.source,
                &record.target,
                &format!("{}{note}", human_bytes(*bytes)),
            )?;
        }
        more(summary, totals.copied, LISTED_COPIES)?;
    }
    if totals.skipped > 0 {
        let shown = totals.skipped.min(LISTED_SKIPS);
        let first = if shown < totals.skipped {
            format!(", the first {shown}")
        } else {
            String::new()
        };
        writeln!(
            summary,
            "\n<details><summary>Skipped ({}{first})</summary>\n",
            totals.skipped
        )?;
        writeln!(summary, "| source | target | reason |")?;
        writeln!(summary, "|---|---|---|")?;
        for record in of(|o| matches!(o, Outcome::Skipped { .. })).take(LISTED_SKIPS) {
            let Some(Outcome::Skipped { reason }) = &record.outcome else {
                continue;
            };
            row(summary, &record.source, &record.target, &reason.to_string())?;
        }
        more(summary, totals.skipped, LISTED_SKIPS)?;
        writeln!(summary, "\n</details>")?;
    }
    Ok(())
}

fn row(summary: &mut impl Write, source: &str, target: &str, text: &str) -> io::Result<()> {
    writeln!(
        summary,
        "| `{source}` | `{target}` | {} |",
        text.replace('|', "\\|").replace(['\n', '\r'], " ")
    )
}

fn more(summary: &mut impl Write, all: usize, listed: usize) -> io::Result<()> {
    if all > listed {
        writeln!(
            summary,
            "\n… and {} more (`--report FILE` lists every job)",
            all - listed
        )?;
    }
    Ok(())
}

/// Escaping of a workflow command's message.
pub fn escape_data(text: &str) -> String {
    super::printable(
        &text
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A"),
    )
}

/// Escaping of a workflow command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{large_events, render, render_events};

    #[test]
    fn escaping_follows_workflow_command_rules() {
        assert_eq!(escape_data("50%\nx"), "50%25%0Ax");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn annotations_and_summary() {
        let mut out = Vec::new();
        let mut summary = Vec::new();
        render(GithubReporter::new(&mut out, Some(&mut summary)));
        let text = String::from_utf8(out).expect("utf-8");
        insta::assert_snapshot!("github_annotations_sample", text);
        let summary = String::from_utf8(summary).expect("utf-8");
        insta::assert_snapshot!("github_summary_sample", summary);
    }

    #[test]
    fn a_large_run_lists_failures_and_copies_and_folds_the_skips() {
        let mut out = Vec::new();
        let mut summary = Vec::new();
        render_events(
            GithubReporter::new(&mut out, Some(&mut summary)),
            large_events(),
        );
        let annotations = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            annotations.lines().count(),
            3,
            "one ::error per failure only"
        );
        let summary = String::from_utf8(summary).expect("utf-8");
        let skip_rows = summary
            .lines()
            .filter(|l| l.ends_with("| unchanged |"))
            .count();
        assert_eq!(skip_rows, LISTED_SKIPS, "skips listed up to the cap");
        assert!(summary.contains("<details><summary>Skipped (487, the first 200)</summary>"));
        assert!(summary.contains("… and 287 more"));
        insta::assert_snapshot!("github_summary_large", summary);
    }
}
