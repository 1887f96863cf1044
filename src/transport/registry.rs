//! Registry to registry over the distribution API: manifests byte-identical, blobs the
//! target has skipped, blobs of the same target registry mounted, the rest streamed once
//! through the verified disk cache.
//!
//! Owns the order of a copy (blobs, then platform manifests, then the tag). It must not
//! tag anything before every part it points at is in place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};

use super::{other, outcome, CopyError, Transport};
use crate::cache::BlobCache;
use crate::decide::{state_key, Content, Source, Writes};
use crate::event::{JobEvents, LayerStatus, Outcome};
use crate::gates::Gates;
use crate::manifest::{self, Blob, Child, Parsed};
use crate::plan::Job;
use crate::reference::Reference;
use crate::registry::{BlobSource, MountOutcome, RegistryClient};
use crate::state::State;

/// Blobs copied at once within one image.
const BLOBS_AT_ONCE: usize = 4;
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
        }
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
        if self.mount_candidate(source, target, &blob.digest).is_none() {
            events.layer(&blob.digest, LayerStatus::Downloading, 0, Some(blob.size));
            let (path, _) = self
                .cache
                .get_or_fetch(&blob.digest, || {
                    self.source.get_blob(source, &blob.digest, Some(blob.size))
                })
                .await?;
            check_cached_size(&path, blob).await?;
        }
        Ok(false)
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
        events.layer(&blob.digest, LayerStatus::Downloading, 0, total);
        let (path, _) = self
            .cache
            .get_or_fetch(&blob.digest, || {
                self.source.get_blob(source, &blob.digest, Some(blob.size))
            })
            .await?;
        check_cached_size(&path, blob).await?;
        events.layer(&blob.digest, LayerStatus::Pushing, 0, total);
        self.target
            .upload_blob(target, &blob.digest, &BlobSource::File(path), session)
            .await?;
        events.layer(&blob.digest, LayerStatus::Done, blob.size, total);
        self.remember(target, &blob.digest);
        Ok(blob.size)
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
