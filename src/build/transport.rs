//! [`BuildTransport`]: one job = decide, pull the base by digest, build, push, so builds
//! share `run`'s concurrency, events and reports with mirroring.
//!
//! Owns the daemon side of a build; it must not move the target tag unless the build
//! succeeded, and must not build without recording base digest and context in labels.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::context::{self, ContextError};
use super::decide::{decide, Decision, Fingerprint, Request};
use super::target::{self, ReadError};
use super::BuildOptions;
use crate::config::{BuildImage, BuildMode};
use crate::docker::{BuildContext, BuildRequest, DockerApi, DockerError, DockerEvent, EventSink};
use crate::event::JobEvents;
use crate::event::Outcome;
use crate::plan::Job;
use crate::registry::{RegistryClient, RegistryError};
use crate::run::Worker;
use crate::state::State;
use crate::transport::docker::{pull_image, registry_auth, retry, LayerSink};

/// The build argument that carries the base image into the Dockerfile's `FROM`.
const BASE_IMAGE_ARG: &str = "BASE_IMAGE";

/// Why a build job stopped.
#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("build context: {0}")]
    Context(#[from] ContextError),
    #[error(transparent)]
    Copy(#[from] crate::transport::CopyError),
    #[error("{0}")]
    Other(String),
}

/// Builds extension images through the daemon: each job's source is the base as the mirror
/// serves it, its target the `-n-ext` image.
///
/// A built image is tagged as the target in the local daemon. With
/// [`BuildOptions::push`] it is pushed and the outcome is [`Outcome::Copied`] with the
/// manifest digest the registry now serves; without, it stays local and the outcome is
/// `Copied` with the local image id (`sha256:…` of its config) as `digest`. `bytes` counts
/// the layers pulled and pushed. Skips say why: `unchanged: base and context`,
/// `exists (mode once)`. Decisions read the registry, never the daemon: without `push`,
/// every run builds again (cheaply, from the daemon's build cache).
pub struct BuildTransport<D: DockerApi> {
    docker: D,
    source: RegistryClient,
    target: RegistryClient,
    entries: HashMap<String, BuildImage>,
    options: BuildOptions,
    /// Where pulled bases are recorded as layer cache (pruned by `ferry cache prune`).
    state: Option<Arc<State>>,
}

impl<D: DockerApi> BuildTransport<D> {
    /// A transport over `docker` for the jobs of `entries` (from [`super::jobs`]): `source`
    /// reads the base and sends its credentials to the daemon, `target` (its push-side
    /// twin) reads the target's labels and gives the push credentials.
    pub fn new(
        docker: D,
        source: RegistryClient,
        target: RegistryClient,
        entries: Vec<(Job, BuildImage)>,
        options: BuildOptions,
    ) -> Self {
        let entries = entries
            .into_iter()
            .map(|(job, build)| (job.target.to_string(), build))
            .collect();
        BuildTransport {
            docker,
            source,
            target,
            entries,
            options,
            state: None,
        }
    }

    /// Records the bases this transport pulls in `state`, so the layer-cache budget covers
    /// them like every image ferry pulled.
    pub fn with_state(mut self, state: Arc<State>) -> Self {
        self.state = Some(state);
        self
    }

    async fn build_job(
        &self,
        job: &Job,
        entry: &BuildImage,
        events: &JobEvents,
    ) -> Result<Outcome, BuildError> {
        let request = Request {
            mode: entry.mode,
            named: self.options.named.contains(&entry.name),
            force: self.options.force,
        };
        let labels_needed = entry.mode == BuildMode::Continuous && !request.force;
        let state = target::target_state(&self.target, &job.target, labels_needed).await?;
        let base_digest = target::base_digest(&self.source, &job.source).await?;
        let mut wanted = Fingerprint {
            base_ref: job.source.to_string(),
            base_digest,
            context: blocking(entry, |e| context::hash(&e.context, &e.build_args)).await?,
        };
        let why = match decide(request, &state, &wanted) {
            Decision::Skip(reason) => return Ok(Outcome::Skipped { reason }),
            Decision::Build(why) => why,
        };
        events.log(&format!("building {} ({why})", job.target));

        // The base pinned by digest: the build uses exactly what the label records.
        let pinned = job
            .source
            .with_digest(&wanted.base_digest)
            .map_err(|e| BuildError::Other(e.to_string()))?;
        let base_image = format!("{}@{}", pinned.repository_name(), wanted.base_digest);
        let pull_auth = registry_auth(&self.source, &job.source).await?;
        let pulled = pull_image(
            &self.docker,
            self.state.as_deref(),
            None,
            &pinned,
            None,
            pull_auth.as_ref(),
            events,
        )
        .await?;

        let packed = blocking(entry, |e| context::pack(&e.context, &e.build_args)).await?;
        // Files may have changed since the decision: label what is actually sent.
        wanted.context = packed.hash;
        let mut build = BuildRequest::new(
            BuildContext::Tar(Bytes::from(packed.tar)),
            vec![job.target.clone()],
        );
        build.build_args = entry.build_args.clone();
        build
            .build_args
            .insert(BASE_IMAGE_ARG.to_owned(), base_image);
        build.labels = wanted.labels();
        build.no_cache = request.force;
        build.registry_auths = pull_auth.into_iter().collect();
        let image_id = self.docker.build(&build, &BuildSink(events)).await?;

        if !self.options.push {
            return Ok(Outcome::Copied {
                note: None,
                bytes: pulled,
                digest: image_id,
            });
        }
        let push_auth = registry_auth(&self.target, &job.target).await?;
        let pushed = LayerSink::new(events);
        let digest = retry(|| self.docker.push(&job.target, push_auth.as_ref(), &pushed)).await?;
        Ok(Outcome::Copied {
            note: None,
            bytes: pulled + pushed.bytes(),
            digest,
        })
    }
}

impl<D: DockerApi> Worker for BuildTransport<D> {
    async fn work(&self, job: &Job, events: &JobEvents) -> Outcome {
        let Some(entry) = self.entries.get(&job.target.to_string()) else {
            return Outcome::Failed {
                error: format!(
                    "{} -> {}: not an extension image of this run",
                    job.source, job.target
                ),
            };
        };
        match self.build_job(job, entry, events).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed {
                error: format!("{}: {} -> {}: {error}", entry.name, job.source, job.target),
            },
        }
    }
}

/// Runs a context read on the blocking pool.
async fn blocking<T: Send + 'static>(
    entry: &BuildImage,
    read: impl FnOnce(&BuildImage) -> Result<T, ContextError> + Send + 'static,
) -> Result<T, BuildError> {
    let entry = entry.clone();
    tokio::task::spawn_blocking(move || read(&entry))
        .await
        .map_err(|e| BuildError::Other(format!("reading the context stopped: {e}")))?
        .map_err(BuildError::from)
}

/// Forwards build output as log lines and any layer progress (a `FROM` pull) as layers.
struct BuildSink<'a>(&'a JobEvents);

impl EventSink for BuildSink<'_> {
    fn send(&self, event: DockerEvent) {
        match event {
            DockerEvent::BuildOutput { line, .. } => self.0.log(&line),
            DockerEvent::Layer(layer) => self.0.layer(
                &layer.layer_id,
                layer.status,
                layer.current.unwrap_or(0),
                layer.total,
            ),
        }
    }
}
