//! Manifests: HEAD, GET and PUT of image manifests and indexes, byte-exact.
//!
//! Owns media-type negotiation and the checks of manifest bytes (size limit,
//! `Content-Length`, digest); it must not parse or rewrite a manifest it copies (digests
//! must stay identical).

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::error::{ErrorKind, RegistryError};
use super::limits::Limit;
use super::request::{Call, Payload, Repo};
use super::RegistryClient;
use crate::credentials::Side;
use crate::reference::Reference;

pub use crate::manifest::{
    sha256_digest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
/// Every media type the client accepts, in the `Accept` header's order.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];
const DIGEST_HEADER: &str = "docker-content-digest";

/// A manifest as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The exact bytes (what the digest is computed over).
    pub bytes: Bytes,
    /// Media type from `Content-Type`, or the manifest's own `mediaType` field.
    pub media_type: String,
    /// `sha256:…` of `bytes`.
    pub digest: String,
}

/// What a HEAD request tells about a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, when the registry sent it.
    pub digest: Option<String>,
    /// `Content-Type`, when the registry sent it.
    pub media_type: Option<String>,
    /// `Content-Length`, when the registry sent it.
    pub size: Option<u64>,
}

impl RegistryClient {
    /// HEAD the manifest `reference` names (digest, else tag, else `latest`); `None` when
    /// the registry does not have it (404).
    pub async fn head_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let wanted = reference.manifest_reference();
        let repo = self
            .open(reference, format!("HEAD manifest {wanted}"))
            .await?;
        let call = Call::new(
            Method::HEAD,
            repo.url(&format!("manifests/{wanted}"))?,
            vec![reference.scope(&["pull"])],
        )
        .header(ACCEPT, &MANIFEST_MEDIA_TYPES.join(", "));
        let sent = repo
            .send(&call, |s| s == StatusCode::OK || s == StatusCode::NOT_FOUND)
            .await?;
        let response = sent.response;
        self.note_rate_limit(reference, response.headers());
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Some(ManifestHead {
            digest: header(DIGEST_HEADER),
            media_type: header(CONTENT_TYPE.as_str()),
            size: header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
        }))
    }

    /// GET the manifest `reference` names (on the source side, a pull spent: counted). It
    /// must fit the registry's `manifest_size` and its `Content-Length`; when `reference`
    /// names a digest, the bytes must hash to it; a `Docker-Content-Digest` header must
    /// always match the bytes. A 429 `toomanyrequests` is final. On the source side a
    /// reference is pulled once a run: a second read (another target of the same source,
    /// the children of one index copied to two targets) is served from what was pulled.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        if self.side != Side::Source {
            return self.fetch_manifest(reference).await;
        }
        let pulled = &self.inner.pulled;
        let key = reference.to_string();
        let _turn = pulled.enter(&key).await;
        if let Some(manifest) = pulled.get(&key) {
            return Ok(manifest);
        }
        let read = self.fetch_manifest(reference).await;
        if let Ok(manifest) = &read {
            pulled.keep(key, manifest);
        }
        read
    }

    async fn fetch_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        let wanted = reference.manifest_reference();
        let repo = self
            .open(reference, format!("GET manifest {wanted}"))
            .await?;
        let call = Call::new(
            Method::GET,
            repo.url(&format!("manifests/{wanted}"))?,
            vec![reference.scope(&["pull"])],
        )
        .header(ACCEPT, &MANIFEST_MEDIA_TYPES.join(", "));
        let read = self
            .inner
            .options
            .retry
            .run(|_| async {
                // Docker Hub's pull limit is final (not retryable): the budget is gone
                // until its window turns.
                let sent = repo.send_once(&call, |s| s == StatusCode::OK).await?;
                self.note_rate_limit(reference, sent.response.headers());
                self.count_pull(reference);
                read_manifest(&repo, sent.response, reference.digest()).await
            })
            .await;
        if let Err(error) = &read {
            if error.is_pull_limit() {
                self.budget_spent(reference);
            }
        }
        read
    }

    /// PUT `bytes` as the manifest `reference` names (tag or digest); returns its digest.
    /// Fails if the registry reports a different digest than the bytes have.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let wanted = reference.manifest_reference();
        let repo = self
            .open(reference, format!("PUT manifest {wanted}"))
            .await?;
        let digest = sha256_digest(&bytes);
        if let Some(pinned) = reference.digest() {
            if pinned != digest {
                return Err(repo.error(ErrorKind::DigestMismatch {
                    expected: pinned.to_owned(),
                    actual: digest,
                }));
            }
        }
        let call = Call::new(
            Method::PUT,
            repo.url(&format!("manifests/{wanted}"))?,
            vec![reference.scope(&["pull", "push"])],
        )
        .header(CONTENT_TYPE, media_type)
        .payload(Payload::Bytes(bytes));
        let sent = repo
            .send(&call, |s| s == StatusCode::CREATED || s == StatusCode::OK)
            .await?;
        if let Some(stored) = sent
            .response
            .headers()
            .get(DIGEST_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            if stored.starts_with("sha256:") && stored != digest {
                return Err(repo.error(ErrorKind::DigestMismatch {
                    expected: digest,
                    actual: stored.to_owned(),
                }));
            }
        }
        Ok(digest)
    }
}

async fn read_manifest(
    repo: &Repo,
    response: reqwest::Response,
    pinned: Option<&str>,
) -> Result<Manifest, RegistryError> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let announced = header(DIGEST_HEADER);
    let content_type = header(CONTENT_TYPE.as_str())
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned());
    let cap = repo.limits().manifest_size;
    let body = repo
        .read_body(response, cap, "manifest", Some(Limit::ManifestSize))
        .await?;
    let digest = sha256_digest(&body);
    if let Some(pinned) = pinned {
        if !pinned.starts_with("sha256:") {
            return Err(repo.error(ErrorKind::Protocol(format!(
                "unsupported digest algorithm in {pinned}"
            ))));
        }
        if pinned != digest {
            return Err(repo.error(ErrorKind::DigestMismatch {
                expected: pinned.to_owned(),
                actual: digest,
            }));
        }
    }
    if let Some(announced) = announced.filter(|a| a.starts_with("sha256:")) {
        if announced != digest {
            return Err(repo.error(ErrorKind::DigestMismatch {
                expected: announced,
                actual: digest,
            }));
        }
    }
    let media_type = match content_type.filter(|t| MANIFEST_MEDIA_TYPES.contains(&t.as_str())) {
        Some(t) => t,
        None => sniff_media_type(&body).ok_or_else(|| {
            repo.error(ErrorKind::Protocol(
                "manifest has no known media type".into(),
            ))
        })?,
    };
    Ok(Manifest {
        bytes: body,
        media_type,
        digest,
    })
}

/// The `mediaType` field, or a guess from `manifests` (index) vs `layers` (image).
fn sniff_media_type(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    match (probe.media_type, probe.manifests, probe.layers) {
        (Some(t), _, _) if MANIFEST_MEDIA_TYPES.contains(&t.as_str()) => Some(t),
        (None, Some(_), _) => Some(OCI_INDEX.to_owned()),
        (None, None, Some(_)) => Some(OCI_MANIFEST.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#)
                .as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"layers":[]}"#).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(sniff_media_type(b"nope"), None);
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
