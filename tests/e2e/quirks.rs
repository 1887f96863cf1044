//! The registries users really talk to (issue #15, SPEC section 12), emulated by the quirk
//! front of `support::quirk` before a real registry, through the ferry binary with both
//! transports: every case ends in success or in one FAILED line naming a cause a person
//! can act on, never a retry storm, never a half-written tag, and a second run is a no-op.

use crate::harness::{ferry, project, text};
use crate::support::{
    require_daemon, Fixture, Harbor, MediaKind, Profile, PushedIndex, QuirkRegistry, Registry,
    RegistryClient, TokenOptions,
};

const TRANSPORTS: [&str; 2] = ["registry", "docker"];

/// What one `ferry sync` printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    all: String,
}

impl Run {
    fn failed(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("FAILED"))
            .collect()
    }
}

/// A project copying each `(source, destination repository)` pair, with the accounts of
/// `accounts` (`(host, user, pass)`) in auth.yaml.
fn config(pairs: &[(String, String)], accounts: &[(String, &Registry)]) -> tempfile::TempDir {
    let images: String = pairs
        .iter()
        .map(|(source, to)| format!("\"{source}\":\n  to: \"{to}\"\n"))
        .collect();
    let auth: String = accounts
        .iter()
        .filter_map(|(host, registry)| {
            registry.credentials().map(|c| {
                format!(
                    "\"{host}\":\n  username: \"{}\"\n  password: \"{}\"\n",
                    c.user, c.pass
                )
            })
        })
        .collect();
    project(&[("config/images.yaml", &images), ("config/auth.yaml", &auth)])
}

fn sync(dir: &tempfile::TempDir, transport: &str) -> Run {
    let out = ferry(
        dir.path(),
        &["sync", "--transport", transport, "--jobs", "2"],
        &[],
    );
    let stdout = text(&out.stdout);
    let all = format!("{stdout}{}", text(&out.stderr));
    Run {
        code: out.status.code(),
        stdout,
        all,
    }
}

/// A token registry behind a Harbor front in `case`.
fn harbor(case: Harbor) -> QuirkRegistry {
    QuirkRegistry::start(
        Registry::token(TokenOptions::default()),
        Profile::Harbor(case),
    )
}

/// The tag `repo:tag` on `registry` is absent, or complete: every child manifest, config
/// and layer it names is there. Returns whether it is present.
async fn absent_or_complete(registry: &Registry, repo: &str, tag: &str) -> bool {
    let client = RegistryClient::new(registry);
    let Some(top) = client.manifest(repo, tag).await else {
        return false;
    };
    let mut manifests = vec![top.json()];
    let json = top.json();
    if let Some(children) = json["manifests"].as_array() {
        manifests.clear();
        for child in children {
            let digest = child["digest"].as_str().expect("child digest");
            let manifest = client
                .manifest(repo, digest)
                .await
                .unwrap_or_else(|| panic!("{repo}:{tag} names a missing child {digest}"));
            manifests.push(manifest.json());
        }
    }
    for manifest in manifests {
        let config = manifest["config"]["digest"].as_str().expect("config");
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        let blobs = std::iter::once(config.to_string()).chain(
            layers
                .iter()
                .filter_map(|l| l["digest"].as_str().map(String::from)),
        );
        for blob in blobs {
            assert!(
                client.has_blob(repo, &blob).await,
                "{repo}:{tag} names a missing blob {blob}"
            );
        }
    }
    true
}

/// No request was refused more than twice with credentials (a token, then at most one
/// fresh token), and the refused ones stay few: a permanent answer is not retried.
fn no_retry_storm(front: &QuirkRegistry, transport: &str) {
    let mut refused: std::collections::HashMap<(String, String), usize> = Default::default();
    for seen in front
        .seen()
        .iter()
        .filter(|s| s.authorized && s.status >= 400)
    {
        *refused
            .entry((seen.method.clone(), seen.uri.clone()))
            .or_default() += 1;
    }
    for ((method, uri), times) in &refused {
        assert!(
            *times <= 2,
            "{transport}: {method} {uri} refused {times} times:\n{}",
            front.summary()
        );
    }
    let total: usize = refused.values().sum();
    assert!(
        total <= 12,
        "{transport}: {total} refused requests:\n{}",
        front.summary()
    );
}

/// The source fixtures: a busybox image and a linux/amd64, linux/arm64, windows/amd64 index.
async fn fixtures(source: &Registry, name: &str) -> (String, PushedIndex) {
    let app = Fixture::image(source, &format!("{name}/app"), "1.0")
        .layer_text(&format!("{name} app"))
        .push()
        .await;
    let multi = Fixture::index(source, &format!("{name}/multi"), "1.0", MediaKind::Docker)
        .layer_text(&format!("{name} multi"))
        .push()
        .await;
    (app.reference(), multi)
}

#[tokio::test]
async fn harbor_missing_project_is_one_line_without_retries() {
    require_daemon();
    let source = Registry::anonymous();
    let (_, multi) = fixtures(&source, "noproject").await;
    for transport in TRANSPORTS {
        let target = harbor(Harbor::NoProject);
        let repo = format!("{}/lib/multi", target.host());
        let dir = config(
            &[(multi.reference(), repo.clone())],
            &[(target.host(), target.backing())],
        );
        let run = sync(&dir, transport);
        assert_eq!(run.code, Some(1), "{transport}: {}", run.all);
        let failed = run.failed();
        assert_eq!(failed.len(), 1, "{transport}: {}", run.all);
        assert!(
            failed[0].contains(&format!("project missing or no push permission on {repo}")),
            "{transport}: {}",
            run.all
        );
        no_retry_storm(&target, transport);
        assert!(!absent_or_complete(target.backing(), "lib/multi", "1.0").await);
    }
}
