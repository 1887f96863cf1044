//! A sync killed mid-run: nothing it left is half-written, and the next run finishes the
//! rest and redoes nothing that was complete.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::{ferry, ferry_command, project, text};
use crate::support::{require_daemon, unique, Fixture, ImageCleanup, Registry, RegistryClient};

const IMAGES: usize = 10;

#[tokio::test]
async fn a_killed_sync_is_finished_by_the_next_run() {
    require_daemon();
    let source = Registry::anonymous();
    let target = Registry::anonymous();
    let repo = unique("resume");
    let cleanup = ImageCleanup::default();
    let mut images = String::new();
    for i in 0..IMAGES {
        let pushed = Fixture::image(&source, &format!("team/{repo}"), &format!("1.{i}"))
            .layer_text(&format!("image {i} of the resume test"))
            .push()
            .await;
        cleanup.track(pushed.pinned());
        images.push_str(&format!("{}:\n", pushed.reference()));
    }
    let rules = format!(
        "stages:\n  mirror:\n    registry: {}\n    rules:\n      - match: '**'\n        target: 'mirror/{{name}}'\n",
        target.host()
    );
    let dir = project(&[
        ("config/images.yaml", &images),
        ("config/rules.yaml", &rules),
    ]);
    let target_repo = format!("mirror/{repo}");
    cleanup.track_registry(target.host());

    let mut child = ferry_command(dir.path(), &["sync", "--jobs", "1"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ferry starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("copied "))
        .expect("a first image is copied");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");

    let registry = RegistryClient::new(&target);
    let tagged = registry.tags(&target_repo).await;
    assert!(!tagged.is_empty(), "the first copy landed: {first}");
    assert!(tagged.len() < IMAGES, "killed before the end: {tagged:?}");
    for tag in &tagged {
        let manifest = registry
            .manifest(&target_repo, tag)
            .await
            .expect("tagged manifest");
        let json = manifest.json();
        let layers = json["layers"].as_array().expect("layers");
        for digest in layers
            .iter()
            .chain([&json["config"]])
            .filter_map(|d| d["digest"].as_str())
        {
            assert!(
                registry.has_blob(&target_repo, digest).await,
                "{tag} is complete: {digest}"
            );
        }
    }

    let rerun = ferry(dir.path(), &["sync", "--jobs", "2"], &[]);
    let out = text(&rerun.stdout);
    assert_eq!(rerun.status.code(), Some(0), "{out}{}", text(&rerun.stderr));
    let mut all = registry.tags(&target_repo).await;
    all.sort();
    assert_eq!(all.len(), IMAGES, "every target complete after the rerun");
    let copied = out
        .lines()
        .filter(|l| l.starts_with("copied ") && l.contains(" -> "))
        .count();
    let unchanged = out.matches("(unchanged)").count();
    assert_eq!(copied + unchanged, IMAGES, "{out}");
    assert!(
        unchanged >= tagged.len(),
        "what the killed run finished is not redone: {out}"
    );
}
