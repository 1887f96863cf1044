//! ferry's registry client against real distribution registries in all three auth modes:
//! `Link` pagination over 120 tags, and a byte-identical copy of multi-platform indexes
//! (children, blobs, a cross-repository mount) checked with skopeo.

use std::collections::BTreeSet;
use std::process::Command;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use ferry::credentials::Side;
use ferry::reference::Reference;
use ferry::registry::{BlobPush, BlobSource, ClientOptions, RegistryClient};

use crate::harness::client;
use crate::support::{Fixture, MediaKind, Registry, TokenOptions, TRICKY_PASSWORD};

fn registries(mode: &str) -> (Registry, Registry) {
    match mode {
        "anonymous" => (Registry::anonymous(), Registry::anonymous()),
        "basic" => (
            Registry::basic("ferry", TRICKY_PASSWORD),
            Registry::basic("ferry", TRICKY_PASSWORD),
        ),
        _ => (
            Registry::token(TokenOptions::default()),
            Registry::token(TokenOptions::default()),
        ),
    }
}

fn reference(text: &str) -> Reference {
    text.parse().expect("a valid reference")
}

#[tokio::test]
async fn lists_more_than_100_tags_through_link_pages_in_every_auth_mode() {
    for mode in ["anonymous", "basic", "token"] {
        let registry = registries(mode).0.with_tag_pages(50);
        let many = Fixture::many_tags(&registry, "team/many", 120).await;
        let tags = client(&[&registry], ClientOptions::default())
            .list_tags(
                &reference(&format!("{}/team/many", registry.host())),
                Some(50),
            )
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(tags.len(), 120, "{mode}");
        let want: BTreeSet<&String> = many.tags.iter().collect();
        assert_eq!(tags.iter().collect::<BTreeSet<_>>(), want, "{mode}");
    }
}

/// Copies one blob through a temporary file: verified download, then mount or upload.
async fn copy_blob(
    client: &RegistryClient,
    from: &Reference,
    to: &Reference,
    digest: &str,
    mount_from: &str,
) -> BlobPush {
    let target = client.for_side(Side::Target);
    if target
        .blob_exists(to, digest)
        .await
        .expect("HEAD blob")
        .is_some()
    {
        return BlobPush::Existed;
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let mut out = tokio::fs::File::create(file.path())
        .await
        .expect("open temp file");
    let mut stream = client.get_blob(from, digest, None).await.expect("GET blob");
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk.expect("verified chunk"))
            .await
            .expect("write");
    }
    out.flush().await.expect("flush");
    target
        .push_blob(
            to,
            digest,
            &BlobSource::File(file.path().to_owned()),
            Some(mount_from),
        )
        .await
        .expect("push blob")
}

/// Copies the manifest `from` names (an image) to `to` by digest, blobs first.
async fn copy_image(
    client: &RegistryClient,
    from: &Reference,
    to: &Reference,
    mount_from: &str,
) -> (String, Vec<BlobPush>) {
    let manifest = client.get_manifest(from).await.expect("GET child manifest");
    let json: serde_json::Value = serde_json::from_slice(&manifest.bytes).expect("manifest JSON");
    let mut digests = vec![json["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_owned()];
    for layer in json["layers"].as_array().expect("layers") {
        digests.push(layer["digest"].as_str().expect("layer digest").to_owned());
    }
    let mut pushes = Vec::new();
    for digest in &digests {
        pushes.push(copy_blob(client, from, to, digest, mount_from).await);
    }
    let pinned = to.with_digest(&manifest.digest).expect("digest reference");
    let put = client
        .for_side(Side::Target)
        .put_manifest(&pinned, manifest.bytes.clone(), &manifest.media_type)
        .await
        .expect("PUT child manifest");
    assert_eq!(put, manifest.digest);
    (manifest.digest, pushes)
}

fn skopeo_raw(registry: &Registry, image: &str) -> Vec<u8> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = registry.credentials() {
        command.arg("--creds").arg(format!("{}:{}", c.user, c.pass));
    }
    let output = command
        .arg(format!("docker://{image}"))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test]
async fn copies_multi_platform_indexes_byte_identical_in_every_auth_mode() {
    for mode in ["anonymous", "basic", "token"] {
        let (source, target) = registries(mode);
        // Small limits in one mode so the real registry sees chunked PATCH uploads too.
        let options = match mode {
            "token" => ClientOptions {
                monolithic_limit: 64 * 1024,
                chunk_size: 256 * 1024,
                ..ClientOptions::default()
            },
            _ => ClientOptions::default(),
        };
        let client = client(&[&source, &target], options);
        for (repo, kind) in [
            ("team/multi", MediaKind::Oci),
            ("team/multi-docker", MediaKind::Docker),
        ] {
            let index = Fixture::index(&source, repo, "1.0", kind).push().await;
            let from = reference(&index.reference());
            let to = reference(&format!("{}/mirror/{}:1.0", target.host(), repo));
            // Seed another repository of the target with the first child, to mount from.
            let base = reference(&format!(
                "{}/mirror/base-{}",
                target.host(),
                repo.replace('/', "-")
            ));
            let first = from
                .with_digest(&index.children[0].digest)
                .expect("child reference");
            copy_image(&client, &first, &base, base.repository()).await;

            let manifest = client
                .get_manifest(&from)
                .await
                .unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!(manifest.bytes.as_ref(), index.manifest.as_slice());
            assert_eq!(manifest.digest, index.digest);
            let mut pushes = Vec::new();
            for child in &index.children {
                let child_from = from.with_digest(&child.digest).expect("child reference");
                let (digest, blob_pushes) =
                    copy_image(&client, &child_from, &to, base.repository()).await;
                assert_eq!(digest, child.digest, "{mode}");
                pushes.extend(blob_pushes);
            }
            let put = client
                .for_side(Side::Target)
                .put_manifest(&to, Bytes::from(index.manifest.clone()), &index.media_type)
                .await
                .unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!(put, index.digest);
            assert!(
                pushes.contains(&BlobPush::Mounted),
                "{mode} {repo}: no blob was mounted: {pushes:?}"
            );
            assert!(
                pushes.contains(&BlobPush::Uploaded),
                "{mode} {repo}: no blob was uploaded: {pushes:?}"
            );

            assert_eq!(
                skopeo_raw(&target, &to.to_string()),
                index.manifest,
                "{mode} {repo}: index bytes"
            );
            for child in &index.children {
                let pinned = to
                    .with_digest(&child.digest)
                    .expect("pinned child")
                    .without_tag_keep_digest();
                assert_eq!(
                    skopeo_raw(&target, &pinned),
                    child.manifest,
                    "{mode} {repo}: child bytes"
                );
            }
            let head = client
                .head_manifest(&to)
                .await
                .expect("HEAD")
                .expect("present");
            assert_eq!(head.digest.as_deref(), Some(index.digest.as_str()));
        }
        if mode == "token" {
            let multi_scope = target
                .token_log()
                .iter()
                .any(|r| r.scopes.len() == 2 && r.granted);
            assert!(
                multi_scope,
                "no two-repository token for a mount: {:?}",
                target.token_log()
            );
        }
    }
}

trait PinnedName {
    fn without_tag_keep_digest(&self) -> String;
}

impl PinnedName for Reference {
    /// `registry/repository@digest`: skopeo refuses a reference with both tag and digest.
    fn without_tag_keep_digest(&self) -> String {
        format!(
            "{}@{}",
            self.repository_name(),
            self.digest().unwrap_or_default()
        )
    }
}
