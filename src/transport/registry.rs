//! Registry to registry over the distribution API: manifests byte-identical, blobs the
//! target has skipped, blobs of the same target registry mounted, the rest streamed once
//! through the verified disk cache; big blobs go GET -> PUT on the fly while the cache
//! keeps a copy (download and upload overlap, memory stays bounded).
//!
//! Owns the order of a copy (blobs, then platform manifests, then the tag). It must not
//! tag anything before every part it points at is in place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{SinkExt, StreamExt, TryStreamExt};

use super::{other, outcome, CopyError, Transport};
use crate::cache::BlobCache;
use crate::decide::{state_key, Content, Source, Writes};
use crate::event::{JobEvents, LayerStatus, Outcome};
use crate::gates::Gates;
use crate::manifest::{self, Blob, Child, Parsed};
use crate::plan::Job;
use crate::reference::Reference;
use crate::registry::{
    BlobSource, BlobStream, MountOutcome, RegistryClient, RegistryError, SpentOnce, UploadSession,
};
use crate::state::State;

/// Blobs copied at once within one image.
const BLOBS_AT_ONCE: usize = 4;
/// Blobs at least this large are streamed from the source to the target while the cache
/// keeps a copy, instead of being downloaded first and uploaded from the cache.
pub const STREAM_ABOVE: u64 = 32 * 1024 * 1024;
/// Chunks of a streamed blob between its download and its upload (a few MiB at most).
const STREAM_CHUNKS: usize = 16;
/// Indexes inside indexes copied this deep (every entry is kept as it is).
const MAX_NESTING: u8 = 3;

/// Copies images between registries without a daemon.
#[derive(Debug, Clone)]
pub struct RegistryTransport {
    source: RegistryClient,
    target: RegistryClient,
    cache: BlobCache,
    state: Arc<State>,
    force: bool,
    /// Where on a target registry a blob is known to be: (registry, digest) → repository.
    seen: Arc<Mutex<HashMap<(String, String), String>>>,
    /// One copy at a time per (target registry, digest).
    gates: Gates<(String, String)>,
    /// Blobs of at least this many bytes are streamed GET -> PUT.
    stream_above: u64,
}

impl RegistryTransport {
    /// A transport pulling with `source`, pushing with `target` (its push-side twin),
    /// caching blobs in `cache` and recording what it wrote in `state`. With `force`,
    /// platform manifests the target already has are copied again.
    pub fn new(
        source: RegistryClient,
        target: RegistryClient,
        cache: BlobCache,
        state: Arc<State>,
        force: bool,
    ) -> Self {
        RegistryTransport {
            source,
            target,
            cache,
            state,
            force,
            seen: Arc::default(),
            gates: Gates::default(),
            stream_above: STREAM_ABOVE,
        }
    }

    /// Streams blobs of at least `bytes` bytes GET -> PUT (default [`STREAM_ABOVE`]).
    pub fn stream_above(mut self, bytes: u64) -> Self {
        self.stream_above = bytes.max(1);
        self
    }

    async fn copy_job(
        &self,
        job: &Job,
        source: Source,
        events: &JobEvents,
    ) -> Result<Outcome, CopyError> {
        let mut bytes = 0;
        match &source.content {
            Content::Image { parts, config } => {
                // The config decide read: into the verified cache, not fetched again.
                let read = config.clone();
                self.cache
                    .get_or_fetch(&parts.config.digest, || async move {
                        Ok::<_, String>(futures::stream::once(async move { Ok::<_, String>(read) }))
                    })
                    .await?;
                bytes += self.copy_blobs(job, parts.blobs(), events).await?;
            }
            Content::Index { chosen, .. } => {
                for child in chosen {
                    bytes += self.copy_child(job, child, events, 1).await?;
                }
            }
        }
        let digest = self
            .target
            .put_manifest(
                &job.target,
                source.written().clone(),
                &source.manifest.media_type,
            )
            .await?;
        self.state.record_push(
            &state_key(job, Writes::SourceBytes),
            &source.manifest.digest,
            &digest,
        )?;
        Ok(Outcome::Copied {
            bytes,
            digest,
            note: source.note().map(str::to_owned),
        })
    }

    /// Copies one entry of an index: its blobs (or, for an index inside the index, each of
    /// its entries), then the manifest by digest. `depth` bounds nesting.
    fn copy_child<'a>(
        &'a self,
        job: &'a Job,
        child: &'a Child,
        events: &'a JobEvents,
        depth: u8,
    ) -> futures::future::BoxFuture<'a, Result<u64, CopyError>> {
        Box::pin(async move {
            let source = job.source.with_digest(&child.digest).map_err(other)?;
            let target = job.target.with_digest(&child.digest).map_err(other)?;
            if !self.force && self.target.head_manifest(&target).await?.is_some() {
                return Ok(0);
            }
            let manifest = self.source.get_manifest(&source).await?;
            let bytes = match manifest::parse(&manifest.media_type, &manifest.bytes)? {
                Parsed::Image(parts) => self.copy_blobs(job, parts.blobs(), events).await?,
                Parsed::Index(_) if depth >= MAX_NESTING => {
                    return Err(CopyError::Other(format!(
                        "index {} nests indexes more than {MAX_NESTING} deep",
                        child.digest
                    )))
                }
                Parsed::Index(grandchildren) => {
                    let mut bytes = 0;
                    for grandchild in &grandchildren {
                        bytes += self.copy_child(job, grandchild, events, depth + 1).await?;
                    }
                    bytes
                }
            };
            // Children first: the index goes in only once everything it names is there.
            self.target
                .put_manifest(&target, manifest.bytes, &manifest.media_type)
                .await?;
            Ok(bytes)
        })
    }

    async fn copy_blobs<'a>(
        &self,
        job: &Job,
        blobs: impl Iterator<Item = &'a Blob>,
        events: &JobEvents,
    ) -> Result<u64, CopyError> {
        let blobs: Vec<Blob> = blobs.filter(|b| !b.foreign).cloned().collect();
        // Every blob the target lacks is in the verified cache before the first write: a
        // source that lies about a size, stalls or breaks fails the image with nothing
        // written. Collected first: a closure kept inside the stream trips the
        // higher-ranked lifetime check of `Send` futures.
        let fetches: Vec<_> = blobs
            .iter()
            .map(|blob| self.prefetch(job, blob, events))
            .collect();
        let present: Vec<bool> = futures::stream::iter(fetches)
            .buffered(BLOBS_AT_ONCE)
            .try_collect()
            .await?;
        let copies: Vec<_> = blobs
            .iter()
            .zip(present)
            .filter(|(_, present)| !present)
            .map(|(blob, _)| self.copy_blob(job, blob, events))
            .collect();
        futures::stream::iter(copies)
            .buffer_unordered(BLOBS_AT_ONCE)
            .try_fold(0, |sum, sent| async move { Ok(sum + sent) })
            .await
    }

    /// Before any write: `true` when the target already has the blob (with the size its
    /// manifest declares); else the blob is fetched into the cache unless the target
    /// registry may mount it from another repository.
    async fn prefetch(
        &self,
        job: &Job,
        blob: &Blob,
        events: &JobEvents,
    ) -> Result<bool, CopyError> {
        let (source, target) = (&job.source, &job.target);
        if self.on_target(job, blob, events).await? {
            return Ok(true);
        }
        // A big blob is streamed by the copy itself (a source that breaks fails the image
        // before any manifest is written: blobs alone point at nothing).
        if self.mount_candidate(source, target, &blob.digest).is_none() && !self.streams(job, blob)
        {
            self.fetch(job, blob, events).await?;
        }
        Ok(false)
    }

    /// The blob in the verified cache (fetched once, whichever job asks first), with the
    /// size its manifest declares: its path.
    async fn fetch(
        &self,
        job: &Job,
        blob: &Blob,
        events: &JobEvents,
    ) -> Result<std::path::PathBuf, CopyError> {
        events.layer(&blob.digest, LayerStatus::Downloading, 0, Some(blob.size));
        let (path, _) = self
            .cache
            .get_or_fetch(&blob.digest, || {
                self.source
                    .get_blob(&job.source, &blob.digest, Some(blob.size))
            })
            .await?;
        check_cached_size(&path, blob).await?;
        Ok(path)
    }

    /// Whether the target has the blob already (then with the size its manifest declares:
    /// a manifest that lies about it is never pushed).
    async fn on_target(
        &self,
        job: &Job,
        blob: &Blob,
        events: &JobEvents,
    ) -> Result<bool, CopyError> {
        let Some(size) = self.target.blob_exists(&job.target, &blob.digest).await? else {
            return Ok(false);
        };
        if size != 0 && size != blob.size {
            return Err(CopyError::Other(format!(
                "blob {} has {size} bytes on the target, its manifest declares {}",
                blob.digest, blob.size
            )));
        }
        let total = Some(blob.size);
        events.layer(&blob.digest, LayerStatus::AlreadyExists, blob.size, total);
        self.remember(&job.target, &blob.digest);
        Ok(true)
    }

    /// One blob: skipped when the target has it, mounted when the target registry has it
    /// elsewhere, else fetched once into the cache and uploaded. Returns bytes uploaded.
    async fn copy_blob(
        &self,
        job: &Job,
        blob: &Blob,
        events: &JobEvents,
    ) -> Result<u64, CopyError> {
        let (source, target) = (&job.source, &job.target);
        let total = Some(blob.size);
        // One job at a time per blob and target registry: a concurrent job for another
        // repository waits, then mounts what this one uploaded instead of uploading again.
        let key = (target.registry().to_owned(), blob.digest.clone());
        let _turn = self.gates.enter(&key).await;
        if self.on_target(job, blob, events).await? {
            return Ok(0);
        }
        let mut session = None;
        if let Some(from) = self.mount_candidate(source, target, &blob.digest) {
            match self.target.mount_blob(target, &from, &blob.digest).await? {
                MountOutcome::Mounted => {
                    events.layer(&blob.digest, LayerStatus::Mounted, blob.size, total);
                    self.remember(target, &blob.digest);
                    return Ok(0);
                }
                MountOutcome::NotMounted(open) => session = Some(open),
            }
        }
        if self.streams(job, blob) && !self.cached(&blob.digest).await? {
            self.stream_blob(job, blob, session, events).await?;
        } else {
            let path = self.fetch(job, blob, events).await?;
            events.layer(&blob.digest, LayerStatus::Pushing, 0, total);
            self.target
                .upload_blob(target, &blob.digest, &BlobSource::File(path), session)
                .await?;
        }
        events.layer(&blob.digest, LayerStatus::Done, blob.size, total);
        self.remember(target, &blob.digest);
        Ok(blob.size)
    }

    /// Whether `blob` goes GET -> PUT on the fly: a big one between two registries (on one
    /// registry, a download holding the last request slot could starve its own upload).
    fn streams(&self, job: &Job, blob: &Blob) -> bool {
        blob.size >= self.stream_above && job.source.registry() != job.target.registry()
    }

    /// Whether the verified cache holds the blob already.
    async fn cached(&self, digest: &str) -> Result<bool, CopyError> {
        let path = self.cache.path(digest)?;
        Ok(tokio::fs::try_exists(&path).await.unwrap_or(false))
    }

    /// One big blob GET -> PUT on the fly: the download feeds the verified cache and, a few
    /// chunks behind at most, the upload (whose last chunk only arrives once the digest
    /// checked out). When the streamed upload fails but the download completed, the blob
    /// is uploaded again from the cache (a stream is never replayed); so is a blob another
    /// job was fetching into the cache meanwhile.
    async fn stream_blob(
        &self,
        job: &Job,
        blob: &Blob,
        session: Option<UploadSession>,
        events: &JobEvents,
    ) -> Result<(), CopyError> {
        let (source, target) = (&job.source, &job.target);
        events.layer(&blob.digest, LayerStatus::Pushing, 0, Some(blob.size));
        let (sender, receiver) = futures::channel::mpsc::channel(STREAM_CHUNKS);
        let fetch = self.cache.get_or_fetch(&blob.digest, || async move {
            let stream = self
                .source
                .get_blob(source, &blob.digest, Some(blob.size))
                .await?;
            Ok::<_, RegistryError>(tee(stream, sender))
        });
        // The upload starts with the first byte: when another job holds the cache's turn
        // for this blob, the fetch is never called (the cache has the blob once it is its
        // turn) and nothing is streamed; no session is opened for a body that never comes.
        let upload = async move {
            let mut body = receiver.peekable();
            if std::pin::Pin::new(&mut body).peek().await.is_none() {
                return (session, None);
            }
            let body = BlobSource::Stream {
                body: SpentOnce::new(body.boxed()),
                len: blob.size,
            };
            let sent = self
                .target
                .upload_blob(target, &blob.digest, &body, session)
                .await;
            (None, Some(sent))
        };
        let (fetched, (unused, uploaded)) = futures::join!(fetch, upload);
        let (path, _) = fetched?;
        check_cached_size(&path, blob).await?;
        if let Some(Err(error)) = &uploaded {
            tracing::debug!(%error, "streamed upload of {} failed: from the cache", blob.digest);
        }
        if !matches!(uploaded, Some(Ok(()))) {
            self.target
                .upload_blob(target, &blob.digest, &BlobSource::File(path), unused)
                .await?;
        }
        Ok(())
    }

    /// A repository of the target registry known to hold the blob: the source itself when
    /// both live on one registry, else one this run pushed the blob to.
    fn mount_candidate(
        &self,
        source: &Reference,
        target: &Reference,
        digest: &str,
    ) -> Option<String> {
        if source.registry() == target.registry() && source.repository() != target.repository() {
            return Some(source.repository().to_owned());
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&(target.registry().to_owned(), digest.to_owned()))
            .filter(|repo| repo.as_str() != target.repository())
            .cloned()
    }

    fn remember(&self, target: &Reference, digest: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(
            (target.registry().to_owned(), digest.to_owned()),
            target.repository().to_owned(),
        );
    }
}

impl Transport for RegistryTransport {
    async fn copy(&self, job: &Job, source: Source, events: &JobEvents) -> Outcome {
        outcome(job, self.copy_job(job, source, events).await)
    }
}

/// `stream` as it is, each chunk also sent to `copy` (waiting while `copy` is full, so the
/// download runs at most a few chunks ahead of the upload). Once `copy` is gone (the
/// upload gave up), the download goes on for the cache alone.
fn tee(
    stream: BlobStream,
    copy: futures::channel::mpsc::Sender<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = Result<Bytes, RegistryError>> {
    futures::stream::unfold((stream, Some(copy)), |(mut stream, mut copy)| async move {
        let item = stream.next().await?;
        if let Some(sender) = copy.as_mut() {
            let twin = match &item {
                Ok(bytes) => Ok(bytes.clone()),
                Err(error) => Err(std::io::Error::other(error.to_string())),
            };
            if sender.send(twin).await.is_err() {
                copy = None;
            }
        }
        Some((item, (stream, copy)))
    })
}

/// A cached blob (fetched now, or earlier for another image) must have the size `blob`
/// declares: a manifest that lies about a layer is never copied.
async fn check_cached_size(path: &std::path::Path, blob: &Blob) -> Result<(), CopyError> {
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| CopyError::Other(format!("reading cached blob {}: {e}", path.display())))?
        .len();
    if size == blob.size {
        return Ok(());
    }
    Err(CopyError::Other(format!(
        "blob {} has {size} bytes, its manifest declares {}",
        blob.digest, blob.size
    )))
}
