//! Blobs cached on disk by digest, so one source blob is fetched once per machine.
//!
//! Owns the directory layout (`<dir>/sha256/<hex>`), verification of what is written and
//! one fetch at a time per digest. It must not keep a blob whose bytes do not match.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::AsyncWriteExt;

use crate::gates::Gates;

/// Why a blob could not be cached.
#[derive(Debug, Error)]
pub enum CacheError {
    /// Disk trouble in the cache directory.
    #[error("blob cache {path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The fetched bytes hash to another digest; nothing was kept.
    #[error("blob {expected}: downloaded bytes have digest {actual}")]
    DigestMismatch {
        /// Digest asked for.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// Only sha256 digests are cached.
    #[error("blob {0}: unsupported digest algorithm")]
    Unsupported(String),
    /// The fetch itself failed (network, registry); the message is the fetcher's.
    #[error("{0}")]
    Fetch(String),
}

/// A directory of verified blobs.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
    inflight: Gates<String>,
}

impl BlobCache {
    /// A cache in `dir` (created when missing).
    pub fn new(dir: &Path) -> Self {
        BlobCache {
            dir: dir.to_owned(),
            inflight: Gates::default(),
        }
    }

    /// Where the blob with this digest lives when cached.
    pub fn path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| CacheError::Unsupported(digest.to_owned()))?;
        Ok(self.dir.join("sha256").join(hex))
    }

    /// The cached blob, fetching it with `fetch` first when missing. Concurrent callers for
    /// one digest wait for a single fetch. Returns the path and whether it was fetched now.
    pub async fn get_or_fetch<F, Fut, S, E>(
        &self,
        digest: &str,
        fetch: F,
    ) -> Result<(PathBuf, bool), CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<S, E>>,
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let path = self.path(digest)?;
        let _turn = self.inflight.enter(&digest.to_owned()).await;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            touch(&path);
            return Ok((path, false));
        }
        let result = match fetch().await {
            Ok(stream) => self.write_verified(digest, &path, stream).await,
            Err(e) => Err(CacheError::Fetch(e.to_string())),
        };
        // Waiters still holding the gate find the file (or fetch again after a failure).
        self.inflight.forget(&digest.to_owned());
        result.map(|()| (path, true))
    }

    async fn write_verified<S, E>(
        &self,
        digest: &str,
        path: &Path,
        stream: S,
    ) -> Result<(), CacheError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CacheError::Io { path, source }
        };
        let dir = path.parent().unwrap_or(&self.dir);
        tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
        let temp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
        let (file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = Sha256::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| CacheError::Fetch(e.to_string()))?;
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io(path))?;
        }
        file.sync_all().await.map_err(io(path))?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            return Err(CacheError::DigestMismatch {
                expected: digest.to_owned(),
                actual,
            });
        }
        temp_path.persist(path).map_err(|e| CacheError::Io {
            path: path.to_owned(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Cached blobs with their size and last use, least recently used first.
    pub fn list(&self) -> Result<Vec<(PathBuf, u64, SystemTime)>, CacheError> {
        let dir = self.dir.join("sha256");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CacheError::Io { path: dir, source }),
        };
        let mut blobs = Vec::new();
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                blobs.push((entry.path(), meta.len(), used));
            }
        }
        blobs.sort_by_key(|(path, _, used)| (*used, path.clone()));
        Ok(blobs)
    }

    /// Removes least recently used blobs until the total fits `max_size`; returns bytes freed.
    pub fn prune(&self, max_size: u64) -> Result<u64, CacheError> {
        let blobs = self.list()?;
        let mut total: u64 = blobs.iter().map(|(_, size, _)| size).sum();
        let mut freed = 0;
        for (path, size, _) in blobs {
            if total <= max_size {
                break;
            }
            std::fs::remove_file(&path).map_err(|source| CacheError::Io {
                path: path.clone(),
                source,
            })?;
            total -= size;
            freed += size;
        }
        Ok(freed)
    }
}

/// Marks a blob as used now (its mtime), for least-recently-used pruning.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn digest_of(data: &[u8]) -> String {
        crate::manifest::sha256_digest(data)
    }

    fn chunks(data: &'static [u8]) -> impl Stream<Item = Result<Bytes, String>> {
        futures::stream::iter(data.chunks(3).map(|c| Ok(Bytes::from_static(c))))
    }

    #[tokio::test]
    async fn one_fetch_for_concurrent_callers_then_hits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = BlobCache::new(dir.path());
        let data: &'static [u8] = b"layer bytes of some length";
        let digest = digest_of(data);
        let fetches = AtomicUsize::new(0);
        let get = || {
            cache.get_or_fetch(&digest, || async {
                fetches.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok::<_, String>(chunks(data))
            })
        };
        let (a, b, c) = tokio::join!(get(), get(), get());
        let fetched: Vec<bool> = [a, b, c]
            .into_iter()
            .map(|r| r.expect("cached").1)
            .collect();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(fetched.iter().filter(|f| **f).count(), 1);
        let path = cache.path(&digest).expect("path");
        assert_eq!(std::fs::read(path).expect("read"), data);
    }

    #[tokio::test]
    async fn wrong_bytes_are_never_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = BlobCache::new(dir.path());
        let digest = digest_of(b"what was promised");
        let err = cache
            .get_or_fetch(&digest, || async {
                Ok::<_, String>(chunks(b"something else"))
            })
            .await
            .expect_err("mismatch");
        assert!(matches!(err, CacheError::DigestMismatch { .. }), "{err}");
        assert!(!cache.path(&digest).expect("path").exists());
        assert_eq!(cache.list().expect("list").len(), 0, "no temp file left");
    }

    #[tokio::test]
    async fn a_failed_stream_keeps_nothing_and_prune_frees_oldest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = BlobCache::new(dir.path());
        let digest = digest_of(b"abc");
        let broken =
            futures::stream::iter(vec![Ok(Bytes::from_static(b"a")), Err("reset".to_owned())]);
        let err = cache
            .get_or_fetch(&digest, || async { Ok::<_, String>(broken) })
            .await
            .expect_err("broken stream");
        assert_eq!(err.to_string(), "reset");
        assert!(!cache.path(&digest).expect("path").exists());

        for data in [&b"first blob"[..], b"second blob", b"third blob!"] {
            let owned: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
            cache
                .get_or_fetch(&digest_of(owned), || async {
                    Ok::<_, String>(chunks(owned))
                })
                .await
                .expect("cached");
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        let freed = cache.prune(22).expect("prune");
        assert_eq!(freed, 10, "the oldest blob goes first");
        assert!(!cache
            .path(&digest_of(b"first blob"))
            .expect("path")
            .exists());
        assert!(cache
            .path(&digest_of(b"third blob!"))
            .expect("path")
            .exists());
    }
}
