//! The fast paths end to end, against real registries and the real daemon: a big blob
//! streamed GET -> PUT by the registry transport (threshold lowered so the blob stays a
//! few MiB), and the docker transport's layer-aware push order (one upload per layer).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry::cache::BlobCache;
use ferry::decide::{Decider, Writes};
use ferry::docker::Engine;
use ferry::event::{Event, LayerStatus, Outcome};
use ferry::plan::Job;
use ferry::report::{EventLog, Tally};
use ferry::state::State;
use ferry::transport::docker::DockerTransport;
use ferry::transport::registry::RegistryTransport;
use ferry::transport::Mirror;

use crate::harness::{clients, run_reported};
use crate::support::{require_daemon, Docker, Fixture, ImageCleanup, Registry, RegistryClient};

fn job(source: String, target: String) -> Job {
    Job::new(
        source.parse().expect("source"),
        target.parse().expect("target"),
        Vec::new(),
    )
}

fn state() -> (Arc<State>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = Arc::new(State::load(&dir.path().join("state.json")).0);
    (state, dir)
}

fn outcomes(tally: &Tally) -> Vec<Outcome> {
    tally.jobs().filter_map(|r| r.outcome.clone()).collect()
}

/// `len` bytes that do not compress (xorshift), so the layer blob stays about that big.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The statuses of layer `digest`'s events, in order.
fn statuses(log: &EventLog, digest: &str) -> Vec<LayerStatus> {
    log.events()
        .iter()
        .filter_map(|e| match e {
            Event::Layer { layer, status, .. } if layer == digest => Some(*status),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_big_blob_streams_get_to_put_through_the_real_registry_with_its_digest_verified() {
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    let image = Fixture::image(&src, "team/big", "1.0")
        .tiny()
        .layer_file("data/big.bin", &noise(4 * 1024 * 1024, 13))
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
    )
    .stream_above(1024 * 1024);
    let transport = Mirror::new(&decider, &copier);
    let jobs = [job(
        image.reference(),
        format!("{}/mirror/big:1.0", dst.host()),
    )];
    let log = EventLog::default();
    let tally = run_reported(&transport, &jobs, Box::new(log.clone()), 1).await;
    assert!(
        matches!(&outcomes(&tally)[0], Outcome::Copied { digest, .. } if *digest == image.digest),
        "{:?}",
        outcomes(&tally)
    );

    let check = RegistryClient::new(&dst);
    let copied = check.manifest("mirror/big", "1.0").await.expect("manifest");
    assert_eq!(copied.digest, image.digest, "byte-identical manifest");
    let layers = copied.json()["layers"].as_array().expect("layers").clone();
    let big = layers
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap_or(0))
        .expect("a layer");
    let (digest, size) = (
        big["digest"].as_str().expect("digest").to_owned(),
        big["size"].as_u64().expect("size"),
    );
    assert!(
        size > 1024 * 1024,
        "the layer is above the threshold: {size}"
    );
    // Streamed: its first event is the upload, no download into the cache before it.
    assert_eq!(
        statuses(&log, &digest),
        [LayerStatus::Pushing, LayerStatus::Done]
    );
    let commits: Vec<String> = dst
        .requests()
        .iter()
        .filter_map(|r| r.uploaded_blob())
        .filter(|d| *d == digest)
        .collect();
    assert_eq!(commits.len(), 1, "one PUT committed it: {}", dst.log_tail());
    // The registry checked the digest at the PUT; the cache kept a verified copy too.
    let cached = cache_dir.path().join("sha256").join(&digest[7..]);
    let bytes = std::fs::read(&cached).expect("cached copy");
    assert_eq!(bytes.len() as u64, size);
    assert_eq!(ferry::manifest::sha256_digest(&bytes), digest);
}

#[tokio::test]
async fn concurrent_docker_pushes_upload_each_shared_layer_once() {
    require_daemon();
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    // Three repositories on one busybox base, each with its own layer, pushed at once.
    let mut images = Vec::new();
    for name in ["one", "two", "three"] {
        let image = Fixture::image(&src, &format!("team/{name}"), "1.0")
            .layer_file(
                &format!("data/{name}.bin"),
                &noise(256 * 1024, name.len() as u64),
            )
            .push()
            .await;
        images.push(image);
    }
    let (source, target) = clients(&[&src, &dst]);
    let (state, _state_dir) = state();
    let engine = Engine::connect().await.expect("daemon");
    let decider = Decider::new(
        source.clone(),
        target.clone(),
        state.clone(),
        Writes::DaemonPush,
        false,
    );
    let copier = DockerTransport::new(engine, source, target, state);
    let transport = Mirror::new(&decider, &copier);
    let cleanup = ImageCleanup::default();
    cleanup.track_registry(src.host());
    cleanup.track_registry(dst.host());
    let jobs: Vec<Job> = ["one", "two", "three"]
        .iter()
        .zip(&images)
        .map(|(name, image)| {
            job(
                image.reference(),
                format!("{}/mirror/{name}:1.0", dst.host()),
            )
        })
        .collect();
    let tally = run_reported(&transport, &jobs, Box::new(EventLog::default()), 3).await;
    assert_eq!(tally.totals().copied, 3, "{:?}", outcomes(&tally));

    let mut uploads: BTreeMap<String, usize> = BTreeMap::new();
    for digest in dst.requests().iter().filter_map(|r| r.uploaded_blob()) {
        *uploads.entry(digest).or_default() += 1;
    }
    assert!(
        uploads.values().all(|n| *n == 1),
        "a layer uploaded twice: {uploads:?}"
    );
    // Every image: the base layer once, its own layer, its config (3 images: 1 + 3 + 3).
    assert_eq!(uploads.len(), 7, "{uploads:?}");

    let cli = Docker::new();
    let target_ref = format!("{}/mirror/three:1.0", dst.host());
    let hi = cli.ok(&["run", "--rm", &target_ref, "echo", "mounted, not uploaded"]);
    assert_eq!(hi.trim(), "mounted, not uploaded");
}
