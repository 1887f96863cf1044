//! The registries users really talk to (issue #15, SPEC section 12), emulated by the quirk
//! front of `support::quirk` before a real registry, through the ferry binary with both
//! transports: every case ends in success or in one FAILED line naming a cause a person
//! can act on, never a retry storm, never a half-written tag, and a second run is a no-op.

use crate::harness::{ferry, project, text};
use crate::support::{
    require_daemon, Fixture, Harbor, Kind, MediaKind, Profile, PushedIndex, QuirkRegistry,
    Registry, RegistryClient, TokenOptions,
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
    sync_jobs(dir, transport, "2")
}

/// `ferry sync` with `jobs` jobs at a time (1: images in order, so the daemon has pushed
/// one before the next and tries to mount its layers).
fn sync_jobs(dir: &tempfile::TempDir, transport: &str, jobs: &str) -> Run {
    let out = ferry(
        dir.path(),
        &["sync", "--transport", transport, "--jobs", jobs],
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
        .filter(|s| s.authorized && matches!(s.status, 400 | 401 | 403 | 412 | 429))
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

/// Syncs `pairs` into `front` with `transport` twice: the first run copies every image
/// (exit 0, every tag complete on the registry behind), the second is a no-op: no
/// manifest PUT, no upload, no mount.
async fn copies_then_no_op(
    front: &QuirkRegistry,
    dir: &tempfile::TempDir,
    tags: &[(&str, &str)],
    transport: &str,
) -> Run {
    let run = sync(dir, transport);
    assert_eq!(run.code, Some(0), "{transport}: {}", run.all);
    for (repo, tag) in tags {
        assert!(
            absent_or_complete(front.backing(), repo, tag).await,
            "{transport}: {repo}:{tag} copied:\n{}",
            run.all
        );
    }
    front.reset();
    let again = sync(dir, transport);
    assert_eq!(again.code, Some(0), "{transport} no-op: {}", again.all);
    assert_no_writes(front, transport);
    run
}

/// The front saw no manifest PUT, no upload and no mount.
fn assert_no_writes(front: &QuirkRegistry, transport: &str) {
    for kind in [
        Kind::ManifestPut,
        Kind::UploadStart,
        Kind::Mount,
        Kind::UploadPut,
    ] {
        assert_eq!(
            front.count(kind),
            0,
            "{transport} no-op: no {kind:?}:\n{}",
            front.summary()
        );
    }
}

/// One image synced into a Harbor front in `case` fails with one line saying `says`; the
/// tag on the registry behind is absent, or still the complete `before`.
async fn harbor_refuses(case: Harbor, says: &str, before: Option<&str>) {
    require_daemon();
    let source = Registry::anonymous();
    let name = format!("h{}", rand::random::<u32>());
    let (_, multi) = fixtures(&source, &name).await;
    for transport in TRANSPORTS {
        let target = harbor(case.clone());
        let old = match before {
            Some(text) => Some(
                Fixture::image(target.backing(), "lib/multi", "1.0")
                    .layer_text(text)
                    .push()
                    .await
                    .digest,
            ),
            None => None,
        };
        let repo = format!("{}/lib/multi", target.host());
        let dir = config(
            &[(multi.reference(), repo.clone())],
            &[(target.host(), target.backing())],
        );
        let run = sync(&dir, transport);
        assert_eq!(run.code, Some(1), "{transport}: {}", run.all);
        let failed = run.failed();
        assert_eq!(failed.len(), 1, "{transport}: {}", run.all);
        let says = says.replace("HOST", &target.host());
        assert!(
            failed[0].contains(&says),
            "{transport}: wants {says}: {}",
            run.all
        );
        no_retry_storm(&target, transport);
        let present = absent_or_complete(target.backing(), "lib/multi", "1.0").await;
        let now = RegistryClient::new(target.backing())
            .manifest("lib/multi", "1.0")
            .await
            .map(|m| m.digest);
        assert_eq!(now, old, "{transport}: the tag is what it was ({present})");
    }
}

#[tokio::test]
async fn harbor_quota_at_the_end_of_an_upload_is_one_line() {
    harbor_refuses(Harbor::QuotaAtUploadEnd, "quota exceeded on HOST", None).await;
}

#[tokio::test]
async fn harbor_quota_at_the_start_of_an_upload_is_one_line() {
    harbor_refuses(Harbor::QuotaAtUploadStart, "quota exceeded on HOST", None).await;
}

#[tokio::test]
async fn harbor_quota_at_the_manifest_is_one_line() {
    harbor_refuses(Harbor::QuotaAtManifest, "quota exceeded on HOST", None).await;
}

#[tokio::test]
async fn harbor_immutable_tag_412_is_one_line_and_keeps_the_tag() {
    let case = Harbor::Immutable {
        tag: "1.0".into(),
        status: 412,
    };
    harbor_refuses(
        case,
        "tag is immutable on HOST/lib/multi:1.0",
        Some("older"),
    )
    .await;
}

#[tokio::test]
async fn harbor_immutable_tag_403_is_one_line_and_keeps_the_tag() {
    let case = Harbor::Immutable {
        tag: "1.0".into(),
        status: 403,
    };
    harbor_refuses(
        case,
        "tag is immutable on HOST/lib/multi:1.0",
        Some("older"),
    )
    .await;
}

#[tokio::test]
async fn harbor_refused_mounts_fall_back_to_uploads_and_a_rerun_is_a_no_op() {
    require_daemon();
    let source = Registry::anonymous();
    let (app, multi) = fixtures(&source, "mount").await;
    for transport in TRANSPORTS {
        let target = harbor(Harbor::MountInvisible);
        let dir = config(
            &[
                (app.clone(), format!("{}/lib/app", target.host())),
                (multi.reference(), format!("{}/lib/multi", target.host())),
            ],
            &[(target.host(), target.backing())],
        );
        let tags = [("lib/app", "1.0"), ("lib/multi", "1.0")];
        let run = sync_jobs(&dir, transport, "1");
        assert_eq!(run.code, Some(0), "{transport}: {}", run.all);
        assert!(
            target.count(Kind::Mount) >= 1,
            "{transport}: a mount was tried:\n{}",
            target.summary()
        );
        assert_eq!(
            target.count(Kind::Mount),
            target.count_status(Kind::Mount, 401),
            "{transport}: every mount refused"
        );
        no_retry_storm(&target, transport);
        for (repo, tag) in tags {
            assert!(absent_or_complete(target.backing(), repo, tag).await);
        }
        target.reset();
        let again = sync(&dir, transport);
        assert_eq!(again.code, Some(0), "{transport} no-op: {}", again.all);
        assert_no_writes(&target, transport);
    }
}

#[tokio::test]
async fn harbor_immutable_tag_unchanged_is_never_put_again() {
    require_daemon();
    let source = Registry::anonymous();
    let (app, multi) = fixtures(&source, "immutable").await;
    for transport in TRANSPORTS {
        let target = harbor(Harbor::Immutable {
            tag: "1.0".into(),
            status: 412,
        });
        let dir = config(
            &[
                (app.clone(), format!("{}/lib/app", target.host())),
                (multi.reference(), format!("{}/lib/multi", target.host())),
            ],
            &[(target.host(), target.backing())],
        );
        let tags = [("lib/app", "1.0"), ("lib/multi", "1.0")];
        copies_then_no_op(&target, &dir, &tags, transport).await;
    }
}
