//! The Docker daemon as tests see it: a reachability check with a clear failure and the
//! `docker` CLI. Must not start or stop dockerd: scripts/test (scripts/lib/env.sh) does.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Panics with a clear message unless `docker info` answers (checked once per process).
pub fn require_daemon() {
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let reachable = REACHABLE.get_or_init(|| {
        let output = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .map_err(|e| format!("cannot run the docker CLI: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    });
    if let Err(why) = reachable {
        panic!("dockerd not running: run scripts/test (it starts one) [{why}]");
    }
}

/// Runs the docker CLI with the caller's `DOCKER_CONFIG`, after [`require_daemon`].
pub fn docker(args: &[&str]) -> Output {
    require_daemon();
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI")
}

/// The docker CLI with a private `DOCKER_CONFIG` (its own `docker login`s), removed on
/// `Drop`: tests never touch `~/.docker/config.json`.
pub struct Docker {
    config: tempfile::TempDir,
}

impl Docker {
    /// Checks the daemon and makes an empty client config.
    pub fn new() -> Docker {
        require_daemon();
        let config = tempfile::Builder::new()
            .prefix("ferry-e2e-docker-config-")
            .tempdir()
            .expect("create a DOCKER_CONFIG dir");
        Docker { config }
    }

    /// The `DOCKER_CONFIG` directory (pass it to a `ferry` child process if it reads logins).
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// Runs `docker ARGS` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_CONFIG", self.config.path())
            .args(args)
            .output()
            .expect("run the docker CLI")
    }

    /// Runs `docker ARGS`, panics unless it succeeds, and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "docker {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `docker login HOST` with the password on stdin.
    pub fn login(&self, host: &str, user: &str, pass: &str) {
        use std::io::Write as _;
        let mut child = Command::new("docker")
            .env("DOCKER_CONFIG", self.config.path())
            .args(["login", host, "--username", user, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run docker login");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(pass.as_bytes())
            .expect("write the password to docker login");
        let output = child.wait_with_output().expect("wait for docker login");
        assert!(
            output.status.success(),
            "docker login {host} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Removes images by reference; missing ones are not an error.
    pub fn remove_images(&self, references: &[&str]) {
        let mut args = vec!["rmi", "--force"];
        args.extend_from_slice(references);
        let _ = self.run(&args);
    }
}

impl Default for Docker {
    fn default() -> Self {
        Docker::new()
    }
}

/// `PREFIX-PID-N-NANOS`: a name (image tag, label value) that no other test, test process
/// or earlier run has given anything on the shared daemon.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// The images (ids or references) a test made on the daemon, removed with `docker rmi
/// --force` on `Drop`: also when the test fails halfway. Missing ones are not an error.
#[derive(Default)]
pub struct ImageCleanup {
    images: Mutex<Vec<String>>,
    registries: Mutex<Vec<String>>,
}

impl ImageCleanup {
    /// Removes `image` when this is dropped.
    pub fn track(&self, image: impl Into<String>) {
        let mut images = self.images.lock().expect("image cleanup lock");
        images.push(image.into());
    }

    /// Removes every image of registry `host` (`127.0.0.1:PORT`) when this is dropped:
    /// tagged or pulled by digest, whatever the code under test left there.
    pub fn track_registry(&self, host: impl Into<String>) {
        let mut registries = self.registries.lock().expect("image cleanup lock");
        registries.push(host.into());
    }
}

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let mut images =
            std::mem::take(&mut *self.images.lock().unwrap_or_else(|e| e.into_inner()));
        let registries =
            std::mem::take(&mut *self.registries.lock().unwrap_or_else(|e| e.into_inner()));
        if !registries.is_empty() {
            // By name, never by id: tests on the shared daemon build identical images
            // (same id), and a forced removal by id would take another test's tags too.
            let listed = Command::new("docker")
                .args([
                    "images",
                    "--digests",
                    "--format",
                    "{{.Repository}} {{.Tag}} {{.Digest}}",
                ])
                .output();
            let listed = listed
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for line in listed.lines() {
                let mut fields = line.split(' ');
                let (Some(repository), Some(tag), Some(digest)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                if !registries
                    .iter()
                    .any(|host| repository.starts_with(&format!("{host}/")))
                {
                    continue;
                }
                if tag != "<none>" {
                    images.push(format!("{repository}:{tag}"));
                } else if digest != "<none>" {
                    images.push(format!("{repository}@{digest}"));
                }
            }
        }
        if !images.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "--force"])
                .args(&images)
                .output();
        }
    }
}
