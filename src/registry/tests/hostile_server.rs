//! A registry on 127.0.0.1 that misbehaves the ways wiremock cannot: bodies cut short or
//! longer than announced, stalls after the headers, silence after `accept`, endless pages.
//!
//! Owns only the wire format of those answers; which answer a request gets is the test's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server sends for one request.
pub(super) enum Reply {
    /// A whole answer: status line (`200 OK`), extra header lines, body.
    Full {
        status: &'static str,
        headers: Vec<String>,
        body: Bytes,
    },
    /// Headers announcing `announced` bytes (`None`: no `Content-Length`, the body ends
    /// when the connection closes), then `body`, then close.
    Cut {
        headers: Vec<String>,
        announced: Option<usize>,
        body: Bytes,
    },
    /// Headers announcing `announced` bytes, then `prefix`, then nothing ever again.
    Stall { announced: usize, prefix: Bytes },
}

/// A plain `200 OK` with a body and extra headers.
pub(super) fn ok(headers: &[String], body: impl Into<Bytes>) -> Reply {
    Reply::Full {
        status: "200 OK",
        headers: headers.to_vec(),
        body: body.into(),
    }
}

type Route = dyn Fn(&str, &str) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub(super) struct HostileServer {
    pub(super) addr: SocketAddr,
    /// `METHOD PATH` of every request read, in order.
    pub(super) requests: Arc<Mutex<Vec<String>>>,
    /// Connections accepted (a silent server never reads a request).
    pub(super) connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileServer {
    /// Answers `/v2/` with 200 and every other request with `route(method, path)`.
    pub(super) async fn start(route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Self {
        Self::spawn(Some(Arc::new(route))).await
    }

    /// Accepts connections and never says or reads anything.
    pub(super) async fn silent() -> Self {
        Self::spawn(None).await
    }

    async fn spawn(route: Option<Arc<Route>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (log, count) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                match &route {
                    Some(route) => {
                        tokio::spawn(serve(stream, route.clone(), log.clone()));
                    }
                    None => held.push(stream),
                }
            }
        });
        HostileServer {
            addr,
            requests,
            connections,
            task,
        }
    }

    /// `METHOD PATH` lines received whose path contains `part`.
    pub(super) fn hits(&self, part: &str) -> usize {
        let log = self.requests.lock().expect("request log");
        log.iter().filter(|line| line.contains(part)).count()
    }
}

async fn serve(mut stream: TcpStream, route: Arc<Route>, log: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if !head[0].is_ascii_uppercase() {
            return; // a TLS ClientHello: refused at once, as a plain HTTP server does
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    if let Ok(mut log) = log.lock() {
        log.push(format!("{method} {target}"));
    }
    let reply = if target == "/v2/" {
        ok(&[], "{}")
    } else {
        route(method, target)
    };
    let head = |status: &str, headers: &[String], length: Option<usize>| {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        if let Some(length) = length {
            out.push_str(&format!("Content-Length: {length}\r\n"));
        }
        for header in headers {
            out.push_str(&format!("{header}\r\n"));
        }
        out + "\r\n"
    };
    let (bytes, body, stall) = match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => (head(status, &headers, Some(body.len())), body, false),
        Reply::Cut {
            headers,
            announced,
            body,
        } => (head("200 OK", &headers, announced), body, false),
        Reply::Stall { announced, prefix } => (head("200 OK", &[], Some(announced)), prefix, true),
    };
    let _ = stream.write_all(bytes.as_bytes()).await;
    if method != "HEAD" {
        let _ = stream.write_all(&body).await;
    }
    if stall {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let _ = stream.shutdown().await;
}
