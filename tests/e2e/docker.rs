//! The Docker Engine layer against the real dockerd and real `docker-registry` processes.
//!
//! Each test builds its own busybox image (no internet), uses its own `support::Registry`
//! and removes every image it made. `harness` holds what names ferry's own types.

mod harness;

use std::io::Write as _;

use ferry::docker::{
    BuildContext, BuildRequest, DiscardEvents, DockerApi, DockerErrorKind, Engine, ErrorClass,
    RegistryAuth,
};
use ferry::event::LayerStatus;
use ferry::platform::Platform;
use ferry::reference::Reference;
use ferry::secret::Secret;

use crate::support::{
    docker, require_daemon, unique, Fixture, ImageCleanup, MediaKind, Registry, RegistryClient,
    TRICKY_PASSWORD,
};
use harness::{busybox_build, reference, Recorder};

async fn engine() -> Engine {
    require_daemon();
    Engine::connect().await.expect("dockerd is running")
}

#[tokio::test]
async fn build_push_remove_and_pull_back_by_tag_and_digest_then_run() {
    let engine = engine().await;
    let registry = Registry::anonymous();
    let images = ImageCleanup::default();
    let label = unique("roundtrip");
    let built_tag = reference(&registry, "e2e/roundtrip:built");
    let target = reference(&registry, "e2e/roundtrip:1");
    images.track(built_tag.to_string());
    images.track(target.to_string());

    let build_events = Recorder::default();
    let id = engine
        .build(
            &busybox_build(vec![built_tag.clone()], &label),
            &build_events.sink(),
        )
        .await
        .expect("build");
    images.track(&id);
    assert!(id.starts_with("sha256:"), "{id}");
    let lines = build_events.build_lines();
    assert!(lines.iter().any(|l| l.starts_with("Step 2/")), "{lines:?}");

    let info = engine.inspect(&id).await.expect("inspect").expect("built");
    assert_eq!(info.labels.get("ferry.e2e"), Some(&label));
    assert_eq!(info.os.as_deref(), Some("linux"));
    assert!(info.size > 1_000_000 && info.created.is_some(), "{info:?}");
    let listed = engine
        .list(&[&format!("ferry.e2e={label}")])
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );

    engine.tag(&id, &target).await.expect("tag");
    let push_events = Recorder::default();
    let digest = engine
        .push(&target, None, &push_events.sink())
        .await
        .expect("push");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let pushed = push_events.layer_statuses();
    assert!(pushed.contains(&LayerStatus::Done), "{pushed:?}");

    assert!(engine.remove(&id).await.expect("remove"));
    assert_eq!(engine.inspect(&id).await.expect("inspect"), None);
    assert!(!engine.remove(&id).await.expect("remove is idempotent"));

    let pull_events = Recorder::default();
    let pulled = engine
        .pull(&target, None, None, &pull_events.sink())
        .await
        .expect("pull by tag");
    assert_eq!(pulled.digest.as_deref(), Some(digest.as_str()));
    assert!(pulled.downloaded);
    let statuses = pull_events.layer_statuses();
    assert!(
        statuses.contains(&LayerStatus::Downloading) && statuses.contains(&LayerStatus::Done),
        "{statuses:?}"
    );
    let pinned = format!("{}@{digest}", target.repository_name());
    let info = engine
        .inspect(&target.to_string())
        .await
        .expect("inspect")
        .expect("pulled");
    assert_eq!(info.id, id);
    assert!(info.repo_digests.contains(&pinned), "{info:?}");

    assert!(engine.remove(&id).await.expect("remove"));
    let by_digest: Reference = pinned.parse().expect("digest reference");
    let pulled = engine
        .pull(&by_digest, None, None, &DiscardEvents)
        .await
        .expect("pull by digest");
    assert_eq!(pulled.digest.as_deref(), Some(digest.as_str()));

    let run = docker(&["run", "--rm", &pinned, "/bin/busybox", "echo", "ok"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "ok",
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[tokio::test]
async fn htpasswd_registry_takes_a_url_unsafe_password_and_refuses_a_wrong_one() {
    let engine = engine().await;
    let registry = Registry::basic("ferry", TRICKY_PASSWORD);
    let images = ImageCleanup::default();
    let target = reference(&registry, "e2e/private:1");
    images.track(target.to_string());

    // Build from a context file this time.
    let label = unique("private");
    let dir = tempfile::tempdir().expect("tempdir");
    let context = dir.path().join("context.tar");
    std::fs::File::create(&context)
        .and_then(|mut f| f.write_all(&Fixture::busybox_context(&label)))
        .expect("write context");
    let mut build = busybox_build(vec![target.clone()], &label);
    build.context = BuildContext::TarFile(context);
    let id = engine.build(&build, &DiscardEvents).await.expect("build");
    images.track(&id);

    let host = registry.host();
    let auth = |password: &str| RegistryAuth::new("ferry", Secret::new(password), &host);
    let good = auth(TRICKY_PASSWORD);
    let digest = engine
        .push(&target, Some(&good), &DiscardEvents)
        .await
        .expect("push with the URL-unsafe password");
    assert!(digest.starts_with("sha256:"));

    let wrong_password = "wrong>>>??pw";
    let err = engine
        .push(&target, Some(&auth(wrong_password)), &DiscardEvents)
        .await
        .expect_err("wrong password");
    let text = err.to_string();
    assert_eq!(err.class(), Some(ErrorClass::Unauthorized), "{text}");
    assert!(!err.is_retryable());
    assert!(
        text.starts_with(&format!("cannot push {target} to {}: ", registry.host())),
        "{text}"
    );
    assert!(
        !text.contains(wrong_password) && !text.contains('\n'),
        "{text}"
    );
    assert!(!format!("{err:?}").contains(wrong_password));

    assert!(engine.remove(&id).await.expect("remove"));
    let err = engine
        .pull(&target, None, None, &DiscardEvents)
        .await
        .expect_err("anonymous pull from an htpasswd registry");
    assert_eq!(err.class(), Some(ErrorClass::Unauthorized), "{err}");
    let pulled = engine
        .pull(&target, None, Some(&good), &DiscardEvents)
        .await
        .expect("pull with credentials");
    assert_eq!(pulled.digest.as_deref(), Some(digest.as_str()));
}

#[tokio::test]
async fn pull_of_a_missing_tag_is_one_clean_line() {
    let engine = engine().await;
    let registry = Registry::anonymous();
    let missing = reference(&registry, "e2e/nothing:missing");
    let err = engine
        .pull(&missing, None, None, &DiscardEvents)
        .await
        .expect_err("nothing there");
    let text = err.to_string();
    assert_eq!(err.class(), Some(ErrorClass::NotFound), "{text}");
    assert!(!err.is_retryable());
    assert!(
        text.starts_with(&format!("cannot pull {missing} from {}: ", registry.host())),
        "{text}"
    );
    assert!(text.contains("not found") && !text.contains('\n'), "{text}");
}

#[tokio::test]
async fn a_failing_build_is_one_clean_line() {
    let engine = engine().await;
    let tag: Reference = format!("ferry-e2e/broken:{}", unique("b"))
        .parse()
        .expect("reference");
    let context = Fixture::dockerfile_context("FROM scratch\nCOPY missing-file /\n");
    let events = Recorder::default();
    let err = engine
        .build(
            &BuildRequest::new(BuildContext::Tar(context), vec![tag.clone()]),
            &events.sink(),
        )
        .await
        .expect_err("nothing to copy");
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot build {tag}: ")), "{text}");
    assert!(
        text.contains("missing-file") && !text.contains('\n'),
        "{text}"
    );
    assert!(!err.is_retryable());
    let lines = events.build_lines();
    assert!(
        lines.iter().any(|l| l.contains("COPY missing-file")),
        "{lines:?}"
    );
}

/// Pushes one single-platform busybox image as `registry/e2e/multi:<tag>`; returns its
/// manifest digest, manifest size and image id.
async fn push_platform(
    engine: &Engine,
    registry: &Registry,
    images: &ImageCleanup,
    platform: &str,
    tag: &str,
) -> (String, usize, String) {
    let target = reference(registry, &format!("e2e/multi:{tag}"));
    images.track(target.to_string());
    let mut build = busybox_build(vec![target.clone()], &unique(tag));
    build.platform = Some(platform.parse().expect("platform"));
    let id = engine.build(&build, &DiscardEvents).await.expect("build");
    images.track(&id);
    let digest = engine
        .push(&target, None, &DiscardEvents)
        .await
        .expect("push");
    let manifest = RegistryClient::new(registry)
        .manifest("e2e/multi", &digest)
        .await
        .expect("manifest");
    assert_eq!(manifest.media_type, MediaKind::Docker.manifest_type());
    assert_eq!(manifest.digest, digest);
    (digest, manifest.bytes.len(), id)
}

#[tokio::test]
async fn a_foreign_architecture_is_pulled_by_digest() {
    let engine = engine().await;
    let registry = Registry::anonymous();
    let images = ImageCleanup::default();
    let (arm_digest, arm_size, arm_id) =
        push_platform(&engine, &registry, &images, "linux/arm64", "arm64").await;
    let (amd_digest, amd_size, amd_id) =
        push_platform(&engine, &registry, &images, "linux/amd64", "amd64").await;
    assert_ne!(arm_digest, amd_digest);

    let entry = |digest: &str, size: usize, arch: &str| {
        serde_json::json!({
            "mediaType": MediaKind::Docker.manifest_type(),
            "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch}
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MediaKind::Docker.index_type(),
        "manifests": [entry(&amd_digest, amd_size, "amd64"), entry(&arm_digest, arm_size, "arm64")]
    });
    let index_digest = RegistryClient::new(&registry)
        .push_manifest(
            "e2e/multi",
            "multi",
            MediaKind::Docker.index_type(),
            index.to_string().as_bytes(),
        )
        .await;

    assert!(engine.remove(&arm_id).await.expect("remove"));
    assert!(engine.remove(&amd_id).await.expect("remove"));
    let repo = reference(&registry, "e2e/multi");
    let arm64: Platform = "linux/arm64".parse().expect("platform");

    let from_index = repo.with_digest(&index_digest).expect("digest");
    images.track(format!("{}@{index_digest}", repo.repository_name()));
    engine
        .pull(&from_index, Some(&arm64), None, &DiscardEvents)
        .await
        .expect("arm64 entry of the index");
    let info = engine
        .inspect(&format!("{}@{index_digest}", repo.repository_name()))
        .await
        .expect("inspect")
        .expect("pulled");
    assert_eq!(info.architecture.as_deref(), Some("arm64"));
    assert_eq!(info.id, arm_id);

    let by_manifest = repo.with_digest(&arm_digest).expect("digest");
    images.track(format!("{}@{arm_digest}", repo.repository_name()));
    engine
        .pull(&by_manifest, Some(&arm64), None, &DiscardEvents)
        .await
        .expect("arm64 manifest by digest");

    let amd64: Platform = "linux/amd64".parse().expect("platform");
    let err = engine
        .pull(&by_manifest, Some(&amd64), None, &DiscardEvents)
        .await
        .expect_err("an arm64 manifest is no amd64 image");
    assert!(
        matches!(err.kind(), DockerErrorKind::PlatformMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("wanted platform linux/amd64"),
        "{err}"
    );
}
