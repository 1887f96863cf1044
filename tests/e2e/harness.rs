//! ferry-side helpers for e2e tests: ferry's own clients pointed at test registries.
//! Owns the glue between `support` (which must not call ferry) and the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ferry::config::auth::AuthEntry;
use ferry::credentials::{CredentialStore, Side};
use ferry::event;
use ferry::plan::Job;
use ferry::registry::{ClientOptions, RegistryClient};
use ferry::report::{Reporter, Reporters, Tally};
use ferry::run::{run, RunOptions, Worker};
use ferry::secret::Secret;

use crate::support::Registry;

/// auth.yaml entries for the accounts of `registries`.
pub fn auth_entries(registries: &[&Registry]) -> Vec<AuthEntry> {
    registries
        .iter()
        .filter_map(|r| {
            r.credentials().map(|c| AuthEntry {
                key: r.host(),
                username: Some(c.user.clone()),
                password: Some(Secret::new(c.pass.clone())),
                insecure: false,
                ca_file: None,
                limits: Default::default(),
            })
        })
        .collect()
}

/// A registry client knowing the accounts of `registries` (through auth.yaml entries only).
pub fn client(registries: &[&Registry], options: ClientOptions) -> RegistryClient {
    RegistryClient::new(
        CredentialStore::new(auth_entries(registries), None, None),
        options,
    )
}

/// The source-side and target-side twins of one client with default options.
pub fn clients(registries: &[&Registry]) -> (RegistryClient, RegistryClient) {
    let source = client(registries, ClientOptions::default());
    let target = source.for_side(Side::Target);
    (source, target)
}

/// Runs the ferry binary in `dir` with `args` and extra environment.
pub fn ferry(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    ferry_command(dir, args, env).output().expect("ferry runs")
}

/// The ferry binary set up to run in `dir` (own docker config, no TARGET_* from outside).
pub fn ferry_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("TARGET_USER")
        .env_remove("TARGET_PASSWORD")
        .envs(env.iter().copied())
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .stdin(Stdio::null());
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project directory with `config/` holding the given files.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    dir
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `worker` over `jobs` as a sync does (`at_once` jobs at a time), every event going to
/// `reporter`; the tally of the run.
pub async fn run_reported(
    worker: &impl Worker,
    jobs: &[Job],
    reporter: Box<dyn Reporter>,
    at_once: usize,
) -> Tally {
    let mut reporters = Reporters::default();
    reporters.push(reporter);
    let options = RunOptions {
        jobs: at_once,
        per_registry: at_once.max(4),
        ..RunOptions::default()
    };
    let (events, receiver) = event::channel();
    let work = async {
        run(worker, jobs, &options, &events).await;
        drop(events);
    };
    let ((), tally) = tokio::join!(work, reporters.consume(receiver, std::time::Instant::now()));
    tally.clone()
}
