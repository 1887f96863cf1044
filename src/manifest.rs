//! Manifests of both families (Docker schema 2 and OCI): what they point at, and the one
//! kind ferry writes itself, a manifest list of pushed platform images.
//!
//! Owns the JSON shapes (through oci-spec's types). It must not do I/O; copies keep the
//! source bytes untouched, so parsing here is only ever for reading.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use thiserror::Error;

use crate::platform::Platform;

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest that cannot be read.
#[derive(Debug, Error)]
#[error("unreadable manifest ({media_type}): {cause}")]
pub struct ManifestError {
    media_type: String,
    cause: String,
}

/// What a manifest is.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A list of platform manifests.
    Index(Vec<Child>),
    /// One image: its config and layers.
    Image(ImageParts),
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Digest of the platform manifest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its platform, when the index says (attestations and artifacts have none).
    pub platform: Option<Platform>,
    /// For an attestation manifest (`vnd.docker.reference.type: attestation-manifest`), the
    /// digest of the entry it describes (`vnd.docker.reference.digest`).
    pub attests: Option<String>,
}

/// Annotation naming what a reference manifest is (BuildKit's attestations).
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Annotation naming the entry a reference manifest describes.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// The [`REFERENCE_TYPE`] of an attestation manifest.
pub const ATTESTATION: &str = "attestation-manifest";

/// The positions of the entries of an index a copy keeps, in index order. With `all`,
/// every entry. Otherwise the Linux entries (only those `wanted` selects, when it names
/// any) and the attestation manifests that describe a kept entry; Windows, other systems
/// and orphan artifacts are dropped. Entries are judged one by one: an entry listed for
/// Windows is dropped even when a Linux entry names the same digest.
pub fn keep(children: &[Child], wanted: &[Platform], all: bool) -> Vec<usize> {
    if all {
        return (0..children.len()).collect();
    }
    let selected = |c: &Child| {
        c.attests.is_none()
            && c.platform.as_ref().is_some_and(|p| {
                p.is_linux() && (wanted.is_empty() || wanted.iter().any(|w| w.selects(p)))
            })
    };
    let platforms: Vec<&str> = children
        .iter()
        .filter(|c| selected(c))
        .map(|c| c.digest.as_str())
        .collect();
    children
        .iter()
        .enumerate()
        .filter(|(_, c)| match &c.attests {
            Some(described) => platforms.contains(&described.as_str()),
            None => selected(c),
        })
        .map(|(i, _)| i)
        .collect()
}

/// What [`keep`] left out, for people: `windows/amd64, 1 attestation`.
pub fn describe_dropped(children: &[Child], kept: &[usize]) -> String {
    let dropped: Vec<&Child> = children
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept.contains(i))
        .map(|(_, c)| c)
        .collect();
    let mut words: Vec<String> = dropped
        .iter()
        .filter(|c| c.attests.is_none())
        .map(|c| match &c.platform {
            Some(platform) => platform.to_string(),
            None => format!("artifact {}", c.digest),
        })
        .collect();
    let attestations = dropped.iter().filter(|c| c.attests.is_some()).count();
    match attestations {
        0 => {}
        1 => words.push("1 attestation".to_owned()),
        n => words.push(format!("{n} attestations")),
    }
    words.join(", ")
}

/// The index `bytes` with only the entries at the positions `kept` names, every other field
/// (annotations, platforms, the index's own fields) as it was. The output is deterministic,
/// so the same source and selection always give the same digest.
pub fn filter_index(
    media_type: &str,
    bytes: &[u8],
    kept: &[usize],
) -> Result<Vec<u8>, ManifestError> {
    let error = |cause: String| ManifestError {
        media_type: media_type.to_owned(),
        cause,
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| error(e.to_string()))?;
    let manifests = index
        .get_mut("manifests")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or_else(|| error("no manifests".to_owned()))?;
    let mut position = 0;
    manifests.retain(|_| {
        position += 1;
        kept.contains(&(position - 1))
    });
    serde_json::to_vec(&index).map_err(|e| error(e.to_string()))
}

/// The blobs of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParts {
    /// The config blob.
    pub config: Blob,
    /// The layers, bottom first.
    pub layers: Vec<Blob>,
}

impl ImageParts {
    /// Config first, then every layer.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// A blob a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:…`
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// A foreign (non-distributable) layer, served from `urls` rather than the registry;
    /// registries do not hold it, so copies leave it out.
    pub foreign: bool,
}

/// `sha256:` + hex of the SHA-256 of `bytes`: the digest of a manifest or small blob.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// True for the two index media types.
pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

/// Reads a manifest of any of the four media types (an empty type is guessed from JSON).
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Parsed, ManifestError> {
    let error = |cause: String| ManifestError {
        media_type: media_type.to_owned(),
        cause,
    };
    let looks_like_index = || {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map(|v| v.get("manifests").is_some())
            .unwrap_or(false)
    };
    if is_index(media_type) || (media_type.is_empty() && looks_like_index()) {
        let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| error(e.to_string()))?;
        let children = index.manifests().iter().map(child).collect();
        return Ok(Parsed::Index(children));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| error(e.to_string()))?;
    Ok(Parsed::Image(ImageParts {
        config: blob(manifest.config()),
        layers: manifest.layers().iter().map(blob).collect(),
    }))
}

/// The platform an image config declares (`os`, `architecture`, `variant`).
pub fn config_platform(config: &[u8]) -> Option<Platform> {
    #[derive(serde::Deserialize)]
    struct Config {
        os: String,
        architecture: String,
        variant: Option<String>,
    }
    let config: Config = serde_json::from_slice(config).ok()?;
    Some(Platform::new(
        &config.os,
        &config.architecture,
        config.variant.as_deref(),
    ))
}

/// Unix seconds of the `created` time an image config declares (RFC 3339, any offset).
pub fn config_created(config: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Config {
        created: String,
    }
    let config: Config = serde_json::from_slice(config).ok()?;
    crate::timestamp::unix_seconds(&config.created)
}

/// Writes a manifest list (Docker when `docker` is set, else an OCI index) over entries.
pub fn build_list(
    docker: bool,
    entries: &[Child],
) -> Result<(Vec<u8>, &'static str), ManifestError> {
    let media_type = if docker {
        DOCKER_MANIFEST_LIST
    } else {
        OCI_INDEX
    };
    let error = |cause: String| ManifestError {
        media_type: media_type.to_owned(),
        cause,
    };
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": entries.iter().map(|entry| {
            let mut value = serde_json::json!({
                "mediaType": entry.media_type,
                "digest": entry.digest,
                "size": entry.size,
            });
            if let Some(platform) = &entry.platform {
                let mut p = serde_json::json!({
                    "architecture": platform.architecture(),
                    "os": platform.os(),
                });
                if let Some(variant) = platform.variant() {
                    p["variant"] = variant.into();
                }
                value["platform"] = p;
            }
            value
        }).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&list).map_err(|e| error(e.to_string()))?;
    Ok((bytes, media_type))
}

fn child(descriptor: &Descriptor) -> Child {
    let annotation = |key: &str| {
        descriptor
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    let attests = match annotation(REFERENCE_TYPE).as_deref() {
        Some(ATTESTATION) => annotation(REFERENCE_DIGEST),
        _ => None,
    };
    Child {
        attests,
        digest: descriptor.digest().to_string(),
        media_type: descriptor.media_type().to_string(),
        size: descriptor.size(),
        // `Linux` and `AMD64` appear in the wild; the spec's values are lowercase.
        platform: descriptor.platform().as_ref().map(|p| {
            Platform::new(
                &p.os().to_string().to_ascii_lowercase(),
                &p.architecture().to_string().to_ascii_lowercase(),
                p.variant().as_deref(),
            )
        }),
    }
}

fn blob(descriptor: &Descriptor) -> Blob {
    let media_type = descriptor.media_type();
    let non_distributable = matches!(
        media_type,
        MediaType::ImageLayerNonDistributable
            | MediaType::ImageLayerNonDistributableGzip
            | MediaType::ImageLayerNonDistributableZstd
    ) || media_type.to_string().contains("foreign");
    Blob {
        digest: descriptor.digest().to_string(),
        size: descriptor.size(),
        media_type: media_type.to_string(),
        foreign: non_distributable && descriptor.urls().as_ref().is_some_and(|u| !u.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn docker_list_children_and_platforms() {
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{A}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{B}","size":11,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{C}","size":12,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.5122"}}}}]}}"#
        );
        let Parsed::Index(children) = parse(DOCKER_MANIFEST_LIST, list.as_bytes()).expect("parse")
        else {
            panic!("an index");
        };
        let platforms: Vec<String> = children
            .iter()
            .map(|c| {
                c.platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            platforms,
            ["linux/amd64", "linux/arm64/v8", "windows/amd64"]
        );
        assert_eq!(children[1].digest, B);
        assert_eq!(children[2].size, 12);
        assert!(
            matches!(parse("", list.as_bytes()), Ok(Parsed::Index(_))),
            "guessed from JSON"
        );
    }

    #[test]
    fn oci_manifest_blobs_and_foreign_layers() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{A}","size":5}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{B}","size":6}},
            {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{C}","size":7,"urls":["https://example.invalid/l"]}}]}}"#
        );
        let Parsed::Image(parts) = parse(OCI_MANIFEST, manifest.as_bytes()).expect("parse") else {
            panic!("an image");
        };
        let digests: Vec<&str> = parts.blobs().map(|b| b.digest.as_str()).collect();
        assert_eq!(digests, [A, B, C]);
        assert!(!parts.layers[0].foreign);
        assert!(parts.layers[1].foreign);
        assert!(parse(OCI_MANIFEST, b"{not json").is_err());
    }

    #[test]
    fn built_list_parses_back() {
        let entries = vec![
            Child {
                digest: A.into(),
                media_type: DOCKER_MANIFEST.into(),
                size: 10,
                platform: Some("linux/amd64".parse().expect("platform")),
                attests: None,
            },
            Child {
                digest: B.into(),
                media_type: DOCKER_MANIFEST.into(),
                size: 11,
                platform: Some("linux/arm64/v8".parse().expect("platform")),
                attests: None,
            },
        ];
        let (bytes, media_type) = build_list(true, &entries).expect("build");
        assert_eq!(media_type, DOCKER_MANIFEST_LIST);
        let Parsed::Index(children) = parse(media_type, &bytes).expect("parse") else {
            panic!("an index");
        };
        assert_eq!(children, entries);
    }

    #[test]
    fn created_times_of_configs() {
        let at = |c: &str| config_created(format!(r#"{{"created":"{c}"}}"#).as_bytes());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(at("2024-01-01T08:00:00.123456+08:00"), Some(1_704_067_200));
        assert_eq!(at("2000-02-29T12:30:15-01:30"), Some(951_832_815));
        assert_eq!(at("yesterday"), None);
        assert_eq!(config_created(b"{}"), None);
    }

    #[test]
    fn config_platform_reads_os_and_architecture() {
        let config = br#"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{}}"#;
        assert_eq!(
            config_platform(config).map(|p| p.to_string()).as_deref(),
            Some("linux/arm64/v8")
        );
        assert_eq!(config_platform(b"[]"), None);
    }

    /// An OCI index: linux/amd64 (A), linux/arm64 (B), windows/amd64 (C), an attestation of
    /// A and one of C, as BuildKit writes them.
    fn mixed_index() -> String {
        const D: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
        const E: &str = "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
        let attestation = |digest: &str, of: &str| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":9,"platform":{{"architecture":"unknown","os":"unknown"}},
                "annotations":{{"{REFERENCE_DIGEST}":"{of}","{REFERENCE_TYPE}":"{ATTESTATION}"}}}}"#
            )
        };
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","annotations":{{"org.example":"kept"}},"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{A}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{B}","size":11,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{C}","size":12,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.5122"}}}},
            {},{}]}}"#,
            attestation(D, A),
            attestation(E, C)
        )
    }

    #[test]
    fn keep_takes_linux_entries_and_their_attestations() {
        let index = mixed_index();
        let Parsed::Index(children) = parse(OCI_INDEX, index.as_bytes()).expect("parse") else {
            panic!("an index");
        };
        let digests = |kept: &[usize]| -> Vec<String> {
            kept.iter()
                .map(|&i| children[i].digest[7..8].to_owned())
                .collect()
        };
        assert_eq!(children[3].attests.as_deref(), Some(A));
        assert_eq!(children[0].attests, None);
        let linux = keep(&children, &[], false);
        assert_eq!(digests(&linux), ["a", "b", "d"]);
        let arm: Vec<Platform> = vec!["linux/arm64".parse().expect("platform")];
        assert_eq!(digests(&keep(&children, &arm, false)), ["b"]);
        let amd: Vec<Platform> = vec!["linux/amd64".parse().expect("platform")];
        assert_eq!(digests(&keep(&children, &amd, false)), ["a", "d"]);
        assert_eq!(
            keep(&children, &[], true),
            [0, 1, 2, 3, 4],
            "all: every entry"
        );
        assert_eq!(
            describe_dropped(&children, &linux),
            "windows/amd64, 1 attestation"
        );

        let filtered = filter_index(OCI_INDEX, index.as_bytes(), &linux).expect("filter");
        let Parsed::Index(left) = parse(OCI_INDEX, &filtered).expect("parse back") else {
            panic!("an index");
        };
        let wanted: Vec<Child> = linux.iter().map(|&i| children[i].clone()).collect();
        assert_eq!(
            left, wanted,
            "exactly the kept entries, annotations included"
        );
        let value: serde_json::Value = serde_json::from_slice(&filtered).expect("json");
        assert_eq!(value["annotations"]["org.example"], "kept");
        assert_eq!(value["mediaType"], OCI_INDEX);
        let again = filter_index(OCI_INDEX, index.as_bytes(), &linux).expect("filter");
        assert_eq!(
            sha256_digest(&again),
            sha256_digest(&filtered),
            "deterministic"
        );
    }

    #[test]
    fn entries_are_judged_one_by_one_and_systems_case_insensitively() {
        // One digest listed for linux/amd64 and for windows/amd64 (a broken index seen in
        // the wild): the Windows entry is still dropped.
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{A}","size":10,"platform":{{"architecture":"AMD64","os":"Linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{A}","size":10,"platform":{{"architecture":"amd64","os":"windows"}}}}]}}"#
        );
        let Parsed::Index(children) = parse(OCI_INDEX, index.as_bytes()).expect("parse") else {
            panic!("an index");
        };
        assert_eq!(
            children[0]
                .platform
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("linux/amd64")
        );
        let kept = keep(&children, &[], false);
        assert_eq!(kept, [0]);
        assert_eq!(describe_dropped(&children, &kept), "windows/amd64");
        let filtered = filter_index(OCI_INDEX, index.as_bytes(), &kept).expect("filter");
        let value: serde_json::Value = serde_json::from_slice(&filtered).expect("json");
        assert_eq!(value["manifests"].as_array().map(Vec::len), Some(1));
    }
}
