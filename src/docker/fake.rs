//! An in-memory [`DockerApi`] for unit tests of code above the daemon (ordering, caching).
//!
//! Owns nothing real: it logs calls and keeps a map of images. It must not grow behaviour
//! the real daemon lacks.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{BuildRequest, DockerApi, DockerError, EventSink, ImageInfo, Pulled, RegistryAuth};
use crate::platform::Platform;
use crate::reference::Reference;

/// Logs every call as one line and answers from an in-memory image map.
#[derive(Debug, Default)]
pub struct FakeDocker {
    calls: Mutex<Vec<String>>,
    images: Mutex<BTreeMap<String, ImageInfo>>,
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

    /// The calls so far, one line each (`pull REF`, `tag SRC DST`, `remove ID` …).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
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
        _: Option<&Platform>,
        _: Option<&RegistryAuth>,
        _: &dyn EventSink,
    ) -> Result<Pulled, DockerError> {
        self.log(format!("pull {image}"));
        Ok(Pulled::default())
    }

    async fn tag(&self, source: &str, target: &Reference) -> Result<(), DockerError> {
        self.log(format!("tag {source} {target}"));
        Ok(())
    }

    async fn push(
        &self,
        target: &Reference,
        _: Option<&RegistryAuth>,
        _: &dyn EventSink,
    ) -> Result<String, DockerError> {
        self.log(format!("push {target}"));
        Ok(format!("sha256:{}", "0".repeat(64)))
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
