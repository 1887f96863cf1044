//! Reading a whole response body into memory (manifests, tag pages, token answers):
//! never more than a cap, never less than its `Content-Length`.
//!
//! Owns those two checks; blob bodies stream through `blob` instead, and error bodies are
//! read leniently by `request::read_capped` (they only feed messages).

use bytes::Bytes;
use reqwest::Response;

use super::error::{network, ErrorKind, RegistryError};
use super::limits::{Limit, Limits};
use super::request::Repo;

impl Repo {
    /// This registry's limits.
    pub(crate) fn limits(&self) -> &Limits {
        &self.host.limits
    }

    /// Reads a whole body of at most `cap` bytes, checked against its `Content-Length`:
    /// a larger body (announced or arriving) fails at once as a hit of `limit` (or a
    /// protocol error without one), a shorter one or a broken read as a network error.
    /// `what` names the body in messages (`manifest`, `tag list page`).
    pub(crate) async fn read_body(
        &self,
        mut response: Response,
        cap: u64,
        what: &str,
        limit: Option<Limit>,
    ) -> Result<Bytes, RegistryError> {
        let limits = self.client.host_for(response.url()).await?.limits;
        let announced = response.content_length();
        let too_large = |size: String| {
            let message = format!("{what} of {size} bytes is larger than {cap} bytes");
            self.error(match limit {
                Some(limit) => ErrorKind::Limit { limit, message },
                None => ErrorKind::Protocol(message),
            })
        };
        if let Some(length) = announced.filter(|length| *length > cap) {
            return Err(too_large(length.to_string()));
        }
        // What a registry announces is a claim, not an allocation: grow as bytes arrive.
        const FIRST_ALLOCATION: u64 = 1024 * 1024;
        let capacity = usize::try_from(announced.unwrap_or(0).min(FIRST_ALLOCATION)).unwrap_or(0);
        let mut body = Vec::with_capacity(capacity);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > cap {
                        return Err(too_large(format!("more than {cap}")));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.error(network(e, &limits))),
            }
        }
        match announced {
            Some(length) if length != body.len() as u64 => Err(self.error(ErrorKind::Network(
                format!("{what} ended after {} of its {length} bytes", body.len()),
            ))),
            _ => Ok(Bytes::from(body)),
        }
    }
}
