//! Immutable tags (SPEC section 12): a tag matching `immutable:` that the target already
//! has is skipped with no request at all to the source, shown the same by `plan`,
//! `sync --dry-run` and `sync`, on both transports, even when the source moved the tag.

use crate::harness::{ferry, project, text};
use crate::support::{require_daemon, unique, Fixture, ImageCleanup, Registry, RegistryClient};

const SKIP: &str = "(immutable tag present on target)";

#[tokio::test]
async fn an_immutable_tag_on_the_target_is_skipped_without_a_source_request() {
    require_daemon();
    let cleanup = ImageCleanup::default();
    for transport in ["registry", "docker"] {
        let src = Registry::anonymous();
        let dst = Registry::anonymous();
        cleanup.track_registry(dst.host());
        cleanup.track_registry(src.host());
        let repo = format!("team/{}", unique("immutable"));
        let push = |tag: &'static str, text: &'static str| {
            Fixture::image(&src, &repo, tag).layer_text(text).push()
        };
        let first = push("1.0.0", "release 1.0.0").await;
        let latest = push("latest", "latest build").await;
        cleanup.track(first.pinned());
        cleanup.track(latest.pinned());
        let images = format!(
            "\"{}/{repo}:1.0.0,latest\":\n  to: {}/mirror/app\n  immutable: '^v?\\d+\\.\\d+\\.\\d+$'\n",
            src.host(),
            dst.host()
        );
        let dir = project(&[("config/images.yaml", &images)]);
        let run = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--transport", transport]);
            ferry(dir.path(), &all, &[])
        };
        let copied = run(&["sync"]);
        assert!(
            copied.status.success(),
            "{transport}: first sync: {}{}",
            text(&copied.stdout),
            text(&copied.stderr)
        );
        let target = RegistryClient::new(&dst);
        let written = target
            .manifest("mirror/app", "1.0.0")
            .await
            .expect("1.0.0 copied");

        // The source moves its release tag (it should not; the user declared it fixed).
        let moved = push("1.0.0", "release 1.0.0, rebuilt").await;
        cleanup.track(moved.pinned());
        assert_ne!(moved.digest, first.digest);
        let before = src.requests().len();
        let plan = run(&["plan"]);
        let dry = run(&["sync", "--dry-run"]);
        let synced = run(&["sync", "--report", "report.json"]);
        let plan_out = text(&plan.stdout);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{plan_out}{}",
            text(&plan.stderr)
        );
        assert_eq!(plan_out, text(&dry.stdout), "{transport}: plan = dry-run");
        let release_line = plan_out
            .lines()
            .find(|l| l.contains(":1.0.0 -> "))
            .unwrap_or_else(|| panic!("{transport}: a line for 1.0.0: {plan_out}"));
        assert!(
            release_line.starts_with("skip ") && release_line.ends_with(SKIP),
            "{transport}: {release_line}"
        );
        let sync_out = text(&synced.stdout);
        assert_eq!(
            synced.status.code(),
            Some(0),
            "{sync_out}{}",
            text(&synced.stderr)
        );
        assert!(
            sync_out.lines().any(|l| l.starts_with("skipped ")
                && l.contains(":1.0.0 -> ")
                && l.ends_with(SKIP)),
            "{transport}: {sync_out}"
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
                .expect("report JSON");
        let reasons: Vec<&str> = report["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["reason"].as_str())
            .collect();
        assert!(
            reasons.contains(&"immutable tag present on target") && reasons.contains(&"unchanged"),
            "{transport}: {reasons:?}"
        );

        // Three runs: not one request about 1.0.0 reached the source, and `latest`, a
        // no-op, cost HEADs only.
        let asked = src.requests()[before..].to_vec();
        let about_release: Vec<_> = asked.iter().filter(|r| r.uri.contains("1.0.0")).collect();
        assert!(about_release.is_empty(), "{transport}: {about_release:#?}");
        let gets: Vec<_> = asked
            .iter()
            .filter(|r| r.method == "GET" && r.uri.contains("/manifests/"))
            .collect();
        assert!(
            gets.is_empty(),
            "{transport}: no-op runs GET no manifest: {gets:#?}"
        );
        assert!(
            asked
                .iter()
                .any(|r| r.method == "HEAD" && r.uri.ends_with("/manifests/latest")),
            "{transport}: latest was checked: {asked:#?}"
        );
        // A plan file carries the mark: `sync --plan` decides the job the same way.
        let json = run(&["plan", "--json"]);
        let jobs: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan JSON");
        let marked: Vec<bool> = jobs
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["immutable"] == true)
            .collect();
        assert_eq!(
            marked,
            [true, false],
            "{transport}: 1.0.0 then latest: {jobs}"
        );
        std::fs::write(dir.path().join("plan.json"), &json.stdout).expect("plan file");
        let before = src.requests().len();
        let planned = run(&["sync", "--plan", "plan.json"]);
        let out = text(&planned.stdout);
        assert!(
            out.lines()
                .any(|l| l.contains(":1.0.0 -> ") && l.ends_with(SKIP)),
            "{transport}: {out}{}",
            text(&planned.stderr)
        );
        let about_release = src.requests()[before..]
            .iter()
            .filter(|r| r.uri.contains("1.0.0"))
            .count();
        assert_eq!(about_release, 0, "{transport}: sync --plan");
        let kept = target
            .manifest("mirror/app", "1.0.0")
            .await
            .expect("1.0.0 still there");
        assert_eq!(
            kept.digest, written.digest,
            "{transport}: the target kept its 1.0.0"
        );
    }
}

#[test]
fn a_bad_immutable_regex_or_rate_floor_is_exit_2_with_its_place() {
    let cases = [
        (
            "config/images.yaml",
            "127.0.0.1:5000/team/app:\n  immutable: '^v(\\d+'\n",
            "config/images.yaml:2:14: invalid regex",
        ),
        (
            "config/rules.yaml",
            "preset: nstl\nimmutable: '[v'\n",
            "config/rules.yaml:2:12: invalid regex",
        ),
        (
            "config/auth.yaml",
            "docker.io:\n  limits:\n    rate_floor: many\n",
            "config/auth.yaml:3:17: rate_floor must be a whole number of pulls",
        ),
    ];
    for (file, written, says) in cases {
        let mut files = vec![
            ("config/images.yaml", "127.0.0.1:5000/team/app:1.0:\n"),
            ("config/rules.yaml", "preset: nstl\n"),
        ];
        files.retain(|(name, _)| *name != file);
        files.push((file, written));
        let dir = project(&files);
        let plan = ferry(dir.path(), &["plan", "--offline"], &[]);
        let stderr = text(&plan.stderr);
        assert_eq!(plan.status.code(), Some(2), "{file}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{file}: {stderr}");
    }
}
