//! TeamCity service messages (`##teamcity[...]`), used when `TEAMCITY_VERSION` is set.
//!
//! Owns the escaping and choice of messages. It must not print anything but service
//! messages, so the human reporter stays responsible for readable lines.

use std::io::{self, Write};

use super::{Reporter, Tally};
use crate::event::{Event, Outcome};

/// Emits `progressMessage`, `buildProblem` and `buildStatisticValue` messages.
pub struct TeamcityReporter<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> TeamcityReporter<W> {
    /// A reporter writing service messages to `out` (stdout in a build step).
    pub fn new(out: W) -> Self {
        TeamcityReporter { out }
    }
}

impl<W: Write + Send> Reporter for TeamcityReporter<W> {
    fn event(&mut self, event: &Event, tally: &Tally) -> io::Result<()> {
        match event {
            Event::Started { source, target, .. } => writeln!(
                self.out,
                "##teamcity[progressMessage '{}']",
                escape(&format!("ferry: {source} -> {target}"))
            ),
            Event::Finished {
                job,
                outcome: Outcome::Failed { error },
                ..
            } => {
                let target = tally.job(*job).map_or("", |r| r.target.as_str());
                writeln!(
                    self.out,
                    "##teamcity[buildProblem description='{}' identity='{}']",
                    escape(error),
                    escape(&identity(target))
                )
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        let totals = tally.totals();
        let stats = [
            ("ferry.copied", totals.copied as u64),
            ("ferry.skipped", totals.skipped as u64),
            ("ferry.failed", totals.failed as u64),
            ("ferry.bytes", totals.bytes),
            ("ferry.seconds", tally.elapsed().as_secs()),
        ];
        for (key, value) in stats {
            writeln!(
                self.out,
                "##teamcity[buildStatisticValue key='{key}' value='{value}']"
            )?;
        }
        self.out.flush()
    }
}

/// TeamCity's escaping: `|` `'` `[` `]` newlines and non-ASCII get a `|` prefix form.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("||"),
            '\'' => out.push_str("|'"),
            '[' => out.push_str("|["),
            ']' => out.push_str("|]"),
            '\n' => out.push_str("|n"),
            '\r' => out.push_str("|r"),
            c if !c.is_ascii() => out.push_str(&format!("|0x{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A problem identity must be at most 60 characters; a stable hash keeps it unique.
fn identity(target: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(target.as_bytes()));
    format!("ferry-{}", &hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::render;

    #[test]
    fn escaping_follows_teamcity_rules() {
        assert_eq!(escape("a|b'c[d]e\nf\rg"), "a||b|'c|[d|]e|nf|rg");
        assert_eq!(escape("镜像"), "|0x955c|0x50cf");
    }

    #[test]
    fn messages_for_progress_problems_and_statistics() {
        let mut out = Vec::new();
        render(TeamcityReporter::new(&mut out));
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "##teamcity[progressMessage 'ferry: docker.io/library/nginx:1 -> mirror.local/nginx:1']"
        );
        let problem = lines
            .iter()
            .find(|l| l.starts_with("##teamcity[buildProblem"))
            .expect("a build problem");
        assert!(
            problem.contains("manifest unknown || it|'s |[gone|]"),
            "{problem}"
        );
        assert!(problem.contains("identity='ferry-"), "{problem}");
        assert!(lines.contains(&"##teamcity[buildStatisticValue key='ferry.copied' value='1']"));
        assert!(lines.contains(&"##teamcity[buildStatisticValue key='ferry.bytes' value='1536']"));
    }
}
