//! `ferry build` end to end: a config directory on disk, a mirror registry holding a busybox
//! base, the real daemon. Asserts when a build happens, what the image holds and carries.
//!
//! Each test has its own registry, its own project directory and removes its images.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ferry::build::{jobs, BuildOptions, BuildTransport, LABEL_BASE_DIGEST, LABEL_BASE_REF};
use ferry::docker::Engine;
use ferry::event::{Event, Outcome};
use ferry::plan::Job;
use ferry::report::{Reporter, Tally};
use ferry::rules::Mapping;
use ferry::state::State;

use crate::harness::{clients, run_reported};
use crate::support::{docker, require_daemon, Docker, Fixture, Registry, TRICKY_PASSWORD};

/// Keeps every event of a run.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Reporter for Recorder {
    fn event(&mut self, event: &Event, _: &Tally) -> std::io::Result<()> {
        self.0.lock().expect("lock").push(event.clone());
        Ok(())
    }
    fn finish(&mut self, _: &Tally) -> std::io::Result<()> {
        Ok(())
    }
}

impl Recorder {
    fn logs(&self) -> Vec<String> {
        let events = self.0.lock().expect("lock");
        events
            .iter()
            .filter_map(|e| match e {
                Event::Log { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A project directory: `config/` (rules.yaml, build-images.yaml) and `dockerfiles/<name>/`.
struct Project {
    root: tempfile::TempDir,
}

impl Project {
    /// The state file `ferry build` records pulled bases in.
    fn state_file(&self) -> std::path::PathBuf {
        self.root.path().join(".ferry/state.json")
    }

    /// Mirror stage = `mirror`, mapping every repository onto itself (the bases already
    /// live in the mirror), and one context per entry holding `hello.txt`.
    fn new(mirror: &Registry, build_images: &str, names: &[&str]) -> Project {
        let root = tempfile::Builder::new()
            .prefix("ferry-e2e-build-")
            .tempdir()
            .expect("temp dir");
        let config = root.path().join("config");
        std::fs::create_dir_all(&config).expect("mkdir config");
        let rules = format!(
            "stages:\n  mirror:\n    registry: {}\n    rules:\n      - match: \"**\"\n        target: \"{{repository}}\"\n",
            mirror.host()
        );
        std::fs::write(config.join("rules.yaml"), rules).expect("rules.yaml");
        std::fs::write(config.join("build-images.yaml"), build_images).expect("build-images");
        let project = Project { root };
        for name in names {
            let context = project.context(name);
            std::fs::create_dir_all(&context).expect("mkdir context");
            std::fs::write(
                context.join("Dockerfile"),
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY hello.txt /hello.txt\n",
            )
            .expect("Dockerfile");
            project.write(name, "hello.txt", &format!("hello from {name}\n"));
        }
        project
    }

    fn context(&self, name: &str) -> PathBuf {
        self.root.path().join("dockerfiles").join(name)
    }

    fn write(&self, name: &str, file: &str, text: &str) {
        std::fs::write(self.context(name).join(file), text).expect("write context file");
    }

    fn config(&self) -> Mapping {
        Mapping::load(self.root.path().join("config")).expect("valid config")
    }
}

/// Builds the selected entries once through `run`, as `ferry build` does.
async fn build(
    project: &Project,
    registries: &[&Registry],
    names: &[&str],
    options: BuildOptions,
) -> (Vec<Outcome>, Recorder) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let entries = jobs(&project.config(), &names, None).expect("jobs");
    let list: Vec<Job> = entries.iter().map(|(job, _)| job.clone()).collect();
    let (source, target) = clients(registries);
    let engine = Engine::connect().await.expect("daemon");
    let options = BuildOptions {
        named: names,
        ..options
    };
    let state = Arc::new(State::load(&project.state_file()).0);
    let transport = BuildTransport::new(engine, source, target, entries, options).with_state(state);
    let recorder = Recorder::default();
    let tally = run_reported(&transport, &list, Box::new(recorder.clone()), 2).await;
    let outcomes = tally.jobs().filter_map(|r| r.outcome.clone()).collect();
    (outcomes, recorder)
}

fn push() -> BuildOptions {
    BuildOptions {
        push: true,
        ..BuildOptions::default()
    }
}

fn assert_copied(outcomes: &[Outcome]) -> String {
    match outcomes {
        [Outcome::Copied { digest, .. }] => digest.clone(),
        other => panic!("expected one build, got {other:?}"),
    }
}

fn assert_skipped(outcomes: &[Outcome], why: &str) {
    assert!(
        matches!(outcomes, [Outcome::Skipped { reason }] if reason.to_string() == why),
        "expected skipped ({why}), got {outcomes:?}"
    );
}

/// `docker run` of the pushed image after dropping the local copy: proves the registry has it.
fn hello_from_registry(cli: &Docker, image: &str) -> String {
    cli.remove_images(&[image]);
    cli.ok(&["run", "--rm", image, "cat", "/hello.txt"])
}

/// Removes every local image of some repositories when dropped, also after a failure:
/// tags, and the digest-only references `docker run` and pulls by digest leave behind.
#[derive(Default)]
struct Images(Vec<String>);

impl Images {
    fn keep_repository(&mut self, repository: impl Into<String>) {
        self.0.push(repository.into());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for repository in &self.0 {
            let listed = docker(&[
                "images",
                "--digests",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}",
                repository,
            ]);
            let text = String::from_utf8_lossy(&listed.stdout).into_owned();
            let references: Vec<&str> = text
                .split_whitespace()
                .filter(|r| !r.ends_with(":<none>") && !r.ends_with("@<none>"))
                .collect();
            if !references.is_empty() {
                let mut args = vec!["rmi", "--force"];
                args.extend(references);
                let _ = docker(&args);
            }
        }
    }
}

fn labels(cli: &Docker, image: &str) -> serde_json::Value {
    let json = cli.ok(&["inspect", "--format", "{{json .Config.Labels}}", image]);
    serde_json::from_str(json.trim()).expect("labels json")
}

#[tokio::test]
async fn continuous_rebuilds_exactly_when_context_or_base_change() {
    require_daemon();
    let mirror = Registry::anonymous();
    let v1 = Fixture::image(&mirror, "base/busybox", "1.0")
        .layer_text("build e2e: base v1")
        .push()
        .await;
    let entries = format!(
        "- name: hello\n  base: {}/base/busybox:1.0\n  mode: continuous\n",
        mirror.host()
    );
    let project = Project::new(&mirror, &entries, &["hello"]);
    let target = format!("{}/base/busybox:1.0-n-ext", mirror.host());
    let cli = Docker::new();
    let mut images = Images::default();
    images.keep_repository(format!("{}/base/busybox", mirror.host()));

    let (first, recorder) = build(&project, &[&mirror], &[], push()).await;
    let pushed = assert_copied(&first);
    assert!(pushed.starts_with("sha256:"), "{pushed}");
    let logs = recorder.logs();
    assert!(
        logs.iter()
            .any(|l| l == &format!("building {target} (target missing)")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.ends_with(": COPY hello.txt /hello.txt")),
        "{logs:?}"
    );
    assert_eq!(hello_from_registry(&cli, &target), "hello from hello\n");
    let carried = labels(&cli, &target);
    assert_eq!(carried[LABEL_BASE_DIGEST], v1.digest.as_str());
    assert_eq!(carried[LABEL_BASE_REF], v1.reference().as_str());
    let cached = State::load(&project.state_file()).0.cached();
    let base = format!("{}/base/busybox:1.0@{}", mirror.host(), v1.digest);
    assert!(
        cached.values().any(|c| c.reference == base),
        "the pulled base is layer cache that ferry cache prune may remove: {cached:?}"
    );

    let (again, recorder) = build(&project, &[&mirror], &[], push()).await;
    assert_skipped(&again, "unchanged: base and context");
    assert!(
        recorder.logs().is_empty(),
        "no build: {:?}",
        recorder.logs()
    );

    project.write("hello", "hello.txt", "hello again\n");
    let (changed, recorder) = build(&project, &[&mirror], &[], push()).await;
    assert_copied(&changed);
    assert!(recorder
        .logs()
        .contains(&format!("building {target} (context changed)")));
    assert_eq!(hello_from_registry(&cli, &target), "hello again\n");
    let (settled, _) = build(&project, &[&mirror], &[], push()).await;
    assert_skipped(&settled, "unchanged: base and context");

    let v2 = Fixture::image(&mirror, "base/busybox", "1.0")
        .layer_text("build e2e: base v2")
        .push()
        .await;
    assert_ne!(v1.digest, v2.digest);
    let (rebased, recorder) = build(&project, &[&mirror], &[], push()).await;
    assert_copied(&rebased);
    assert!(recorder
        .logs()
        .contains(&format!("building {target} (base changed)")));
    assert_eq!(hello_from_registry(&cli, &target), "hello again\n");
    assert_eq!(labels(&cli, &target)[LABEL_BASE_DIGEST], v2.digest.as_str());
    let (settled, _) = build(&project, &[&mirror], &[], push()).await;
    assert_skipped(&settled, "unchanged: base and context");
}

#[tokio::test]
async fn once_builds_a_missing_target_then_only_when_named() {
    require_daemon();
    let mirror = Registry::basic("ferry", TRICKY_PASSWORD);
    let base = Fixture::image(&mirror, "base/once", "2.0")
        .layer_text("build e2e: once base")
        .push()
        .await;
    let entries = format!(
        "- name: once-ext\n  base: {}/base/once\n  tags: ['2.0']\n  mode: once\n",
        mirror.host()
    );
    let project = Project::new(&mirror, &entries, &["once-ext"]);
    let target = format!("{}/base/once:2.0-n-ext", mirror.host());
    let cli = Docker::new();
    let mut images = Images::default();
    images.keep_repository(format!("{}/base/once", mirror.host()));
    assert!(jobs(
        &project.config(),
        &[],
        Some(ferry::config::BuildMode::Continuous)
    )
    .expect("jobs")
    .is_empty());

    // Without --push the image stays local; the outcome carries its image id.
    let (local, _) = build(&project, &[&mirror], &[], BuildOptions::default()).await;
    let id = assert_copied(&local);
    let inspected = cli.ok(&["inspect", "--format", "{{.Id}}", &target]);
    assert_eq!(inspected.trim(), id);
    assert_eq!(
        labels(&cli, &target)[LABEL_BASE_DIGEST],
        base.digest.as_str()
    );

    let (first, _) = build(&project, &[&mirror], &[], push()).await;
    assert_copied(&first);
    let (again, recorder) = build(&project, &[&mirror], &[], push()).await;
    assert_skipped(&again, "exists (mode once)");
    assert!(recorder.logs().is_empty());

    let (named, recorder) = build(&project, &[&mirror], &["once-ext"], push()).await;
    assert_copied(&named);
    assert!(recorder
        .logs()
        .contains(&format!("building {target} (named)")));
}

#[tokio::test]
async fn a_missing_base_fails_naming_the_entry_and_the_image() {
    require_daemon();
    let mirror = Registry::anonymous();
    let entries = format!(
        "- name: orphan\n  base: {}/base/never:1\n  mode: continuous\n",
        mirror.host()
    );
    let project = Project::new(&mirror, &entries, &["orphan"]);
    let (outcomes, _) = build(&project, &[&mirror], &[], push()).await;
    let [Outcome::Failed { error }] = outcomes.as_slice() else {
        panic!("expected a failure, got {outcomes:?}");
    };
    let base = format!("{}/base/never:1", mirror.host());
    assert!(error.starts_with(&format!("orphan: {base} -> ")), "{error}");
    assert!(
        error.ends_with(&format!(
            "base image {base} not found (mirror it first: ferry sync)"
        )),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
}
