//! A static file server on `127.0.0.1:0` that honours single `Range` requests and counts the
//! requests and body bytes it sends, for testing reads through GDAL's `/vsicurl/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Requests and body bytes served so far.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl Counts {
    pub(crate) fn snapshot(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

pub(crate) struct RangeServer {
    pub(crate) address: SocketAddr,
    pub(crate) counts: Arc<Counts>,
}

impl RangeServer {
    /// Serves the files of `folder` by name.
    pub(crate) async fn start(folder: PathBuf) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let counts = Arc::new(Counts::default());
        let served = Arc::clone(&counts);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (folder, counts) = (folder.clone(), Arc::clone(&served));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let response = respond(&folder, &counts, &request);
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { address, counts }
    }

    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.address)
    }
}

fn respond(
    folder: &std::path::Path,
    counts: &Counts,
    request: &Request<Incoming>,
) -> Response<http_body_util::Full<Bytes>> {
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let name = request.uri().path().trim_start_matches('/');
    let status = |code: StatusCode| {
        let mut response = Response::new(http_body_util::Full::new(Bytes::new()));
        *response.status_mut() = code;
        response
    };
    if name.contains('/') || name.is_empty() {
        return status(StatusCode::NOT_FOUND);
    }
    let Ok(file) = std::fs::read(folder.join(name)) else {
        return status(StatusCode::NOT_FOUND);
    };
    let length = file.len() as u64;
    let range = request
        .headers()
        .get(hyper::header::RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_range(value, length));
    let (code, body, content_range) = match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            Bytes::copy_from_slice(&file[start as usize..=end as usize]),
            Some(format!("bytes {start}-{end}/{length}")),
        ),
        None => (StatusCode::OK, Bytes::from(file), None),
    };
    let sent = if request.method() == Method::HEAD {
        0
    } else {
        body.len() as u64
    };
    counts.bytes.fetch_add(sent, Ordering::SeqCst);
    let body_length = body.len();
    let mut response = Response::new(http_body_util::Full::new(
        if request.method() == Method::HEAD {
            Bytes::new()
        } else {
            body
        },
    ));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::ACCEPT_RANGES,
        "bytes".parse().expect("header"),
    );
    headers.insert(
        hyper::header::CONTENT_LENGTH,
        body_length.to_string().parse().expect("header"),
    );
    if let Some(content_range) = content_range {
        headers.insert(
            hyper::header::CONTENT_RANGE,
            content_range.parse().expect("header"),
        );
    }
    response
}

/// Parses a single `bytes=start-end` or `bytes=start-` range within `length`; several ranges
/// or an invalid one get the whole file.
fn parse_range(value: &str, length: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = match end.trim() {
        "" => length.checked_sub(1)?,
        end => end.parse::<u64>().ok()?.min(length.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}
