//! Docker transport over the fake daemon: pull by digest, tag, push; every Linux platform
//! pushed under its staging tag before the manifest list (of exactly the pushed digests)
//! takes the real tag; Windows never pulled; the state file written only after success.

use std::sync::Arc;

use tempfile::TempDir;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use super::{count, job, mirror, position, state};
use crate::credentials::Side;
use crate::decide::{state_key, Decider, Writes};
use crate::docker::fake::FakeDocker;
use crate::event::Outcome;
use crate::manifest::{self, sha256_digest, Parsed, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST};
use crate::plan::Job;
use crate::registry::fake::{client, FakeRegistry, TestImage, TestIndex};
use crate::state::State;
use crate::transport::docker::{DockerTransport, STAGING_TAG};

/// A source registry, the fake daemon, and a target registry that serves what the daemon
/// pushed and logs the manifest list PUT into the daemon's call log.
struct Setup {
    src: FakeRegistry,
    dst: FakeRegistry,
    docker: FakeDocker,
    decider: Decider,
    transport: DockerTransport<FakeDocker>,
    state: Arc<State>,
    job: Job,
    _dir: TempDir,
}

impl Setup {
    async fn new() -> Self {
        let (src, dst) = (FakeRegistry::start().await, FakeRegistry::start().await);
        dst.accept_pushes().await;
        let docker = FakeDocker::default();
        // What the daemon pushed, as the target then serves it (for the list entries).
        Mock::given(method("HEAD"))
            .and(path_regex("^/v2/mirror/app/manifests/sha256:[0-9a-f]{64}$"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Content-Type", DOCKER_MANIFEST)
                    .set_body_bytes(vec![b' '; 428]),
            )
            .with_priority(1)
            .mount(dst.server())
            .await;
        Mock::given(method("PUT"))
            .and(path("/v2/mirror/app/manifests/1"))
            .respond_with(LogInto(docker.clone()))
            .with_priority(2)
            .mount(dst.server())
            .await;
        let (state, dir) = state();
        let source = client();
        let target = source.for_side(Side::Target);
        let decider = Decider::new(
            source.clone(),
            target.clone(),
            state.clone(),
            Writes::DaemonPush,
            false,
        );
        let transport = DockerTransport::new(docker.clone(), source, target, state.clone());
        let job = job(src.reference("team/app:1"), dst.reference("mirror/app:1"));
        Setup {
            src,
            dst,
            docker,
            decider,
            transport,
            state,
            job,
            _dir: dir,
        }
    }

    async fn copy(&self) -> Outcome {
        mirror(&self.decider, &self.transport, &self.job).await
    }

    /// The source pinned to `digest`, as the daemon is asked to pull it.
    fn pinned(&self, digest: &str) -> String {
        self.job
            .source
            .with_digest(digest)
            .expect("digest")
            .to_string()
    }

    /// The target under the staging tag of `child`'s platform.
    fn staging(&self, child: &TestImage) -> String {
        let platform = child.platform.to_string().replace('/', "-");
        let tag = format!("{STAGING_TAG}-{platform}");
        self.job.target.with_tag(&tag).expect("tag").to_string()
    }

    /// The bodies of the manifest list PUTs under the real tag.
    async fn lists(&self) -> Vec<Vec<u8>> {
        self.dst.put_bodies("mirror/app", "1").await
    }
}

/// Answers a manifest PUT with 201 and the digest of its bytes, and adds `registry PUT
/// <path>` to the fake daemon's log: one log orders daemon calls and the list PUT.
struct LogInto(FakeDocker);

impl Respond for LogInto {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0
            .record(format!("registry PUT {}", request.url.path()));
        ResponseTemplate::new(201).insert_header(
            "Docker-Content-Digest",
            sha256_digest(&request.body).as_str(),
        )
    }
}

/// Two Linux platforms and a Windows one.
fn index() -> TestIndex {
    TestIndex::new(vec![
        TestImage::new("linux/amd64", &["amd64 layer"]),
        TestImage::new("linux/arm64/v8", &["arm64 layer"]),
        TestImage::new("windows/amd64", &["windows layer"]),
    ])
}

#[tokio::test]
async fn an_image_is_pulled_by_digest_then_tagged_then_pushed() {
    let setup = Setup::new().await;
    let image = TestImage::new("linux/amd64", &["layer"]);
    setup.src.serve_image("team/app", "1", &image).await;
    let outcome = setup.copy().await;
    let target = setup.job.target.to_string();
    let pinned = setup.pinned(&image.digest);
    assert_eq!(
        setup.docker.calls(),
        [
            format!("pull {pinned}"),
            format!("tag {pinned} {target}"),
            format!("push {target}"),
        ]
    );
    let pushed = setup.docker.digest_of(&target);
    assert!(
        matches!(&outcome, Outcome::Copied { digest, .. } if *digest == pushed),
        "{outcome:?}"
    );
    assert!(setup.lists().await.is_empty(), "one image needs no list");
}

#[tokio::test]
async fn each_linux_platform_is_pulled_and_pushed_before_the_list_takes_the_tag() {
    let setup = Setup::new().await;
    let index = index();
    setup.src.serve_index("team/app", "1", &index).await;
    let outcome = setup.copy().await;
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    let calls = setup.docker.calls();
    let list = position(&calls, "list PUT", |c| {
        c == "registry PUT /v2/mirror/app/manifests/1"
    });
    assert_eq!(
        list,
        calls.len() - 1,
        "the list is the last step: {calls:#?}"
    );
    assert_eq!(
        count(&calls, |c| c.starts_with("registry PUT")),
        1,
        "{calls:#?}"
    );
    let (linux, windows) = index.children.split_at(2);
    for child in linux {
        let (pinned, staging) = (setup.pinned(&child.digest), setup.staging(child));
        let pull = format!("pull {pinned} {}", child.platform);
        let pull = position(&calls, "pull by digest", |c| c == pull);
        let tag = format!("tag {pinned} {staging}");
        let tag = position(&calls, "staging tag", |c| c == tag);
        let push = format!("push {staging}");
        let push = position(&calls, "staging push", |c| c == push);
        assert!(pull < tag && tag < push && push < list, "{calls:#?}");
    }
    assert_eq!(
        count(&calls, |c| c.contains(&windows[0].digest)
            || c.contains("windows")),
        0,
        "Windows is never pulled: {calls:#?}"
    );
}

#[tokio::test]
async fn the_list_names_exactly_the_pushed_digests() {
    let setup = Setup::new().await;
    let index = index();
    setup.src.serve_index("team/app", "1", &index).await;
    let outcome = setup.copy().await;
    let lists = setup.lists().await;
    assert_eq!(lists.len(), 1, "{outcome:?}");
    let Parsed::Index(entries) = manifest::parse(DOCKER_MANIFEST_LIST, &lists[0]).expect("list")
    else {
        panic!("not a list: {}", String::from_utf8_lossy(&lists[0]));
    };
    let listed: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.platform.as_ref().expect("platform").to_string(),
                e.digest.clone(),
            )
        })
        .collect();
    let pushed: Vec<(String, String)> = index.children[..2]
        .iter()
        .map(|child| {
            let staging = setup.staging(child);
            let digest = setup
                .docker
                .pushed()
                .into_iter()
                .find(|(reference, _)| *reference == staging)
                .map(|(_, digest)| digest)
                .unwrap_or_else(|| panic!("{staging} was not pushed"));
            (child.platform.to_string(), digest)
        })
        .collect();
    assert_eq!(
        listed, pushed,
        "the list names what was pushed, in index order"
    );
    for child in &index.children {
        assert!(
            !listed.iter().any(|(_, digest)| *digest == child.digest),
            "a source digest in the list: the daemon pushed other bytes"
        );
    }
    assert!(
        matches!(&outcome, Outcome::Copied { digest, .. } if *digest == sha256_digest(&lists[0])),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_failed_platform_push_writes_no_list() {
    let setup = Setup::new().await;
    let index = index();
    setup.src.serve_index("team/app", "1", &index).await;
    let refused = setup.staging(&index.children[1]);
    setup.docker.refuse_push(&refused);
    let outcome = setup.copy().await;
    assert!(
        matches!(&outcome, Outcome::Failed { error } if error.contains(&refused)),
        "{outcome:?}"
    );
    assert_eq!(
        setup.lists().await.len(),
        0,
        "no list over a missing platform"
    );
    let writes = setup.dst.writes().await;
    assert_eq!(
        count(&writes, |w| w.contains("/manifests/")),
        0,
        "{writes:#?}"
    );
}

#[tokio::test]
async fn the_state_records_a_push_only_once_it_succeeded() {
    // (source, what fails, recorded digest expected)
    for (kind, failure) in [
        ("image", None),
        ("image", Some("push")),
        ("index", None),
        ("index", Some("push")),
        ("index", Some("list")),
    ] {
        let setup = Setup::new().await;
        let index = index();
        let source_digest = match kind {
            "image" => {
                setup
                    .src
                    .serve_image("team/app", "1", &index.children[0])
                    .await;
                index.children[0].digest.clone()
            }
            _ => {
                setup.src.serve_index("team/app", "1", &index).await;
                index.digest.clone()
            }
        };
        match (kind, failure) {
            ("image", Some(_)) => setup.docker.refuse_push(&setup.job.target.to_string()),
            (_, Some("push")) => setup.docker.refuse_push(&setup.staging(&index.children[0])),
            (_, Some(_)) => refuse_list(&setup.dst).await,
            (_, None) => {}
        }
        let outcome = setup.copy().await;
        let recorded = setup.state.pushed(
            &state_key(&setup.job, crate::decide::Writes::DaemonPush),
            &source_digest,
        );
        let case = format!("{kind}, failing {failure:?}");
        match (failure, &outcome) {
            (None, Outcome::Copied { digest, .. }) => {
                assert_eq!(recorded.as_ref(), Some(digest), "{case}");
                let pushed = match kind {
                    "image" => setup.docker.digest_of(&setup.job.target.to_string()),
                    _ => sha256_digest(&setup.lists().await[0]),
                };
                assert_eq!(*digest, pushed, "{case}: the digest the target serves");
            }
            (Some(_), Outcome::Failed { .. }) => assert_eq!(recorded, None, "{case}"),
            _ => panic!("{case}: {outcome:?}"),
        }
    }
}

/// The target refuses the manifest list (a permanent 403).
async fn refuse_list(dst: &FakeRegistry) {
    let envelope = serde_json::json!({"errors": [{"code": "DENIED", "message": "immutable tag"}]});
    Mock::given(method("PUT"))
        .and(path("/v2/mirror/app/manifests/1"))
        .respond_with(ResponseTemplate::new(403).set_body_json(envelope))
        .with_priority(1)
        .mount(dst.server())
        .await;
}
