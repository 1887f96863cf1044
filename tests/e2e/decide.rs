//! One decision per job: what `ferry plan` prints is what `ferry sync --dry-run` prints and
//! what `ferry sync` does, job for job, on a mixed fixture (new, unchanged, changed,
//! Windows-only, a platform subset, a missing source), through both transports.

use std::collections::BTreeMap;

use crate::harness::{ferry, project, text};
use crate::support::{
    require_daemon, unique, Fixture, ImageCleanup, MediaKind, Platform, Registry,
};

/// `(source, target) -> "copy" | "skip (reason)" | "error"` from plan or dry-run lines.
fn planned(stdout: &str) -> BTreeMap<(String, String), String> {
    let mut actions = BTreeMap::new();
    for line in stdout.lines() {
        let (action, rest) = line.split_once(' ').expect("action word");
        let rest = rest.trim_start();
        let (source, rest) = rest.split_once(" -> ").expect("source -> target");
        let (target, why) = match rest.split_once(": ") {
            Some((target, _)) if action == "error" => (target, ""),
            _ => rest.split_once("  ").unwrap_or((rest, "")),
        };
        let decided = match action {
            "copy" => "copy".to_owned(),
            "skip" => format!("skip {why}"),
            "error" => "error".to_owned(),
            other => panic!("unknown action {other}: {line}"),
        };
        actions.insert((source.to_owned(), target.trim().to_owned()), decided);
    }
    actions
}

/// The same map from a `--report` document: copied, skipped (reason), failed.
fn done(report: &serde_json::Value) -> BTreeMap<(String, String), String> {
    let jobs = report["jobs"].as_array().expect("jobs");
    jobs.iter()
        .map(|job| {
            let key = (
                job["source"].as_str().expect("source").to_owned(),
                job["target"].as_str().expect("target").to_owned(),
            );
            let outcome = match job["outcome"].as_str().expect("outcome") {
                "copied" => "copy".to_owned(),
                "skipped" => format!("skip ({})", job["reason"].as_str().expect("reason")),
                "failed" => "error".to_owned(),
                other => panic!("unknown outcome {other}"),
            };
            (key, outcome)
        })
        .collect()
}

#[tokio::test]
async fn plan_dry_run_and_sync_take_the_same_decision_on_both_transports() {
    require_daemon();
    let src = Registry::anonymous();
    let repo = unique("decide");
    let cleanup = ImageCleanup::default();
    let image = |name: &str, text: &str| {
        Fixture::image(&src, &format!("{repo}/{name}"), "1.0")
            .layer_text(text)
            .push()
    };
    let new = image("new", "new").await;
    let same = image("same", "same").await;
    let changed = image("changed", "changed v2").await;
    let old = Fixture::image(&src, &format!("{repo}/changed"), "0.9")
        .layer_text("changed v1")
        .push()
        .await;
    let windows = Fixture::image(&src, &format!("{repo}/win"), "1.0")
        .platform(Platform::windows_amd64())
        .push()
        .await;
    let multi = Fixture::index(&src, &format!("{repo}/multi"), "1.0", MediaKind::Oci)
        .layer_text("multi")
        .push()
        .await;
    for pushed in [&new, &same, &changed, &old] {
        cleanup.track(pushed.pinned());
    }
    for child in &multi.children {
        cleanup.track(child.pinned());
    }

    for transport in ["registry", "docker"] {
        let dst = Registry::anonymous();
        cleanup.track_registry(dst.host());
        let entry = |source: String, name: &str| {
            format!("\"{source}\": \"{}/mirror/{name}\"\n", dst.host())
        };
        let mut images = String::new();
        images += &entry(new.reference(), "new");
        images += &entry(same.reference(), "same");
        images += &entry(changed.reference(), "changed");
        images += &entry(windows.reference(), "win");
        images += &entry(multi.reference(), "multi");
        images += &entry(format!("{}/{repo}/missing:1.0", src.host()), "missing");
        let dir = project(&[("config/images.yaml", &images)]);
        // Seed the target: `same` copied by ferry itself, `changed` holding an older image.
        let state = dir.path().join(".ferry/state.json");
        let state_arg = state.to_str().expect("utf-8");
        let seed = project(&[(
            "config/images.yaml",
            &format!(
                "\"{}\": \"{}/mirror/changed:1.0\"\n{}",
                old.reference(),
                dst.host(),
                entry(same.reference(), "same")
            ),
        )]);
        let seeded = ferry(
            seed.path(),
            &["sync", "--transport", transport, "--state", state_arg],
            &[],
        );
        assert!(
            seeded.status.success(),
            "{transport}: seed: {}",
            text(&seeded.stderr)
        );

        for platform in [Some("linux/arm64"), None] {
            let mut flags = vec!["--transport", transport, "--state", state_arg];
            if let Some(platform) = platform {
                flags.extend(["--platform", platform]);
            }
            let args = |command: &[&'static str]| -> Vec<String> {
                command
                    .iter()
                    .chain(flags.iter())
                    .map(|s| s.to_string())
                    .collect()
            };
            let run = |command: &[&'static str]| {
                let args = args(command);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ferry(dir.path(), &args, &[])
            };
            let plan = run(&["plan"]);
            let dry = run(&["sync", "--dry-run"]);
            assert_eq!(
                plan.status.code(),
                Some(1),
                "the missing source: {}",
                text(&plan.stderr)
            );
            assert_eq!(
                text(&plan.stdout),
                text(&dry.stdout),
                "{transport} {platform:?}: plan and dry-run print the same"
            );
            let decided = planned(&text(&plan.stdout));
            let report = dir.path().join("report.json");
            let synced = run(&["sync", "--report", "report.json"]);
            assert_eq!(synced.status.code(), Some(1), "{}", text(&synced.stderr));
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&report).expect("report"))
                    .expect("report JSON");
            assert_eq!(
                decided,
                done(&report),
                "{transport} {platform:?}: plan said what sync did\n{}",
                text(&plan.stdout)
            );
            let by_name = |name: &str| {
                decided
                    .iter()
                    .find(|((_, target), _)| target.contains(&format!("/mirror/{name}")))
                    .map(|(_, action)| action.clone())
                    .unwrap_or_else(|| panic!("{name} planned"))
            };
            match platform {
                None => {
                    assert_eq!(by_name("new"), "copy", "{transport}");
                    assert_eq!(by_name("same"), "skip (unchanged)", "{transport}");
                    assert_eq!(by_name("changed"), "copy", "{transport}");
                    assert_eq!(by_name("win"), "skip (no Linux platform (windows/amd64))");
                    assert_eq!(by_name("multi"), "copy", "{transport}");
                    assert_eq!(by_name("missing"), "error", "{transport}");
                }
                Some(_) => {
                    // arm64 selects nothing of the single-platform images, a subset of the
                    // index; what the target already serves stays unchanged.
                    let amd64 = "skip (no selected Linux platform (has linux/amd64))";
                    assert_eq!(by_name("new"), amd64, "{transport}");
                    assert_eq!(by_name("changed"), amd64, "{transport}");
                    // The registry transport sees its own bytes; the daemon's push of the
                    // default selection says nothing about an arm64 subset.
                    let same = match transport {
                        "registry" => "skip (unchanged)",
                        _ => amd64,
                    };
                    assert_eq!(by_name("same"), same, "{transport}");
                    assert_eq!(by_name("multi"), "copy", "{transport}: a subset is new");
                }
            }
            // Once synced, everything that copied is now unchanged, by the same decision.
            let again = run(&["plan"]);
            let again = planned(&text(&again.stdout));
            for (job, action) in &decided {
                if action == "copy" {
                    assert_eq!(again[job], "skip (unchanged)", "{transport} {job:?}");
                }
            }
        }
    }
}
