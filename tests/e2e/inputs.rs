//! Real inputs through the binary: Ferryman's items.yml and the origin project's config/
//! as they stand, configurations that configure nothing, and a run whose output is closed.

use std::io::Read;
use std::process::Stdio;

use crate::harness::{ferry, ferry_command, project, repo_root, text};
use crate::support::{Fixture, Registry, RegistryClient};

#[test]
fn ferryman_items_yml_plans_every_item_offline() {
    let items = repo_root().join("tests/fixtures/ferryman/items.yml");
    let items = items.to_str().expect("utf-8 path");
    let out = ferry(&repo_root(), &["plan", "--offline", "-c", items], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 32, "every item: {stdout}");
    for (source, target) in [
        (
            "k8s.gcr.io/kube-proxy [all tags newest 9999 by creation time]",
            "registry.cn-shenzhen.aliyuncs.com/kubernetes_aliyun/kube-proxy",
        ),
        (
            "quay.io/coreos/flannel [all tags newest 9999 by creation time]",
            "registry.cn-shenzhen.aliyuncs.com/quayio_aliyun/flannel",
        ),
        (
            "docker.io/jenkins/jenkins [all tags newest 10 by creation time]",
            "registry.cn-shenzhen.aliyuncs.com/dockerio_aliyun/jenkins",
        ),
    ] {
        let line = format!("copy  {source} -> {target}");
        assert!(lines.contains(&line.as_str()), "{line}\n{stdout}");
    }
}

#[test]
fn origin_config_generates_its_hop2_file_and_the_private_plan_carries_built_images() {
    let config = repo_root().join("tests/fixtures/origin/config");
    let config = config.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("temp dir");
    let hop2 = dir.path().join("hop2/images.yaml");
    let out = ferry(
        dir.path(),
        &[
            "generate",
            "-c",
            config,
            "--stage",
            "private",
            "-o",
            hop2.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&hop2).expect("hop-2 file written");
    assert!(written.ends_with(
        "\"registry.cn-beijing.aliyuncs.com/public-image-mirror/docker.io_eclipse-temurin:/^(.*)(-n-ext)$/\":\n  - \"docker-hosted.nstl-dev.com/library/eclipse-temurin\"\n"
    ), "{written}");
    let plan = ferry(
        dir.path(),
        &["plan", "--offline", "-c", config, "--stage", "private"],
        &[],
    );
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let stdout = text(&plan.stdout);
    assert!(
        stdout.contains(
            "copy  registry.cn-beijing.aliyuncs.com/public-image-mirror/docker.io_elasticsearch [/^(.*)(-n-ext)$/] -> docker-hosted.nstl-dev.com/library/elasticsearch"
        ),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        18,
        "15 synced + 3 carried: {stdout}"
    );
    let hop1 = ferry(dir.path(), &["plan", "--offline", "-c", config], &[]);
    assert!(
        !text(&hop1.stdout).contains("-n-ext"),
        "carried images are hop 2 only"
    );
}

#[test]
fn a_configuration_without_images_is_an_error_for_plan_and_sync() {
    /// Files of the project, the file or directory the error names, what it says.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[(
                "config/auth.yaml",
                "ghcr.io:\n  username: u\n  password: p\n",
            )],
            "config",
            "no images.yaml and no build entries",
        ),
        (
            &[
                ("config/images.yaml", ""),
                ("config/rules.yaml", "preset: nstl\n"),
            ],
            "config/images.yaml",
            "no images",
        ),
        (
            &[("config/images.yaml", "# nginx:\n\n# redis:\n")],
            "config/images.yaml",
            "no images",
        ),
        (&[("items.yml", "# nothing yet\n")], "items.yml", "no items"),
    ];
    for (files, names, says) in cases {
        let dir = project(files);
        let config = if names.ends_with(".yml") {
            "items.yml"
        } else {
            "config"
        };
        for command in [
            vec!["plan", "--offline", "-c", config],
            vec!["plan", "-c", config],
            vec!["sync", "-c", config],
            vec!["sync", "--transport", "registry", "--dry-run", "-c", config],
        ] {
            let out = ferry(dir.path(), &command, &[]);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{files:?} {command:?}: {stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.starts_with(&format!("ferry: {names}: ")) && stderr.contains(says),
                "{files:?} {command:?}: {stderr}"
            );
            assert!(out.stdout.is_empty(), "nothing done: {}", text(&out.stdout));
        }
    }
    // Built images carried to hop 2 are work for the private stage only.
    let carried = "\"r.io/mirror/x:/^(.*)(-n-ext)$/\": [\"p.io/library/x\"]\n";
    let dir = project(&[
        ("config/build-images.yaml", carried),
        ("config/rules.yaml", "preset: nstl\n"),
    ]);
    let out = ferry(dir.path(), &["plan", "--offline"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("travel in hop 2"),
        "{}",
        text(&out.stderr)
    );
    let out = ferry(
        dir.path(),
        &["plan", "--offline", "--stage", "private"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("-> p.io/library/x"),
        "{}",
        text(&out.stdout)
    );
    // map and tags need no images.
    let dir = project(&[("config/rules.yaml", "preset: nstl\n")]);
    let out = ferry(dir.path(), &["map", "nginx:1.25"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn closed_output_still_finishes_every_job_and_the_report_and_exits_by_images() {
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    let mut images = String::new();
    for name in ["a", "b", "c"] {
        let pushed = Fixture::image(&src, &format!("team/{name}"), "1.0")
            .tiny()
            .push()
            .await;
        images.push_str(&format!(
            "\"{}\": \"{}/mirror/{name}\"\n",
            pushed.reference(),
            dst.host()
        ));
    }
    images.push_str(&format!(
        "\"{}/team/missing:1.0\": \"{}/mirror/missing\"\n",
        src.host(),
        dst.host()
    ));
    let dir = project(&[("config/images.yaml", &images)]);
    let report = dir.path().join("report.json");
    let summary = dir.path().join("summary.md");
    let summary_env = summary.to_str().expect("utf-8").to_owned();
    let mut child = ferry_command(
        dir.path(),
        &[
            "sync",
            "--transport",
            "registry",
            "--jobs",
            "1",
            "--report",
            report.to_str().expect("utf-8"),
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", &summary_env),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("ferry starts");
    // Whoever reads stdout goes away before ferry writes a line (`| head -0`).
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("ferry ends");
    assert_eq!(status.code(), Some(1), "an image failed: {stderr}");
    assert!(
        !stderr.contains("output failed"),
        "a closed stdout is no news: {stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report written"))
            .expect("report JSON");
    assert_eq!(
        report["totals"],
        serde_json::json!({"copied": 3, "skipped": 0, "failed": 1, "bytes": report["totals"]["bytes"]}),
        "{report}"
    );
    assert_eq!(report["jobs"].as_array().map(Vec::len), Some(4));
    let summary = std::fs::read_to_string(&summary).expect("the step summary is written");
    assert!(
        summary.contains("### ferry") && summary.contains("team/missing"),
        "a closed stdout does not lose the step summary: {summary}"
    );
    let check = RegistryClient::new(&dst);
    for name in ["a", "b", "c"] {
        assert!(check
            .manifest(&format!("mirror/{name}"), "1.0")
            .await
            .is_some());
    }
}

#[test]
fn a_plan_file_runs_as_written_and_plan_refuses_what_sync_refuses() {
    let dir = project(&[("config/images.yaml", "r.io/team/x:1: s.io/mirror/x\n")]);
    std::fs::write(
        dir.path().join("p.json"),
        r#"[{"source":"r.io/team/x:1","target":"s.io/mirror/x:1"}]"#,
    )
    .expect("plan file");
    for flags in [
        vec!["--platform", "linux/arm64"],
        vec!["--shard", "1/2"],
        vec!["--all-platforms", "--transport", "registry"],
        vec!["r.io/team/x:1"],
    ] {
        let mut args = vec!["sync", "--dry-run", "--plan", "p.json"];
        args.extend(&flags);
        let out = ferry(dir.path(), &args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains("does not apply to --plan FILE"), "{stderr}");
    }
    let out = ferry(dir.path(), &["plan", "--all-platforms"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--transport registry"));
}
