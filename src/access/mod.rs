//! Access control: public and private sources, access keys, private attributes, sensitive
//! points, security headers and rate limits.
//!
//! Every request runs inside a [`Grant`] scope that [`middleware`] opens after reading the
//! request's key. `Catalog::get` and `Catalog::iter` call [`is_visible`], so a private source
//! without a valid key is absent from every route, and its tiles return 404 like an unknown
//! source. Code that runs outside any request (start-up, tests) sees every source.

mod config;
mod feature;
mod generalise;
mod keys;
mod middleware;
mod mvt;
mod rate;
mod redact;

use std::sync::Arc;

pub use self::config::{AccessConfig, RateLimit, Sensitive, SourceAccess, Visibility};
pub use self::feature::{FeatureRules, Verdict, feature_rules, hides_heat_map};
pub use self::generalise::{Grid, generalised_bounds};
pub use self::keys::{
    KeyCommand, KeyError, KeyStore, append_new_key, hash_key, new_key, run_key_command,
};
pub use self::middleware::{AccessState, middleware, security_headers};
pub use self::mvt::{MvtError, filter_tile};
pub use self::redact::{
    add_key_to_links, filter_style, filtered_style, keep_in_bbox, may_serve_model, redact_features,
    redact_json_keys, redact_tilejson, shown_bounds, url_with_key, widen_items_bbox,
};

use crate::source::Source;

/// The query parameter that carries an access key.
pub const KEY_PARAMETER: &str = "key";

/// The request header that carries an access key (besides `Authorization: Bearer`).
pub const KEY_HEADER: &str = "x-tessera-key";

/// The access of the current request: the server's access policy and the groups of its key.
#[derive(Debug, Clone)]
pub struct Grant {
    policy: Arc<AccessConfig>,
    /// The groups of the request's key; empty without a key.
    groups: Vec<String>,
    /// The key as the client sent it in `?key=`, passed on in the URLs the server writes.
    query_key: Option<String>,
}

tokio::task_local! {
    static GRANT: Grant;
}

impl Grant {
    /// Creates a grant without a key.
    pub fn anonymous(policy: Arc<AccessConfig>) -> Self {
        Self {
            policy,
            groups: Vec::new(),
            query_key: None,
        }
    }

    /// Creates a grant for a key of `groups`. `query_key` is the key when it came in `?key=`.
    pub fn keyed(
        policy: Arc<AccessConfig>,
        groups: Vec<String>,
        query_key: Option<String>,
    ) -> Self {
        Self {
            policy,
            groups,
            query_key,
        }
    }

    pub fn policy(&self) -> &AccessConfig {
        &self.policy
    }

    /// Returns whether the request came with a valid key of at least one group.
    pub fn has_key(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Returns whether the request's key opens `source`: its own id, the imagery it covers,
    /// one of its `groups`, or a server group that lists it.
    pub fn opens(&self, source: &Source) -> bool {
        if self.groups.is_empty() {
            return false;
        }
        let access = &source.access;
        let own = std::iter::once(source.id.as_str())
            .chain(access.parent.as_deref())
            .chain(access.groups.iter().map(String::as_str));
        for name in own {
            if self.groups.iter().any(|group| group == name) {
                return true;
            }
        }
        let ids = std::iter::once(source.id.as_str()).chain(access.parent.as_deref());
        for id in ids {
            for (group, members) in &self.policy.groups {
                if members.iter().any(|member| member == id)
                    && self.groups.iter().any(|held| held == group)
                {
                    return true;
                }
            }
        }
        false
    }

    /// Returns whether `source` is private under this policy.
    pub fn is_private(&self, source: &Source) -> bool {
        source.access.visibility.unwrap_or(self.policy.default) == Visibility::Private
    }

    /// Returns whether the request may see `source` at all.
    pub fn sees(&self, source: &Source) -> bool {
        !self.is_private(source) || self.opens(source)
    }

    /// Returns whether the request gets `source`'s private attributes and exact sensitive
    /// positions.
    pub fn sees_everything(&self, source: &Source) -> bool {
        self.opens(source)
    }
}

/// Runs `future` with `grant` as the current request's grant.
pub async fn scope<F: std::future::Future>(grant: Grant, future: F) -> F::Output {
    GRANT.scope(grant, future).await
}

/// Runs the blocking `work` with `grant` as the current grant, for work that a request hands
/// to another thread. With `None` it runs as outside a request.
pub fn with_grant<R>(grant: Option<Grant>, work: impl FnOnce() -> R) -> R {
    match grant {
        Some(grant) => GRANT.sync_scope(grant, work),
        None => work(),
    }
}

/// Returns the current request's grant, or `None` outside a request.
pub fn current() -> Option<Grant> {
    GRANT.try_with(Clone::clone).ok()
}

/// Returns whether the current request may see `source`. Outside a request (start-up, tests)
/// every source is visible.
pub fn is_visible(source: &Source) -> bool {
    GRANT.try_with(|grant| grant.sees(source)).unwrap_or(true)
}

/// Returns `?key=KEY` when the current request sent its key as a query parameter, else an
/// empty string. URLs written into a response carry it, so they keep working for the client.
pub fn key_query() -> String {
    GRANT
        .try_with(|grant| grant.query_key.clone())
        .ok()
        .flatten()
        .map_or_else(String::new, |key| {
            format!("?{KEY_PARAMETER}={}", percent_encode(&key))
        })
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Restricts an inflated MVT tile of `source` for the current request exactly as
/// [`restrict_rendered`] does for the tile route, on the calling thread. Returns `None` when
/// no feature is left.
pub fn restrict_mvt(
    source: &Source,
    tile: crate::tile::TileCoord,
    plain: Vec<u8>,
) -> Result<Option<Vec<u8>>, MvtError> {
    let Some(grant) = current() else {
        return Ok(Some(plain));
    };
    if !source.access.restricts() || grant.sees_everything(source) {
        return Ok(Some(plain));
    }
    let policy = grant.policy();
    let settings = (policy.sensitive_zoom, policy.sensitive_cell_m);
    let density = matches!(source.backend, crate::source::Backend::Density(_));
    filter_tile(&plain, &source.access, tile, settings, density)
}

/// Most bytes a stored tile may inflate to before it is filtered.
const MAX_INFLATED_TILE_BYTES: u64 = 64 * 1024 * 1024;

/// Restricts a rendered tile for the current request: an MVT tile loses private attributes
/// and exact sensitive points ([`filter_tile`]), and a density heat map is not drawn from the
/// sensitive zoom on. Returns `None` when nothing is left, and the tile route then returns 204
/// like for any empty tile. The filtering runs on `workers`.
pub async fn restrict_rendered<T: Send + 'static>(
    workers: &crate::worker::Workers,
    source: &Arc<Source>,
    tile: crate::tile::TileCoord,
    format: crate::format::TileFormat,
    rendered: Option<(bytes::Bytes, crate::format::Compression, T)>,
) -> Result<Option<(bytes::Bytes, crate::format::Compression, T)>, String> {
    use crate::format::{Compression, TileFormat};
    let Some((bytes, compression, extra)) = rendered else {
        return Ok(None);
    };
    let Some(grant) = current() else {
        return Ok(Some((bytes, compression, extra)));
    };
    if !source.access.restricts() || grant.sees_everything(source) {
        return Ok(Some((bytes, compression, extra)));
    }
    let policy = grant.policy();
    let density = matches!(source.backend, crate::source::Backend::Density(_));
    if format != TileFormat::Mvt {
        let hide = density && source.access.sensitive.is_some() && tile.z >= policy.sensitive_zoom;
        return Ok((!hide).then_some((bytes, compression, extra)));
    }
    let settings = (policy.sensitive_zoom, policy.sensitive_cell_m);
    let source = Arc::clone(source);
    let filtered = workers
        .run(move || {
            let plain = match compression {
                Compression::None => bytes.to_vec(),
                Compression::Gzip => {
                    use std::io::Read;
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .take(MAX_INFLATED_TILE_BYTES)
                        .read_to_end(&mut out)
                        .map_err(|error| format!("the stored tile cannot be inflated: {error}"))?;
                    out
                }
                other => {
                    return Err(format!(
                        "a stored tile with {} compression cannot be filtered: store the archive with gzip",
                        other.content_encoding().unwrap_or("unknown")
                    ));
                }
            };
            filter_tile(&plain, &source.access, tile, settings, density)
                .map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| error.to_string())??;
    Ok(filtered.map(|bytes| (bytes::Bytes::from(bytes), Compression::None, extra)))
}
