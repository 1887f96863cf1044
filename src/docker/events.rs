//! Progress events of pulls, pushes and builds, and the sink that receives them.
//!
//! Owns the event types and the translation of the daemon's status words into them;
//! it must not print anything: rendering events is the reporters' job.

use tokio::sync::mpsc::UnboundedSender;

use crate::event::LayerStatus;

/// Something the daemon reported while working on an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEvent {
    /// Progress of one layer of a pull or a push.
    Layer(LayerEvent),
    /// One line of build output (`Step 2/5 : COPY rootfs/ /`).
    BuildOutput {
        /// The image being built (its first tag).
        image: String,
        /// The line, without its trailing newline.
        line: String,
    },
}

/// Progress of one layer of a pull or a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEvent {
    /// The image being pulled or pushed, as a full reference.
    pub image: String,
    /// The daemon's short layer id (12 hex digits).
    pub layer_id: String,
    /// What is happening to the layer.
    pub status: LayerStatus,
    /// Bytes done so far, when the daemon reports it.
    pub current: Option<u64>,
    /// Bytes in total, when the daemon reports it.
    pub total: Option<u64>,
}

/// The layer status of a daemon status word; `None` for messages that are not about a
/// layer (`Pulling from library/nginx`, `Digest: …`) and for `Verifying Checksum` and
/// `Download complete`, which carry no byte counts and would reset a progress bar.
pub(crate) fn layer_status(status: &str) -> Option<LayerStatus> {
    let mapped = match status.trim() {
        "Pulling fs layer" | "Waiting" | "Preparing" => LayerStatus::Waiting,
        s if s.starts_with("Retrying in ") => LayerStatus::Waiting,
        "Downloading" => LayerStatus::Downloading,
        "Extracting" => LayerStatus::Extracting,
        "Pushing" => LayerStatus::Pushing,
        "Pull complete" | "Pushed" => LayerStatus::Done,
        "Already exists" | "Layer already exists" => LayerStatus::AlreadyExists,
        s if s.starts_with("Mounted from ") => LayerStatus::Mounted,
        _ => return None,
    };
    Some(mapped)
}

/// Receives events; shared by all workers of a pool, so it must be cheap and must not block.
///
/// Implemented for an unbounded tokio channel sender (one reporter task reads the
/// receiver), for any `Fn(DockerEvent)` closure, and by [`DiscardEvents`].
pub trait EventSink: Send + Sync {
    /// Takes one event. A sink whose reader is gone silently drops it.
    fn send(&self, event: DockerEvent);
}

impl EventSink for UnboundedSender<DockerEvent> {
    fn send(&self, event: DockerEvent) {
        // A closed channel means nobody watches progress any more; the work goes on.
        let _ = UnboundedSender::send(self, event);
    }
}

impl<F: Fn(DockerEvent) + Send + Sync> EventSink for F {
    fn send(&self, event: DockerEvent) {
        self(event)
    }
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardEvents;

impl EventSink for DiscardEvents {
    fn send(&self, _event: DockerEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn daemon_status_words_map_to_layer_states() {
        let table = [
            ("Pulling fs layer", Some(LayerStatus::Waiting)),
            ("Waiting", Some(LayerStatus::Waiting)),
            ("Preparing", Some(LayerStatus::Waiting)),
            ("Downloading", Some(LayerStatus::Downloading)),
            ("Verifying Checksum", None),
            ("Download complete", None),
            ("Extracting", Some(LayerStatus::Extracting)),
            ("Pull complete", Some(LayerStatus::Done)),
            ("Already exists", Some(LayerStatus::AlreadyExists)),
            ("Pushing", Some(LayerStatus::Pushing)),
            ("Pushed", Some(LayerStatus::Done)),
            ("Layer already exists", Some(LayerStatus::AlreadyExists)),
            ("Mounted from library/busybox", Some(LayerStatus::Mounted)),
            ("Retrying in 5 seconds", Some(LayerStatus::Waiting)),
            ("Pulling from library/nginx", None),
            ("Digest: sha256:abc", None),
        ];
        for (text, want) in table {
            assert_eq!(layer_status(text), want, "{text}");
        }
    }

    #[test]
    fn closures_and_channels_are_sinks() {
        let seen = Mutex::new(Vec::new());
        let closure = |e: DockerEvent| seen.lock().expect("lock").push(e);
        let event = DockerEvent::BuildOutput {
            image: "x".into(),
            line: "Step 1/1 : FROM scratch".into(),
        };
        EventSink::send(&closure, event.clone());
        assert_eq!(seen.lock().expect("lock").len(), 1);

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        EventSink::send(&tx, event.clone());
        assert_eq!(rx.try_recv().ok(), Some(event.clone()));
        drop(rx);
        EventSink::send(&tx, event); // a closed channel is not an error
        DiscardEvents.send(DockerEvent::BuildOutput {
            image: String::new(),
            line: String::new(),
        });
    }
}
