//! The decisions of issue #15 against a fake registry: an immutable tag the target has
//! costs the source nothing; a source registry whose pull budget is below its `rate_floor`
//! gets no more manifest GETs (its jobs are deferred), a 429 `toomanyrequests` ends the
//! budget at once, and HEADs (no-ops) go on for free.

use std::sync::Arc;

use super::*;
use crate::registry::fake::{client, FakeRegistry, TestImage};
use crate::registry::{ClientOptions, DEFAULT_RATE_FLOOR};

fn state() -> (tempfile::TempDir, Arc<State>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(State::load(&dir.path().join("state.json")).0);
    (dir, state)
}

fn job(registry: &FakeRegistry, tag: &str) -> Job {
    Job::new(
        registry.reference(&format!("team/app:{tag}")),
        registry.reference(&format!("mirror/app:{tag}")),
        Vec::new(),
    )
}

/// Requests of the source repository (`team/app`) after `before` of them.
async fn source_requests(registry: &FakeRegistry, before: usize) -> Vec<String> {
    registry.requests().await[before..]
        .iter()
        .filter(|r| r.contains("/team/app/"))
        .cloned()
        .collect()
}

fn summary(action: &Action) -> String {
    match action {
        Action::Copy { why, .. } => format!("copy ({why})"),
        Action::Skip(reason) => format!("skip ({reason})"),
        Action::Fail(cause) => format!("fail: {cause}"),
    }
}

#[tokio::test]
async fn an_immutable_tag_on_the_target_costs_the_source_nothing() {
    let registry = FakeRegistry::start().await;
    let image = TestImage::new("linux/amd64", &["app"]);
    registry.serve_image("team/app", "1.0.0", &image).await;
    // The target has 1.0.0 with other bytes: a mutable tag would be copied again.
    let other = TestImage::new("linux/amd64", &["older build"]);
    registry
        .head_only("mirror/app", "1.0.0", &other.digest)
        .await;
    let (_dir, state) = state();
    let cases = [
        // (immutable, force, wanted, source requests)
        (true, false, "skip (immutable tag present on target)", 0),
        (false, false, "copy (target differs)", 3),
        (true, true, "copy (forced)", 2),
    ];
    for (immutable, force, wanted, asked) in cases {
        for writes in [Writes::SourceBytes, Writes::DaemonPush] {
            let decider = Decider::new(client(), client(), state.clone(), writes, force);
            let before = registry.requests().await.len();
            let job = job(&registry, "1.0.0").with_immutable(immutable);
            let action = decider.decide(&job).await;
            let case = format!("immutable {immutable}, force {force}, {writes:?}");
            assert_eq!(summary(&action), wanted, "{case}");
            let requests = source_requests(&registry, before).await;
            assert_eq!(requests.len(), asked, "{case}: {requests:#?}");
        }
    }
    // Absent from the target, an immutable tag is copied as any other.
    let decider = Decider::new(client(), client(), state, Writes::SourceBytes, false);
    let absent = Job::new(
        registry.reference("team/app:1.0.0"),
        registry.reference("mirror/new:1.0.0"),
        Vec::new(),
    )
    .with_immutable(true);
    assert_eq!(summary(&decider.decide(&absent).await), "copy (new)");
}

#[tokio::test]
async fn below_the_rate_floor_jobs_are_deferred_and_no_op_heads_go_on() {
    let registry = FakeRegistry::start().await;
    let tags = ["1", "2", "3", "4", "5"];
    for tag in tags {
        let image = TestImage::new("linux/amd64", &[tag]);
        registry.serve_image("team/app", tag, &image).await;
    }
    // Tag 5 is already on the target: a no-op, decided with HEADs only.
    let unchanged = TestImage::new("linux/amd64", &["5"]);
    registry
        .head_only("mirror/app", "5", &unchanged.digest)
        .await;
    // 12 pulls left, floor 10: three GETs (12 -> 9), then the floor holds.
    registry.rate_limit(DEFAULT_RATE_FLOOR + 2, 100);
    let (_dir, state) = state();
    let source = client();
    let decider = Decider::new(source.clone(), client(), state, Writes::SourceBytes, false);
    let mut got = Vec::new();
    for tag in tags {
        got.push(summary(&decider.decide(&job(&registry, tag)).await));
    }
    let deferred = format!(
        "fail: registry {} pull budget below the floor (remaining 9 < rate_floor 10): deferred",
        registry.reference("x").registry()
    );
    assert_eq!(
        got,
        [
            "copy (new)",
            "copy (new)",
            "copy (new)",
            deferred.as_str(),
            "skip (unchanged)",
        ]
    );
    let gets = registry
        .requests()
        .await
        .into_iter()
        .filter(|r| r.starts_with("GET /v2/team/app/manifests/"))
        .count();
    assert_eq!(gets, 3, "no manifest GET below the floor");
    let budgets = decider.pull_budgets();
    assert_eq!(budgets.len(), 1, "{budgets:?}");
    let budget = &budgets[0];
    assert_eq!(
        (
            budget.pulls,
            budget.remaining,
            budget.limit,
            budget.deferred
        ),
        (3, Some(9), Some(100), 1)
    );
    assert_eq!(budget.rate_floor, DEFAULT_RATE_FLOOR);
}

#[tokio::test]
async fn a_toomanyrequests_ends_the_budget_without_a_retry() {
    let registry = FakeRegistry::start().await;
    // HEADs without rate-limit headers (the budget is unknown), GETs refused for the limit.
    let image = TestImage::new("linux/amd64", &["app"]);
    for tag in ["1", "2"] {
        registry.head_only("team/app", tag, &image.digest).await;
    }
    let envelope = serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS",
        "message": "You have reached your pull rate limit."}]});
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path_regex("^/v2/team/app/manifests/"))
        .respond_with(wiremock::ResponseTemplate::new(429).set_body_json(envelope))
        .mount(registry.server())
        .await;
    let (_dir, state) = state();
    let decider = Decider::new(client(), client(), state, Writes::DaemonPush, false);
    let first = summary(&decider.decide(&job(&registry, "1")).await);
    assert!(
        first.contains("HTTP 429") && first.contains("TOOMANYREQUESTS"),
        "the refused pull fails its job: {first}"
    );
    let second = summary(&decider.decide(&job(&registry, "2")).await);
    assert!(
        second.ends_with("pull budget below the floor (remaining 0 < rate_floor 10): deferred"),
        "nothing remains after a toomanyrequests: {second}"
    );
    let gets: Vec<String> = registry
        .requests()
        .await
        .into_iter()
        .filter(|r| r.starts_with("GET /v2/team/app/manifests/"))
        .collect();
    assert_eq!(
        gets.len(),
        1,
        "the 429 is not retried, nor asked again: {gets:#?}"
    );
}

#[tokio::test]
async fn a_rate_floor_of_zero_spends_the_budget_to_the_last_pull() {
    let registry = FakeRegistry::start().await;
    for tag in ["1", "2", "3"] {
        let image = TestImage::new("linux/amd64", &[tag]);
        registry.serve_image("team/app", tag, &image).await;
    }
    registry.rate_limit(2, 100);
    let mut options = ClientOptions::default();
    options.limits.rate_floor = 0;
    let source = RegistryClient::new(crate::credentials::CredentialStore::default(), options);
    let (_dir, state) = state();
    let decider = Decider::new(source, client(), state, Writes::SourceBytes, false);
    let mut got = Vec::new();
    for tag in ["1", "2", "3"] {
        got.push(summary(&decider.decide(&job(&registry, tag)).await));
    }
    assert_eq!(got[..2], ["copy (new)", "copy (new)"]);
    assert!(
        got[2].ends_with("pull budget spent (remaining 0): deferred"),
        "with nothing left a GET can only be refused: {}",
        got[2]
    );
}

/// Jobs decided side by side take their pulls one at a time: on one reading of 12, with
/// floor 10, exactly three GETs go out however the six decisions interleave.
#[tokio::test]
async fn jobs_deciding_at_once_do_not_all_pass_the_floor() {
    let registry = FakeRegistry::start().await;
    let tags = ["1", "2", "3", "4", "5", "6"];
    for tag in tags {
        let image = TestImage::new("linux/amd64", &[tag]);
        registry.serve_image("team/app", tag, &image).await;
    }
    registry.rate_limit(DEFAULT_RATE_FLOOR + 2, 100);
    let (_dir, state) = state();
    let decider = Decider::new(client(), client(), state, Writes::SourceBytes, false);
    let jobs: Vec<Job> = tags.iter().map(|tag| job(&registry, tag)).collect();
    let actions = futures::future::join_all(jobs.iter().map(|j| decider.decide(j))).await;
    let copies = actions
        .iter()
        .filter(|a| matches!(a, Action::Copy { .. }))
        .count();
    let deferred = actions
        .iter()
        .filter(|a| matches!(a, Action::Fail(c) if c.ends_with("): deferred")))
        .count();
    assert_eq!((copies, deferred), (3, 3), "{actions:#?}");
    let gets = registry
        .requests()
        .await
        .into_iter()
        .filter(|r| r.starts_with("GET /v2/team/app/manifests/"))
        .count();
    assert_eq!(gets, 3);
}

#[tokio::test]
async fn an_immutable_tag_whose_target_cannot_be_checked_is_never_copied_blind() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let registry = FakeRegistry::start().await;
    let image = TestImage::new("linux/amd64", &["moved since"]);
    registry.serve_image("team/app", "1.0.0", &image).await;
    // The target (which may well hold 1.0.0) answers its HEAD 500, every time.
    Mock::given(method("HEAD"))
        .and(path("/v2/mirror/app/manifests/1.0.0"))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(registry.server())
        .await;
    let (_dir, state) = state();
    for writes in [Writes::SourceBytes, Writes::DaemonPush] {
        let decider = Decider::new(client(), client(), state.clone(), writes, false);
        let before = registry.requests().await.len();
        let action = decider
            .decide(&job(&registry, "1.0.0").with_immutable(true))
            .await;
        let line = summary(&action);
        assert!(
            line.starts_with("fail: immutable tag not checked on target: ")
                && line.contains("HTTP 500"),
            "{writes:?}: {line}"
        );
        let requests = source_requests(&registry, before).await;
        assert!(requests.is_empty(), "{writes:?}: {requests:#?}");
        // A mutable tag is still copied, the copy telling whether the target works.
        let mutable = decider.decide(&job(&registry, "1.0.0")).await;
        assert!(
            summary(&mutable).starts_with("copy (target not checked: "),
            "{writes:?}: {}",
            summary(&mutable)
        );
    }
}

/// One source tag going to two targets (a list of destinations) is one pull: the second
/// job reads what the first pulled, and is not held back by the floor for it.
#[tokio::test]
async fn one_source_for_two_targets_is_pulled_once() {
    let registry = FakeRegistry::start().await;
    let image = TestImage::new("linux/amd64", &["app"]);
    registry.serve_image("team/app", "1", &image).await;
    // Exactly the floor left (one more through the daemon, whose pull by digest is taken
    // too): the first job takes the budget below it.
    let (_dir, state) = state();
    for writes in [Writes::SourceBytes, Writes::DaemonPush] {
        let daemon = u64::from(writes == Writes::DaemonPush);
        registry.rate_limit(DEFAULT_RATE_FLOOR + daemon, 100);
        let decider = Decider::new(client(), client(), state.clone(), writes, false);
        let before = registry.requests().await.len();
        let mut got = Vec::new();
        for target in ["mirror/a:1", "mirror/b:1"] {
            let job = Job::new(
                registry.reference("team/app:1"),
                registry.reference(target),
                Vec::new(),
            );
            got.push(summary(&decider.decide(&job).await));
        }
        assert_eq!(got, ["copy (new)", "copy (new)"], "{writes:?}");
        let gets = source_requests(&registry, before)
            .await
            .into_iter()
            .filter(|r| r.starts_with("GET /v2/team/app/manifests/"))
            .count();
        assert_eq!(gets, 1, "{writes:?}: one pull for two targets");
        assert_eq!(decider.pull_budgets()[0].pulls, 1, "{writes:?}");
    }
}

/// An index copy reads its platform manifests too (ferry's GETs, or the daemon's): they are
/// taken from the budget before, all or none, so the index never goes far below the floor.
#[tokio::test]
async fn an_index_takes_the_pulls_of_its_platforms_before_its_copy() {
    use crate::registry::fake::TestIndex;
    let registry = FakeRegistry::start().await;
    let index = TestIndex::new(vec![
        TestImage::new("linux/amd64", &["amd64"]),
        TestImage::new("linux/arm64", &["arm64"]),
    ]);
    registry.serve_index("team/app", "1", &index).await;
    // (pulls left, action): the index GET, then its 2 platforms, each at or above the floor.
    let floor = DEFAULT_RATE_FLOOR;
    let cases = [
        (floor + 2, "copy (new)".to_owned()),
        (
            floor + 1,
            format!(
                "fail: registry {} pull budget too low for the 2 platform manifests of this \
                 index (remaining {floor}, rate_floor {floor}): deferred",
                registry.reference("x").registry()
            ),
        ),
    ];
    let (_dir, state) = state();
    for (left, wanted) in cases {
        for writes in [Writes::SourceBytes, Writes::DaemonPush] {
            registry.rate_limit(left, 100);
            let source = client();
            let decider = Decider::new(source.clone(), client(), state.clone(), writes, false);
            let action = decider.decide(&job(&registry, "1")).await;
            assert_eq!(summary(&action), wanted, "{left} left, {writes:?}");
            let budget = &source.pull_budgets()[0];
            let deferred = u64::from(wanted.starts_with("fail"));
            assert_eq!(budget.deferred, deferred, "{left} left, {writes:?}");
            if deferred == 0 {
                // Taken: the index's pull and its 2 platforms'.
                assert_eq!(budget.remaining, Some(left - 3), "{writes:?}");
            }
        }
    }
}
