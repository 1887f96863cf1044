//! Through the Docker daemon: pull each Linux platform, tag, push, and for a multi-platform
//! source write a manifest list of exactly the pushed platforms.
//!
//! Owns the daemon side of a copy and the layer-cache bookkeeping. It must not move a
//! target tag before every platform image it lists is pushed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::layers::LayerOrder;
use super::{other, outcome, CopyError, Transport};
use crate::credentials::Credentials;
use crate::decide::{state_key, Content, Source, Writes};
use crate::docker::{DockerApi, DockerError, DockerEvent, RegistryAuth};
use crate::event::{JobEvents, LayerStatus, Outcome};
use crate::gates::Gates;
use crate::manifest::{self, Child};
use crate::plan::Job;
use crate::platform::Platform;
use crate::reference::{Reference, DOCKER_HUB};
use crate::registry::RegistryClient;
use crate::retry::RetryPolicy;
use crate::state::State;

/// Tag under which the platform images of a multi-platform copy are pushed before the
/// manifest list takes the real tag; the distribution API cannot delete a tag afterwards,
/// and tag selection never picks it up.
pub use crate::select::STAGING_TAG;

/// Copies images by pulling, tagging and pushing through the daemon.
pub struct DockerTransport<D: DockerApi> {
    docker: D,
    source: RegistryClient,
    target: RegistryClient,
    state: Arc<State>,
    /// One tag-and-push at a time per staging tag (repository and platform).
    staging: Gates<String>,
    /// Who pushes which layer to which target registry first.
    layers: LayerOrder,
}

impl<D: DockerApi> DockerTransport<D> {
    /// A transport over `docker`, reading manifests with `source`, writing manifest lists and
    /// checking targets with `target` (its push-side twin), recording pushes in `state`.
    pub fn new(
        docker: D,
        source: RegistryClient,
        target: RegistryClient,
        state: Arc<State>,
    ) -> Self {
        DockerTransport {
            docker,
            source,
            target,
            state,
            staging: Gates::default(),
            layers: LayerOrder::default(),
        }
    }

    async fn copy_job(
        &self,
        job: &Job,
        source: Source,
        events: &JobEvents,
    ) -> Result<Outcome, CopyError> {
        let pull_auth = self.auth(&self.source, &job.source).await?;
        let push_auth = self.auth(&self.target, &job.target).await?;
        let top = &source.manifest;
        let (digest, bytes) = match &source.content {
            Content::Image { .. } => {
                let pinned = job.source.with_digest(&top.digest).map_err(other)?;
                let pulled = self.pull(&pinned, None, pull_auth.as_ref(), events).await?;
                self.docker.tag(&pinned.to_string(), &job.target).await?;
                let (digest, pushed) = self
                    .push(&pinned, &job.target, push_auth.as_ref(), events)
                    .await?;
                (digest, pulled + pushed)
            }
            Content::Index { chosen, .. } => {
                // Every platform at once: pulls and pushes of one tag overlap in the daemon.
                let copies: Vec<_> = chosen
                    .iter()
                    .map(|child| {
                        self.copy_platform(
                            job,
                            child,
                            pull_auth.as_ref(),
                            push_auth.as_ref(),
                            events,
                        )
                    })
                    .collect();
                let copied = futures::future::try_join_all(copies).await?;
                let bytes = copied.iter().map(|(_, bytes)| bytes).sum();
                let entries: Vec<Child> = copied.into_iter().map(|(entry, _)| entry).collect();
                let docker = top.media_type == manifest::DOCKER_MANIFEST_LIST;
                let (list, media_type) = manifest::build_list(docker, &entries)?;
                let digest = self
                    .target
                    .put_manifest(&job.target, Bytes::from(list), media_type)
                    .await?;
                (digest, bytes)
            }
        };
        self.state
            .record_push(&state_key(job, Writes::DaemonPush), &top.digest, &digest)?;
        Ok(Outcome::Copied {
            bytes,
            digest,
            note: None,
        })
    }

    /// One platform of a multi-platform source: pulled by digest, pushed under its staging
    /// tag; returns its manifest-list entry and the bytes moved.
    async fn copy_platform(
        &self,
        job: &Job,
        child: &Child,
        pull_auth: Option<&RegistryAuth>,
        push_auth: Option<&RegistryAuth>,
        events: &JobEvents,
    ) -> Result<(Child, u64), CopyError> {
        let pinned = job.source.with_digest(&child.digest).map_err(other)?;
        let pulled = self
            .pull(&pinned, child.platform.as_ref(), pull_auth, events)
            .await?;
        let staging = job
            .target
            .with_tag(&staging_tag(child.platform.as_ref()))
            .map_err(other)?;
        // The local staging tag is shared by every tag of this repository and platform:
        // tag and push it one job at a time, so each push sends the image it was given.
        let turn = self.staging.enter(&staging.to_string()).await;
        self.docker.tag(&pinned.to_string(), &staging).await?;
        let (digest, pushed) = self.push(&pinned, &staging, push_auth, events).await?;
        drop(turn);
        let at = job.target.with_digest(&digest).map_err(other)?;
        let (media_type, size) = self.pushed_descriptor(&at).await?;
        let entry = Child {
            digest,
            media_type,
            size,
            platform: child.platform.clone(),
            attests: None,
        };
        Ok((entry, pulled + pushed))
    }

    /// Media type and size of a manifest just pushed, for its manifest-list entry; from a
    /// HEAD, or from the bytes when the registry leaves a header out (size 0 is invalid).
    async fn pushed_descriptor(&self, at: &Reference) -> Result<(String, u64), CopyError> {
        let head = self.target.head_manifest(at).await?;
        let head =
            head.ok_or_else(|| other(format!("pushed {at} but the registry does not serve it")))?;
        match (head.media_type, head.size) {
            (Some(media_type), Some(size)) if size > 0 => Ok((media_type, size)),
            _ => {
                let manifest = self.target.get_manifest(at).await?;
                Ok((manifest.media_type, manifest.bytes.len() as u64))
            }
        }
    }

    async fn pull(
        &self,
        image: &Reference,
        platform: Option<&Platform>,
        auth: Option<&RegistryAuth>,
        events: &JobEvents,
    ) -> Result<u64, CopyError> {
        pull_image(
            &self.docker,
            Some(&self.state),
            Some(&self.source),
            image,
            platform,
            auth,
            events,
        )
        .await
    }

    /// Pushes `image` (tagged `target`) with retries, once no other job is pushing one of
    /// its layers to the same registry (then the daemon mounts them instead of uploading
    /// them again); returns the pushed digest and the bytes of layers sent.
    async fn push(
        &self,
        image: &Reference,
        target: &Reference,
        auth: Option<&RegistryAuth>,
        events: &JobEvents,
    ) -> Result<(String, u64), CopyError> {
        let layers = match self.docker.inspect(&image.to_string()).await? {
            Some(info) => info.layers,
            None => Vec::new(),
        };
        let (claim, _) = self.layers.claim(target.registry(), &layers).await;
        let sink = LayerSink::new(events);
        let digest = retry(|| self.docker.push(target, auth, &sink)).await?;
        claim.pushed();
        Ok((digest, sink.bytes()))
    }

    async fn auth(
        &self,
        client: &RegistryClient,
        reference: &Reference,
    ) -> Result<Option<RegistryAuth>, CopyError> {
        Ok(registry_auth(client, reference).await?)
    }
}

impl<D: DockerApi> Transport for DockerTransport<D> {
    async fn copy(&self, job: &Job, source: Source, events: &JobEvents) -> Outcome {
        outcome(job, self.copy_job(job, source, events).await)
    }
}

/// The credentials `client` has for `reference`'s registry, as the daemon takes them
/// (`X-Registry-Auth`); `None` when anonymous. An identity token cannot be handed to the
/// daemon this way, so it counts as anonymous.
pub(crate) async fn registry_auth(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<Option<RegistryAuth>, crate::registry::RegistryError> {
    let credentials = client.credentials_for(reference).await?;
    Ok(credentials.map(|c| match c {
        Credentials::Basic { username, password } => {
            RegistryAuth::new(&username, password, server_address(reference))
        }
        Credentials::IdentityToken(token) => {
            RegistryAuth::with_identity_token(token, server_address(reference))
        }
    }))
}

/// Pulls `image` with retries, unless it is pinned by digest and the daemon already holds
/// it (exactly these bytes). Images ferry pulled are recorded in `state` as layer cache,
/// never images someone else pulled. A pull the daemon makes from `source` (its manifest
/// GET by digest: a pull on Docker Hub) is counted in that client's pulls spent. Returns
/// the bytes downloaded.
pub(crate) async fn pull_image<D: DockerApi>(
    docker: &D,
    state: Option<&State>,
    source: Option<&RegistryClient>,
    image: &Reference,
    platform: Option<&Platform>,
    auth: Option<&RegistryAuth>,
    events: &JobEvents,
) -> Result<u64, CopyError> {
    let key = image.to_string();
    if image.digest().is_some() {
        if let Some(info) = docker.inspect(&key).await? {
            if let Some(state) = state.filter(|s| s.cached().contains_key(&info.id)) {
                state.touch_cached(&info.id, &key, info.size)?;
            }
            return Ok(0);
        }
    }
    let sink = LayerSink::new(events);
    if let Some(source) = source {
        source.count_pull(image);
    }
    let pulled = retry(|| docker.pull(image, platform, auth, &sink)).await?;
    if let Some(state) = state {
        if let Some(info) = docker.inspect(&key).await? {
            if pulled.downloaded || state.cached().contains_key(&info.id) {
                state.touch_cached(&info.id, &key, info.size)?;
            }
        }
    }
    Ok(sink.bytes())
}

/// The daemon's name for a registry in `X-Registry-Auth`.
pub(crate) fn server_address(reference: &Reference) -> String {
    if reference.registry() == DOCKER_HUB {
        "https://index.docker.io/v1/".to_owned()
    } else {
        reference.registry().to_owned()
    }
}

/// The staging tag of one platform: `ferry-staging-linux-arm64-v8`.
fn staging_tag(platform: Option<&Platform>) -> String {
    match platform {
        Some(platform) => format!("{STAGING_TAG}-{}", platform.to_string().replace('/', "-")),
        None => STAGING_TAG.to_owned(),
    }
}

/// Runs a daemon operation under the daemon's retry policy; each retry is an event of
/// the job running it.
pub(crate) async fn retry<T, F, Fut>(mut operation: F) -> Result<T, DockerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DockerError>>,
{
    RetryPolicy::daemon().run(|_| operation()).await
}

/// Forwards daemon layer progress as job events and counts the bytes of finished layers.
pub(crate) struct LayerSink<'a> {
    events: &'a JobEvents,
    sizes: std::sync::Mutex<HashMap<String, u64>>,
}

impl<'a> LayerSink<'a> {
    pub(crate) fn new(events: &'a JobEvents) -> Self {
        LayerSink {
            events,
            sizes: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Bytes of the layers that were downloaded or pushed (not those already present).
    pub(crate) fn bytes(&self) -> u64 {
        self.sizes.lock().map(|s| s.values().sum()).unwrap_or(0)
    }
}

impl crate::docker::EventSink for LayerSink<'_> {
    fn send(&self, event: DockerEvent) {
        let DockerEvent::Layer(layer) = event else {
            return;
        };
        if let (LayerStatus::Downloading | LayerStatus::Pushing, Some(total)) =
            (layer.status, layer.total)
        {
            if let Ok(mut sizes) = self.sizes.lock() {
                sizes.insert(layer.layer_id.clone(), total);
            }
        }
        self.events.layer(
            &layer.layer_id,
            layer.status,
            layer.current.unwrap_or(0),
            layer.total,
        );
    }
}
