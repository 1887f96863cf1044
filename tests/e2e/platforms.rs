//! Linux only on the registry transport, through the binary: Windows entries and their
//! blobs never reach the target, attestations of kept platforms travel with them, the
//! platform manifests stay byte for byte, and an index with nothing to drop keeps its digest.

use std::collections::BTreeSet;
use std::process::Command;

use crate::harness::{ferry, project, text};
use crate::support::{Fixture, MediaKind, Platform, Registry, RegistryClient};

/// The raw manifest `skopeo inspect --raw` reads from `image` (plain HTTP registry).
fn skopeo_raw(image: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .expect("run skopeo (missing? run scripts/setup)");
    assert!(
        output.status.success(),
        "skopeo {image}: {}",
        text(&output.stderr)
    );
    output.stdout
}

/// A config directory copying `source` to `target` as written (explicit destination).
fn config_for(source: &str, target: &str, extra: &str) -> tempfile::TempDir {
    project(&[(
        "config/images.yaml",
        &format!("\"{source}\":\n  to: \"{target}\"\n{extra}"),
    )])
}

#[tokio::test]
async fn registry_transport_drops_windows_keeps_attestations_and_byte_identical_children() {
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    let mixed = Fixture::index(&src, "team/mixed", "1.0", MediaKind::Oci)
        .layer_text("mixed platforms")
        .attestations()
        .push()
        .await;
    let linux_only = Fixture::index(&src, "team/linux", "1.0", MediaKind::Oci)
        .platforms(vec![Platform::linux_amd64(), Platform::linux_arm64()])
        .layer_text("linux only")
        .attestations()
        .push()
        .await;
    assert_eq!(mixed.attestations.len(), 2, "one per Linux entry");
    let target = format!("{}/mirror/mixed:1.0", dst.host());
    let dir = config_for(
        &mixed.reference(),
        &format!("{}/mirror/mixed", dst.host()),
        "",
    );
    let out = ferry(dir.path(), &["sync", "--transport", "registry"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));

    // The target index: exactly the Linux entries and their attestations, annotations kept.
    let written = skopeo_raw(&target);
    let index: serde_json::Value = serde_json::from_slice(&written).expect("index JSON");
    let entries = index["manifests"].as_array().expect("manifests");
    let digests: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["digest"].as_str())
        .collect();
    let windows = mixed.child(&Platform::windows_amd64());
    let mut want: BTreeSet<&str> = BTreeSet::new();
    for platform in [Platform::linux_amd64(), Platform::linux_arm64()] {
        want.insert(&mixed.child(&platform).digest);
    }
    for attestation in &mixed.attestations {
        want.insert(&attestation.digest);
    }
    assert_eq!(digests, want, "Linux entries and their attestations only");
    for entry in entries.iter().filter(|e| e["platform"]["os"] == "unknown") {
        assert_eq!(
            entry["annotations"]["vnd.docker.reference.type"],
            "attestation-manifest"
        );
    }
    let new_digest = crate::support::fixture::sha256_digest(&written);
    assert_ne!(new_digest, mixed.digest, "a new index");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("copied") && l.contains("team/mixed"))
        .unwrap_or_else(|| panic!("a copied line: {stdout}"));
    assert!(
        line.contains("dropped windows/amd64")
            && line.contains(&mixed.digest)
            && line.contains(&new_digest),
        "one line naming what was dropped and both digests: {line}"
    );

    // Platform and attestation manifests byte for byte; nothing of Windows uploaded.
    for child in mixed.children.iter().filter(|c| c.platform.os == "linux") {
        let copied = skopeo_raw(&format!("{}/mirror/mixed@{}", dst.host(), child.digest));
        assert_eq!(
            copied,
            child.manifest,
            "{} byte-identical",
            child.platform.name()
        );
    }
    for attestation in &mixed.attestations {
        let copied = skopeo_raw(&format!(
            "{}/mirror/mixed@{}",
            dst.host(),
            attestation.digest
        ));
        assert_eq!(copied, attestation.manifest, "attestation byte-identical");
    }
    let uploaded: Vec<String> = dst
        .requests()
        .iter()
        .filter_map(|r| r.uploaded_blob())
        .collect();
    // Blobs of the Windows image that no Linux image shares (the text layer is shared).
    let linux_blobs: BTreeSet<&String> = mixed
        .children
        .iter()
        .filter(|c| c.platform.os == "linux")
        .flat_map(|c| std::iter::once(&c.config_digest).chain(&c.layer_digests))
        .collect();
    let windows_blobs: Vec<&String> = std::iter::once(&windows.config_digest)
        .chain(&windows.layer_digests)
        .filter(|d| !linux_blobs.contains(d))
        .collect();
    assert_eq!(windows_blobs.len(), 2, "its config and base layer");
    assert!(
        uploaded.iter().all(|d| !windows_blobs.contains(&d)),
        "no Windows blob uploaded: {uploaded:?}"
    );
    let check = RegistryClient::new(&dst);
    for blob in &windows_blobs {
        assert!(!check.has_blob("mirror/mixed", blob).await, "{blob} absent");
    }
    let distinct: BTreeSet<&String> = uploaded.iter().collect();
    assert_eq!(distinct.len(), uploaded.len(), "each blob uploaded once");
    assert!(check
        .manifest("mirror/mixed", &windows.digest)
        .await
        .is_none());

    // A rerun is a no-op: the same new index is unchanged, nothing is written again, and
    // the source is asked with HEADs only (a manifest GET is a pull on Docker Hub).
    let before = dst.requests().len();
    let source_before = src.requests().len();
    let again = ferry(dir.path(), &["sync", "--transport", "registry"], &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("(unchanged)"),
        "{}",
        text(&again.stdout)
    );
    let writes = dst.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .count();
    assert_eq!(writes, 0, "a no-op writes nothing");
    let source_gets: Vec<String> = src.requests()[source_before..]
        .iter()
        .filter(|r| r.method == "GET" && r.uri.contains("/manifests/"))
        .map(|r| r.uri.clone())
        .collect();
    assert!(source_gets.is_empty(), "HEADs only: {source_gets:?}");

    // Linux-only with attestations: nothing to drop, the index keeps its digest.
    let dir = config_for(
        &linux_only.reference(),
        &format!("{}/mirror/linux", dst.host()),
        "",
    );
    let out = ferry(dir.path(), &["sync", "--transport", "registry"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("dropped"),
        "{}",
        text(&out.stdout)
    );
    let kept = skopeo_raw(&format!("{}/mirror/linux:1.0", dst.host()));
    assert_eq!(
        kept, linux_only.manifest,
        "byte-identical index, same digest"
    );
}

#[tokio::test]
async fn all_platforms_copies_every_entry_byte_for_byte_and_needs_the_registry_transport() {
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    let mixed = Fixture::index(&src, "team/all", "1.0", MediaKind::Oci)
        .attestations()
        .push()
        .await;
    let by_flag = config_for(&mixed.reference(), &format!("{}/flag/all", dst.host()), "");
    let out = ferry(
        by_flag.path(),
        &["sync", "--transport", "registry", "--all-platforms"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let by_config = config_for(
        &mixed.reference(),
        &format!("{}/config/all", dst.host()),
        "  platforms: all\n",
    );
    let out = ferry(by_config.path(), &["sync", "--transport", "registry"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for repo in ["flag/all", "config/all"] {
        let copied = skopeo_raw(&format!("{}/{repo}:1.0", dst.host()));
        assert_eq!(copied, mixed.manifest, "{repo}: every entry, byte for byte");
        let windows = mixed.child(&Platform::windows_amd64());
        let child = skopeo_raw(&format!("{}/{repo}@{}", dst.host(), windows.digest));
        assert_eq!(child, windows.manifest);
    }

    // The daemon pulls Linux images only: exit 2 before anything is done.
    let before = dst.requests().len();
    for (dir, args) in [
        (&by_flag, vec!["sync", "--all-platforms"]),
        (&by_config, vec!["sync"]),
    ] {
        let out = ferry(dir.path(), &args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--transport registry"), "{stderr}");
    }
    assert!(
        text(&ferry(by_config.path(), &["sync"], &[]).stderr).contains("config/images.yaml:1"),
        "names the entry"
    );
    assert_eq!(dst.requests().len(), before, "nothing touched the target");
}
