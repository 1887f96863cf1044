//! A minimal HTTP/1.1 server on 127.0.0.1 that breaks a blob body on purpose: the first
//! GET sends half the bytes then closes; later GETs honour `Range` (or ignore it).
//!
//! Owns only this misbehaviour; wiremock cannot cut a body short.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running server; requests are recorded as their header blocks.
pub(super) struct RawServer {
    pub(super) addr: SocketAddr,
    pub(super) requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    blob: Bytes,
    blob_path: String,
    honour_range: bool,
    blob_hits: AtomicUsize,
    requests: Arc<Mutex<Vec<String>>>,
}

/// Serves `blob` at `blob_path`; the first GET of it is cut in half.
pub(super) async fn start(blob: Bytes, blob_path: String, honour_range: bool) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let state = Arc::new(State {
        blob,
        blob_path,
        honour_range,
        blob_hits: AtomicUsize::new(0),
        requests: requests.clone(),
    });
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, state.clone()));
        }
    });
    RawServer {
        addr,
        requests,
        task,
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if !head[0].is_ascii_uppercase() {
            return; // a TLS ClientHello: not spoken here
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if let Ok(mut log) = state.requests.lock() {
        log.push(head.clone());
    }
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let range_start = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("range: bytes=")
                .map(str::to_owned)
        })
        .and_then(|r| r.trim().trim_end_matches('-').parse::<usize>().ok());
    let blob = &state.blob;
    let (status, extra, body): (&str, String, Bytes) = if target == "/v2/" {
        ("200 OK", String::new(), Bytes::from_static(b"{}"))
    } else if target == state.blob_path {
        let hit = state.blob_hits.fetch_add(1, Ordering::SeqCst);
        match range_start {
            Some(start) if state.honour_range && start < blob.len() => (
                "206 Partial Content",
                format!(
                    "Content-Range: bytes {start}-{}/{}\r\n",
                    blob.len() - 1,
                    blob.len()
                ),
                blob.slice(start..),
            ),
            _ if hit == 0 => {
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    blob.len()
                );
                let _ = stream.write_all(header.as_bytes()).await;
                let _ = stream.write_all(&blob[..blob.len() / 2]).await;
                let _ = stream.shutdown().await;
                return;
            }
            _ => ("200 OK", String::new(), blob.clone()),
        }
    } else {
        ("404 Not Found", String::new(), Bytes::new())
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(header.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}
