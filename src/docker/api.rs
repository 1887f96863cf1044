//! `DockerApi`: the narrow set of Docker Engine operations ferry needs, and their types.
//!
//! Owns the seam between ferry and the daemon (a fake implements it in unit tests of
//! ordering and caching); it must not hold any bollard or HTTP type.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use bytes::Bytes;

use super::auth::RegistryAuth;
use super::error::DockerError;
use super::events::EventSink;
use crate::platform::Platform;
use crate::reference::Reference;

/// An image as the daemon describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    /// Image id (`sha256:…` of its config).
    pub id: String,
    /// `repo:tag` names pointing at it.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…` digests it was pulled by or pushed as.
    pub repo_digests: Vec<String>,
    /// Size in bytes, shared layers included.
    pub size: u64,
    /// Labels of its config.
    pub labels: BTreeMap<String, String>,
    /// Creation time, seconds since the Unix epoch (UTC); `None` when unreadable.
    pub created: Option<i64>,
    /// Operating system (`linux`); `None` in [`DockerApi::list`] results, which lack it.
    pub os: Option<String>,
    /// CPU architecture (`amd64`, `arm64`); `None` in [`DockerApi::list`] results.
    pub architecture: Option<String>,
    /// Diff ids of its layers, bottom first; empty in [`DockerApi::list`] results.
    pub layers: Vec<String>,
}

/// What a pull amounted to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pulled {
    /// The manifest digest the daemon resolved (for a multi-platform tag, the index digest).
    pub digest: Option<String>,
    /// False when the daemon already had the image (`Image is up to date`).
    pub downloaded: bool,
}

/// The build context: a tar archive holding the Dockerfile and the files it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildContext {
    /// The archive in memory.
    Tar(Bytes),
    /// The archive in a file, streamed to the daemon.
    TarFile(PathBuf),
}

/// A build with the classic builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The context archive.
    pub context: BuildContext,
    /// Path of the Dockerfile inside the context.
    pub dockerfile: String,
    /// `--build-arg` values (`BASE_IMAGE`, …).
    pub build_args: BTreeMap<String, String>,
    /// Labels set on the result (base digest and context hash for `continuous` mode).
    pub labels: BTreeMap<String, String>,
    /// Tags given to the result.
    pub tags: Vec<Reference>,
    /// Target platform (`linux/arm64`); the daemon's own when `None`.
    pub platform: Option<Platform>,
    /// Ignore the build cache (the classic builder reuses steps across platforms).
    pub no_cache: bool,
    /// Credentials for registries the `FROM` lines pull from.
    pub registry_auths: Vec<RegistryAuth>,
}

impl BuildRequest {
    /// A build of `context` with `Dockerfile` at its root, tagged `tags`, nothing else set.
    pub fn new(context: BuildContext, tags: Vec<Reference>) -> Self {
        BuildRequest {
            context,
            dockerfile: "Dockerfile".to_owned(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            tags,
            platform: None,
            no_cache: false,
            registry_auths: Vec::new(),
        }
    }
}

/// The Docker Engine operations ferry uses. Every method reads the daemon's whole answer:
/// a pull or push that fails half-way is an error, never a silent success.
pub trait DockerApi: Send + Sync {
    /// Pulls `image` by tag or digest. With `platform` the daemon picks that entry of a
    /// multi-platform index, foreign architectures included; the pulled image is then
    /// checked to be of that platform.
    fn pull(
        &self,
        image: &Reference,
        platform: Option<&Platform>,
        auth: Option<&RegistryAuth>,
        events: &dyn EventSink,
    ) -> impl Future<Output = Result<Pulled, DockerError>> + Send;

    /// Names the local image `source` (id, `repo:tag` or `repo@sha256:…`) `target`, which
    /// must carry a tag.
    fn tag(
        &self,
        source: &str,
        target: &Reference,
    ) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Pushes `target` (which must carry a tag); returns the manifest digest the registry
    /// now serves under that tag.
    fn push(
        &self,
        target: &Reference,
        auth: Option<&RegistryAuth>,
        events: &dyn EventSink,
    ) -> impl Future<Output = Result<String, DockerError>> + Send;

    /// Describes a local image (id or reference); `None` when the daemon does not have it.
    fn inspect(
        &self,
        image: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, DockerError>> + Send;

    /// Local images carrying all of `labels` (each `key` or `key=value`); all images when empty.
    fn list(
        &self,
        labels: &[&str],
    ) -> impl Future<Output = Result<Vec<ImageInfo>, DockerError>> + Send;

    /// Removes a local image: an id with all its tags, or one reference. Returns false when
    /// the daemon did not have it.
    fn remove(&self, image: &str) -> impl Future<Output = Result<bool, DockerError>> + Send;

    /// Builds with the classic builder; returns the id of the built image.
    fn build(
        &self,
        request: &BuildRequest,
        events: &dyn EventSink,
    ) -> impl Future<Output = Result<String, DockerError>> + Send;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::docker::fake::FakeDocker;
    use crate::docker::DiscardEvents;

    /// Pull, tag, push on a tokio worker: the trait's futures must be `Send`.
    async fn mirror<D: DockerApi + 'static>(
        docker: Arc<D>,
        source: Reference,
        target: Reference,
    ) -> Result<String, DockerError> {
        let worker = tokio::spawn(async move {
            docker.pull(&source, None, None, &DiscardEvents).await?;
            docker.tag(&source.to_string(), &target).await?;
            docker.push(&target, None, &DiscardEvents).await
        });
        worker.await.expect("worker finished")
    }

    #[tokio::test]
    async fn generic_callers_run_the_operations_on_spawned_tasks() {
        let fake = Arc::new(FakeDocker::default());
        let source: Reference = "nginx:1.25".parse().expect("ref");
        let target: Reference = "127.0.0.1:5000/library/nginx:1.25".parse().expect("ref");
        let digest = mirror(fake.clone(), source, target)
            .await
            .expect("mirrored");
        assert!(digest.starts_with("sha256:"));
        assert_eq!(
            fake.calls(),
            [
                "pull docker.io/library/nginx:1.25",
                "tag docker.io/library/nginx:1.25 127.0.0.1:5000/library/nginx:1.25",
                "push 127.0.0.1:5000/library/nginx:1.25"
            ]
        );
    }
}
