//! ferry as a drop-in image-syncer: the origin project's exact command line through a
//! symlink named `image-syncer`, its outputs, its final lines and exit codes.

use std::path::Path;

use crate::harness::{ferry, project, text};
use crate::support::{Fixture, MediaKind, Registry, RegistryClient, TRICKY_PASSWORD};

/// The command the origin's GitHub workflow runs, word for word.
const ORIGIN: &str =
    "./bin/image-syncer --auth=./config/auth.yaml --images=./issue_images.yaml --proc=10 --retries=2";

/// `bin/image-syncer` in `dir`: a symlink to the ferry binary, as the README says.
fn link_image_syncer(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).expect("bin/");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferry"), dir.join("bin/image-syncer"))
        .expect("symlink");
}

/// Runs `words` (a program path relative to `dir`, then its arguments) in `dir` as
/// `ferry_command` would (own docker config, no TARGET_* from outside).
fn run_in(dir: &Path, words: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(dir.join(words[0]))
        .current_dir(dir)
        .args(&words[1..])
        .env_remove("TARGET_USER")
        .env_remove("TARGET_PASSWORD")
        .envs(env.iter().copied())
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("image-syncer runs")
}

fn run_origin(dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let words: Vec<&str> = ORIGIN.split(' ').collect();
    run_in(dir, &words, env)
}

#[tokio::test]
async fn the_origin_invocation_runs_unchanged_against_local_registries() {
    let source = Registry::anonymous();
    let mirror = Registry::basic("mirror", TRICKY_PASSWORD);
    let (src, dst) = (source.host(), mirror.host());
    for tag in ["1.16.0", "1.16.1", "1.15.4"] {
        Fixture::image(&source, "library/consul", tag)
            .layer_text(tag)
            .tiny()
            .push()
            .await;
    }
    let coredns = Fixture::index(&source, "coredns/coredns", "v1.11.1", MediaKind::Docker)
        .push()
        .await;
    // The origin's issue_images.yaml and auth.yaml, with local registries for Aliyun's.
    let images = format!(
        "\"{src}/library/consul:/^(1.16)(.[0-9]+)*(-rc[0-9]*)?$/\":\n  - \"{dst}/public-image-mirror/docker.io_consul\"\n\
         \"{src}/coredns/coredns:v1.11.1\":\n  - \"{dst}/nstl_google_containers/coredns\"\n"
    );
    let auth = format!(
        "\"{dst}/public-image-mirror\":\n  username: ${{ALIYUNCS_USERNAME}}\n  password: ${{ALIYUNCS_PASSWORD}}\n\
         \"{dst}/nstl_google_containers\":\n  username: ${{ALIYUNCS_USERNAME}}\n  password: ${{ALIYUNCS_PASSWORD}}\n"
    );
    let dir = project(&[("issue_images.yaml", &images), ("config/auth.yaml", &auth)]);
    link_image_syncer(dir.path());
    let env = [
        ("ALIYUNCS_USERNAME", "mirror"),
        ("ALIYUNCS_PASSWORD", TRICKY_PASSWORD),
    ];

    let out = run_origin(dir.path(), &env);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("failed tasks exist"), "{stdout}");
    assert!(
        stderr.contains("Synchronization finished, 0 tasks failed"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains(TRICKY_PASSWORD));
    let target = RegistryClient::new(&mirror);
    let mut tags = target.tags("public-image-mirror/docker.io_consul").await;
    tags.sort();
    assert_eq!(tags, ["1.16.0", "1.16.1"], "the regex picks 1.16.x only");
    let copied = target
        .manifest("nstl_google_containers/coredns", "v1.11.1")
        .await
        .expect("coredns copied");
    assert_ne!(
        copied.digest, coredns.digest,
        "Windows dropped: a new index"
    );
    assert!(stderr.contains("dropped windows/amd64"), "{stderr}");

    let again = run_origin(dir.path(), &env);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    let skipped = stderr
        .lines()
        .filter(|l| l.ends_with("(unchanged)"))
        .count();
    assert_eq!(skipped, 3, "a no-op: {stderr}");
    assert!(
        !dir.path().join(".ferry").exists(),
        "image-syncer mode leaves nothing behind"
    );
}

#[tokio::test]
async fn failures_give_image_syncers_last_line_exit_1_and_the_images_files() {
    let source = Registry::anonymous();
    let mirror = Registry::anonymous();
    let (src, dst) = (source.host(), mirror.host());
    Fixture::image(&source, "team/app", "1.0")
        .tiny()
        .push()
        .await;
    let images = format!(
        "{src}/team/app:1.0: {dst}/mirror/app\n{src}/team/gone:1.0:\n  - {dst}/mirror/gone\n"
    );
    let dir = project(&[("images.yaml", &images)]);
    let args = [
        "image-syncer",
        "--images",
        "images.yaml",
        "-p",
        "2",
        "-r",
        "0",
        "--log",
        "sync.log",
        "--output-success-images",
        "ok.yaml",
        "--output-failed-images",
        "failed.yaml",
    ];
    let out = ferry(dir.path(), &args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "failed tasks exist\n");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect(name);
    assert_eq!(
        read("ok.yaml"),
        format!("\"{src}/team/app:1.0\":\n- \"{dst}/mirror/app:1.0\"\n")
    );
    let failed = read("failed.yaml");
    assert!(
        failed.starts_with(&format!("# {src}/team/gone:1.0 -> {dst}/mirror/gone:1.0: ")),
        "{failed}"
    );
    assert!(failed.ends_with(&format!(
        "\"{src}/team/gone:1.0\":\n- \"{dst}/mirror/gone:1.0\"\n"
    )));
    let log = read("sync.log");
    assert!(
        log.contains(&format!("FAILED  {src}/team/gone:1.0")),
        "{log}"
    );
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Synchronization finished, 1 tasks failed, cost"),
        "{log}"
    );

    // The failed file is an images file: fed back, it retries exactly the failure.
    let retry = ferry(
        dir.path(),
        &["image-syncer", "--images=failed.yaml", "-r", "0"],
        &[],
    );
    assert_eq!(retry.status.code(), Some(1));
    let stderr = text(&retry.stderr);
    assert!(
        stderr.contains("team/gone") && !stderr.contains("team/app"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_and_files_are_one_line_and_exit_2() {
    let dir = project(&[
        ("images.yaml", "nginx:1.25:\n"),
        ("good.yaml", "nginx:1.25: 127.0.0.1:1/x/nginx\n"),
    ]);
    link_image_syncer(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (
            &["--images=good.yaml", "--namespace=x"],
            "image-syncer: unknown flag: --namespace",
        ),
        (&["--proc"], "image-syncer: "),
        (&[], "image-syncer: neither --config nor --images is given"),
        (
            &["--images=missing.yaml"],
            "image-syncer: missing.yaml: no such file",
        ),
        (
            &["--images=images.yaml"],
            "image-syncer: images.yaml:1:1: empty destination",
        ),
        (
            &["--images=good.yaml", "--os=windows"],
            "image-syncer: --os windows",
        ),
    ];
    for (args, expected) in cases {
        let out = std::process::Command::new(dir.path().join("bin/image-syncer"))
            .current_dir(dir.path())
            .args(*args)
            .output()
            .expect("runs");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
    }
    // ferry's own flags before the mode are not image-syncer's: say how to call it.
    let flagged = ferry(
        dir.path(),
        &["-v", "image-syncer", "--images=good.yaml"],
        &[],
    );
    let stderr = text(&flagged.stderr);
    assert_eq!(flagged.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`ferry image-syncer FLAGS`"), "{stderr}");
    let help = ferry(dir.path(), &["image-syncer", "--help"], &[]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("--output-failed-images"));
}
