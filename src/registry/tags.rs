//! Tag listing: `/v2/<name>/tags/list?n=…`, following `Link: <…>; rel="next"` pages.
//!
//! Owns pagination; it must not follow a link to another host (or scheme, or port), nor
//! loop forever on a registry that links a page to itself.

use std::collections::HashSet;

use reqwest::header::LINK;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::error::{ErrorKind, RegistryError};
use super::request::{origin, Call};
use super::RegistryClient;
use crate::reference::Reference;

/// Refuse to read more pages than this from one repository.
const MAX_PAGES: usize = 10_000;
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// All tags of the repository of `reference`, in the registry's order, reading pages of
    /// `page_size` (the registry's default when `None`).
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
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
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
            let body = super::request::read_capped(sent.response, MAX_PAGE_BYTES).await;
            let page: TagList = serde_json::from_slice(&body).map_err(|e| {
                repo.error(ErrorKind::Protocol(format!(
                    "tag list is not JSON (line {} column {})",
                    e.line(),
                    e.column()
                )))
            })?;
            tags.extend(page.tags.unwrap_or_default());
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
        Err(repo.error(ErrorKind::Protocol(format!(
            "more than {MAX_PAGES} pages of tags"
        ))))
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
