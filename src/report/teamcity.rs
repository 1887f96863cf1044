//! TeamCity service messages (`##teamcity[...]`), used when `TEAMCITY_VERSION` is set.
//!
//! Owns the escaping and choice of messages. It must not print anything but service
//! messages, so the human reporter stays responsible for readable lines.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use super::{Reporter, Tally};
use crate::event::{Event, JobId, Outcome};

/// Emits one test per image in one suite per source repository (the Tests tab keeps each
/// image's history), `progressMessage` as images start, and `buildStatisticValue`s at the
/// end. A repository's suite is written as one block when its last job finishes, so
/// suites never interleave however the jobs do (each test carries its own `duration`).
pub struct TeamcityReporter<W: Write + Send> {
    out: W,
    /// Jobs still to finish per repository, from the run's plan.
    remaining: HashMap<String, usize>,
    /// Finished jobs per repository not written yet, by job id; repositories in the
    /// order their first job finished.
    pending: Vec<(String, BTreeMap<JobId, String>)>,
}

impl<W: Write + Send> TeamcityReporter<W> {
    /// A reporter writing service messages to `out` (stdout in a build step).
    pub fn new(out: W) -> Self {
        TeamcityReporter {
            out,
            remaining: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Writes the suite of `repository` with its finished tests.
    fn write_suite(&mut self, index: usize) -> io::Result<()> {
        let (repository, tests) = self.pending.remove(index);
        let name = escape(&repository);
        writeln!(self.out, "##teamcity[testSuiteStarted name='{name}']")?;
        for test in tests.values() {
            self.out.write_all(test.as_bytes())?;
        }
        writeln!(self.out, "##teamcity[testSuiteFinished name='{name}']")
    }
}

/// The messages of one finished image as a test.
fn test_messages(source: &str, target: &str, outcome: &Outcome, millis: u128) -> String {
    let name = escape(&format!("{source} -> {target}"));
    let mut text = format!("##teamcity[testStarted name='{name}' captureStandardOutput='false']\n");
    match outcome {
        Outcome::Copied { .. } => {}
        Outcome::Skipped { reason } => text.push_str(&format!(
            "##teamcity[testIgnored name='{name}' message='{}']\n",
            escape(&reason.to_string())
        )),
        Outcome::Failed { error } => {
            let prefix = format!("{source} -> {target}: ");
            let cause = error.strip_prefix(&prefix).unwrap_or(error);
            text.push_str(&format!(
                "##teamcity[testFailed name='{name}' message='{}' details='{}']\n",
                escape(cause),
                escape(error)
            ));
        }
    }
    text.push_str(&format!(
        "##teamcity[testFinished name='{name}' duration='{millis}']\n"
    ));
    text
}

impl<W: Write + Send> Reporter for TeamcityReporter<W> {
    fn event(&mut self, event: &Event, tally: &Tally) -> io::Result<()> {
        match event {
            Event::Planned { jobs } => {
                for job in jobs {
                    *self
                        .remaining
                        .entry(repository(&job.source).to_owned())
                        .or_default() += 1;
                }
                Ok(())
            }
            Event::Retrying {
                job,
                attempt,
                wait,
                cause,
            } => writeln!(
                self.out,
                "##teamcity[message text='{}' status='WARNING']",
                escape(&format!(
                    "ferry retry: {} (attempt {attempt} in {:.1}s): {cause}",
                    tally.subject(*job),
                    wait.as_secs_f64()
                ))
            ),
            Event::Started { source, target, .. } => writeln!(
                self.out,
                "##teamcity[progressMessage '{}']",
                escape(&format!("ferry: {source} -> {target}"))
            ),
            Event::Finished {
                job,
                outcome,
                elapsed,
            } => {
                let Some(record) = tally.job(*job) else {
                    return Ok(());
                };
                let repo = repository(&record.source).to_owned();
                let test =
                    test_messages(&record.source, &record.target, outcome, elapsed.as_millis());
                let index = match self.pending.iter().position(|(r, _)| *r == repo) {
                    Some(index) => index,
                    None => {
                        self.pending.push((repo.clone(), BTreeMap::new()));
                        self.pending.len() - 1
                    }
                };
                self.pending[index].1.insert(*job, test);
                if let Some(left) = self.remaining.get_mut(&repo) {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        self.write_suite(index)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.write_suite(0)?;
        }
        let totals = tally.totals();
        let stats = [
            ("ferry.copied", totals.copied as u64),
            ("ferry.skipped", totals.skipped as u64),
            ("ferry.failed", totals.failed as u64),
            ("ferry.bytes", totals.bytes),
            ("ferry.seconds", tally.elapsed().as_secs()),
        ];
        // Pulls spent (source manifest GETs) and jobs deferred for a pull budget, when any
        // source registry was asked.
        let budgets = tally.pulls();
        let pulls = (!budgets.is_empty()).then(|| {
            [
                ("ferry.pulls", budgets.iter().map(|p| p.pulls).sum()),
                ("ferry.deferred", budgets.iter().map(|p| p.deferred).sum()),
            ]
        });
        for (key, value) in stats.into_iter().chain(pulls.into_iter().flatten()) {
            writeln!(
                self.out,
                "##teamcity[buildStatisticValue key='{key}' value='{value}']"
            )?;
        }
        // `… pull budget below the floor: 7 images deferred`, as the other formats say it.
        for line in tally.deferrals() {
            writeln!(
                self.out,
                "##teamcity[message text='{}' status='WARNING']",
                escape(&line)
            )?;
        }
        self.out.flush()
    }
}

/// The repository of a source reference: without its `:tag` and `@digest`.
fn repository(source: &str) -> &str {
    let name = source.split('@').next().unwrap_or(source);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].find(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    }
}

/// TeamCity's escaping: `|` `'` `[` `]` newlines and non-ASCII get a `|` prefix form.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // TeamCity's escape takes four hex digits: a character beyond them is written
            // as its UTF-16 pair.
            c if u32::from(c) > 0xffff => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("|0x{unit:04x}"));
                }
            }
            c if c.is_control() && c != '\n' && c != '\r' => {
                out.push_str(&format!("|0x{:04x}", u32::from(c)));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{large_events, render, render_events};

    #[test]
    fn escaping_follows_teamcity_rules() {
        assert_eq!(escape("a|b'c[d]e\nf\rg"), "a||b|'c|[d|]e|nf|rg");
        assert_eq!(escape("镜像"), "|0x955c|0x50cf");
        assert_eq!(escape("😀"), "|0xd83d|0xde00", "four hex digits each");
        assert_eq!(
            escape("\u{1b}[31m"),
            "|0x001b|[31m",
            "no raw escape sequence"
        );
    }

    #[test]
    fn repositories_of_sources() {
        assert_eq!(
            repository("docker.io/library/nginx:1.25"),
            "docker.io/library/nginx"
        );
        assert_eq!(
            repository("127.0.0.1:5000/team/app@sha256:ab"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(
            repository("127.0.0.1:5000/team/app:1@sha256:ab"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(
            repository("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app"
        );
    }

    #[test]
    fn each_image_is_a_test_in_its_repository_suite() {
        let mut out = Vec::new();
        render(TeamcityReporter::new(&mut out));
        let text = String::from_utf8(out).expect("utf-8");
        insta::assert_snapshot!("teamcity_sample", text);
    }

    #[test]
    fn a_large_run_writes_one_unbroken_suite_per_repository_as_it_completes() {
        let mut out = Vec::new();
        render_events(TeamcityReporter::new(&mut out), large_events());
        let text = String::from_utf8(out).expect("utf-8");
        let mut open: Option<&str> = None;
        let (mut suites, mut tests, mut ignored, mut failed) = (0, 0, 0, 0);
        for line in text.lines() {
            let name = line.split('\'').nth(1).unwrap_or_default();
            if line.starts_with("##teamcity[testSuiteStarted") {
                assert_eq!(open, None, "suites never nest or interleave");
                open = Some(name);
                suites += 1;
            } else if line.starts_with("##teamcity[testSuiteFinished") {
                assert_eq!(open, Some(name), "the suite that is open closes");
                open = None;
            } else if line.starts_with("##teamcity[test") {
                let suite = open.expect("every test inside a suite");
                assert!(name.starts_with(&format!("{suite}:")), "{name} in {suite}");
                tests += usize::from(line.starts_with("##teamcity[testStarted"));
                ignored += usize::from(line.starts_with("##teamcity[testIgnored"));
                failed += usize::from(line.starts_with("##teamcity[testFailed"));
            }
        }
        assert_eq!((suites, tests, ignored, failed), (50, 500, 487, 3));
        // A repository's suite is written once its last image finished, not at the end.
        let closed = text
            .find("testSuiteFinished name='docker.io/library/img00'")
            .expect("suite img00");
        let later = text
            .find("progressMessage 'ferry: docker.io/library/img05")
            .expect("img05 starts");
        assert!(closed < later);
        assert!(text.contains("testFailed name='docker.io/library/img01:1.7 -> mirror.local/img01:1.7' message='manifest unknown'"));
    }
}
