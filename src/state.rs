//! The state file (`.ferry/state.json`): what was pushed where, and what ferry pulled.
//!
//! Owns reading and atomically writing that one file. Losing it costs time, never
//! correctness: a missing or unreadable file is an empty state, and nothing here decides
//! whether work is skipped (the transports check that the target still serves the digest).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

const VERSION: u32 = 1;
/// Largest state file read (a record is about 200 bytes: a million of them fit).
const MAX_STATE_FILE: u64 = 256 * 1024 * 1024;

/// The state file could not be written.
#[derive(Debug, Error)]
#[error("cannot write state file {path}: {source}")]
pub struct StateError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// That a source digest was pushed to a target, and which digest the target then served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushRecord {
    /// Digest of the source manifest (or index) that was copied.
    pub source_digest: String,
    /// Digest the target served right after the push.
    pub pushed_digest: String,
    /// Unix seconds of the push.
    pub at: u64,
}

/// That a source digest has nothing to copy for a selection (no Linux platform, none
/// selected), so a no-op run does not read its manifest again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkipRecord {
    /// Digest of the source manifest (or index) that was read.
    pub source_digest: String,
    /// The Linux platforms it has (empty: none).
    pub linux: Vec<String>,
    /// The platform of a single image without Linux, when its config said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// An image ferry pulled into the daemon, kept as a layer cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheRecord {
    /// The reference it was pulled as.
    pub reference: String,
    /// Size the daemon reports, in bytes.
    pub size: u64,
    /// Unix seconds it was last pulled or used.
    pub last_used: u64,
}

/// What planning read of a source image (`limit` counting Linux images, `order: created`),
/// by its manifest digest: a later run that finds the same digest by HEAD (free) reads
/// nothing (a manifest GET is a pull on Docker Hub).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageFacts {
    /// Whether it has a Linux platform, once read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<bool>,
    /// Whether its creation time was read (`created` then says it, or that it has none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_read: bool,
    /// Its creation time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Document {
    version: u32,
    #[serde(default)]
    pushed: BTreeMap<String, PushRecord>,
    #[serde(default)]
    cache: BTreeMap<String, CacheRecord>,
    #[serde(default)]
    skipped: BTreeMap<String, SkipRecord>,
    #[serde(default)]
    images: BTreeMap<String, ImageFacts>,
}

/// The state of one run, shared by its workers; every change is saved at once.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    document: Mutex<Document>,
    /// Changes kept in memory only until [`State::flush`] (planning's many small ones).
    unsaved: std::sync::atomic::AtomicBool,
}

impl State {
    /// Reads the state file (a regular file, bounded). Missing or unreadable means empty;
    /// the warning says why.
    pub fn load(path: &Path) -> (State, Option<String>) {
        let (document, warning) = match crate::local_file::read(path, MAX_STATE_FILE) {
            Ok(None) => (Document::default(), None),
            Err(e) => (
                Document::default(),
                Some(format!(
                    "cannot read state file {}: {e}; starting empty",
                    path.display()
                )),
            ),
            Ok(Some(bytes)) => match serde_json::from_slice::<Document>(&bytes) {
                Ok(doc) if doc.version == VERSION => (doc, None),
                Ok(doc) => (
                    Document::default(),
                    Some(format!(
                        "state file {} has version {}, expected {VERSION}; starting empty",
                        path.display(),
                        doc.version
                    )),
                ),
                Err(e) => (
                    Document::default(),
                    Some(format!(
                        "state file {} is damaged ({e}); starting empty",
                        path.display()
                    )),
                ),
            },
        };
        let state = State {
            path: path.to_owned(),
            document: Mutex::new(document),
            unsaved: Default::default(),
        };
        (state, warning)
    }

    /// Checks, before any work, that a run can save its state at `path`: whatever is
    /// there is a regular file it may write, and its directory (created when missing) takes
    /// a new file, as the atomic save needs. A run that pushed and then could not record it
    /// would push again on every rerun.
    pub fn check_writable(path: &Path) -> Result<(), StateError> {
        let error = |source| StateError {
            path: path.to_owned(),
            source,
        };
        if let Ok(metadata) = std::fs::metadata(path) {
            if !metadata.is_file() {
                let not_file = std::io::Error::other("not a regular file");
                return Err(error(not_file));
            }
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(error)?;
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(error)?;
        tempfile::NamedTempFile::new_in(&dir).map_err(error)?;
        Ok(())
    }

    /// The digest pushed to `target` for exactly this `source_digest`, if recorded.
    pub fn pushed(&self, target: &str, source_digest: &str) -> Option<String> {
        let document = self.lock();
        document
            .pushed
            .get(target)
            .filter(|r| r.source_digest == source_digest)
            .map(|r| r.pushed_digest.clone())
    }

    /// Records a finished push and saves the file.
    pub fn record_push(
        &self,
        target: &str,
        source_digest: &str,
        pushed_digest: &str,
    ) -> Result<(), StateError> {
        let mut document = self.lock();
        document.pushed.insert(
            target.to_owned(),
            PushRecord {
                source_digest: source_digest.to_owned(),
                pushed_digest: pushed_digest.to_owned(),
                at: now(),
            },
        );
        self.save(&document)
    }

    /// Why `key` had nothing to copy from exactly this `source_digest`, if recorded.
    pub fn skipped(&self, key: &str, source_digest: &str) -> Option<SkipRecord> {
        let document = self.lock();
        document
            .skipped
            .get(key)
            .filter(|r| r.source_digest == source_digest)
            .cloned()
    }

    /// Records that `key` has nothing to copy from this source digest, and saves the file.
    pub fn record_skip(&self, key: &str, record: SkipRecord) -> Result<(), StateError> {
        let mut document = self.lock();
        if document.skipped.get(key) == Some(&record) {
            return Ok(());
        }
        document.skipped.insert(key.to_owned(), record);
        self.save(&document)
    }

    /// What planning read of the source image with manifest `digest`, if recorded.
    pub fn image_facts(&self, digest: &str) -> Option<ImageFacts> {
        self.lock().images.get(digest).cloned()
    }

    /// Adds to what planning read of the image with manifest `digest`, in memory: one
    /// [`State::flush`] after planning saves them all (a tag list of thousands would
    /// otherwise rewrite the file thousands of times).
    pub fn record_image_facts(&self, digest: &str, change: impl FnOnce(&mut ImageFacts)) {
        let mut document = self.lock();
        let facts = document.images.entry(digest.to_owned()).or_default();
        let before = facts.clone();
        change(facts);
        if *facts != before {
            self.unsaved
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Saves what was recorded in memory only, if anything.
    pub fn flush(&self) -> Result<(), StateError> {
        if !self
            .unsaved
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let document = self.lock();
        self.save(&document)
    }

    /// Records that ferry pulled (or reused) this daemon image now, and saves the file.
    pub fn touch_cached(
        &self,
        image_id: &str,
        reference: &str,
        size: u64,
    ) -> Result<(), StateError> {
        let mut document = self.lock();
        document.cache.insert(
            image_id.to_owned(),
            CacheRecord {
                reference: reference.to_owned(),
                size,
                last_used: now(),
            },
        );
        self.save(&document)
    }

    /// Images ferry pulled, by daemon image id.
    pub fn cached(&self) -> BTreeMap<String, CacheRecord> {
        self.lock().cache.clone()
    }

    /// Forgets a cached image (after it was removed from the daemon) and saves the file.
    pub fn forget_cached(&self, image_id: &str) -> Result<(), StateError> {
        let mut document = self.lock();
        document.cache.remove(image_id);
        self.save(&document)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Document> {
        // A worker that panicked mid-update leaves a document that is still valid JSON data.
        self.document
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes to a temporary file in the same directory, syncs, then renames over the old one.
    fn save(&self, document: &Document) -> Result<(), StateError> {
        let error = |source| StateError {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(error)?;
        let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(error)?;
        let document = Document {
            version: VERSION,
            ..document.clone()
        };
        serde_json::to_writer_pretty(&mut file, &document).map_err(|e| error(e.into()))?;
        file.write_all(b"\n").map_err(error)?;
        file.as_file().sync_all().map_err(error)?;
        file.persist(&self.path).map_err(|e| error(e.error))?;
        Ok(())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(".ferry/state.json");
        let (state, warning) = State::load(&path);
        assert_eq!(warning, None);
        assert_eq!(state.pushed("t:1", "sha256:a"), None);
        state
            .record_push("t:1", "sha256:a", "sha256:b")
            .expect("save");
        state.touch_cached("img1", "src:1", 42).expect("save");

        let (again, warning) = State::load(&path);
        assert_eq!(warning, None);
        assert_eq!(again.pushed("t:1", "sha256:a").as_deref(), Some("sha256:b"));
        assert_eq!(
            again.pushed("t:1", "sha256:other"),
            None,
            "another source digest"
        );
        assert_eq!(again.cached()["img1"].size, 42);
        again.forget_cached("img1").expect("save");
        assert!(State::load(&path).0.cached().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_empty_state_with_a_warning() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{ not json").expect("write");
        let (state, warning) = State::load(&path);
        assert!(warning.is_some_and(|w| w.contains("damaged")));
        assert_eq!(state.pushed("t", "d"), None);
        state
            .record_push("t", "d", "p")
            .expect("overwrites the damaged file");
        let (_, warning) = State::load(Path::new("/dev/zero"));
        assert!(
            warning.is_some_and(|w| w.contains("not a regular file")),
            "a device is never read"
        );
        assert_eq!(State::load(&path).0.pushed("t", "d").as_deref(), Some("p"));
    }

    #[test]
    fn a_state_path_that_cannot_be_saved_is_refused_up_front() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fresh = dir.path().join("new/.ferry/state.json");
        State::check_writable(&fresh).expect("a new file in a new directory");
        assert!(!fresh.exists(), "nothing written but the directory");
        assert_eq!(
            std::fs::read_dir(fresh.parent().expect("dir"))
                .expect("dir")
                .count(),
            0
        );
        let cases = [
            (dir.path().to_owned(), "not a regular file"),
            (PathBuf::from("/proc"), "not a regular file"),
            (PathBuf::from("/proc/ferry-state.json"), ""),
            (PathBuf::from("/dev/zero"), "not a regular file"),
        ];
        for (path, says) in cases {
            let error = State::check_writable(&path).expect_err("cannot hold the state");
            assert!(
                error.to_string().contains(says),
                "{}: {error}",
                path.display()
            );
        }
    }

    #[test]
    fn no_temporary_files_are_left_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        let (state, _) = State::load(&path);
        for i in 0..5 {
            state
                .record_push(&format!("t:{i}"), "s", "p")
                .expect("save");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }
}
