//! Blob reads: HEAD (exists?) and GET as a stream of bytes whose SHA-256 and length are
//! checked while reading, resumed with `Range` (or restarted) when the connection breaks.
//!
//! Owns download integrity; it must never end a stream successfully unless the bytes hashed
//! to the digest and had the size the manifest declares: the last chunk is held back and
//! replaced by an error on a mismatch, and a blob larger than declared fails at the first
//! byte too many (or at its `Content-Length`), never after downloading all of it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;

use super::error::{network, ErrorKind, RegistryError};
use super::request::{Call, Repo};
use super::RegistryClient;
use crate::reference::Reference;

/// Bytes of one blob, verified against its digest as they arrive. Yields `Err` instead of
/// its last chunk when the digest does not match; never ends `Ok` with wrong content.
pub struct BlobStream {
    inner: BoxStream<'static, Result<Bytes, RegistryError>>,
    size: Option<u64>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl BlobStream {
    /// Total size announced by the registry, when it was.
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl RegistryClient {
    /// Whether the repository of `reference` has blob `digest`; its size when it does.
    pub async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Option<u64>, RegistryError> {
        let repo = self.open(reference, format!("HEAD blob {digest}")).await?;
        let call = Call::new(
            Method::HEAD,
            repo.url(&format!("blobs/{digest}"))?,
            vec![reference.scope(&["pull"])],
        );
        let sent = repo
            .send(&call, |s| s == StatusCode::OK || s == StatusCode::NOT_FOUND)
            .await?;
        if sent.response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let size = sent
            .response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Some(size))
    }

    /// Streams blob `digest` (sha256 only) from the repository of `reference`; `size` is
    /// the size its descriptor declares, when known, and the blob must have exactly that
    /// many bytes. Errors before the first byte (404, denied, a `Content-Length` other than
    /// `size`) come from this call; later ones from the stream.
    pub async fn get_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobStream, RegistryError> {
        let repo = self.open(reference, format!("GET blob {digest}")).await?;
        let expected_hex = digest
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64)
            .ok_or_else(|| repo.error(ErrorKind::Protocol(format!("unsupported digest {digest}"))))?
            .to_owned();
        let mut download = Download {
            repo,
            digest: digest.to_owned(),
            expected_hex,
            hasher: Sha256::new(),
            declared: size,
            offset: 0,
            total: None,
            body: None,
            skip: 0,
            pending: None,
            breaks: 0,
            done: false,
        };
        download.open(true).await?;
        let size = download.total.or(size);
        let inner = futures::stream::unfold(download, |mut d| async move {
            let item = d.next_item().await?;
            Some((item, d))
        })
        .boxed();
        Ok(BlobStream { inner, size })
    }
}

struct Download {
    repo: Repo,
    digest: String,
    expected_hex: String,
    hasher: Sha256,
    /// Size the descriptor declares, when known.
    declared: Option<u64>,
    /// Bytes received and hashed so far.
    offset: u64,
    total: Option<u64>,
    body: Option<(
        BoxStream<'static, reqwest::Result<Bytes>>,
        OwnedSemaphorePermit,
    )>,
    /// Bytes still to drop from a restarted (200 instead of 206) response.
    skip: u64,
    /// The chunk held back until the next one (or the digest check) arrives.
    pending: Option<Bytes>,
    breaks: u32,
    done: bool,
}

impl Download {
    /// (Re)opens the body at `offset`, asking for a `Range` when resuming. The first open
    /// retries on its own; a reopen is one attempt, counted by [`Download::broken`], so a
    /// download has one retry budget however it breaks.
    async fn open(&mut self, first: bool) -> Result<(), RegistryError> {
        let scopes = vec![self.repo.reference.scope(&["pull"])];
        let mut call = Call::new(
            Method::GET,
            self.repo.url(&format!("blobs/{}", self.digest))?,
            scopes,
        );
        if self.offset > 0 {
            call = call.header(RANGE, &format!("bytes={}-", self.offset));
        }
        let ok = |s| s == StatusCode::OK || s == StatusCode::PARTIAL_CONTENT;
        let sent = if first {
            self.repo.send(&call, ok).await?
        } else {
            self.repo.send_once(&call, ok).await?
        };
        let headers = sent.response.headers();
        let number = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        self.skip = 0;
        if sent.response.status() == StatusCode::PARTIAL_CONTENT {
            let range = headers
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match range {
                Some((start, total)) if start == self.offset => {
                    if total.is_some() {
                        self.total = total;
                    }
                }
                _ => {
                    return Err(self.repo.error(ErrorKind::Protocol(
                        "resumed download has the wrong Content-Range".into(),
                    )));
                }
            }
        } else {
            if let Some(length) = number(CONTENT_LENGTH) {
                self.total = Some(length);
            }
            self.skip = self.offset;
        }
        if let (Some(total), Some(declared)) = (self.total, self.declared) {
            if total != declared {
                return Err(self.size_mismatch(total.to_string()));
            }
        }
        let stream = sent.response.bytes_stream().boxed();
        self.body = Some((stream, sent._permit));
        Ok(())
    }

    /// The next item for the consumer, or `None` once finished.
    async fn next_item(&mut self) -> Option<Result<Bytes, RegistryError>> {
        loop {
            if self.done {
                return None;
            }
            if self.body.is_none() {
                if let Err(error) = self.open(false).await {
                    if let Some(failure) = self.broken(error).await {
                        return Some(Err(failure));
                    }
                    continue;
                }
            }
            let next = match self.body.as_mut() {
                Some((stream, _)) => stream.next().await,
                None => continue,
            };
            match next {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = usize::try_from(self.skip)
                            .unwrap_or(usize::MAX)
                            .min(chunk.len());
                        let _ = chunk.split_to(drop);
                        self.skip -= drop as u64;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    self.hasher.update(&chunk);
                    self.offset += chunk.len() as u64;
                    if let Some(declared) = self.declared.filter(|d| self.offset > *d) {
                        self.done = true;
                        self.body = None;
                        let more = format!("more than {declared}");
                        return Some(Err(self.size_mismatch(more)));
                    }
                    if let Some(previous) = self.pending.replace(chunk) {
                        return Some(Ok(previous));
                    }
                }
                Some(Err(error)) => {
                    let limits = *self.repo.limits();
                    let error = match network(error, &limits) {
                        ErrorKind::Network(cause) => ErrorKind::Network(format!(
                            "download interrupted at byte {}: {cause}",
                            self.offset
                        )),
                        stall => stall,
                    };
                    if let Some(failure) = self.broken(self.repo.error(error)).await {
                        return Some(Err(failure));
                    }
                }
                None if self.total.is_some_and(|total| self.offset < total) => {
                    let cause = format!(
                        "download interrupted: body ended after {} of {:?} bytes",
                        self.offset, self.total
                    );
                    let error = self.repo.error(ErrorKind::Network(cause));
                    if let Some(failure) = self.broken(error).await {
                        return Some(Err(failure));
                    }
                }
                None => {
                    self.done = true;
                    self.body = None;
                    if self
                        .declared
                        .is_some_and(|declared| self.offset != declared)
                    {
                        return Some(Err(self.size_mismatch(self.offset.to_string())));
                    }
                    let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
                    if actual != self.expected_hex {
                        return Some(Err(self.repo.error(ErrorKind::DigestMismatch {
                            expected: self.digest.clone(),
                            actual: format!("sha256:{actual}"),
                        })));
                    }
                    return self.pending.take().map(Ok);
                }
            }
        }
    }

    /// The blob is not the size its descriptor declares (it has `actual` bytes).
    fn size_mismatch(&self, actual: String) -> RegistryError {
        let declared = self.declared.unwrap_or_default();
        self.repo.error(ErrorKind::SizeMismatch(format!(
            "blob has {actual} bytes, its manifest declares {declared}"
        )))
    }

    /// Records a broken body (or a failed reopen); after a backoff the loop reopens it with
    /// `Range`. Returns the error to give up with once the retry policy is exhausted.
    async fn broken(&mut self, error: RegistryError) -> Option<RegistryError> {
        self.body = None;
        self.breaks += 1;
        let policy = &self.repo.client.inner.options.retry;
        if policy.pause(self.breaks, &error).await {
            return None;
        }
        self.done = true;
        Some(error.exhausted())
    }
}

/// `bytes START-END/TOTAL` → (START, TOTAL when not `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let range = value.trim().strip_prefix("bytes")?.trim();
    let (span, total) = range.split_once('/')?;
    let (start, _) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
