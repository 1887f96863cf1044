//! Tag listing: `/v2/<name>/tags/list?n=…`, following `Link: <…>; rel="next"` pages.
//!
//! Owns pagination; it must not follow a link to another host (or scheme, or port), nor
//! loop forever on a registry that links a page to itself, nor hold more tags or read
//! more pages than the registry's limits allow (a `Link` chain may never end).

use std::collections::HashSet;

use std::fmt;

use reqwest::header::LINK;
use reqwest::{Method, StatusCode};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{ErrorKind, RegistryError};
use super::limits::Limit;
use super::request::{origin, Call};
use super::RegistryClient;
use crate::reference::Reference;

/// Largest tag list page read (a page of 100,000 long tags is about 6 MiB).
const MAX_PAGE_BYTES: u64 = 16 * 1024 * 1024;

impl RegistryClient {
    /// All tags of the repository of `reference`, in the registry's order, reading pages of
    /// `page_size` (the registry's default when `None`). More than `tags_per_repository`
    /// tags or `pages_per_listing` pages fail the listing with the limit named.
    pub async fn list_tags(
        &self,
        reference: &Reference,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, RegistryError> {
        let repo = self.open(reference, "list tags").await?;
        let scopes = vec![reference.scope(&["pull"])];
        let mut url = repo.url("tags/list")?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let limits = *repo.limits();
        let mut tags = Vec::new();
        let mut known = HashSet::new();
        let mut seen = HashSet::new();
        for _ in 0..limits.pages_per_listing {
            if !seen.insert(url.to_string()) {
                return Err(repo.error(ErrorKind::Protocol("pagination links loop".into())));
            }
            let call = Call::new(Method::GET, url.clone(), scopes.clone());
            let sent = repo.send(&call, |s| s == StatusCode::OK).await?;
            let next = sent
                .response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = repo
                .read_body(sent.response, MAX_PAGE_BYTES, "tag list page", None)
                .await?;
            let room = limits.tags_per_repository.saturating_sub(tags.len() as u64);
            let mut reading = PageReader {
                room,
                tags: &mut tags,
                known: &mut known,
                overflow: false,
            };
            let parsed = reading.read(&body);
            if reading.overflow {
                return Err(repo.error(ErrorKind::Limit {
                    limit: Limit::TagsPerRepository,
                    message: format!(
                        "more than {} tags in {}",
                        limits.tags_per_repository,
                        reference.repository()
                    ),
                }));
            }
            parsed.map_err(|e| {
                repo.error(ErrorKind::Protocol(format!(
                    "tag list is not JSON (line {} column {})",
                    e.line(),
                    e.column()
                )))
            })?;
            let Some(next) = next else {
                return Ok(tags);
            };
            let next_url = url
                .join(&next)
                .map_err(|e| repo.error(ErrorKind::Protocol(format!("bad Link header: {e}"))))?;
            if origin(&next_url) != origin(&repo.endpoint.base) {
                return Err(repo.error(ErrorKind::Protocol(format!(
                    "pagination link leads to another host ({})",
                    next_url.host_str().unwrap_or_default()
                ))));
            }
            url = next_url;
        }
        Err(repo.error(ErrorKind::Limit {
            limit: Limit::PagesPerListing,
            message: format!(
                "more than {} pages of tags in {}",
                limits.pages_per_listing,
                reference.repository()
            ),
        }))
    }
}

/// Reads one page `{"tags": [...]}` into `tags`, stopping as soon as a tag would exceed
/// `room` (then `overflow` is set): a page never holds more than the limit in memory.
/// A tag already read (on this page or an earlier one) is dropped: Nexus group
/// repositories list a tag once per member, and a newest-N selection must not count it
/// twice.
struct PageReader<'a> {
    room: u64,
    tags: &'a mut Vec<String>,
    known: &'a mut HashSet<String>,
    overflow: bool,
}

impl PageReader<'_> {
    fn read(&mut self, body: &[u8]) -> Result<(), serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        DeserializeSeed::deserialize(&mut *self, &mut deserializer)?;
        deserializer.end()
    }
}

impl<'de> DeserializeSeed<'de> for &mut PageReader<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &mut PageReader<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tag list object, or a list of tags")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "tags" {
                map.next_value_seed(&mut *self)?;
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(()) // `"tags": null`: no tags
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(tag) = seq.next_element::<String>()? {
            if self.known.contains(&tag) {
                continue;
            }
            if self.room == 0 {
                self.overflow = true;
                return Err(de::Error::custom("more tags than the limit"));
            }
            self.room -= 1;
            self.known.insert(tag.clone());
            self.tags.push(tag);
        }
        Ok(())
    }
}

/// The target of the `rel="next"` link in a `Link` header value.
fn next_link(header: &str) -> Option<String> {
    for link in header.split(',') {
        let mut parts = link.split(';');
        let target = parts.next()?.trim();
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_next = parts.any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        if is_next {
            return Some(target.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tags_are_read_once_and_count_once() {
        let mut tags = Vec::new();
        let mut known = HashSet::new();
        let mut reading = PageReader {
            room: 3,
            tags: &mut tags,
            known: &mut known,
            overflow: false,
        };
        reading
            .read(br#"{"name":"x","tags":["a","b","a","c","b"]}"#)
            .expect("a page");
        assert!(!reading.overflow, "three distinct tags fit a room of three");
        let mut next = PageReader {
            room: 0,
            tags: &mut tags,
            known: &mut known,
            overflow: false,
        };
        next.read(br#"{"tags":["c","a"]}"#).expect("a page");
        assert!(!next.overflow, "tags of an earlier page are not new");
        assert_eq!(tags, ["a", "b", "c"]);
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/a>; rel="prev", <https://r/b>; rel=next"#).as_deref(),
            Some("https://r/b")
        );
        assert_eq!(next_link(r#"<https://r/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
