//! Limits that every request passes: a time limit per request, a bound on the work in flight
//! per source, and the rejection of path segments that do not decode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AppState;
use super::problem::{Problem, shortened};
use crate::source::Catalog;

/// Largest request line and header section read from a client, in bytes; a request beyond
/// it gets a 431 (hyper's default is about 400 KiB).
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Seconds a client should wait (`Retry-After`) after a 503 for a busy source or a request
/// that timed out.
const RETRY_AFTER_SECONDS: u32 = 1;

/// Ends a request that runs longer than `request_timeout` with a 503 and `Retry-After`.
/// Work started on the worker pool stops at its own deadline (`tile_timeout`).
pub(super) async fn request_timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = Duration::from_secs_f64(state.config.request_timeout);
    let path = request.uri().path().to_owned();
    let Ok(response) = tokio::time::timeout(limit, next.run(request)).await else {
        let seconds = state.config.request_timeout;
        tracing::warn!(path = %shortened(&path, 200), seconds, "request timed out");
        let problem = Problem::unavailable(format!(
            "the request for {} took longer than request_timeout ({seconds} s): retry later",
            shortened(&path, 200),
        ));
        return with_retry_after(problem.into_response());
    };
    response
}

/// Rejects a request whose path has a segment that does not percent-decode to UTF-8, naming
/// the route's parameter for that segment (`source`, `z`, ...) as the `parameter`.
pub(super) async fn decodable_segments(request: Request, next: Next) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    if let Some(template) = template
        && let Some(parameter) = undecodable_parameter(&template, request.uri().path())
    {
        return Problem::bad_parameter(
            parameter,
            format!(
                "the {parameter} segment of the URL path is not valid UTF-8 once percent-decoded: encode the value as UTF-8"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Returns the parameter name of the first segment of `path` that does not decode, or `None`
/// when all decode. `template` is the route, such as `/tiles/{source}/{z}/{x}/{name}`.
pub fn undecodable_parameter(template: &str, path: &str) -> Option<&'static str> {
    for (pattern, segment) in template.split('/').zip(path.split('/')) {
        if percent_decodes(segment) {
            continue;
        }
        let name = pattern
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or("path");
        return Some(static_name(name));
    }
    None
}

/// Maps a route parameter name to a `'static` one for [`Problem::parameter`].
fn static_name(name: &str) -> &'static str {
    const NAMES: [&str; 16] = [
        "source",
        "z",
        "x",
        "name",
        "file",
        "layer",
        "style",
        "time",
        "set",
        "matrix",
        "row",
        "col",
        "id",
        "feature",
        "fontstack",
        "range",
    ];
    NAMES
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("path")
}

/// Returns whether `segment` percent-decodes to valid UTF-8. A `%` not followed by two hex
/// digits stays literal, as axum reads it.
fn percent_decodes(segment: &str) -> bool {
    if !segment.contains('%') {
        return true;
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .filter(|_| bytes[index] == b'%')
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        if let Some(byte) = hex {
            decoded.push(byte);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

fn with_retry_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// The work in flight per source: at most `concurrency` tiles render at once, at most
/// `queue` more wait, and any beyond get a 503 with `Retry-After`.
#[derive(Debug)]
pub struct SourceLimits {
    sources: HashMap<String, SourceLimit>,
    concurrency: usize,
    queue: usize,
}

#[derive(Debug)]
struct SourceLimit {
    running: Semaphore,
    waiting: AtomicUsize,
}

impl SourceLimits {
    /// Builds a limit for every source of `catalog`. A `concurrency` of 0 means three
    /// quarters of `workers`, and at least 1 fewer than `workers` when there are two or more,
    /// so that one slow source leaves a worker to the others.
    pub fn new(catalog: &Catalog, workers: usize, concurrency: usize, queue: usize) -> Self {
        let concurrency = if concurrency == 0 {
            default_concurrency(workers)
        } else {
            concurrency
        };
        let sources = catalog
            .iter()
            .map(|source| {
                let limit = SourceLimit {
                    running: Semaphore::new(concurrency),
                    waiting: AtomicUsize::new(0),
                };
                (source.id.clone(), limit)
            })
            .collect();
        Self {
            sources,
            concurrency,
            queue,
        }
    }

    /// Tiles of one source rendered at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Waits for a turn to render a tile of `source`, or fails at once with a 503 when its
    /// queue is full. A source without a limit (none in the catalog) passes.
    pub async fn acquire(&self, source: &str) -> Result<Option<SemaphorePermit<'_>>, Problem> {
        let Some(limit) = self.sources.get(source) else {
            return Ok(None);
        };
        if let Ok(permit) = limit.running.try_acquire() {
            return Ok(Some(permit));
        }
        if limit.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            limit.waiting.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!(source, "source busy: queue full");
            return Err(busy(source, self.concurrency, self.queue));
        }
        let permit = limit.running.acquire().await;
        limit.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.expect("the source semaphores are never closed");
        Ok(Some(permit))
    }
}

/// Returns three quarters of the pool, rounded up. A pool of four or more keeps a quarter for
/// the other sources. A pool of two or three gives one source all of it, because holding a
/// worker back there would halve the throughput of a server with one busy source.
fn default_concurrency(workers: usize) -> usize {
    (workers * 3).div_ceil(4).max(1)
}

/// Builds the 503 for a source whose renders and queue are full.
fn busy(source: &str, concurrency: usize, queue: usize) -> Problem {
    Problem::unavailable(format!(
        "source {source:?} is busy: {concurrency} tiles are rendering and {queue} are waiting; retry after {RETRY_AFTER_SECONDS} s"
    ))
}

/// Adds `Retry-After` to 503 responses, which here always mean a busy source or a time limit.
pub(super) async fn retry_after_on_unavailable(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        return with_retry_after(response);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_segment_named() {
        let route = "/tiles/{source}/{z}/{x}/{name}";
        let cases = [
            ("/tiles/camps/1/2/3.pbf", None),
            ("/tiles/%FF/1/2/3.pbf", Some("source")),
            ("/tiles/camps/%C3/2/3.pbf", Some("z")),
            ("/tiles/camps/1/2/%E2%82.pbf", Some("name")),
            ("/tiles/caf%C3%A9/1/2/3.pbf", None),
            ("/tiles/100%/1/2/3.pbf", None),
        ];
        for (path, expected) in cases {
            assert_eq!(undecodable_parameter(route, path), expected, "{path}");
        }
        assert_eq!(
            undecodable_parameter("/models/{file}", "/models/%80.glb"),
            Some("file")
        );
    }

    #[test]
    fn default_concurrency_is_three_quarters() {
        let cases = [(1, 1), (2, 2), (3, 3), (4, 3), (8, 6), (16, 12)];
        for (workers, expected) in cases {
            assert_eq!(default_concurrency(workers), expected, "{workers} workers");
        }
    }

    #[tokio::test]
    async fn full_queue_rejected() {
        let limit = SourceLimits {
            sources: HashMap::from([(
                "slow".to_owned(),
                SourceLimit {
                    running: Semaphore::new(1),
                    waiting: AtomicUsize::new(0),
                },
            )]),
            concurrency: 1,
            queue: 1,
        };
        let running = limit.acquire("slow").await.expect("first runs");
        assert!(running.is_some());
        let waiting = limit.acquire("slow");
        let mut waiting = Box::pin(waiting);
        // The second waits in the queue, so the third finds the queue full.
        assert!(futures_poll_pending(&mut waiting).await);
        let problem = limit.acquire("slow").await.expect_err("queue full");
        assert_eq!(problem.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(problem.detail.contains("busy"), "{}", problem.detail);
        drop(running);
        let second = waiting.await.expect("the waiting request runs");
        assert!(second.is_some());
        assert!(limit.acquire("other").await.expect("no limit").is_none());
    }

    /// Polls `future` once and returns whether it is still pending.
    async fn futures_poll_pending<F: std::future::Future + Unpin>(future: &mut F) -> bool {
        tokio::select! {
            biased;
            _ = future => false,
            () = std::future::ready(()) => true,
        }
    }
}
