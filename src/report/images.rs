//! image-syncer's `--output-success-images` file, and ferry's `--output-failed-images`
//! twin: `source: [destination, …]` maps in YAML or one line of JSON, written at the end.
//!
//! Owns those two file shapes. It must not write before the run ends, nor list skipped
//! images as successes (image-syncer v1.5.4 records only the images it copied).

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{Reporter, Tally};
use crate::event::{Event, Outcome, UnlistedEntry};

/// The target of a job whose tags could not be listed (no concrete image).
pub const UNLISTED: &str = "(tags not listed)";

/// Format of the images files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagesFormat {
    /// YAML: a mapping of source to a list of destinations; the failed file carries each
    /// cause as a comment above its source, so it can be fed back as `--images`.
    Yaml,
    /// One line of JSON, the same map (JSON has no comments: causes are in the log).
    Json,
}

/// Writes the copied images to `success` and the failed ones to `failed`, when given.
pub struct ImagesReporter<S: Write + Send, F: Write + Send> {
    success: Option<S>,
    failed: Option<F>,
    format: ImagesFormat,
    /// Entries whose tags could not be listed, by source repository, as written.
    unlisted: BTreeMap<String, UnlistedEntry>,
}

impl<S: Write + Send, F: Write + Send> ImagesReporter<S, F> {
    /// A reporter writing the given files in `format` at the end of the run.
    pub fn new(success: Option<S>, failed: Option<F>, format: ImagesFormat) -> Self {
        ImagesReporter {
            success,
            failed,
            format,
            unlisted: BTreeMap::new(),
        }
    }
}

/// source -> [(destination, cause)] in source order.
type Images = BTreeMap<String, Vec<(String, Option<String>)>>;

impl<S: Write + Send, F: Write + Send> Reporter for ImagesReporter<S, F> {
    fn event(&mut self, event: &Event, _: &Tally) -> io::Result<()> {
        if let Event::Planned { jobs } = event {
            for job in jobs {
                if let Some(entry) = &job.unlisted {
                    self.unlisted.insert(job.source.clone(), entry.clone());
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, tally: &Tally) -> io::Result<()> {
        let mut copied = Images::new();
        let mut failed = Images::new();
        let mut unlisted = Vec::new();
        for record in tally.jobs() {
            let (map, cause) = match &record.outcome {
                Some(Outcome::Copied { .. }) => (&mut copied, None),
                // The entry as written, so the failed file retries exactly it.
                Some(Outcome::Failed { error }) if record.target == UNLISTED => {
                    match self.unlisted.get(&record.source) {
                        Some(entry) if !entry.destinations.is_empty() => {
                            let destinations = failed.entry(entry.key.clone()).or_default();
                            for destination in &entry.destinations {
                                destinations.push((destination.clone(), Some(error.clone())));
                            }
                        }
                        _ => unlisted.push(error.clone()),
                    }
                    continue;
                }
                Some(Outcome::Failed { error }) => (&mut failed, Some(error.clone())),
                _ => continue,
            };
            let destinations = map.entry(record.source.clone()).or_default();
            if !destinations.iter().any(|(d, _)| *d == record.target) {
                destinations.push((record.target.clone(), cause));
            }
        }
        if let Some(out) = &mut self.success {
            write_images(out, &copied, &[], self.format)?;
        }
        if let Some(out) = &mut self.failed {
            write_images(out, &failed, &unlisted, self.format)?;
        }
        Ok(())
    }
}

fn write_images(
    out: &mut impl Write,
    images: &Images,
    unlisted: &[String],
    format: ImagesFormat,
) -> io::Result<()> {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
    match format {
        ImagesFormat::Json => {
            let map: BTreeMap<&str, Vec<&str>> = images
                .iter()
                .map(|(k, v)| (k.as_str(), v.iter().map(|(d, _)| d.as_str()).collect()))
                .collect();
            serde_json::to_writer(&mut *out, &map)?;
            writeln!(out)?;
        }
        ImagesFormat::Yaml => {
            for cause in unlisted {
                writeln!(out, "# {}", one_line(cause))?;
            }
            if images.is_empty() {
                writeln!(out, "{{}}")?;
            }
            for (source, destinations) in images {
                for cause in destinations.iter().filter_map(|(_, c)| c.as_deref()) {
                    writeln!(out, "# {}", one_line(cause))?;
                }
                writeln!(out, "{}:", quoted(source))?;
                for (destination, _) in destinations {
                    writeln!(out, "- {}", quoted(destination))?;
                }
            }
        }
    }
    out.flush()
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::render;

    fn files(format: ImagesFormat) -> (String, String) {
        let (mut success, mut failed) = (Vec::new(), Vec::new());
        render(ImagesReporter::new(
            Some(&mut success),
            Some(&mut failed),
            format,
        ));
        let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
        (text(success), text(failed))
    }

    #[test]
    fn yaml_lists_copied_images_only_and_failures_with_their_cause() {
        let (success, failed) = files(ImagesFormat::Yaml);
        insta::assert_snapshot!("images_success_yaml", success);
        insta::assert_snapshot!("images_failed_yaml", failed);
        assert!(!success.contains("redis"), "a skip is no success");
        // The failed file is an images file again: it can be fed back as --images.
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("failed.yaml");
        std::fs::write(&path, &failed).expect("write");
        let config = crate::config::Config::load_image_syncer(&path, None, &|_| None)
            .expect("the failed file loads as an images file");
        assert_eq!(
            config.images()[0].source.to_string(),
            "docker.io/library/busybox"
        );
    }

    #[test]
    fn json_is_one_line_of_the_same_map() {
        let (success, failed) = files(ImagesFormat::Json);
        assert_eq!(
            success,
            "{\"docker.io/library/nginx:1\":[\"mirror.local/nginx:1\"]}\n"
        );
        assert_eq!(
            failed,
            "{\"docker.io/library/busybox:1\":[\"mirror.local/busybox:1\"]}\n"
        );
    }

    /// An entry whose tags could not be listed is written as it was, with its cause: the
    /// failed file retries it as well.
    #[test]
    fn an_unlisted_entry_is_written_as_the_entry_it_was() {
        use crate::event::PlannedJob;
        use std::time::Duration;
        let source = "down.io/library/down";
        let events = [
            Event::Planned {
                jobs: vec![PlannedJob {
                    source: source.to_owned(),
                    target: UNLISTED.to_owned(),
                    unlisted: Some(UnlistedEntry {
                        key: format!("{source}:/^1\\./"),
                        destinations: vec!["mirror.local/down".to_owned()],
                    }),
                }],
            },
            Event::Started {
                job: 0,
                source: source.to_owned(),
                target: UNLISTED.to_owned(),
            },
            Event::Finished {
                job: 0,
                outcome: Outcome::Failed {
                    error: format!("{source}: list tags: HTTP 503"),
                },
                elapsed: Duration::ZERO,
            },
        ];
        for format in [ImagesFormat::Yaml, ImagesFormat::Json] {
            let mut failed = Vec::new();
            let mut reporter = ImagesReporter::new(None::<Vec<u8>>, Some(&mut failed), format);
            let mut tally = Tally::default();
            for event in &events {
                tally.apply(event);
                reporter.event(event, &tally).expect("event");
            }
            reporter.finish(&tally).expect("finish");
            let text = String::from_utf8(failed).expect("utf-8");
            assert!(
                text.contains("down.io/library/down:/^1"),
                "{format:?}: {text}"
            );
            assert!(text.contains("mirror.local/down"), "{format:?}: {text}");
        }
    }
}
