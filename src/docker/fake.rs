//! An in-memory [`DockerApi`] for unit tests of code above the daemon (ordering, caching).
//!
//! Owns nothing real: it logs calls and keeps a map of images and local tags. It must not
//! grow behaviour the real daemon lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::{
    BuildRequest, DockerApi, DockerError, DockerErrorKind, ErrorClass, EventSink, ImageInfo,
    Operation, Pulled, RegistryAuth,
};
use crate::manifest::sha256_digest;
use crate::platform::Platform;
use crate::reference::Reference;

/// Logs every call as one line and answers from an in-memory image map. Clones share
/// everything, so a test keeps one clone while the code under test owns another.
#[derive(Debug, Default, Clone)]
pub struct FakeDocker {
    calls: Arc<Mutex<Vec<String>>>,
    images: Arc<Mutex<BTreeMap<String, ImageInfo>>>,
    /// Local name -> what was tagged as it (`tag SRC DST`).
    tags: Arc<Mutex<BTreeMap<String, String>>>,
    /// References whose push the "registry" refuses.
    refused: Arc<Mutex<BTreeSet<String>>>,
    /// (reference, digest) of every push that succeeded, in order.
    pushed: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeDocker {
    /// Puts an image with this id and size in the fake daemon.
    pub fn add_image(&self, id: &str, size: u64) {
        let info = ImageInfo {
            id: id.to_owned(),
            size,
            ..ImageInfo::default()
        };
        self.images
            .lock()
            .expect("lock")
            .insert(id.to_owned(), info);
    }

    /// The calls so far, one line each (`pull REF [PLATFORM]`, `tag SRC DST`, `push REF`,
    /// `remove ID` …), with the lines [`FakeDocker::record`] added, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }

    /// Adds a line to the call log from outside (a registry a test stands up), so one log
    /// orders daemon calls and registry requests.
    pub fn record(&self, line: String) {
        self.log(line);
    }

    /// The registry refuses pushes of `reference` (a permanent error, not retried).
    pub fn refuse_push(&self, reference: &str) {
        self.refused
            .lock()
            .expect("lock")
            .insert(reference.to_owned());
    }

    /// (reference, digest) of each push that succeeded, in order.
    pub fn pushed(&self) -> Vec<(String, String)> {
        self.pushed.lock().expect("lock").clone()
    }

    /// The digest a push of `reference` gives: one per image tagged as it (as a registry
    /// gives one per manifest), so two platforms never share one.
    pub fn digest_of(&self, reference: &str) -> String {
        let tags = self.tags.lock().expect("lock");
        let image = tags.get(reference).map_or(reference, String::as_str);
        sha256_digest(format!("pushed {image}").as_bytes())
    }

    /// Ids of the images the fake daemon holds.
    pub fn image_ids(&self) -> Vec<String> {
        self.images.lock().expect("lock").keys().cloned().collect()
    }

    fn log(&self, call: String) {
        self.calls.lock().expect("lock").push(call);
    }
}

impl DockerApi for FakeDocker {
    async fn pull(
        &self,
        image: &Reference,
        platform: Option<&Platform>,
        _: Option<&RegistryAuth>,
        _: &dyn EventSink,
    ) -> Result<Pulled, DockerError> {
        match platform {
            Some(platform) => self.log(format!("pull {image} {platform}")),
            None => self.log(format!("pull {image}")),
        }
        Ok(Pulled::default())
    }

    async fn tag(&self, source: &str, target: &Reference) -> Result<(), DockerError> {
        self.log(format!("tag {source} {target}"));
        self.tags
            .lock()
            .expect("lock")
            .insert(target.to_string(), source.to_owned());
        Ok(())
    }

    async fn push(
        &self,
        target: &Reference,
        _: Option<&RegistryAuth>,
        _: &dyn EventSink,
    ) -> Result<String, DockerError> {
        self.log(format!("push {target}"));
        let reference = target.to_string();
        if self.refused.lock().expect("lock").contains(&reference) {
            let kind = DockerErrorKind::Refused {
                class: ErrorClass::Other,
                message: "denied: requested access to the resource is denied".to_owned(),
            };
            return Err(DockerError::new(Operation::Push, reference, kind));
        }
        let digest = self.digest_of(&reference);
        self.pushed
            .lock()
            .expect("lock")
            .push((reference, digest.clone()));
        Ok(digest)
    }

    async fn inspect(&self, image: &str) -> Result<Option<ImageInfo>, DockerError> {
        Ok(self.images.lock().expect("lock").get(image).cloned())
    }

    async fn list(&self, _: &[&str]) -> Result<Vec<ImageInfo>, DockerError> {
        Ok(self
            .images
            .lock()
            .expect("lock")
            .values()
            .cloned()
            .collect())
    }

    async fn remove(&self, image: &str) -> Result<bool, DockerError> {
        self.log(format!("remove {image}"));
        Ok(self.images.lock().expect("lock").remove(image).is_some())
    }

    async fn build(
        &self,
        request: &BuildRequest,
        _: &dyn EventSink,
    ) -> Result<String, DockerError> {
        let tags: Vec<String> = request.tags.iter().map(Reference::to_string).collect();
        self.log(format!("build {}", tags.join(" ")));
        Ok(format!("sha256:{}", "1".repeat(64)))
    }
}
