//! The GitHub Action (action.yml): its inputs, the command line its script builds from
//! them, and a run of that script as a runner would do it, step summary included.
//! GitHub itself cannot be reached here: the composite steps around the script (cache,
//! cargo install) are checked by reading action.yml, not by running them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::{repo_root, text};
use crate::support::{Fixture, Registry, RegistryClient};

fn action() -> Value {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).expect("action.yml");
    serde_saphyr::from_str(&text).expect("action.yml is YAML")
}

/// Runs scripts/action-command with `inputs` (name, value) as INPUT_* variables.
fn command(dir: &Path, ferry: &Path, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(repo_root().join("scripts/action-command"));
    command.current_dir(dir).env("FERRY", ferry);
    for (name, value) in inputs {
        command.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    command
        .envs(env.iter().copied())
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .output()
        .expect("the action's script runs")
}

/// A stand-in ferry printing its arguments one per line.
fn echo_ferry(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("echo-ferry");
    std::fs::write(&path, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n").expect("write");
    let mut permissions = std::fs::metadata(&path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).expect("chmod");
    path
}

#[test]
fn the_action_is_composite_and_passes_every_input_to_its_script() {
    let action = action();
    assert_eq!(action["runs"]["using"], "composite");
    let inputs = action["inputs"].as_object().expect("inputs");
    for name in [
        "auth_file",
        "images_file",
        "proc",
        "config",
        "stage",
        "transport",
        "shard",
        "report",
    ] {
        assert!(inputs.contains_key(name), "input {name}");
    }
    let steps = action["runs"]["steps"].as_array().expect("steps");
    let last = steps.last().expect("a step");
    assert!(last["run"]
        .as_str()
        .is_some_and(|r| r.contains("scripts/action-command")));
    for name in inputs.keys() {
        let variable = format!("INPUT_{}", name.to_uppercase());
        assert_eq!(
            last["env"][&variable],
            format!("${{{{ inputs.{name} }}}}"),
            "{name} reaches the script"
        );
    }
    let uses_cache = steps.iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/cache@"))
    });
    let builds = steps.iter().any(|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("cargo install --locked --path"))
    });
    assert!(uses_cache && builds, "builds ferry with cargo, cached");
}

#[test]
fn inputs_become_one_ferry_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let echo = echo_ferry(dir.path());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("images_file", "./images.yaml"), ("auth_file", "./auth.yaml"), ("proc", "6"), ("os", ""), ("arch", "amd64,arm64"), ("version", "latest"), ("config", "config")],
            "image-syncer --images=./images.yaml --auth=./auth.yaml --proc=6 --arch=amd64 --arch=arm64",
        ),
        (
            &[("config", "config"), ("stage", "private"), ("transport", "registry"), ("shard", "2/3"), ("report", "r.json"), ("args", "--jobs 8")],
            "sync -c config --stage private --transport registry --shard 2/3 --report r.json --jobs 8",
        ),
        (&[], "sync -c config"),
        (
            &[("images_file", "i.yaml"), ("arch", "amd64*"), ("args", "--log *.txt")],
            "image-syncer --images=i.yaml --arch=amd64* --log *.txt",
        ),
    ];
    // A file a glob would match: inputs are words, never globs.
    std::fs::write(dir.path().join("amd64-evil.txt"), "").expect("write");
    for (inputs, expected) in cases {
        let out = command(dir.path(), &echo, inputs, &[]);
        assert!(out.status.success(), "{inputs:?}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).lines().collect::<Vec<_>>().join(" "),
            *expected
        );
    }
    for inputs in [
        &[("images_file", "i.yaml"), ("shard", "1/3")][..],
        &[("proc", "10")],
    ] {
        let out = command(dir.path(), &echo, inputs, &[]);
        assert_eq!(out.status.code(), Some(2), "{inputs:?}");
        assert!(text(&out.stderr).starts_with("::error::ferry action: input "));
        assert!(out.stdout.is_empty(), "ferry did not run");
    }
}

#[tokio::test]
async fn the_origin_inputs_run_ferry_and_ferry_writes_the_step_summary() {
    let source = Registry::anonymous();
    let mirror = Registry::anonymous();
    let app = Fixture::image(&source, "team/app", "1.0")
        .tiny()
        .push()
        .await;
    let dir = tempfile::tempdir().expect("dir");
    let images = format!("{}: {}/mirror/app\n", app.reference(), mirror.host());
    std::fs::write(dir.path().join("images.yaml"), images).expect("write");
    let summary = dir.path().join("summary.md");
    let out = command(
        dir.path(),
        Path::new(env!("CARGO_BIN_EXE_ferry")),
        &[("images_file", "./images.yaml"), ("proc", "5")],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8")),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&summary).expect("a step summary");
    assert!(written.starts_with("### ferry\n"), "{written}");
    assert!(written.contains("#### Copied (1)"), "{written}");
    let copied = RegistryClient::new(&mirror)
        .manifest("mirror/app", "1.0")
        .await;
    assert_eq!(copied.map(|m| m.digest), Some(app.digest.clone()));
}
