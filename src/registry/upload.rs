//! Blob writes: cross-repository mount, monolithic PUT for small blobs, PATCH chunks for
//! large ones, streamed from a file so memory stays bounded whatever the size.
//!
//! Owns upload sessions and `Location` handling; it must not retry a request whose body it
//! cannot rebuild: a failed upload restarts from a fresh session, rereading its source.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

use super::error::{ErrorKind, RegistryError};
use super::request::{redacted, Call, Payload, Repo};
use super::RegistryClient;
use crate::reference::Reference;

const OCTET_STREAM: &str = "application/octet-stream";

/// Where blob bytes to upload come from; a file or bytes can be read again for a retry,
/// a stream cannot.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// A file on disk (e.g. the verified blob cache), streamed.
    File(PathBuf),
    /// Bytes in memory (configs, small blobs).
    Bytes(Bytes),
    /// `len` bytes arriving as a stream (a download copied on the fly, memory bounded by
    /// its producer): one monolithic PUT, one attempt, never retried; the registry checks
    /// the digest before it commits anything.
    Stream {
        /// The bytes; an `Err` item aborts the upload.
        body: SpentOnce,
        /// How many bytes it yields.
        len: u64,
    },
}

/// A byte stream that can be taken once (an upload body that cannot be rebuilt).
#[derive(Clone)]
pub struct SpentOnce(
    std::sync::Arc<
        std::sync::Mutex<Option<futures::stream::BoxStream<'static, std::io::Result<Bytes>>>>,
    >,
);

impl SpentOnce {
    /// Wraps `stream`.
    pub fn new(stream: futures::stream::BoxStream<'static, std::io::Result<Bytes>>) -> Self {
        SpentOnce(std::sync::Arc::new(std::sync::Mutex::new(Some(stream))))
    }

    /// The stream, the first time only.
    pub(crate) fn take(
        &self,
    ) -> Option<futures::stream::BoxStream<'static, std::io::Result<Bytes>>> {
        self.0.lock().ok()?.take()
    }
}

impl std::fmt::Debug for SpentOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpentOnce")
    }
}

/// An upload session opened by the registry (its `Location`).
#[derive(Clone)]
pub struct UploadSession {
    location: Url,
}

impl std::fmt::Debug for UploadSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSession")
            .field("location", &redacted(&self.location))
            .finish()
    }
}

/// Result of a cross-repository mount attempt.
#[derive(Debug, Clone)]
pub enum MountOutcome {
    /// The registry linked the blob into the target repository (201 naming the blob, or
    /// a 201 after which the repository has it).
    Mounted,
    /// The registry did not mount (202) and opened an upload session instead.
    NotMounted(UploadSession),
}

/// What [`RegistryClient::push_blob`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The target repository already had the blob.
    Existed,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

impl RegistryClient {
    /// Asks the registry of `target` to mount blob `digest` from `from_repository` (a
    /// repository path on the same registry), with one token covering both repositories.
    pub async fn mount_blob(
        &self,
        target: &Reference,
        from_repository: &str,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let repo = self
            .open(
                target,
                format!("mount blob {digest} from {from_repository}"),
            )
            .await?;
        let scopes = vec![
            target.scope(&["pull", "push"]),
            format!("repository:{from_repository}:pull"),
        ];
        let mut url = repo.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let call = Call::new(Method::POST, url, scopes);
        let sent = match repo
            .send(&call, |s| {
                s == StatusCode::CREATED || s == StatusCode::ACCEPTED
            })
            .await
        {
            Ok(sent) => sent,
            // Harbor answers 401 when `from` is not visible to the account, others 403 or
            // 404: a mount is an optimisation, so the blob is uploaded instead.
            Err(error) if is_refused_mount(&error) => {
                tracing::debug!(%error, "mount refused: uploading instead");
                return self.upload_instead(target, digest).await;
            }
            Err(error) => return Err(error),
        };
        if sent.response.status() != StatusCode::CREATED {
            let location = location(&repo, &sent.response)?;
            return Ok(MountOutcome::NotMounted(UploadSession { location }));
        }
        // A 201 naming the blob is a mount (distribution, Harbor). One without
        // `Docker-Content-Digest`, or naming another blob, is checked: a registry that
        // answers 201 to a mount it did not do would otherwise fail every manifest PUT
        // (`MANIFEST_BLOB_UNKNOWN`), run after run.
        let named = sent
            .response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        if named == Some(digest) || self.blob_exists(target, digest).await?.is_some() {
            return Ok(MountOutcome::Mounted);
        }
        tracing::debug!("mount of {digest} answered 201 without the blob: uploading instead");
        self.upload_instead(target, digest).await
    }

    /// A mount that did not happen: a plain upload session for `digest` in `target`.
    async fn upload_instead(
        &self,
        target: &Reference,
        digest: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let repo = self.open(target, format!("upload blob {digest}")).await?;
        let location = start_session(&repo).await?;
        Ok(MountOutcome::NotMounted(UploadSession { location }))
    }

    /// Uploads blob `digest` from `source` into the repository of `target`, in `session`
    /// when given (e.g. from a refused mount), else in a new one. A failed attempt is
    /// retried from a new session.
    pub async fn upload_blob(
        &self,
        target: &Reference,
        digest: &str,
        source: &BlobSource,
        session: Option<UploadSession>,
    ) -> Result<(), RegistryError> {
        let repo = self.open(target, format!("upload blob {digest}")).await?;
        let len = match source {
            BlobSource::Bytes(bytes) => bytes.len() as u64,
            BlobSource::Stream { len, .. } => *len,
            BlobSource::File(path) => tokio::fs::metadata(path)
                .await
                .map_err(|e| repo.error(ErrorKind::Io(format!("reading {}: {e}", path.display()))))?
                .len(),
        };
        let policy = &self.inner.options.retry;
        let mut session = session.map(|s| s.location);
        let mut attempt = 1;
        loop {
            match self
                .upload_once(&repo, digest, source, len, session.take())
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if matches!(source, BlobSource::Stream { .. }) => return Err(error),
                Err(error) if policy.pause(attempt, &error).await => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// Makes sure the repository of `target` has blob `digest`: nothing if it exists, a
    /// mount from `mount_from` (same registry) when given and accepted, else an upload.
    pub async fn push_blob(
        &self,
        target: &Reference,
        digest: &str,
        source: &BlobSource,
        mount_from: Option<&str>,
    ) -> Result<BlobPush, RegistryError> {
        if self.blob_exists(target, digest).await?.is_some() {
            return Ok(BlobPush::Existed);
        }
        let mut session = None;
        if let Some(from) = mount_from.filter(|from| *from != target.repository()) {
            match self.mount_blob(target, from, digest).await? {
                MountOutcome::Mounted => return Ok(BlobPush::Mounted),
                MountOutcome::NotMounted(opened) => session = Some(opened),
            }
        }
        self.upload_blob(target, digest, source, session).await?;
        Ok(BlobPush::Uploaded)
    }

    async fn upload_once(
        &self,
        repo: &Repo,
        digest: &str,
        source: &BlobSource,
        len: u64,
        session: Option<Url>,
    ) -> Result<(), RegistryError> {
        let scopes = vec![repo.reference.scope(&["pull", "push"])];
        let mut location = match session {
            Some(location) => location,
            None => start_session(repo).await?,
        };
        let options = &self.inner.options;
        let mut finish = Payload::Empty;
        if len <= options.monolithic_limit || matches!(source, BlobSource::Stream { .. }) {
            finish = payload(source, 0, len);
        } else {
            let chunk_size = options.chunk_size.max(1);
            let mut offset = 0;
            while offset < len {
                let chunk = chunk_size.min(len - offset);
                let range = format!("{}-{}", offset, offset + chunk - 1);
                let call = Call::new(Method::PATCH, location.clone(), scopes.clone())
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .header(CONTENT_RANGE, &range)
                    .payload(payload(source, offset, chunk));
                let sent = repo
                    .send_once(&call, |s| {
                        s == StatusCode::ACCEPTED || s == StatusCode::NO_CONTENT
                    })
                    .await?;
                location = self::location(repo, &sent.response)?;
                offset += chunk;
            }
        }
        location.query_pairs_mut().append_pair("digest", digest);
        let call = Call::new(Method::PUT, location, scopes)
            .header(CONTENT_TYPE, OCTET_STREAM)
            .payload(finish);
        let sent = repo
            .send_once(&call, |s| {
                s == StatusCode::CREATED || s == StatusCode::NO_CONTENT
            })
            .await?;
        if let Some(stored) = sent
            .response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if stored != digest {
                return Err(repo.error(ErrorKind::DigestMismatch {
                    expected: digest.to_owned(),
                    actual: stored.to_owned(),
                }));
            }
        }
        Ok(())
    }
}

/// Opens an upload session in the repository of `repo`: its `Location`.
async fn start_session(repo: &Repo) -> Result<Url, RegistryError> {
    let scopes = vec![repo.reference.scope(&["pull", "push"])];
    let call = Call::new(Method::POST, repo.url("blobs/uploads/")?, scopes);
    let sent = repo
        .send(&call, |s| {
            s == StatusCode::ACCEPTED || s == StatusCode::CREATED
        })
        .await?;
    location(repo, &sent.response)
}

/// A mount the registry refused for good (no access to `from`, not supported): an upload
/// may still work. Anything retryable was retried already and stays an error.
fn is_refused_mount(error: &RegistryError) -> bool {
    !error.is_retryable() && matches!(error.status(), Some(400 | 401 | 403 | 404 | 405))
}

fn payload(source: &BlobSource, offset: u64, len: u64) -> Payload {
    match source {
        BlobSource::Bytes(bytes) => {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = usize::try_from(offset + len)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            Payload::Bytes(bytes.slice(start..end))
        }
        BlobSource::Stream { body, len } => Payload::Stream {
            body: body.clone(),
            len: *len,
        },
        BlobSource::File(path) => Payload::File {
            path: path.clone(),
            offset,
            len,
        },
    }
}

/// The `Location` of an upload response, resolved against the registry URL.
fn location(repo: &Repo, response: &reqwest::Response) -> Result<Url, RegistryError> {
    let value = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            repo.error(ErrorKind::Protocol(
                "upload response has no Location".into(),
            ))
        })?;
    repo.resolve(value)
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};

    use super::*;
    use crate::registry::tests::{client, envelope, open_registry, received, reference};

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    #[tokio::test]
    async fn a_refused_mount_opens_a_plain_upload_session() {
        let server = open_registry().await;
        Mock::given(method("POST"))
            .and(path("/v2/team/app/blobs/uploads/"))
            .and(query_param("mount", DIGEST))
            .respond_with(ResponseTemplate::new(401).set_body_json(envelope(
                "UNAUTHORIZED",
                "unauthorized to access repository: other/repo, action: pull",
            )))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/team/app/blobs/uploads/"))
            .respond_with(
                ResponseTemplate::new(202)
                    .insert_header("Location", "/v2/team/app/blobs/uploads/s1"),
            )
            .with_priority(2)
            .mount(&server)
            .await;
        let outcome = client(&server, false)
            .mount_blob(&reference(&server, "team/app:1"), "other/repo", DIGEST)
            .await
            .expect("a refused mount is no error");
        let MountOutcome::NotMounted(session) = outcome else {
            panic!("not mounted: {outcome:?}");
        };
        assert_eq!(session.location.path(), "/v2/team/app/blobs/uploads/s1");
        let posts = received(&server, "/v2/team/app/blobs/uploads/").await;
        assert_eq!(posts.len(), 2, "the mount once, then a plain POST");
        assert!(posts[1].url.query().is_none(), "{:?}", posts[1].url);
    }

    #[tokio::test]
    async fn a_mount_that_fails_for_a_retryable_cause_stays_an_error() {
        let server = open_registry().await;
        Mock::given(method("POST"))
            .and(path("/v2/team/app/blobs/uploads/"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let error = client(&server, false)
            .mount_blob(&reference(&server, "team/app:1"), "other/repo", DIGEST)
            .await
            .expect_err("a 500 after the retries is an error");
        assert_eq!(error.status(), Some(500));
    }

    #[tokio::test]
    async fn a_201_mount_without_the_blob_falls_back_to_an_upload() {
        // (Docker-Content-Digest of the 201, blob HEAD status, mounted?, HEADs sent)
        let cases = [
            (Some(DIGEST), 404, true, 0),
            (None, 200, true, 1),
            (None, 404, false, 1),
            (Some("sha256:ffff"), 404, false, 1),
        ];
        for (named, head, mounted, heads) in cases {
            let server = open_registry().await;
            let mut created = ResponseTemplate::new(201);
            if let Some(named) = named {
                created = created.insert_header("Docker-Content-Digest", named);
            }
            Mock::given(method("POST"))
                .and(path("/v2/team/app/blobs/uploads/"))
                .and(query_param("mount", DIGEST))
                .respond_with(created)
                .with_priority(1)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/v2/team/app/blobs/uploads/"))
                .respond_with(
                    ResponseTemplate::new(202)
                        .insert_header("Location", "/v2/team/app/blobs/uploads/s1"),
                )
                .with_priority(2)
                .mount(&server)
                .await;
            Mock::given(method("HEAD"))
                .and(path(format!("/v2/team/app/blobs/{DIGEST}")))
                .respond_with(ResponseTemplate::new(head))
                .mount(&server)
                .await;
            let case = format!("{named:?}, HEAD {head}");
            let outcome = client(&server, false)
                .mount_blob(&reference(&server, "team/app:1"), "other/repo", DIGEST)
                .await
                .expect(&case);
            match (mounted, &outcome) {
                (true, MountOutcome::Mounted) => {}
                (false, MountOutcome::NotMounted(session)) => {
                    assert_eq!(session.location.path(), "/v2/team/app/blobs/uploads/s1")
                }
                _ => panic!("{case}: {outcome:?}"),
            }
            let sent = received(&server, &format!("/v2/team/app/blobs/{DIGEST}")).await;
            assert_eq!(sent.len(), heads, "{case}");
        }
    }
}
