//! `--report FILE`: the whole run as one JSON document, written at the end.
//!
//! Owns the report's JSON shape. It must not write anything before the run ends.

use std::io::{self, Write};

use super::{Reporter, Tally, Totals};
use crate::event::Event;

/// Writes `{"elapsed_seconds", "totals", "jobs": [...], "pulls_spent": [...]}` when the
/// run finishes.
pub struct JsonReporter<W: Write + Send> {
    out: W,
}

#[derive(serde::Serialize)]
struct Document<'a> {
    elapsed_seconds: f64,
    totals: Totals,
    jobs: Vec<&'a super::JobRecord>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    planning_retries: &'a [super::RetryRecord],
    /// Per source registry: manifest GETs (`pulls`), the announced budget, deferrals.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pulls_spent: &'a [crate::registry::PullBudget],
}

impl<W: Write + Send> JsonReporter<W> {
    /// A reporter writing to `out` at the end of the run.
    pub fn new(out: W) -> Self {
        JsonReporter { out }
    }
}

impl<W: Write + Send> Reporter for JsonReporter<W> {
    fn event(&mut self, _event: &Event, _tally: &Tally) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        let document = Document {
            elapsed_seconds: tally.elapsed().as_secs_f64(),
            totals: tally.totals(),
            jobs: tally.jobs().collect(),
            planning_retries: tally.planning_retries(),
            pulls_spent: tally.pulls(),
        };
        serde_json::to_writer_pretty(&mut self.out, &document)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::render;

    #[test]
    fn report_lists_every_job_with_its_outcome() {
        let mut out = Vec::new();
        render(JsonReporter::new(&mut out));
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(value["elapsed_seconds"], 3.0);
        assert_eq!(
            value["totals"],
            serde_json::json!({"copied": 1, "skipped": 1, "failed": 1, "bytes": 1536})
        );
        let jobs = value["jobs"].as_array().expect("jobs array");
        assert_eq!(jobs.len(), 3);
        assert_eq!(jobs[0]["outcome"], "copied");
        assert_eq!(jobs[0]["digest"], "sha256:bb");
        assert_eq!(jobs[0]["source"], "docker.io/library/nginx:1");
        assert_eq!(jobs[1]["reason"], "unchanged");
        assert_eq!(jobs[2]["outcome"], "failed");
        assert!(jobs[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("manifest unknown")));
    }

    #[test]
    fn report_snapshot() {
        let mut out = Vec::new();
        render(JsonReporter::new(&mut out));
        insta::assert_snapshot!("json_sample", String::from_utf8(out).expect("utf-8"));
    }
}
