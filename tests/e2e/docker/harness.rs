//! ferry-side helpers of the Docker tests: build requests over the shared busybox context
//! and a recorder of `DockerEvent`s. Registries, contexts and image cleanup come from
//! `crate::support`, which must not call ferry; these name ferry's own types.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferry::docker::{BuildContext, BuildRequest, DockerEvent};
use ferry::event::LayerStatus;
use ferry::reference::Reference;

use crate::support::{Fixture, Registry};

/// `HOST/PATH_AND_TAG` on `registry`, as ferry parses it.
pub(super) fn reference(registry: &Registry, path_and_tag: &str) -> Reference {
    format!("{}/{path_and_tag}", registry.host())
        .parse()
        .expect("valid reference")
}

/// A build of [`Fixture::busybox_context`] marked and labelled `ferry.e2e=<label>`, without
/// the build cache (parallel tests must not share intermediate images).
pub(super) fn busybox_build(tags: Vec<Reference>, label: &str) -> BuildRequest {
    let context = BuildContext::Tar(Fixture::busybox_context(label));
    let mut build = BuildRequest::new(context, tags);
    build.labels = BTreeMap::from([("ferry.e2e".to_owned(), label.to_owned())]);
    build.no_cache = true;
    build
}

/// Collects events for assertions.
#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<DockerEvent>>);

impl Recorder {
    pub(super) fn sink(&self) -> impl Fn(DockerEvent) + Send + Sync + '_ {
        |event| self.0.lock().expect("lock").push(event)
    }

    pub(super) fn layer_statuses(&self) -> Vec<LayerStatus> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|e| match e {
                DockerEvent::Layer(layer) => Some(layer.status),
                DockerEvent::BuildOutput { .. } => None,
            })
            .collect()
    }

    pub(super) fn build_lines(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|e| match e {
                DockerEvent::BuildOutput { line, .. } => Some(line.clone()),
                DockerEvent::Layer(_) => None,
            })
            .collect()
    }
}
