//! The decision per job against a fake registry: what a no-op costs (two HEADs, target
//! first), the state file's source -> pushed record, Windows-only and missing sources,
//! and `--force`.

use std::sync::Arc;

use super::*;
use crate::credentials::Side;
use crate::registry::fake::{client, FakeRegistry, TestImage, TestIndex};

/// What the source serves under `team/app:1`.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// One linux/amd64 image.
    Linux,
    /// An index of linux/amd64 and windows/amd64.
    LinuxAndWindows,
    /// One windows/amd64 image.
    WindowsImage,
    /// An index of windows/amd64 and windows/arm64.
    WindowsIndex,
    /// Nothing (404).
    Missing,
}

/// What the target serves under `mirror/app:1` (HEAD only).
#[derive(Debug, Clone, Copy)]
enum Dst {
    Missing,
    /// The source's own digest.
    Source,
    /// [`PUSHED`], what the daemon once pushed.
    Pushed,
    /// Something else.
    Other,
}

/// What the state file records for the job.
#[derive(Debug, Clone, Copy)]
enum Recorded {
    Nothing,
    /// The source's digest was pushed as [`PUSHED`].
    SourceAsPushed,
    /// An older source digest was pushed as [`PUSHED`].
    OlderAsPushed,
}

const PUSHED: &str = "sha256:abababababababababababababababababababababababababababababababab";
const OTHER: &str = "sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
const OLDER: &str = "sha256:efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef";

/// A no-op: HEAD of the target's tag, then HEAD of the source's tag, nothing else.
const TWO_HEADS: &[&str] = &[
    "HEAD /v2/mirror/app/manifests/1",
    "HEAD /v2/team/app/manifests/1",
];

struct Case {
    name: &'static str,
    src: Src,
    dst: Dst,
    state: Recorded,
    writes: Writes,
    force: bool,
    /// `copy (why)`, `skip (reason)` or `fail` (a prefix of what happened).
    want: &'static str,
    /// Every request the decision makes, when the case pins them.
    requests: Option<&'static [&'static str]>,
}

const fn case(name: &'static str, src: Src, dst: Dst, want: &'static str) -> Case {
    Case {
        name,
        src,
        dst,
        state: Recorded::Nothing,
        writes: Writes::SourceBytes,
        force: false,
        want,
        requests: None,
    }
}

impl Case {
    const fn docker(mut self, state: Recorded) -> Self {
        self.writes = Writes::DaemonPush;
        self.state = state;
        self
    }

    const fn forced(mut self) -> Self {
        self.force = true;
        self
    }

    const fn costs(mut self, requests: &'static [&'static str]) -> Self {
        self.requests = Some(requests);
        self
    }
}

use Dst as D;
use Recorded as R;
use Src as S;

#[rustfmt::skip]
const CASES: &[Case] = &[
    case("registry no-op",                    S::Linux,           D::Source,  "skip (unchanged)").costs(TWO_HEADS),
    case("docker no-op, by the state",        S::Linux,           D::Pushed,  "skip (unchanged)").docker(R::SourceAsPushed).costs(TWO_HEADS),
    case("docker no-op of an index",          S::LinuxAndWindows, D::Pushed,  "skip (unchanged)").docker(R::SourceAsPushed).costs(TWO_HEADS),
    case("docker, target serves the source",  S::Linux,           D::Source,  "skip (unchanged)").docker(R::Nothing).costs(TWO_HEADS),
    case("docker, target moved on",           S::Linux,           D::Other,   "copy (target differs)").docker(R::SourceAsPushed),
    case("docker, source moved on",           S::Linux,           D::Pushed,  "copy (target differs)").docker(R::OlderAsPushed),
    case("registry, target differs",          S::Linux,           D::Other,   "copy (target differs)"),
    case("registry, new",                     S::Linux,           D::Missing, "copy (new)"),
    case("docker, new",                       S::Linux,           D::Missing, "copy (new)").docker(R::Nothing),
    case("windows image",                     S::WindowsImage,    D::Missing, "skip (no Linux platform (windows/amd64))"),
    case("windows image, docker",             S::WindowsImage,    D::Missing, "skip (no Linux platform (windows/amd64))").docker(R::Nothing),
    case("windows index",                     S::WindowsIndex,    D::Missing, "skip (no Linux platform)"),
    case("windows index, docker",             S::WindowsIndex,    D::Other,   "skip (no Linux platform)").docker(R::Nothing),
    case("missing source",                    S::Missing,         D::Missing, "fail"),
    case("missing source, target present",    S::Missing,         D::Other,   "fail"),
    case("forced registry no-op",             S::Linux,           D::Source,  "copy (forced)").forced(),
    case("forced docker no-op",               S::Linux,           D::Pushed,  "copy (forced)").docker(R::SourceAsPushed).forced(),
    case("forced index",                      S::LinuxAndWindows, D::Pushed,  "copy (forced)").docker(R::SourceAsPushed).forced(),
];

/// `copy (why)`, `skip (reason)` or `fail: cause`.
fn summary(action: &Action) -> String {
    match action {
        Action::Copy { why, .. } => format!("copy ({why})"),
        Action::Skip(reason) => format!("skip ({reason})"),
        Action::Fail(cause) => format!("fail: {cause}"),
    }
}

/// Serves the case's source and target; returns the source's digest.
async fn serve(registry: &FakeRegistry, case: &Case) -> String {
    let source_digest = match case.src {
        S::Linux | S::WindowsImage => {
            let platform = if matches!(case.src, S::Linux) {
                "linux/amd64"
            } else {
                "windows/amd64"
            };
            let image = TestImage::new(platform, &["layer"]);
            registry.serve_image("team/app", "1", &image).await;
            image.digest
        }
        S::LinuxAndWindows | S::WindowsIndex => {
            let first = if matches!(case.src, S::WindowsIndex) {
                "windows/arm64"
            } else {
                "linux/amd64"
            };
            let index = TestIndex::new(vec![
                TestImage::new(first, &["first"]),
                TestImage::new("windows/amd64", &["windows"]),
            ]);
            registry.serve_index("team/app", "1", &index).await;
            index.digest
        }
        S::Missing => OLDER.to_owned(),
    };
    let at_target = match case.dst {
        D::Missing => None,
        D::Source => Some(source_digest.as_str()),
        D::Pushed => Some(PUSHED),
        D::Other => Some(OTHER),
    };
    if let Some(digest) = at_target {
        registry.head_only("mirror/app", "1", digest).await;
    }
    source_digest
}

#[tokio::test]
async fn each_job_gets_one_action_at_the_cost_the_case_allows() {
    for case in CASES {
        // One registry for both sides, so its log orders target and source requests.
        let registry = FakeRegistry::start().await;
        let source_digest = serve(&registry, case).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let state = Arc::new(State::load(&dir.path().join("state.json")).0);
        let job = Job::new(
            registry.reference("team/app:1"),
            registry.reference("mirror/app:1"),
            Vec::new(),
        );
        match case.state {
            R::Nothing => Ok(()),
            R::SourceAsPushed => {
                state.record_push(&state_key(&job, case.writes), &source_digest, PUSHED)
            }
            R::OlderAsPushed => state.record_push(&state_key(&job, case.writes), OLDER, PUSHED),
        }
        .expect("state saved");
        let source = client();
        let target = source.for_side(Side::Target);
        let decider = Decider::new(source, target, state, case.writes, case.force);

        let action = decider.decide(&job).await;

        let got = summary(&action);
        let name = case.name;
        assert!(
            got.starts_with(case.want),
            "{name}: want {}, got {got}",
            case.want
        );
        if let Action::Fail(cause) = &action {
            assert!(
                cause.contains("team/app"),
                "{name}: the cause names the source: {cause}"
            );
        }
        let requests = registry.requests().await;
        if let Some(wanted) = case.requests {
            assert_eq!(requests, wanted, "{name}");
        }
        if case.force {
            let at_target = requests
                .iter()
                .filter(|r| r.contains("/mirror/app/"))
                .count();
            assert_eq!(
                at_target, 0,
                "{name}: --force does not ask the target: {requests:#?}"
            );
        }
    }
}

#[tokio::test]
async fn a_copy_carries_what_travels() {
    let registry = FakeRegistry::start().await;
    let index = TestIndex::new(vec![
        TestImage::new("linux/amd64", &["amd64"]),
        TestImage::new("windows/amd64", &["windows"]),
        TestImage::new("linux/arm64/v8", &["arm64"]),
    ]);
    registry.serve_index("team/app", "1", &index).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(State::load(&dir.path().join("state.json")).0);
    let job = Job::new(
        registry.reference("team/app:1"),
        registry.reference("mirror/app:1"),
        Vec::new(),
    );
    for writes in [Writes::SourceBytes, Writes::DaemonPush] {
        let decider = Decider::new(client(), client(), state.clone(), writes, false);
        let Action::Copy { why, source } = decider.decide(&job).await else {
            panic!("{writes:?}: a new index is copied");
        };
        assert_eq!(why, CopyReason::New);
        assert_eq!(source.manifest.digest, index.digest, "the source as read");
        let Content::Index { chosen, .. } = &source.content else {
            panic!("{writes:?}: an index");
        };
        let chosen: Vec<&str> = chosen.iter().map(|c| c.digest.as_str()).collect();
        let linux = [
            index.children[0].digest.as_str(),
            index.children[2].digest.as_str(),
        ];
        assert_eq!(
            chosen, linux,
            "{writes:?}: the Linux entries, in index order"
        );
        assert!(
            source.note().is_some_and(|n| n.contains("windows/amd64")),
            "{writes:?}: what was dropped is said: {:?}",
            source.note()
        );
    }
}

/// Nexus leaves `Docker-Content-Digest` out of its HEAD answers: the digest is then read
/// from the bytes, so a target that serves what was written is still unchanged.
#[tokio::test]
async fn a_target_head_without_digest_is_judged_by_its_bytes() {
    let registry = FakeRegistry::start().await;
    let image = TestImage::new("linux/amd64", &["app"]);
    registry.serve_image("team/app", "1", &image).await;
    let bare = wiremock::ResponseTemplate::new(200)
        .insert_header("Content-Type", crate::registry::DOCKER_MANIFEST)
        .set_body_bytes(image.manifest.to_vec());
    for verb in ["HEAD", "GET"] {
        wiremock::Mock::given(wiremock::matchers::method(verb))
            .and(wiremock::matchers::path("/v2/mirror/app/manifests/1"))
            .respond_with(bare.clone())
            .mount(registry.server())
            .await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(State::load(&dir.path().join("state.json")).0);
    let job = Job::new(
        registry.reference("team/app:1"),
        registry.reference("mirror/app:1"),
        Vec::new(),
    );
    let decider = Decider::new(client(), client(), state, Writes::SourceBytes, false);
    assert!(
        matches!(
            decider.decide(&job).await,
            Action::Skip(SkipReason::Unchanged)
        ),
        "the target serves the source's bytes"
    );
}

/// A source with nothing to copy for the selection is remembered: the next run asks its
/// HEAD only, never its manifest or config again (a pull each on Docker Hub).
#[tokio::test]
async fn a_platform_skip_is_remembered_by_source_digest() {
    let registry = FakeRegistry::start().await;
    let image = TestImage::new("windows/amd64", &["win"]);
    registry.serve_image("team/win", "1", &image).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let job = Job::new(
        registry.reference("team/win:1"),
        registry.reference("mirror/win:1"),
        Vec::new(),
    );
    for round in ["first", "second"] {
        let state = Arc::new(State::load(&dir.path().join("state.json")).0);
        let decider = Decider::new(client(), client(), state, Writes::DaemonPush, false);
        let before = registry.requests().await.len();
        let action = decider.decide(&job).await;
        assert!(
            matches!(&action, Action::Skip(SkipReason::NoLinuxPlatform(Some(p))) if p.to_string() == "windows/amd64"),
            "{round}: {action:?}"
        );
        let gets = registry.requests().await[before..]
            .iter()
            .filter(|r| r.starts_with("GET "))
            .count();
        match round {
            "first" => assert!(gets >= 2, "manifest and config read once"),
            _ => assert_eq!(gets, 0, "HEADs only"),
        }
    }
}
