//! The request middleware: reads the access key, applies the rate limits, runs the request
//! inside its [`Grant`], and marks responses so that caches keep keyed answers apart; and the
//! security headers of every response.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::keys::KeyStore;
use super::rate::Limiter;
use super::{AccessConfig, Grant, KEY_HEADER, KEY_PARAMETER};

/// The access state of a running server: its policy, keys and rate limiters.
#[derive(Debug, Clone)]
pub struct AccessState {
    policy: Arc<AccessConfig>,
    keys: Arc<KeyStore>,
    per_address: Option<Arc<Limiter>>,
    per_key: Option<Arc<Limiter>>,
}

impl AccessState {
    pub fn new(policy: AccessConfig) -> Self {
        let keys = KeyStore::new(
            policy.keys_file.clone(),
            Duration::from_secs_f64(policy.keys_reload_seconds),
        );
        let limits = &policy.rate_limit;
        Self {
            per_address: Limiter::new(limits.per_address, limits.address_burst).map(Arc::new),
            per_key: Limiter::new(limits.per_key, limits.key_burst).map(Arc::new),
            keys: Arc::new(keys),
            policy: Arc::new(policy),
        }
    }

    pub fn policy(&self) -> &Arc<AccessConfig> {
        &self.policy
    }
}

/// The header names whose values change a response: caches must key on them.
const VARY_ON_KEY: &str = "Authorization, X-Tessera-Key";

/// Reads the key, checks the rate limits and runs the request inside its grant.
///
/// A key in `?key=` is removed from the request's URI here, so the handlers' parameter checks
/// accept it and the request span logs the URI without it.
pub async fn middleware(
    State(access): State<AccessState>,
    mut request: Request,
    next: Next,
) -> Response {
    let query_key = take_query_key(&mut request);
    let key = header_key(request.headers()).or_else(|| query_key.clone());
    let address = client_address(&access.policy, &request);

    if let (Some(limiter), Some(address)) = (&access.per_address, address)
        && let Err(wait) = limiter.check(&address.to_string(), Instant::now())
    {
        tracing::info!(%address, "rate limit per address reached");
        return too_many_requests(
            "per_address",
            &format!(
                "more than {} requests per second from one client address",
                limiter.rate()
            ),
            wait,
        );
    }

    let grant = match &key {
        None => Grant::anonymous(Arc::clone(&access.policy)),
        Some(key) => match access.keys.groups(key) {
            Some(groups) => Grant::keyed(Arc::clone(&access.policy), groups, query_key),
            None => return invalid_key(),
        },
    };
    if let (Some(limiter), Some(key)) = (&access.per_key, &key) {
        // The bucket is named by the key's hash, so no key is kept in memory beyond the request.
        if let Err(wait) = limiter.check(&super::hash_key(key), Instant::now()) {
            tracing::info!("rate limit per key reached");
            return too_many_requests(
                "per_key",
                &format!(
                    "more than {} requests per second with one key",
                    limiter.rate()
                ),
                wait,
            );
        }
    }

    let mut response = super::scope(grant, next.run(request)).await;
    mark_for_caches(response.headers_mut(), key.is_some());
    response
}

/// Returns the key of `Authorization: Bearer KEY` or `X-Tessera-Key: KEY`.
fn header_key(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    bearer
        .or_else(|| {
            headers
                .get(KEY_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.trim().to_owned())
        })
        .filter(|key| !key.is_empty())
}

/// Removes every `key=` pair from the request's query and returns the first key.
fn take_query_key(request: &mut Request) -> Option<String> {
    let query = request.uri().query()?;
    let mut key = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == KEY_PARAMETER {
            if key.is_none() {
                key = Some(percent_decode(value));
            }
        } else {
            kept.push(pair);
        }
    }
    key.as_ref()?;
    let path = request.uri().path();
    let path_and_query = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = PathAndQuery::try_from(path_and_query).ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    key.filter(|key| !key.is_empty())
}

/// Decodes `%XX` escapes and `+` (a space in form encoding); invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let escaped = (byte == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(value) = escaped {
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(if byte == b'+' { b' ' } else { byte });
            index += 1;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Returns the client's address: the peer, or the last `X-Forwarded-For` entry when the
/// configuration trusts a proxy in front.
fn client_address(policy: &AccessConfig, request: &Request) -> Option<IpAddr> {
    if policy.trust_forwarded_for {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Adds `Vary` on the key headers to every response, and makes a keyed response private to
/// the client, so that no shared cache hands it to another.
fn mark_for_caches(headers: &mut HeaderMap, keyed: bool) {
    headers.append(header::VARY, HeaderValue::from_static(VARY_ON_KEY));
    if !keyed {
        return;
    }
    let private = match headers
        .get(header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
    {
        Some(value) if value.contains("no-store") => return,
        Some(value) => {
            let rest: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|directive| !directive.eq_ignore_ascii_case("public"))
                .collect();
            if rest.is_empty() {
                "private".to_owned()
            } else {
                format!("private, {}", rest.join(", "))
            }
        }
        None => "private".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&private) {
        headers.insert(header::CACHE_CONTROL, value);
    }
}

fn problem(status: StatusCode, title: &str, detail: &str) -> serde_json::Value {
    json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    })
}

fn problem_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn too_many_requests(limit: &'static str, what: &str, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let status = StatusCode::TOO_MANY_REQUESTS;
    let mut body = problem(
        status,
        "Too many requests",
        &format!("rate limit {limit} exceeded: {what}; retry after {seconds} s"),
    );
    body["limit"] = json!(limit);
    let mut response = problem_response(status, &body);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).expect("digits are a valid header"),
    );
    response
}

fn invalid_key() -> Response {
    let status = StatusCode::UNAUTHORIZED;
    let body = problem(
        status,
        "Invalid access key",
        "the access key is not valid or was revoked: ask for a new key, or omit it for public data",
    );
    let mut response = problem_response(status, &body);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tessera\""),
    );
    response
}

/// The Content-Security-Policy of every response: only this server's origin, blob workers for
/// MapLibre, no framing. JSON and tiles ignore it; the viewer's page depends on it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; \
connect-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; object-src 'none'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response, errors included.
///
/// `Cross-Origin-Resource-Policy: cross-origin` keeps tiles usable by maps on other origins,
/// which the permissive CORS of the tile routes also allows.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-resource-policy", "cross-origin"),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_key_is_taken_out() {
        let cases = [
            ("/tiles/a.json?key=tsk_1", Some("tsk_1"), "/tiles/a.json"),
            (
                "/tiles/a.json?date=2020&key=tsk_2",
                Some("tsk_2"),
                "/tiles/a.json?date=2020",
            ),
            ("/x?key=a%2Bb&key=c&z=1", Some("a+b"), "/x?z=1"),
            ("/x?keys=1", None, "/x?keys=1"),
            ("/x", None, "/x"),
        ];
        for (uri, key, rest) in cases {
            let mut request = Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .expect("request");
            let taken = take_query_key(&mut request);
            assert_eq!(taken.as_deref(), key, "{uri}");
            assert_eq!(request.uri().to_string(), rest, "{uri}");
        }
    }

    #[test]
    fn header_keys_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(header_key(&headers), None);
        headers.insert(KEY_HEADER, HeaderValue::from_static(" tsk_x "));
        assert_eq!(header_key(&headers).as_deref(), Some("tsk_x"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tsk_y"),
        );
        assert_eq!(header_key(&headers).as_deref(), Some("tsk_y"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(header_key(&headers).as_deref(), Some("tsk_x"));
    }

    #[test]
    fn keyed_responses_become_private() {
        let cases = [
            (
                Some("public, max-age=60"),
                true,
                Some("private, max-age=60"),
            ),
            (
                Some("public, max-age=60"),
                false,
                Some("public, max-age=60"),
            ),
            (Some("no-store"), true, Some("no-store")),
            (None, true, Some("private")),
            (None, false, None),
        ];
        for (before, keyed, after) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = before {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
            }
            mark_for_caches(&mut headers, keyed);
            let got = headers
                .get(header::CACHE_CONTROL)
                .map(|value| value.to_str().expect("ASCII"));
            assert_eq!(got, after, "{before:?} keyed {keyed}");
            assert_eq!(headers[header::VARY], VARY_ON_KEY);
        }
    }

    #[test]
    fn forwarded_address_only_when_trusted() {
        let request = || {
            let mut request = Request::builder()
                .header("x-forwarded-for", "203.0.113.9, 198.51.100.7")
                .body(axum::body::Body::empty())
                .expect("request");
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
            request
        };
        let mut policy = AccessConfig::default();
        assert_eq!(
            client_address(&policy, &request()),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        policy.trust_forwarded_for = true;
        assert_eq!(
            client_address(&policy, &request()),
            Some(IpAddr::from([198, 51, 100, 7]))
        );
    }
}
