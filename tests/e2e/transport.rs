//! Both transports end to end: real registries, the real daemon, jobs built by hand (the
//! config and plan layers have their own tests). Asserts what lands in the target.

use std::sync::Arc;

use ferry::cache::BlobCache;
use ferry::decide::{Decider, Writes};
use ferry::docker::Engine;
use ferry::event::{Event, LayerStatus, Outcome, SkipReason};
use ferry::plan::Job;
use ferry::report::{EventLog, Tally};
use ferry::run::Worker;
use ferry::state::State;
use ferry::transport::docker::DockerTransport;
use ferry::transport::registry::RegistryTransport;
use ferry::transport::Mirror;

use crate::harness::{clients, run_reported};
use crate::support::{
    require_daemon, Docker, Fixture, ImageCleanup, MediaKind, Platform, Registry, RegistryClient,
    TokenOptions, TRICKY_PASSWORD,
};

/// How many layer events of `job` had status `wanted`.
fn layers(log: &EventLog, job: usize, wanted: LayerStatus) -> usize {
    log.events()
        .iter()
        .filter(
            |e| matches!(e, Event::Layer { job: j, status, .. } if *j == job && *status == wanted),
        )
        .count()
}

fn job(source: String, target: String) -> Job {
    Job::new(
        source.parse().expect("source"),
        target.parse().expect("target"),
        Vec::new(),
    )
}

async fn run_jobs(worker: &impl Worker, jobs: &[Job], log: &EventLog) -> Tally {
    run_reported(worker, jobs, Box::new(log.clone()), 1).await
}

async fn run_jobs_at(worker: &impl Worker, jobs: &[Job], log: &EventLog, at_once: usize) -> Tally {
    run_reported(worker, jobs, Box::new(log.clone()), at_once).await
}

/// A state file in a new temp directory (kept alive by the returned guard).
fn state() -> (Arc<State>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(State::load(&dir.path().join("state.json")).0);
    (state, dir)
}

fn outcomes(tally: &Tally) -> Vec<Outcome> {
    tally.jobs().filter_map(|r| r.outcome.clone()).collect()
}

#[tokio::test]
async fn registry_transport_keeps_digests_mounts_and_skips_unchanged() {
    let src = Registry::anonymous();
    let dst = Registry::basic("ferry", TRICKY_PASSWORD);
    let multi = Fixture::index(&src, "team/multi", "1.0", MediaKind::Oci)
        .push()
        .await;
    let app = Fixture::image(&src, "team/app", "1.0")
        .layer_text("app v1")
        .push()
        .await;
    let (source, target) = clients(&[&src, &dst]);
    let cache_dir = tempfile::tempdir().expect("temp dir");
    let (state, _state_dir) = state();
    let decider = Decider::new(
        source.clone(),
        target.clone(),
        state.clone(),
        Writes::SourceBytes,
        false,
    );
    let copier = RegistryTransport::new(
        source,
        target,
        BlobCache::new(cache_dir.path()),
        state,
        false,
    );
    let transport = Mirror::new(&decider, &copier);
    let jobs = vec![
        // Every platform (--all-platforms): the index travels byte for byte.
        job(
            multi.reference(),
            format!("{}/mirror/multi:1.0", dst.host()),
        )
        .with_all_platforms(true),
        job(app.reference(), format!("{}/mirror/app:1.0", dst.host())),
        job(app.reference(), format!("{}/other/app:1.0", dst.host())),
        Job::new(
            multi.reference().parse().expect("source"),
            format!("{}/subset/multi:1.0", dst.host())
                .parse()
                .expect("target"),
            vec!["linux/arm64".parse().expect("platform")],
        ),
    ];

    let recorder = EventLog::default();
    let tally = run_jobs(&transport, &jobs, &recorder).await;
    assert_eq!(tally.totals().copied, 4, "{:?}", outcomes(&tally));
    let check = RegistryClient::new(&dst);
    let copied = check.manifest("mirror/multi", "1.0").await.expect("index");
    assert_eq!(copied.bytes, multi.manifest, "index byte-identical");
    assert_eq!(copied.digest, multi.digest);
    for child in &multi.children {
        assert!(check
            .manifest("mirror/multi", &child.digest)
            .await
            .is_some());
    }
    let app_copy = check.manifest("other/app", "1.0").await.expect("app");
    assert_eq!(app_copy.digest, app.digest);
    // The two copies of app run one after the other, in the order their decisions ended:
    // the second mounts what the first uploaded.
    let mounted = |job| layers(&recorder, job, LayerStatus::Mounted);
    let mounter = if mounted(2) > mounted(1) { 2 } else { 1 };
    assert!(
        layers(&recorder, mounter, LayerStatus::Mounted) >= 2,
        "config and layers mounted within the target"
    );
    assert_eq!(
        layers(&recorder, mounter, LayerStatus::Downloading),
        0,
        "nothing downloaded for a mount"
    );

    let subset = check
        .manifest("subset/multi", "1.0")
        .await
        .expect("subset list");
    let entries = subset.json()["manifests"]
        .as_array()
        .expect("entries")
        .len();
    assert_eq!(entries, 1, "only linux/arm64");

    let again = EventLog::default();
    let tally = run_jobs(&transport, &jobs, &again).await;
    let reasons: Vec<Outcome> = outcomes(&tally);
    assert!(
        reasons
            .iter()
            .all(|o| matches!(o, Outcome::Skipped { reason } if *reason == SkipReason::Unchanged)),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn concurrent_jobs_upload_a_shared_blob_once_and_mount_it_elsewhere() {
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    let app = Fixture::image(&src, "team/shared", "1.0")
        .layer_text("a layer three repositories share")
        .push()
        .await;
    let (source, target) = clients(&[&src, &dst]);
    let cache_dir = tempfile::tempdir().expect("temp dir");
    let (state, _state_dir) = state();
    let decider = Decider::new(
        source.clone(),
        target.clone(),
        state.clone(),
        Writes::SourceBytes,
        false,
    );
    let copier = RegistryTransport::new(
        source,
        target,
        BlobCache::new(cache_dir.path()),
        state,
        false,
    );
    let transport = Mirror::new(&decider, &copier);
    let jobs: Vec<Job> = (1..=3)
        .map(|i| {
            job(
                app.reference(),
                format!("{}/copy{i}/shared:1.0", dst.host()),
            )
        })
        .collect();
    let log = EventLog::default();
    let tally = run_jobs_at(&transport, &jobs, &log, 3).await;
    assert_eq!(tally.totals().copied, 3, "{:?}", outcomes(&tally));
    let blobs = 1 + app.layer_digests.len();
    let uploaded: usize = (0..3).map(|j| layers(&log, j, LayerStatus::Done)).sum();
    let mounted: usize = (0..3).map(|j| layers(&log, j, LayerStatus::Mounted)).sum();
    assert_eq!(uploaded, blobs, "each blob uploaded once");
    assert_eq!(
        mounted,
        2 * blobs,
        "and mounted into the two other repositories"
    );
}

#[tokio::test]
async fn docker_transport_writes_a_list_of_linux_platforms_that_runs() {
    docker_transport_round(Registry::basic("ferry", TRICKY_PASSWORD)).await;
}

#[tokio::test]
async fn docker_transport_works_with_a_bearer_token_registry() {
    docker_transport_round(Registry::token(TokenOptions::default())).await;
}

/// Multi-platform and Windows-only sources through the daemon into `dst`, then `docker
/// run` of the result and a no-op second run; `dst`'s own account is used throughout.
async fn docker_transport_round(dst: Registry) {
    require_daemon();
    let src = Registry::anonymous();
    let account = dst.credentials().expect("an account").clone();
    let multi = Fixture::index(&src, "team/multi", "2.0", MediaKind::Docker)
        .layer_text("docker transport")
        .push()
        .await;
    let windows = Fixture::image(&src, "team/win", "1.0")
        .platform(Platform::windows_amd64())
        .push()
        .await;
    let (source, target) = clients(&[&src, &dst]);
    let state_dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(State::load(&state_dir.path().join("state.json")).0);
    let engine = Engine::connect().await.expect("daemon");
    let decider = Decider::new(
        source.clone(),
        target.clone(),
        state.clone(),
        Writes::DaemonPush,
        false,
    );
    let copier = DockerTransport::new(engine, source, target, state.clone());
    let transport = Mirror::new(&decider, &copier);
    let target_ref = format!("{}/mirror/multi:2.0", dst.host());
    let cleanup = ImageCleanup::default();
    for child in &multi.children {
        cleanup.track(child.pinned());
    }
    cleanup.track_registry(dst.host());
    let jobs = vec![
        job(multi.reference(), target_ref.clone()),
        job(
            windows.reference(),
            format!("{}/mirror/win:1.0", dst.host()),
        ),
    ];

    let recorder = EventLog::default();
    let tally = run_jobs(&transport, &jobs, &recorder).await;
    let results = outcomes(&tally);
    assert!(matches!(results[0], Outcome::Copied { .. }), "{results:?}");
    assert!(
        matches!(&results[1], Outcome::Skipped { reason } if reason.to_string().contains("no Linux platform")),
        "{results:?}"
    );

    let list = RegistryClient::new(&dst)
        .manifest("mirror/multi", "2.0")
        .await
        .expect("target list");
    assert_eq!(
        list.media_type,
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let platforms: Vec<String> = list.json()["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or(""),
                m["platform"]["architecture"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64"],
        "no Windows entry"
    );

    let cli = Docker::new();
    cli.login(&dst.host(), &account.user, &account.pass);
    let hi = cli.ok(&["run", "--rm", &target_ref, "echo", "hi from the mirror"]);
    assert_eq!(hi.trim(), "hi from the mirror");

    let again = EventLog::default();
    let tally = run_jobs(&transport, &jobs[..1], &again).await;
    assert!(
        matches!(&outcomes(&tally)[0], Outcome::Skipped { reason } if *reason == SkipReason::Unchanged),
        "{:?}",
        outcomes(&tally)
    );
    assert_eq!(
        layers(&again, 0, LayerStatus::Downloading),
        0,
        "a no-op run pulls nothing"
    );
}
