//! Shared fixtures of the reporters' tests: a small run and a large one.

use super::*;

/// A small run: one copied, one skipped, one failed, with a retry and layer progress.
pub(crate) fn sample_events() -> Vec<Event> {
    use crate::event::LayerStatus;
    let started = |job: JobId, name: &str| Event::Started {
        job,
        source: format!("docker.io/library/{name}:1"),
        target: format!("mirror.local/{name}:1"),
    };
    vec![
        started(0, "nginx"),
        Event::Layer {
            job: 0,
            layer: "sha256:aa".into(),
            status: LayerStatus::Pushing,
            current: 512,
            total: Some(1024),
        },
        Event::Finished {
            job: 0,
            outcome: Outcome::Copied {
                note: None,
                bytes: 1536,
                digest: "sha256:bb".into(),
            },
            elapsed: Duration::from_millis(1500),
        },
        started(1, "redis"),
        Event::Finished {
            job: 1,
            outcome: Outcome::Skipped {
                reason: crate::event::SkipReason::Unchanged,
            },
            elapsed: Duration::from_millis(10),
        },
        started(2, "busybox"),
        Event::Retrying {
            job: 2,
            attempt: 2,
            wait: Duration::from_secs(1),
            cause: "mirror.local: 503 Service Unavailable".into(),
        },
        Event::Finished {
            job: 2,
            outcome: Outcome::Failed {
                error: "docker.io/library/busybox:1 -> mirror.local/busybox:1: manifest unknown | it's [gone]"
                    .into(),
            },
            elapsed: Duration::from_secs(2),
        },
    ]
}

/// A scheduled run at scale: 500 images of 50 repositories (10 tags each), 4 at a time
/// so repositories interleave at their edges; 3 fail, 10 are copied, 487 are unchanged.
pub(crate) fn large_events() -> Vec<Event> {
    use crate::event::{PlannedJob, SkipReason};
    const JOBS: usize = 500;
    let source = |i: usize| format!("docker.io/library/img{:02}:1.{}", i / 10, i % 10);
    let target = |i: usize| format!("mirror.local/img{:02}:1.{}", i / 10, i % 10);
    let planned = (0..JOBS)
        .map(|i| PlannedJob {
            unlisted: None,
            source: source(i),
            target: target(i),
        })
        .collect();
    let finished = |i: usize| Event::Finished {
        job: i,
        outcome: match i {
            17 | 250 | 499 => Outcome::Failed {
                error: format!("{} -> {}: manifest unknown", source(i), target(i)),
            },
            i if i % 50 == 3 => Outcome::Copied {
                bytes: 1024 * 1024,
                digest: format!("sha256:{i:064}"),
                note: None,
            },
            _ => Outcome::Skipped {
                reason: SkipReason::Unchanged,
            },
        },
        elapsed: Duration::from_millis(20),
    };
    let mut events = vec![Event::Planned { jobs: planned }];
    for i in 0..JOBS {
        events.push(Event::Started {
            job: i,
            source: source(i),
            target: target(i),
        });
        if i >= 3 {
            events.push(finished(i - 3));
        }
    }
    events.extend((JOBS - 3..JOBS).map(finished));
    events
}

pub(crate) fn render(reporter: impl Reporter) -> Tally {
    render_events(reporter, sample_events())
}

/// Feeds `events` to `reporter` as a run would, the run lasting 3 s.
pub(crate) fn render_events(mut reporter: impl Reporter, events: Vec<Event>) -> Tally {
    let mut tally = Tally::default();
    for event in events {
        tally.apply(&event);
        reporter.event(&event, &tally).expect("render event");
    }
    tally.set_elapsed(Duration::from_secs(3));
    reporter.finish(&tally).expect("finish");
    tally
}

#[test]
fn tally_counts_outcomes_and_bytes() {
    let mut tally = Tally::default();
    for event in sample_events() {
        tally.apply(&event);
    }
    assert_eq!(
        tally.totals(),
        Totals {
            copied: 1,
            skipped: 1,
            failed: 1,
            bytes: 1536
        }
    );
}

/// A reporter whose output is gone after `after` events.
struct Broken {
    after: usize,
    seen: usize,
}

impl Reporter for Broken {
    fn event(&mut self, _: &Event, _: &Tally) -> io::Result<()> {
        self.seen += 1;
        if self.seen > self.after {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
        }
        Ok(())
    }

    fn finish(&mut self, _: &Tally) -> io::Result<()> {
        Err(io::Error::other("disk full"))
    }
}

#[test]
fn a_failing_reporter_stops_alone() {
    let log = EventLog::default();
    let mut reporters = Reporters::default();
    reporters.push_named("stdout", Box::new(Broken { after: 1, seen: 0 }));
    reporters.push_named("log", Box::new(log.clone()));
    reporters.push_named("report r.json", Box::new(Broken { after: 99, seen: 0 }));
    for event in sample_events() {
        reporters.event(&event);
    }
    let tally = reporters.finish(Duration::from_secs(1)).clone();
    assert_eq!(
        log.events(),
        sample_events(),
        "every event reached the others"
    );
    assert_eq!(tally.totals().failed, 1, "the tally is complete");
    let failures = reporters.failures();
    let named: Vec<(&str, bool)> = failures
        .iter()
        .map(|f| (f.name.as_str(), f.is_closed_output()))
        .collect();
    assert_eq!(named, [("stdout", true), ("report r.json", false)]);
}

#[test]
fn human_bytes_units() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(176 * 1024 * 1024), "176.0 MiB");
}

#[test]
fn printable_text_has_no_control_characters() {
    assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
    assert_eq!(
        printable("x\ny\u{85}z\u{2028}"),
        "x\\u{a}y\\u{85}z\\u{2028}"
    );
    assert_eq!(printable("镜像 😀 ok"), "镜像 😀 ok");
}

/// Pulls spent per source registry, and the deferrals of a budget below its floor, in
/// every format that summarizes a run.
#[test]
fn pulls_spent_and_deferrals_are_in_every_summary() {
    use crate::registry::PullBudget;
    let mut tally = Tally::default();
    for event in sample_events() {
        tally.apply(&event);
    }
    tally.set_pulls(vec![
        PullBudget {
            registry: "docker.io".into(),
            pulls: 7,
            remaining: Some(9),
            limit: Some(100),
            rate_floor: 10,
            deferred: 3,
        },
        PullBudget {
            registry: "ghcr.io".into(),
            pulls: 2,
            ..PullBudget::default()
        },
    ]);
    let deferral = "Docker Hub pull budget below the floor: 3 images deferred";
    assert_eq!(tally.deferrals(), [deferral]);

    let mut human = Vec::new();
    HumanReporter::plain(&mut human)
        .finish(&tally)
        .expect("human");
    let human = String::from_utf8(human).expect("utf-8");
    let table = human.split_once("pulls spent").expect("pulls section").1;
    assert!(
        table.contains("docker.io") && table.contains("7  (remaining 9 of 100)"),
        "{human}"
    );
    assert!(
        table.contains("ghcr.io") && human.contains(deferral),
        "{human}"
    );

    let mut json = Vec::new();
    JsonReporter::new(&mut json).finish(&tally).expect("json");
    let json: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(
        json["pulls_spent"][0],
        serde_json::json!({"registry": "docker.io", "pulls": 7, "remaining": 9,
            "limit": 100, "rate_floor": 10, "deferred": 3})
    );
    assert_eq!(json["pulls_spent"][1]["pulls"], 2);

    let mut teamcity = Vec::new();
    TeamcityReporter::new(&mut teamcity)
        .finish(&tally)
        .expect("teamcity");
    let teamcity = String::from_utf8(teamcity).expect("utf-8");
    assert!(
        teamcity.contains("key='ferry.pulls' value='9'")
            && teamcity.contains("key='ferry.deferred' value='3'")
            && teamcity.contains(&format!(
                "##teamcity[message text='{deferral}' status='WARNING']"
            )),
        "{teamcity}"
    );

    let mut summary = Vec::new();
    GithubReporter::new(std::io::sink(), Some(&mut summary))
        .finish(&tally)
        .expect("github");
    let summary = String::from_utf8(summary).expect("utf-8");
    assert!(summary.contains("| docker.io | 7 | 9 | 3 |"), "{summary}");
    assert!(summary.contains(deferral), "{summary}");
    tally.set_pulls(vec![PullBudget {
        registry: "docker.io".into(),
        deferred: 1,
        ..PullBudget::default()
    }]);
    assert_eq!(
        tally.deferrals(),
        ["Docker Hub pull budget below the floor: 1 image deferred"]
    );
}
