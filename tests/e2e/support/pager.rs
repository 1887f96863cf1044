//! A pass-through front for a registry that pages `GET /v2/NAME/tags/list` the way
//! hosted registries do (sorted, `n`/`last`, `Link: <…>; rel="next"`), which
//! distribution 2.8 does not. Owns only that rewrite; every other request is forwarded
//! byte for byte, with its `Host` kept so the registry's `Location` URLs name the front.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::json;

use super::server::{respond, Handler, HttpRequest, HttpResponse, HttpServer};

/// A running front; stops on `Drop`.
pub(crate) struct TagPager {
    server: HttpServer,
}

struct Front {
    upstream: String,
    page_size: usize,
    client: reqwest::Client,
}

impl TagPager {
    /// Fronts the registry on `127.0.0.1:upstream_port`.
    pub(crate) fn start(upstream_port: u16, page_size: usize) -> TagPager {
        let front = Arc::new(Front {
            upstream: format!("http://127.0.0.1:{upstream_port}"),
            page_size,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build the pager's HTTP client"),
        });
        let handler: Handler = Arc::new(move |request| {
            let front = front.clone();
            Box::pin(async move { front.handle(request).await })
        });
        TagPager {
            server: HttpServer::start(handler),
        }
    }

    /// `127.0.0.1:PORT` of the front.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }
}

impl Front {
    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let path = request.uri().path().to_string();
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|p| p.strip_suffix("/tags/list"))
            .map(str::to_string);
        match repo {
            Some(repo) if request.method() == hyper::Method::GET => {
                self.tags_page(request, &repo).await
            }
            _ => {
                let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
                let url = format!("{}{path_and_query}", self.upstream);
                self.forward(request, url).await
            }
        }
    }

    async fn tags_page(&self, request: HttpRequest, repo: &str) -> HttpResponse {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let size = param("n")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map_or(self.page_size, |n| n.min(self.page_size));
        let last = param("last");
        let url = format!("{}/v2/{repo}/tags/list", self.upstream);
        let upstream = self.forward(request, url).await;
        if upstream.status() != 200 {
            return upstream;
        }
        let body = http_body_util::BodyExt::collect(upstream.into_body())
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let listed: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(error) => return respond(502, format!("tags/list is not JSON: {error}")),
        };
        let mut tags: Vec<String> = listed["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags.retain(|t| last.as_ref().is_none_or(|last| t > last));
        let more = tags.len() > size;
        tags.truncate(size);
        let mut response = respond(200, json!({"name": repo, "tags": tags}).to_string());
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let (true, Some(last)) = (more, tags.last()) {
            let link = format!("</v2/{repo}/tags/list?n={size}&last={last}>; rel=\"next\"");
            headers.insert(
                "link",
                HeaderValue::from_str(&link).expect("tags are header-safe"),
            );
        }
        response
    }

    async fn forward(&self, request: HttpRequest, url: String) -> HttpResponse {
        let (parts, body) = request.into_parts();
        // A HEAD answer has no body, so its Content-Length (a blob's size) must pass as is.
        let head = parts.method == hyper::Method::HEAD;
        let mut outgoing = self.client.request(parts.method, url).body(body);
        for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n)) {
            outgoing = outgoing.header(name, value);
        }
        let upstream = match outgoing.send().await {
            Ok(upstream) => upstream,
            Err(error) => return respond(502, format!("registry unreachable: {error}")),
        };
        let status = upstream.status().as_u16();
        let headers = upstream.headers().clone();
        let body: Bytes = upstream.bytes().await.unwrap_or_default();
        let mut response = hyper::Response::new(Full::new(body));
        *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
        let kept = headers
            .iter()
            .filter(|(n, _)| passes(n) || (head && *n == "content-length"));
        for (name, value) in kept {
            response.headers_mut().append(name, value.clone());
        }
        response
    }
}

/// Hop-by-hop and length headers are the proxy's own business.
fn passes(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "content-length"
    )
}
