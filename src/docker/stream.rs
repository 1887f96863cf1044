//! The daemon's JSON progress stream of pull, push and build, decoded and interpreted.
//!
//! Owns bytes → messages → events plus the result (digest, image id, error line); it
//! must not do I/O, so recorded daemon output tests all of it.

use serde::Deserialize;

use super::events::{layer_status, DockerEvent, EventSink, LayerEvent};

/// One line of the stream. Every field is optional: each endpoint uses a different subset.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Message {
    id: Option<String>,
    status: Option<String>,
    #[serde(rename = "progressDetail")]
    progress_detail: Option<ProgressDetail>,
    stream: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
    error: Option<String>,
    aux: Option<Aux>,
}

#[derive(Debug, Default, Deserialize)]
struct ProgressDetail {
    current: Option<i64>,
    total: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// `aux` of a push (`Tag`, `Digest`, `Size`) or of a build (`ID`).
#[derive(Debug, Default, Deserialize)]
struct Aux {
    #[serde(rename = "Digest")]
    digest: Option<String>,
    #[serde(rename = "ID")]
    id: Option<String>,
}

/// Splits the byte stream into JSON messages, whatever the chunk boundaries are.
#[derive(Debug, Default)]
pub(crate) struct JsonStream {
    pending: Vec<u8>,
}

impl JsonStream {
    /// Adds a chunk and returns the messages it completed.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<Message>, String> {
        self.pending.extend_from_slice(chunk);
        let mut messages = Vec::new();
        let mut values = serde_json::Deserializer::from_slice(&self.pending).into_iter::<Message>();
        let mut consumed = 0;
        loop {
            match values.next() {
                Some(Ok(message)) => {
                    messages.push(message);
                    consumed = values.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(e.to_string()),
                None => {
                    consumed = values.byte_offset();
                    break;
                }
            }
        }
        self.pending.drain(..consumed);
        Ok(messages)
    }

    /// Checks that nothing but whitespace is left once the stream has ended.
    pub(crate) fn finish(&self) -> Result<(), String> {
        if self.pending.iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            let tail = String::from_utf8_lossy(&self.pending);
            Err(format!(
                "truncated message {:?}",
                tail.chars().take(80).collect::<String>()
            ))
        }
    }
}

/// What a whole stream amounted to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Pull: the manifest digest the daemon resolved. Push: the digest it pushed.
    pub digest: Option<String>,
    /// Build: the id of the built image.
    pub image_id: Option<String>,
    /// Pull: the final `Status:` line arrived.
    pub pull_finished: bool,
    /// Pull: new layers were downloaded (`Downloaded newer image`).
    pub downloaded: bool,
    /// The `errorDetail` (or `error`) message, when the daemon reported a failure.
    pub error: Option<String>,
}

/// Turns messages into events for `sink` and collects the [`Outcome`].
pub(crate) struct Progress<'a> {
    image: String,
    sink: &'a dyn EventSink,
    outcome: Outcome,
    build_line: String,
}

impl<'a> Progress<'a> {
    /// Progress of work on `image` (a reference, or the first tag of a build).
    pub(crate) fn new(image: impl Into<String>, sink: &'a dyn EventSink) -> Self {
        Progress {
            image: image.into(),
            sink,
            outcome: Outcome::default(),
            build_line: String::new(),
        }
    }

    /// Takes one message.
    pub(crate) fn observe(&mut self, message: Message) {
        if let Some(error) = message
            .error_detail
            .and_then(|d| d.message)
            .or(message.error)
        {
            self.outcome.error.get_or_insert(error);
            return;
        }
        if let Some(aux) = message.aux {
            if aux.digest.is_some() {
                self.outcome.digest = aux.digest;
            }
            if aux.id.is_some() {
                self.outcome.image_id = aux.id;
            }
        }
        if let Some(text) = message.stream {
            self.build_output(&text);
        }
        let Some(status) = message.status else { return };
        match (message.id, layer_status(&status)) {
            (Some(layer_id), Some(status)) => {
                let detail = message.progress_detail.unwrap_or_default();
                let bytes = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
                self.sink.send(DockerEvent::Layer(LayerEvent {
                    image: self.image.clone(),
                    layer_id,
                    status,
                    current: bytes(detail.current),
                    total: bytes(detail.total),
                }));
            }
            _ => self.summary_line(&status),
        }
    }

    /// Status lines that are about the whole image, not a layer.
    fn summary_line(&mut self, status: &str) {
        if let Some(digest) = status.strip_prefix("Digest: ") {
            self.outcome.digest = Some(digest.trim().to_owned());
        } else if let Some(rest) = status.strip_prefix("Status: ") {
            self.outcome.pull_finished = true;
            self.outcome.downloaded = rest.starts_with("Downloaded newer image");
        } else if let Some((_, rest)) = status.split_once(": digest: ") {
            // Push: `<tag>: digest: sha256:… size: 528`, the text twin of `aux`.
            if self.outcome.digest.is_none() {
                let digest = rest.split_whitespace().next().unwrap_or_default();
                self.outcome.digest = Some(digest.to_owned()).filter(|d| !d.is_empty());
            }
        }
    }

    /// Build output arrives in fragments (`Step 1/5 : FROM scratch`, then `\n`): emit whole lines.
    fn build_output(&mut self, text: &str) {
        self.build_line.push_str(text);
        while let Some(end) = self.build_line.find('\n') {
            let line: String = self.build_line.drain(..=end).collect();
            self.emit_build_line(&line);
        }
    }

    fn emit_build_line(&self, line: &str) {
        let line = line.trim_end();
        if !line.trim().is_empty() {
            self.sink.send(DockerEvent::BuildOutput {
                image: self.image.clone(),
                line: line.to_owned(),
            });
        }
    }

    /// Ends the stream: flushes a last unterminated build line and returns the outcome.
    pub(crate) fn finish(self) -> Outcome {
        self.emit_build_line(&self.build_line);
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LayerStatus;
    use std::sync::Mutex;

    /// Feeds `recorded` through the decoder in chunks of `chunk` bytes.
    fn replay(recorded: &str, chunk: usize) -> (Outcome, Vec<DockerEvent>) {
        let events = Mutex::new(Vec::new());
        let sink = |e: DockerEvent| events.lock().expect("lock").push(e);
        let mut progress = Progress::new("127.0.0.1:5000/exp/bb:1", &sink);
        let mut decoder = JsonStream::default();
        for piece in recorded.as_bytes().chunks(chunk) {
            for message in decoder.push(piece).expect("valid json") {
                progress.observe(message);
            }
        }
        decoder.finish().expect("complete");
        let outcome = progress.finish();
        (outcome, events.into_inner().expect("lock"))
    }

    fn layers(events: &[DockerEvent]) -> Vec<(LayerStatus, Option<u64>)> {
        events
            .iter()
            .filter_map(|e| match e {
                DockerEvent::Layer(l) => Some((l.status, l.current)),
                DockerEvent::BuildOutput { .. } => None,
            })
            .collect()
    }

    // Recorded from dockerd 20.10.24 (API 1.41); lines end in \r\n as the daemon writes them.
    const PULL: &str = "{\"status\":\"Pulling from exp/bb\",\"id\":\"1\"}\r\n\
{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"69801f53fa70\"}\r\n\
{\"status\":\"Downloading\",\"progressDetail\":{\"current\":36445,\"total\":1064415},\"progress\":\"[=\\u003e   ]  36.45kB/1.064MB\",\"id\":\"69801f53fa70\"}\r\n\
{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"69801f53fa70\"}\r\n\
{\"status\":\"Extracting\",\"progressDetail\":{\"current\":1064415,\"total\":1064415},\"id\":\"69801f53fa70\"}\r\n\
{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"69801f53fa70\"}\r\n\
{\"status\":\"Digest: sha256:2ab04ae1fdbcb5c51c8cc7dfb595f98bdad58838c69873057d704512229f7842\"}\r\n\
{\"status\":\"Status: Downloaded newer image for 127.0.0.1:15001/exp/bb:1\"}\r\n";

    const PUSH: &str = "{\"status\":\"The push refers to repository [127.0.0.1:15001/exp/bb]\"}\r\n\
{\"status\":\"Preparing\",\"progressDetail\":{},\"id\":\"0215ebc0cd6b\"}\r\n\
{\"status\":\"Pushing\",\"progressDetail\":{\"current\":33792,\"total\":1982263},\"id\":\"0215ebc0cd6b\"}\r\n\
{\"status\":\"Pushed\",\"progressDetail\":{},\"id\":\"0215ebc0cd6b\"}\r\n\
{\"status\":\"1: digest: sha256:2ab04ae1fdbcb5c51c8cc7dfb595f98bdad58838c69873057d704512229f7842 size: 528\"}\r\n\
{\"progressDetail\":{},\"aux\":{\"Tag\":\"1\",\"Digest\":\"sha256:2ab04ae1fdbcb5c51c8cc7dfb595f98bdad58838c69873057d704512229f7842\",\"Size\":528}}\r\n";

    const PUSH_DENIED: &str = "{\"status\":\"The push refers to repository [127.0.0.1:15002/exp/bb]\"}\r\n\
{\"status\":\"Preparing\",\"progressDetail\":{},\"id\":\"0215ebc0cd6b\"}\r\n\
{\"errorDetail\":{\"message\":\"unauthorized: authentication required\"},\"error\":\"unauthorized: authentication required\"}\r\n";

    const BUILD: &str = "{\"stream\":\"Step 1/2 : FROM scratch\"}\r\n{\"stream\":\"\\n\"}\r\n\
{\"stream\":\" ---\\u003e \\n\"}\r\n{\"stream\":\"Step 2/2 : COPY rootfs/ /\"}\r\n{\"stream\":\"\\n\"}\r\n\
{\"stream\":\" ---\\u003e 69b74716f39e\\n\"}\r\n\
{\"aux\":{\"ID\":\"sha256:36dc312c637dc3cd07c2fb714a9c8aeec1f6ed2687ee3a1997263b4e72b05328\"}}\r\n\
{\"stream\":\"Successfully built 36dc312c637d\\n\"}\r\n";

    const DIGEST: &str = "sha256:2ab04ae1fdbcb5c51c8cc7dfb595f98bdad58838c69873057d704512229f7842";

    #[test]
    fn pull_stream_gives_layer_progress_and_digest_whatever_the_chunking() {
        for chunk in [1, 7, 64, 4096] {
            let (outcome, events) = replay(PULL, chunk);
            assert_eq!(outcome.digest.as_deref(), Some(DIGEST));
            assert!(outcome.pull_finished && outcome.downloaded);
            assert_eq!(outcome.error, None);
            assert_eq!(
                layers(&events),
                [
                    (LayerStatus::Waiting, None),
                    (LayerStatus::Downloading, Some(36445)),
                    (LayerStatus::Extracting, Some(1064415)),
                    (LayerStatus::Done, None),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn push_stream_gives_the_aux_digest() {
        let (outcome, events) = replay(PUSH, 13);
        assert_eq!(outcome.digest.as_deref(), Some(DIGEST));
        assert_eq!(
            layers(&events),
            [
                (LayerStatus::Waiting, None),
                (LayerStatus::Pushing, Some(33792)),
                (LayerStatus::Done, None)
            ]
        );
        let DockerEvent::Layer(first) = &events[0] else {
            panic!("layer event expected")
        };
        assert_eq!(first.layer_id, "0215ebc0cd6b");
        assert_eq!(first.image, "127.0.0.1:5000/exp/bb:1");
    }

    #[test]
    fn push_digest_falls_back_to_the_status_line_without_aux() {
        let without_aux: String = PUSH.lines().filter(|l| !l.contains("aux")).collect();
        let (outcome, _) = replay(&without_aux, 4096);
        assert_eq!(outcome.digest.as_deref(), Some(DIGEST));
    }

    #[test]
    fn error_detail_ends_up_in_the_outcome() {
        let (outcome, events) = replay(PUSH_DENIED, 5);
        assert_eq!(
            outcome.error.as_deref(),
            Some("unauthorized: authentication required")
        );
        assert_eq!(outcome.digest, None);
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn build_stream_gives_whole_lines_and_the_image_id() {
        let (outcome, events) = replay(BUILD, 9);
        assert_eq!(
            outcome.image_id.as_deref(),
            Some("sha256:36dc312c637dc3cd07c2fb714a9c8aeec1f6ed2687ee3a1997263b4e72b05328")
        );
        let lines: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                DockerEvent::BuildOutput { line, .. } => Some(line.as_str()),
                DockerEvent::Layer(_) => None,
            })
            .collect();
        assert_eq!(
            lines,
            [
                "Step 1/2 : FROM scratch",
                " --->",
                "Step 2/2 : COPY rootfs/ /",
                " ---> 69b74716f39e",
                "Successfully built 36dc312c637d"
            ]
        );
    }

    #[test]
    fn garbage_and_truncation_are_reported() {
        assert!(JsonStream::default().push(b"<html>").is_err());
        let mut decoder = JsonStream::default();
        assert!(decoder
            .push(b"{\"status\":\"Pull")
            .expect("incomplete is fine")
            .is_empty());
        assert!(decoder.finish().is_err());
    }
}
