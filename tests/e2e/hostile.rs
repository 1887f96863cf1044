//! Hostile and broken registries against the ferry binary (issue #11): each case fails its
//! image with one line naming the registry and the cause (exit 1), in bounded time, with
//! nothing tagged on the target; a credential helper that prints the secret never gets it
//! into any output form.

use std::time::{Duration, Instant};

use crate::harness::{ferry, project, text};
use crate::support::{
    require_daemon, HostileRegistry, Hostility, Registry, RegistryClient, TRICKY_PASSWORD,
};

/// Config copying `library/x:1` (or all tags of `library/x`) from `source` to
/// `target/mirror`, with short timeouts for the source (2 s idle, 1 s connect) unless
/// `defaults`.
fn config(source: &str, target: &Registry, tags: &str, defaults: bool) -> tempfile::TempDir {
    let images = format!("{source}/library/x{tags}:\n");
    let rules = format!(
        "stages:\n  mirror:\n    registry: {}/mirror\n    rules:\n      - match: '**'\n        target: '{{flat}}'\n",
        target.host()
    );
    let auth = match defaults {
        true => String::new(),
        false => format!("{source}:\n  limits:\n    idle_timeout: 2s\n    connect_timeout: 1s\n"),
    };
    project(&[
        ("config/images.yaml", &images),
        ("config/rules.yaml", &rules),
        ("config/auth.yaml", &auth),
    ])
}

/// Runs a sync and checks the common outcome: exit 1, one FAILED line holding `says`,
/// within `bound`, and nothing written to the target registry.
async fn fails_its_image(
    hostility: Hostility,
    tags: &str,
    defaults: bool,
    transport: &str,
    says: &str,
    bound: Duration,
) -> HostileRegistry {
    let source = HostileRegistry::start(hostility);
    let target = Registry::anonymous();
    let dir = config(&source.host(), &target, tags, defaults);
    let started = Instant::now();
    let out = ferry(dir.path(), &["sync", "--transport", transport], &[]);
    let elapsed = started.elapsed();
    let stdout = text(&out.stdout);
    let all = format!("{stdout}{}", text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{hostility:?} {transport}: {all}"
    );
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(
        failed.len(),
        1,
        "{hostility:?} {transport}: one line: {all}"
    );
    assert!(failed[0].contains(says), "{hostility:?} {transport}: {all}");
    let host = source.host();
    let cause = failed[0].rsplit(" -> ").next().unwrap_or_default();
    assert!(
        cause.contains(&format!("registry {host}")) || cause.contains(&format!("talks to {host}")),
        "the cause names the registry: {}",
        failed[0]
    );
    assert!(
        elapsed < bound,
        "{hostility:?} {transport} took {elapsed:?}"
    );
    let tags = RegistryClient::new(&target).tags("mirror/library_x").await;
    assert!(tags.is_empty(), "nothing tagged on the target: {tags:?}");
    let repositories = target.storage_dir().join("docker/registry/v2/repositories");
    assert!(
        !repositories.exists(),
        "{hostility:?}: nothing written to the target"
    );
    source
}

#[tokio::test]
async fn endless_tag_pages_stop_at_the_default_tag_limit() {
    let source = fails_its_image(
        Hostility::EndlessTagPages(100_000),
        "",
        true,
        "registry",
        "list tags: more than 100000 tags in library/x (limit tags_per_repository in auth.yaml)",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        source.hits("/tags/list"),
        2,
        "stopped on the page over the limit"
    );
}

#[tokio::test]
async fn a_layer_larger_than_its_manifest_says_is_never_copied() {
    let source = fails_its_image(
        Hostility::LyingLayerSize,
        ":1",
        false,
        "registry",
        "blob has 20000000 bytes, its manifest declares 1000",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        source.hits("/blobs/sha256:"),
        2,
        "config, then the layer once"
    );
}

#[tokio::test]
async fn a_manifest_cut_short_is_never_pushed() {
    require_daemon();
    for transport in ["registry", "docker"] {
        fails_its_image(
            Hostility::ShortManifest,
            ":1",
            false,
            transport,
            "GET manifest 1: network error",
            Duration::from_secs(30),
        )
        .await;
    }
}

#[tokio::test]
async fn a_blob_that_stalls_fails_within_two_idle_timeouts() {
    let source = fails_its_image(
        Hostility::StalledBlob,
        ":1",
        false,
        "registry",
        "no byte within 2s (limit idle_timeout in auth.yaml)",
        Duration::from_secs(30),
    )
    .await;
    let layer_gets = source.hits("/blobs/sha256:") - 1;
    assert_eq!(layer_gets, 2, "one resume, then the image fails");
    // dockerd itself waits forever on a stalled blob: ferry gives its pull up.
    require_daemon();
    fails_its_image(
        Hostility::StalledBlob,
        ":1",
        false,
        "docker",
        "no progress from the daemon for 2s while it talks to",
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test]
async fn a_registry_that_never_answers_fails_within_two_connect_timeouts() {
    require_daemon();
    for transport in ["registry", "docker"] {
        let source = fails_its_image(
            Hostility::Silent,
            ":1",
            false,
            transport,
            "no connection within 1s (limit connect_timeout in auth.yaml)",
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(
            source.connections(),
            2,
            "{transport}: HTTPS twice, no HTTP wait"
        );
    }
}

/// A docker credential helper that prints the password on stderr and stdout and fails:
/// every output form names the helper and its exit code, none shows the password.
#[tokio::test]
async fn a_failing_credential_helper_never_shows_what_it_printed() {
    require_daemon();
    let secret = "Helper-Pr1nted-This-Secret";
    let source = Registry::basic("ferry", TRICKY_PASSWORD);
    let target = Registry::anonymous();
    let rules = format!(
        "stages:\n  mirror:\n    registry: {}/mirror\n    rules:\n      - match: '**'\n        target: '{{flat}}'\n",
        target.host()
    );
    let helper = format!(
        "#!/bin/sh\necho 'password: {secret}' >&2\necho '{{\"Username\":\"ferry\",\"Secret\":\"{secret}\"}}'\nexit 1\n"
    );
    let docker_config = format!(r#"{{"credHelpers": {{"{}": "leaky"}}}}"#, source.host());
    let dir = project(&[
        // One entry whose tags are listed (plan), one with its tag (copied by the transport).
        (
            "config/images.yaml",
            &format!("{0}/team/app:\n{0}/team/other:1:\n", source.host()),
        ),
        ("config/rules.yaml", &rules),
        (".docker/config.json", &docker_config),
        ("bin/docker-credential-leaky", &helper),
    ]);
    let bin = dir.path().join("bin");
    let chmod = std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("docker-credential-leaky"))
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = dir.path().join("summary.md");
    let env = [
        ("PATH", path.as_str()),
        ("TEAMCITY_VERSION", "2024.1"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8 path")),
    ];
    let named = format!(
        "credential helper docker-credential-leaky for {}: exited with code 1",
        source.host()
    );
    for transport in ["registry", "docker"] {
        let _ = std::fs::remove_file(&summary);
        let args = [
            "sync",
            "-vv",
            "--transport",
            transport,
            "--report",
            "report.json",
        ];
        let out = ferry(dir.path(), &args, &env);
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        let report = std::fs::read_to_string(dir.path().join("report.json")).expect("report");
        let summary_text = std::fs::read_to_string(&summary).expect("step summary");
        assert_eq!(out.status.code(), Some(1), "{transport}: {stdout}{stderr}");
        for (form, marker) in [
            ("human FAILED line", "FAILED"),
            ("TeamCity testFailed", "##teamcity[testFailed"),
            ("GitHub ::error", "::error"),
        ] {
            let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(marker)).collect();
            assert_eq!(lines.len(), 2, "{transport} {form}: {stdout}");
            for line in lines {
                assert!(line.contains(&named), "{transport} {form}: {line}");
            }
        }
        let failed_records = report.matches(&named).count();
        assert_eq!(failed_records, 2, "{transport} JSON report: {report}");
        assert_eq!(
            summary_text.matches(&named).count(),
            2,
            "{transport}: {summary_text}"
        );
        assert!(
            stderr.contains("DEBUG"),
            "{transport}: -vv logs at debug level"
        );
        for (form, shown) in [
            ("stdout", &stdout),
            ("stderr (-vv)", &stderr),
            ("report", &report),
            ("summary", &summary_text),
        ] {
            assert!(
                !shown.contains(secret),
                "{transport} {form} shows it: {shown}"
            );
            assert!(!shown.contains(TRICKY_PASSWORD), "{transport} {form}");
        }
    }
    for args in [&["plan", "-vv"][..], &["sync", "--dry-run", "-vv"]] {
        let out = ferry(dir.path(), args, &env);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        assert!(
            all.contains(&named) && !all.contains(secret),
            "{args:?}: {all}"
        );
    }
}

/// A retry while the plan lists tags is an event like any other: the human line, the JSON
/// report and TeamCity say so.
#[tokio::test]
async fn a_retry_while_listing_tags_reaches_every_output() {
    let source = HostileRegistry::start(Hostility::FlakyTagList);
    let target = Registry::anonymous();
    let dir = config(&source.host(), &target, "", true);
    let out = ferry(
        dir.path(),
        &["sync", "--transport", "registry", "--report", "report.json"],
        &[("TEAMCITY_VERSION", "2024.1")],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(source.hits("/tags/list"), 2, "listed again after the 503");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("retry   planning (attempt 2")),
        "{stdout}"
    );
    assert!(
        stdout.contains("##teamcity[message text='ferry retry: planning (attempt 2"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON");
    let retries = report["planning_retries"]
        .as_array()
        .expect("planning retries");
    assert_eq!(retries.len(), 1, "{report}");
    assert!(
        retries[0]["cause"].as_str().unwrap_or("").contains("503"),
        "{report}"
    );
}

/// A CI cancel (SIGTERM) mid-copy: the job ends as interrupted, and the report and
/// TeamCity's test results are still written, at once.
#[test]
fn sigterm_mid_run_still_writes_every_output() {
    let source = HostileRegistry::start(Hostility::StalledBlob);
    let target = Registry::anonymous();
    let dir = config(&source.host(), &target, ":1", true);
    let child = crate::harness::ferry_command(
        dir.path(),
        &["sync", "--transport", "registry", "--report", "report.json"],
        &[("TEAMCITY_VERSION", "2024.1")],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("ferry starts");
    // Wait until the layer download stalls, then cancel as a CI server does.
    let deadline = Instant::now() + Duration::from_secs(20);
    while source.hits("/blobs/sha256:") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let stopped = Instant::now();
    let out = child.wait_with_output().expect("ferry ends");
    assert!(stopped.elapsed() < Duration::from_secs(10), "ends at once");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("##teamcity[testFailed name=") && stdout.contains("interrupted"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON");
    assert_eq!(report["totals"]["failed"], 1, "{report}");
    assert!(report["jobs"][0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("interrupted"));
}
