//! Registry to registry over the distribution API: manifests byte-identical, blobs the
//! target has skipped, blobs of the same target registry mounted, the rest streamed once
//! through the verified disk cache.
//!
//! Owns the order of a copy (blobs, then platform manifests, then the tag). It must not
//! tag anything before every part it points at is in place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{other, outcome, CopyError};
use crate::cache::BlobCache;
use crate::event::{LayerStatus, Outcome};
use crate::gates::Gates;
use crate::manifest::{self, sha256_digest, Blob, Child, Parsed};
use crate::plan::Job;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{BlobSource, MountOutcome, RegistryClient};
use crate::run::{JobEvents, Transport};

/// Blobs copied at once within one image.
const BLOBS_AT_ONCE: usize = 4;

/// Copies images between registries without a daemon.
#[derive(Debug, Clone)]
pub struct RegistryTransport {
    source: RegistryClient,
    target: RegistryClient,
    cache: BlobCache,
    force: bool,
    /// Where on a target registry a blob is known to be: (registry, digest) → repository.
    seen: Arc<Mutex<HashMap<(String, String), String>>>,
    /// One copy at a time per (target registry, digest).
    gates: Gates<(String, String)>,
}

impl RegistryTransport {
    /// A transport pulling with `source`, pushing with `target` (its push-side twin), and
    /// caching blobs in `cache`. With `force`, targets that already match are copied again.
    pub fn new(
        source: RegistryClient,
        target: RegistryClient,
        cache: BlobCache,
        force: bool,
    ) -> Self {
        RegistryTransport {
            source,
            target,
            cache,
            force,
            seen: Arc::default(),
            gates: Gates::default(),
        }
    }

    async fn copy_job(&self, job: &Job, events: &JobEvents) -> Result<Outcome, CopyError> {
        let unchanged = || {
            Ok(Outcome::Skipped {
                reason: "unchanged".to_owned(),
            })
        };
        // A no-op costs two HEADs: the target already serves the source's digest.
        let target_digest = match self.force {
            true => None,
            false => self
                .target
                .head_manifest(&job.target)
                .await?
                .and_then(|h| h.digest),
        };
        if target_digest.is_some() && job.platforms.is_empty() {
            let source = self.source.head_manifest(&job.source).await?;
            if source.and_then(|h| h.digest) == target_digest {
                return unchanged();
            }
        }
        let top = self.source.get_manifest(&job.source).await?;
        let work = manifest::parse(&top.media_type, &top.bytes)?;
        let (manifest_bytes, media_type) = match &work {
            Parsed::Image(_) => (top.bytes.clone(), top.media_type.clone()),
            Parsed::Index(children) => {
                let chosen = choose(children, &job.platforms);
                if !chosen
                    .iter()
                    .any(|c| c.platform.as_ref().is_some_and(Platform::is_linux))
                {
                    return Err(CopyError::Skip("no Linux platform".to_owned()));
                }
                if chosen.len() == children.len() {
                    (top.bytes.clone(), top.media_type.clone())
                } else {
                    // A platform subset is a new list: compare what would be written.
                    let docker = top.media_type == manifest::DOCKER_MANIFEST_LIST;
                    let (list, media_type) = manifest::build_list(docker, &chosen)?;
                    (Bytes::from(list), media_type.to_owned())
                }
            }
        };
        if target_digest.is_some() && target_digest == Some(sha256_digest(&manifest_bytes)) {
            return unchanged();
        }
        let mut bytes = 0;
        match work {
            Parsed::Image(parts) => {
                let config = self.fetch_config(&job.source, &parts.config).await?;
                if manifest::config_platform(&config).is_some_and(|p| !p.is_linux()) {
                    return Err(CopyError::Skip("no Linux platform".to_owned()));
                }
                bytes += self.copy_blobs(job, parts.blobs(), events).await?;
            }
            Parsed::Index(children) => {
                for child in &choose(&children, &job.platforms) {
                    bytes += self.copy_child(job, child, events).await?;
                }
            }
        }
        let digest = self
            .target
            .put_manifest(&job.target, manifest_bytes, &media_type)
            .await?;
        Ok(Outcome::Copied { bytes, digest })
    }

    /// Copies one platform manifest of an index: its blobs, then the manifest by digest.
    async fn copy_child(
        &self,
        job: &Job,
        child: &Child,
        events: &JobEvents,
    ) -> Result<u64, CopyError> {
        let source = job.source.with_digest(&child.digest).map_err(other)?;
        let target = job.target.with_digest(&child.digest).map_err(other)?;
        if !self.force && self.target.head_manifest(&target).await?.is_some() {
            return Ok(0);
        }
        let manifest = self.source.get_manifest(&source).await?;
        let Parsed::Image(parts) = manifest::parse(&manifest.media_type, &manifest.bytes)? else {
            return Err(CopyError::Other(format!(
                "nested index {} is not supported",
                child.digest
            )));
        };
        let bytes = self.copy_blobs(job, parts.blobs(), events).await?;
        self.target
            .put_manifest(&target, manifest.bytes, &manifest.media_type)
            .await?;
        Ok(bytes)
    }

    async fn fetch_config(&self, source: &Reference, config: &Blob) -> Result<Vec<u8>, CopyError> {
        self.source.check_config_size(source, config)?;
        let (path, _) = self
            .cache
            .get_or_fetch(&config.digest, || {
                self.source
                    .get_blob(source, &config.digest, Some(config.size))
            })
            .await?;
        check_cached_size(&path, config).await?;
        tokio::fs::read(&path)
            .await
            .map_err(|e| CopyError::Other(format!("reading cached config {}: {e}", path.display())))
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
    async fn copy(&self, job: &Job, events: &JobEvents) -> Outcome {
        outcome(job, self.copy_job(job, events).await)
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

/// The entries of an index to copy: all of them, or those selected by `platforms`.
fn choose(children: &[Child], platforms: &[Platform]) -> Vec<Child> {
    if platforms.is_empty() {
        return children.to_vec();
    }
    children
        .iter()
        .filter(|c| {
            c.platform
                .as_ref()
                .is_some_and(|p| platforms.iter().any(|want| want.selects(p)))
        })
        .cloned()
        .collect()
}
