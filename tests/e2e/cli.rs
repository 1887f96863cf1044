//! The `ferry` binary end to end: exit codes and one-line errors, the seed config, and
//! both hops (source -> mirror -> generate -> private) through the real daemon.

use crate::harness::{ferry, project, repo_root, text};
use crate::support::{
    require_daemon, unique, Docker, Fixture, ImageCleanup, MediaKind, Registry, RegistryClient,
    TRICKY_PASSWORD,
};

#[test]
fn map_prints_the_seed_chain_from_the_shipped_config() {
    let out = ferry(&repo_root(), &["map", "docker.io/nginx:1.17.4"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "docker.io/library/nginx:1.17.4 -> registry.cn-beijing.aliyuncs.com/public-image-mirror/docker.io_nginx:1.17.4 -> docker-hosted.nstl-dev.com/library/nginx:1.17.4"
    );
    let plan = ferry(&repo_root(), &["plan", "--offline"], &[]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stdout).lines().count() >= 20,
        "a meaningful plan out of the box"
    );
}

#[test]
fn bad_config_exits_2_with_one_line_naming_file_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "config/images.yaml",
            "Nginx:1.25:\n",
            "config/images.yaml:1:1",
        ),
        (
            "config/images.yaml",
            "nginx:\n  tags: '(('\n",
            "config/images.yaml:2:9",
        ),
        (
            "config/images.yaml",
            "nginx:\n  colour: blue\n",
            "config/images.yaml:2:3",
        ),
        (
            "config/images.yaml",
            "nginx:\n  semver: 'not a range'\n",
            "config/images.yaml:2:11",
        ),
        (
            "config/images.yaml",
            "nginx:\n  platforms: [windows/amd64]\n",
            "config/images.yaml:2:15",
        ),
        (
            "config/rules.yaml",
            "preset: nowhere\n",
            "config/rules.yaml:1:9",
        ),
        (
            "config/auth.yaml",
            "ghcr.io:\n  username: u\n  pasword: p\n",
            "config/auth.yaml:3:3",
        ),
        (
            "config/build-images.yaml",
            "- name: x\n  base: nginx\n  tags: [1]\n  mode: sometimes\n",
            "config/build-images.yaml:4:9",
        ),
    ];
    for (file, content, location) in cases {
        let dir = project(&[(file, content), ("config/rules.yaml.keep", "")]);
        let out = ferry(dir.path(), &["plan", "--offline"], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{file}: {content:?} gave {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(location),
            "{content:?}: expected {location} in {stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing done: {}", text(&out.stdout));
    }
    let usage = ferry(&repo_root(), &["sync", "--shard", "0/2"], &[]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2 too");
}

#[test]
fn a_secret_in_auth_yaml_never_reaches_output() {
    let secret = "s3cr3t-Pa55word";
    let dir = project(&[
        ("config/images.yaml", "127.0.0.1:1/team/app:1.0:\n"),
        ("config/rules.yaml", "stages:\n  mirror:\n    registry: 127.0.0.1:2\n    rules:\n      - match: '**'\n        target: '{path}'\n"),
        ("config/auth.yaml", "127.0.0.1:1:\n  username: u\n  password: ${FERRY_TEST_SECRET}\n"),
    ]);
    for args in [
        &["sync", "--dry-run"][..],
        &["sync", "--transport", "registry"],
        &["plan"],
        &["plan", "--offline"],
    ] {
        let out = ferry(dir.path(), args, &[("FERRY_TEST_SECRET", secret)]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(secret), "{args:?} leaked the secret: {all}");
    }
}

/// Hop 1 (source -> mirror, docker transport), `ferry generate`, hop 2 (mirror -> private
/// with Basic auth from TARGET_USER/TARGET_PASSWORD), then `docker run` from the private
/// registry; a second hop 1 is a no-op.
#[tokio::test]
async fn both_hops_end_to_end_through_the_daemon() {
    require_daemon();
    let source = Registry::anonymous();
    let mirror = Registry::anonymous();
    let private = Registry::basic("ferry", TRICKY_PASSWORD);
    let app = unique("app");
    let single = Fixture::image(&source, &format!("team/{app}"), "1.0")
        .layer_text("hop test")
        .push()
        .await;
    let multi = Fixture::index(
        &source,
        &format!("team/{app}-multi"),
        "2.0",
        MediaKind::Docker,
    )
    .push()
    .await;
    let images = format!("{}:\n{}:\n", single.reference(), multi.reference());
    let rules = format!(
        "stages:\n  mirror:\n    registry: {}/mirror\n    rules:\n      - match: '**'\n        target: '{{flat}}'\n",
        mirror.host()
    );
    let dir = project(&[
        ("config/images.yaml", &images),
        ("config/rules.yaml", &rules),
    ]);
    let cleanup = ImageCleanup::default();
    for child in &multi.children {
        cleanup.track(child.pinned());
    }
    cleanup.track(single.reference());
    cleanup.track_registry(mirror.host());
    cleanup.track_registry(private.host());

    let hop1 = ferry(dir.path(), &["sync", "--report", "hop1.json"], &[]);
    assert_eq!(
        hop1.status.code(),
        Some(0),
        "{}{}",
        text(&hop1.stdout),
        text(&hop1.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("hop1.json")).expect("report"))
            .expect("json");
    assert_eq!(report["totals"]["copied"], 2, "{report}");
    let mirrored = RegistryClient::new(&mirror);
    assert_eq!(
        mirrored.tags(&format!("mirror/team_{app}")).await,
        ["1.0"],
        "hop 1 target"
    );

    let again = ferry(dir.path(), &["sync"], &[]);
    let again_out = text(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{again_out}");
    assert_eq!(
        again_out.matches("(unchanged)").count(),
        2,
        "a second run is a no-op: {again_out}"
    );
    let copied_lines = again_out
        .lines()
        .filter(|l| l.starts_with("copied ") && l.contains(" -> "));
    assert_eq!(copied_lines.count(), 0, "{again_out}");

    let hop2_rules = format!(
        "stages:\n  private:\n    registry: {}/private\n    rules:\n      - match: '**'\n        target: '{{name}}'\n",
        private.host()
    );
    std::fs::write(
        dir.path().join("config/rules.yaml"),
        format!("{rules}{}", hop2_rules.trim_start_matches("stages:\n")),
    )
    .expect("rules");
    let generated = ferry(
        dir.path(),
        &["generate", "--stage", "private", "-o", "hop2/images.yaml"],
        &[],
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let hop2 = ferry(
        dir.path(),
        &["sync", "-c", "hop2", "--state", ".ferry/hop2.json"],
        &[
            ("TARGET_USER", "ferry"),
            ("TARGET_PASSWORD", TRICKY_PASSWORD),
        ],
    );
    assert_eq!(
        hop2.status.code(),
        Some(0),
        "{}{}",
        text(&hop2.stdout),
        text(&hop2.stderr)
    );

    let private_ref = format!("{}/private/{app}:1.0", private.host());
    cleanup.track(private_ref.clone());
    let cli = Docker::new();
    cli.login(&private.host(), "ferry", TRICKY_PASSWORD);
    let hello = cli.ok(&["run", "--rm", &private_ref, "echo", "arrived"]);
    assert_eq!(hello.trim(), "arrived");
    let list = RegistryClient::new(&private)
        .manifest(&format!("private/{app}-multi"), "2.0")
        .await
        .expect("multi-platform image in the private registry");
    let platforms: Vec<String> = list.json()["manifests"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
}

/// `ferry tags`: newest first by semver through `Link` pages, Windows-only tags hidden
/// unless asked for, and the selection flags applied.
#[tokio::test]
async fn tags_lists_what_a_selection_would_see() {
    let registry = Registry::anonymous().with_tag_pages(5);
    Fixture::many_tags(&registry, "team/many", 12).await;
    Fixture::image(&registry, "team/many", "2.0.0-windows")
        .platform(crate::support::Platform::windows_amd64())
        .push()
        .await;
    let dir = project(&[]);
    let repo = format!("{}/team/many", registry.host());
    let out = ferry(dir.path(), &["tags", &repo, "--limit", "3"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        listed,
        [
            "1.0.11  linux/amd64",
            "1.0.10  linux/amd64",
            "1.0.9  linux/amd64"
        ],
        "semver order across pages; the Windows-only 2.0.0 pre-release is hidden"
    );
    let all = ferry(
        dir.path(),
        &["tags", &repo, "--tags", "^2", "--all-platforms"],
        &[],
    );
    assert_eq!(
        text(&all.stdout).trim(),
        "2.0.0-windows  (no Linux platform)"
    );
    let ranged = ferry(dir.path(), &["tags", &repo, "--semver", ">=1.0.10"], &[]);
    assert_eq!(
        text(&ranged.stdout).lines().count(),
        2,
        "{}",
        text(&ranged.stdout)
    );
    let bad = ferry(dir.path(), &["tags", &repo, "--tags", "(("], &[]);
    assert_eq!(bad.status.code(), Some(2), "a bad regex is a usage error");
}

#[test]
fn build_names_an_unknown_entry_with_exit_2_and_the_known_ones() {
    let out = ferry(&repo_root(), &["build", "no-such-entry"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no-such-entry") && stderr.contains("openjdk-ext"),
        "{stderr}"
    );
}

#[test]
fn completions_print_a_script_naming_the_subcommands() {
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish"] {
        let out = ferry(dir.path(), &["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in ["sync", "plan", "generate", "completions"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    let bad = ferry(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(bad.status.code(), Some(2));
}
