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
                let source = tally.job(*job).map_or("", |r| r.source.as_str());
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
        let totals = tally.totals();
        writeln!(summary, "### ferry sync\n")?;
        writeln!(summary, "| copied | skipped | failed | bytes | time |")?;
        writeln!(summary, "|---:|---:|---:|---:|---:|")?;
        writeln!(
            summary,
            "| {} | {} | {} | {} | {:.1}s |\n",
            totals.copied,
            totals.skipped,
            totals.failed,
            human_bytes(totals.bytes),
            tally.elapsed().as_secs_f64()
        )?;
        writeln!(summary, "| source | target | result |")?;
        writeln!(summary, "|---|---|---|")?;
        for record in tally.jobs() {
            let result = match &record.outcome {
                Some(Outcome::Copied { bytes, .. }) => format!("copied ({})", human_bytes(*bytes)),
                Some(Outcome::Skipped { reason }) => format!("skipped: {reason}"),
                Some(Outcome::Failed { error }) => format!("**failed**: {error}"),
                None => "not finished".to_owned(),
            };
            writeln!(
                summary,
                "| `{}` | `{}` | {} |",
                record.source,
                record.target,
                result.replace('|', "\\|")
            )?;
        }
        summary.flush()
    }
}

/// Escaping of a workflow command's message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a workflow command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::render;

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
        assert_eq!(
            text,
            "::warning title=ferry retry%3A docker.io/library/busybox%3A1::mirror.local: 503 Service Unavailable\n\
             ::error title=ferry%3A docker.io/library/busybox%3A1::docker.io/library/busybox:1 -> mirror.local/busybox:1: manifest unknown | it's [gone]\n"
        );
        let summary = String::from_utf8(summary).expect("utf-8");
        assert!(
            summary.contains("| 1 | 1 | 1 | 1.5 KiB | 3.0s |"),
            "{summary}"
        );
        assert!(summary.contains(
            "| `docker.io/library/redis:1` | `mirror.local/redis:1` | skipped: unchanged |"
        ));
        assert!(summary
            .contains("**failed**: docker.io/library/busybox:1 -> mirror.local/busybox:1: manifest unknown \\| it's [gone]"));
    }
}
