//! Registry transport: blobs before the manifest that names them, platform manifests before
//! the index, the tag last and once; blobs the target has are not sent, a blob shared by
//! concurrent jobs is uploaded once per target registry, and a failed blob leaves no tag.

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use super::{count, job, mirror, position, state};
use crate::cache::BlobCache;
use crate::credentials::Side;
use crate::decide::{state_key, Decider, Writes};
use crate::event::Outcome;
use crate::plan::Job;
use crate::registry::fake::{client, FakeRegistry, TestImage, TestIndex};
use crate::state::State;
use crate::transport::registry::RegistryTransport;

/// A source registry, an empty target registry that accepts pushes, and the transport.
struct Setup {
    src: FakeRegistry,
    dst: FakeRegistry,
    decider: Decider,
    transport: RegistryTransport,
    state: Arc<State>,
    _dir: TempDir,
}

impl Setup {
    async fn new() -> Self {
        let (src, dst) = (FakeRegistry::start().await, FakeRegistry::start().await);
        dst.accept_pushes().await;
        let (state, dir) = state();
        let source = client();
        let target = source.for_side(Side::Target);
        let decider = Decider::new(
            source.clone(),
            target.clone(),
            state.clone(),
            Writes::SourceBytes,
            false,
        );
        let cache = BlobCache::new(&dir.path().join("blobs"));
        let transport = RegistryTransport::new(source, target, cache, state.clone(), false);
        Setup {
            src,
            dst,
            decider,
            transport,
            state,
            _dir: dir,
        }
    }

    /// The job `team/<name>:1` -> `mirror/<name>:1`.
    fn job(&self, name: &str) -> Job {
        job(
            self.src.reference(&format!("team/{name}:1")),
            self.dst.reference(&format!("mirror/{name}:1")),
        )
    }

    async fn copy(&self, job: &Job) -> Outcome {
        mirror(&self.decider, &self.transport, job).await
    }
}

/// The PUT that finishes an upload of blob `digest`.
fn blob_put(digest: &str) -> impl Fn(&str) -> bool + '_ {
    move |line| line.starts_with("PUT ") && line.ends_with(&format!("?digest={digest}"))
}

/// A cross-repository mount of blob `digest`.
fn mount(digest: &str) -> impl Fn(&str) -> bool + '_ {
    move |line| line.starts_with("POST ") && line.contains(&format!("mount={digest}"))
}

/// The PUT of the manifest `reference` (tag or digest) of `repo`.
fn manifest_put(repo: &str, reference: &str) -> impl Fn(&str) -> bool {
    let wanted = format!("PUT /v2/{repo}/manifests/{reference}");
    move |line| line == wanted
}

fn is_manifest_put(line: &str) -> bool {
    line.starts_with("PUT ") && line.contains("/manifests/")
}

/// An image of two layers, and an index of it for two Linux platforms and Windows.
fn image() -> TestImage {
    TestImage::new("linux/amd64", &["base layer", "app layer"])
}

fn index() -> TestIndex {
    TestIndex::new(vec![
        TestImage::new("linux/amd64", &["base amd64", "app amd64"]),
        TestImage::new("linux/arm64/v8", &["base arm64", "app arm64"]),
        TestImage::new("windows/amd64", &["base windows"]),
    ])
}

#[tokio::test]
async fn every_blob_of_an_image_is_in_place_before_its_manifest() {
    let setup = Setup::new().await;
    let image = image();
    setup.src.serve_image("team/app", "1", &image).await;
    let outcome = setup.copy(&setup.job("app")).await;
    assert!(
        matches!(&outcome, Outcome::Copied { digest, .. } if *digest == image.digest),
        "{outcome:?}"
    );
    let writes = setup.dst.writes().await;
    let tag = position(&writes, "tag PUT", manifest_put("mirror/app", "1"));
    for (digest, _) in image.blobs() {
        let blob = position(&writes, "blob upload", blob_put(&digest));
        assert!(blob < tag, "blob {digest} after the manifest: {writes:#?}");
    }
}

#[tokio::test]
async fn every_platform_manifest_is_in_place_before_the_index() {
    let setup = Setup::new().await;
    let index = index();
    setup.src.serve_index("team/app", "1", &index).await;
    let outcome = setup.copy(&setup.job("app")).await;
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    let writes = setup.dst.writes().await;
    let tag = position(&writes, "index PUT", manifest_put("mirror/app", "1"));
    let (linux, windows) = index.children.split_at(2);
    for child in linux {
        let manifest = position(
            &writes,
            "platform manifest PUT by digest",
            manifest_put("mirror/app", &child.digest),
        );
        assert!(
            manifest < tag,
            "{} after the index: {writes:#?}",
            child.platform
        );
        for (digest, _) in child.blobs() {
            let blob = position(&writes, "blob upload", blob_put(&digest));
            assert!(
                blob < manifest,
                "blob {digest} after its manifest: {writes:#?}"
            );
        }
    }
    let never = &windows[0];
    assert_eq!(
        count(&writes, |line| line.contains(&never.digest)
            || never
                .blobs()
                .iter()
                .any(|(d, _)| line.contains(d.as_str()))),
        0,
        "nothing of windows/amd64 travels: {writes:#?}"
    );
}

#[tokio::test]
async fn the_tag_is_written_last_and_exactly_once() {
    for kind in ["image", "index"] {
        let setup = Setup::new().await;
        match kind {
            "image" => setup.src.serve_image("team/app", "1", &image()).await,
            _ => setup.src.serve_index("team/app", "1", &index()).await,
        }
        let outcome = setup.copy(&setup.job("app")).await;
        assert!(
            matches!(outcome, Outcome::Copied { .. }),
            "{kind}: {outcome:?}"
        );
        let writes = setup.dst.writes().await;
        let tag = manifest_put("mirror/app", "1");
        assert_eq!(count(&writes, &tag), 1, "{kind}: one tag PUT: {writes:#?}");
        let last = writes.last().map(String::as_str).unwrap_or_default();
        assert!(tag(last), "{kind}: the tag is the last write: {writes:#?}");
    }
}

#[tokio::test]
async fn blobs_the_target_has_are_not_uploaded() {
    let setup = Setup::new().await;
    let image = image();
    setup.src.serve_image("team/app", "1", &image).await;
    let blobs = image.blobs();
    let (present, missing) = blobs.split_at(2);
    for (digest, bytes) in present {
        setup.dst.has_blob("mirror/app", digest, bytes.len()).await;
    }
    let outcome = setup.copy(&setup.job("app")).await;
    let writes = setup.dst.writes().await;
    for (digest, _) in present {
        assert_eq!(
            count(&writes, |line| line.contains(digest.as_str())),
            0,
            "{digest} is in the target already: {writes:#?}"
        );
    }
    let (digest, bytes) = &missing[0];
    assert_eq!(count(&writes, blob_put(digest)), 1, "{writes:#?}");
    assert_eq!(
        count(&writes, |line| line == "POST /v2/mirror/app/blobs/uploads/"),
        1,
        "one upload session, for the one missing blob: {writes:#?}"
    );
    assert!(
        matches!(outcome, Outcome::Copied { bytes: sent, .. } if sent == bytes.len() as u64),
        "only the missing blob counts: {outcome:?}"
    );
}

#[tokio::test]
async fn concurrent_jobs_upload_a_shared_blob_once_per_target_registry() {
    let setup = Setup::new().await;
    // The config and base layer are shared; slow uploads make the two jobs overlap.
    let a = TestImage::new("linux/amd64", &["shared base", "only in a"]);
    let b = TestImage::new("linux/amd64", &["shared base", "only in b"]);
    setup.src.serve_image("team/a", "1", &a).await;
    setup.src.serve_image("team/b", "1", &b).await;
    setup.dst.accept_mounts().await;
    setup.dst.slow_uploads(Duration::from_millis(200)).await;
    let (job_a, job_b) = (setup.job("a"), setup.job("b"));
    let (copied_a, copied_b) = tokio::join!(setup.copy(&job_a), setup.copy(&job_b));
    assert!(matches!(copied_a, Outcome::Copied { .. }), "{copied_a:?}");
    assert!(matches!(copied_b, Outcome::Copied { .. }), "{copied_b:?}");
    let writes = setup.dst.writes().await;
    let shared = [sha256_of(&a.config), a.layer(0)];
    assert_eq!(
        shared[0],
        sha256_of(&b.config),
        "the configs are shared too"
    );
    for digest in &shared {
        assert_eq!(count(&writes, blob_put(digest)), 1, "{digest}: {writes:#?}");
        assert_eq!(count(&writes, mount(digest)), 1, "{digest}: {writes:#?}");
    }
    for digest in [a.layer(1), b.layer(1)] {
        assert_eq!(
            count(&writes, blob_put(&digest)),
            1,
            "{digest}: {writes:#?}"
        );
    }
}

#[tokio::test]
async fn a_failed_blob_upload_leaves_the_tag_unwritten() {
    for kind in ["image", "index"] {
        let setup = Setup::new().await;
        let (source_digest, refused) = match kind {
            "image" => {
                let image = image();
                setup.src.serve_image("team/app", "1", &image).await;
                (image.digest.clone(), image.layer(1))
            }
            _ => {
                let index = index();
                setup.src.serve_index("team/app", "1", &index).await;
                (index.digest.clone(), index.children[1].layer(1))
            }
        };
        setup.dst.deny_upload(&refused).await;
        let job = setup.job("app");
        let outcome = setup.copy(&job).await;
        assert!(
            matches!(&outcome, Outcome::Failed { error } if error.contains("DENIED") || error.contains("denied")),
            "{kind}: {outcome:?}"
        );
        let writes = setup.dst.writes().await;
        assert_eq!(
            count(&writes, manifest_put("mirror/app", "1")),
            0,
            "{kind}: no tag over a missing blob: {writes:#?}"
        );
        match kind {
            "image" => assert_eq!(count(&writes, is_manifest_put), 0, "{writes:#?}"),
            _ => {
                let arm64 = &index().children[1].digest;
                let put = count(&writes, manifest_put("mirror/app", arm64));
                assert_eq!(put, 0, "arm64 over its missing layer: {writes:#?}");
            }
        }
        assert_eq!(
            setup.state.pushed(
                &state_key(&job, crate::decide::Writes::SourceBytes),
                &source_digest
            ),
            None
        );
    }
}

fn sha256_of(bytes: &[u8]) -> String {
    crate::manifest::sha256_digest(bytes)
}

/// The bodies of the PUTs that finished an upload of blob `digest` on `registry`.
async fn blob_bodies(registry: &FakeRegistry, digest: &str) -> Vec<Vec<u8>> {
    let received = registry
        .server()
        .received_requests()
        .await
        .unwrap_or_default();
    received
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .filter(|r| {
            r.url
                .query_pairs()
                .any(|(k, v)| k == "digest" && v == digest)
        })
        .map(|r| r.body)
        .collect()
}

#[tokio::test]
async fn big_blobs_go_get_to_put_on_the_fly_with_their_bytes_and_into_the_cache() {
    let mut setup = Setup::new().await;
    setup.transport = setup.transport.clone().stream_above(1);
    let image = image();
    setup.src.serve_image("team/app", "1", &image).await;
    let outcome = setup.copy(&setup.job("app")).await;
    assert!(
        matches!(&outcome, Outcome::Copied { digest, .. } if *digest == image.digest),
        "{outcome:?}"
    );
    let writes = setup.dst.writes().await;
    let tag = position(&writes, "tag PUT", manifest_put("mirror/app", "1"));
    for i in 0..2 {
        let digest = image.layer(i);
        let bodies = blob_bodies(&setup.dst, &digest).await;
        assert_eq!(bodies, [image.layers[i].to_vec()], "one PUT of layer {i}");
        assert!(position(&writes, "blob upload", blob_put(&digest)) < tag);
        let cached = setup._dir.path().join("blobs/sha256").join(&digest[7..]);
        assert_eq!(std::fs::read(&cached).expect("cached"), image.layers[i]);
    }
}

#[tokio::test]
async fn a_streamed_blob_that_fails_its_digest_leaves_no_manifest() {
    let mut setup = Setup::new().await;
    setup.transport = setup.transport.clone().stream_above(1);
    // The source serves the image, but layer 1 with other bytes of the same size.
    let image = image();
    let layer = image.layer(1);
    for reference in ["1", image.digest.as_str()] {
        let (manifest, media_type) = (&image.manifest, crate::manifest::DOCKER_MANIFEST);
        setup
            .src
            .serve_manifest("team/app", reference, manifest, media_type)
            .await;
    }
    for (digest, bytes) in image.blobs() {
        let served = if digest == layer {
            vec![b'x'; bytes.len()]
        } else {
            bytes.to_vec()
        };
        setup.src.has_blob("team/app", &digest, bytes.len()).await;
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path(format!(
                "/v2/team/app/blobs/{digest}"
            )))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(served))
            .mount(setup.src.server())
            .await;
    }
    let outcome = setup.copy(&setup.job("app")).await;
    assert!(
        matches!(&outcome, Outcome::Failed { error } if error.contains("digest")),
        "{outcome:?}"
    );
    let writes = setup.dst.writes().await;
    assert_eq!(count(&writes, is_manifest_put), 0, "{writes:#?}");
    assert_eq!(count(&writes, blob_put(&layer)), 0, "{writes:#?}");
    let cached = setup._dir.path().join("blobs/sha256").join(&layer[7..]);
    assert!(!cached.exists(), "a wrong blob is never cached");
}

#[tokio::test]
async fn a_blob_another_job_is_streaming_is_uploaded_from_the_cache_without_a_spare_session() {
    // Two jobs copy one image to two target registries at once, both streaming; a slow
    // source keeps the first job's download (which holds the cache's turn for the blob)
    // open while the second reaches its own stream. The second must wait and upload from
    // the cache: no upload session opened for a body that never comes, no PUT cut short.
    let mut setup = Setup::new().await;
    setup.transport = setup.transport.clone().stream_above(1);
    let other = FakeRegistry::start().await;
    other.accept_pushes().await;
    let image = TestImage::new("linux/amd64", &["one big layer"]);
    let layer = image.layer(0);
    // Mounted first: among answers of one priority, wiremock takes the earliest.
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(format!(
            "/v2/team/app/blobs/{layer}"
        )))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_bytes(image.layers[0].to_vec())
                .set_delay(Duration::from_millis(400)),
        )
        .with_priority(1)
        .mount(setup.src.server())
        .await;
    setup.src.serve_image("team/app", "1", &image).await;
    let first = setup.job("app");
    let second = job(
        setup.src.reference("team/app:1"),
        other.reference("mirror/app:1"),
    );
    let (a, b) = tokio::join!(setup.copy(&first), setup.copy(&second));
    for outcome in [&a, &b] {
        assert!(
            matches!(outcome, Outcome::Copied { digest, .. } if *digest == image.digest),
            "{outcome:?}"
        );
    }
    for target in [&setup.dst, &other] {
        let writes = target.writes().await;
        let sessions = count(&writes, |line| {
            line.starts_with("POST ") && line.ends_with("/blobs/uploads/")
        });
        assert_eq!(
            sessions, 2,
            "config and layer, one session each: {writes:#?}"
        );
        assert_eq!(
            blob_bodies(target, &layer).await,
            [image.layers[0].to_vec()],
            "{writes:#?}"
        );
    }
    let fetches = setup
        .src
        .server()
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with(&layer))
        .count();
    assert_eq!(fetches, 1, "the layer is downloaded once");
}
