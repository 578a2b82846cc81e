//! Remote imagery: COGs read over HTTP(S) with range requests (GDAL's `/vsicurl/`) and from
//! S3-compatible object storage (`/vsis3/`).
//!
//! A source path `https://host/x.tif` becomes `/vsicurl/https://host/x.tif`, and
//! `s3://bucket/key.tif` becomes `/vsis3/bucket/key.tif`. GDAL's HTTP options are set once
//! per process from the `[remote]` table of `tessera.toml`; S3 settings missing there are
//! taken by GDAL from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_S3_ENDPOINT`, …).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The `[remote]` table: how GDAL reads files over HTTP and from S3-compatible storage.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteConfig {
    /// Time limit of one HTTP request, in seconds (`GDAL_HTTP_TIMEOUT`).
    pub timeout: u32,
    /// Time limit to connect, in seconds (`GDAL_HTTP_CONNECTTIMEOUT`).
    pub connect_timeout: u32,
    /// Retries of a request that failed with a 429, 502, 503 or 504 (`GDAL_HTTP_MAX_RETRY`).
    pub retries: u32,
    /// Pause before the first retry, in seconds; GDAL doubles it for each further retry.
    pub retry_delay: f64,
    /// Size of GDAL's cache of downloaded byte ranges, shared by all remote files, in MiB
    /// (`CPL_VSIL_CURL_CACHE_SIZE`).
    pub block_cache_mb: u32,
    /// Size of one range request, in KiB (`CPL_VSIL_CURL_CHUNK_SIZE`): GDAL reads at least
    /// this much at a time.
    pub chunk_kb: u32,
    /// S3 endpoint host and port, for storage other than AWS (`AWS_S3_ENDPOINT`), for
    /// example `127.0.0.1:9000`.
    pub s3_endpoint: Option<String>,
    /// S3 region (`AWS_REGION`).
    pub s3_region: Option<String>,
    /// Access key id (`AWS_ACCESS_KEY_ID`).
    pub s3_access_key_id: Option<String>,
    /// Secret access key (`AWS_SECRET_ACCESS_KEY`). Never logged or shown.
    pub s3_secret_access_key: Option<String>,
    /// Whether the S3 endpoint is reached with HTTPS (`AWS_HTTPS`); default true.
    pub s3_https: Option<bool>,
    /// Whether buckets are addressed as `bucket.host` (`AWS_VIRTUAL_HOSTING`) instead of
    /// `host/bucket`; local servers usually need false.
    pub s3_virtual_hosting: Option<bool>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            timeout: 20,
            connect_timeout: 5,
            retries: 2,
            retry_delay: 0.5,
            block_cache_mb: 64,
            chunk_kb: 16,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_https: None,
            s3_virtual_hosting: None,
        }
    }
}

/// Shows every setting but the secret key, so that the configuration can be logged.
impl fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("block_cache_mb", &self.block_cache_mb)
            .field("chunk_kb", &self.chunk_kb)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field(
                "s3_secret_access_key",
                &self.s3_secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("s3_https", &self.s3_https)
            .field("s3_virtual_hosting", &self.s3_virtual_hosting)
            .finish()
    }
}

/// GDAL's virtual file system prefixes of remote files.
const VSI_PREFIXES: [&str; 2] = ["/vsicurl/", "/vsis3/"];

/// Returns whether `path` names a remote file: a URL or a `/vsicurl/` or `/vsis3/` path.
pub fn is_remote(path: &Path) -> bool {
    let Some(text) = path.to_str() else {
        return false;
    };
    VSI_PREFIXES.iter().any(|prefix| text.starts_with(prefix))
        || ["http://", "https://", "s3://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
}

/// Returns the path that GDAL opens for `path`: a URL gets its `/vsicurl/` or `/vsis3/`
/// prefix, and every other path is returned unchanged.
pub fn gdal_path(path: &Path) -> PathBuf {
    let Some(text) = path.to_str() else {
        return path.to_owned();
    };
    if let Some(rest) = text.strip_prefix("s3://") {
        return PathBuf::from(format!("/vsis3/{rest}"));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return PathBuf::from(format!("/vsicurl/{text}"));
    }
    path.to_owned()
}

/// Returns `path` for logs with any URL query string (which may hold a signature) cut off.
///
/// NOTE: only the start-up log lines use it; error messages such as `RasterError::Open`, and
/// so `/health`, still contain the whole path.
pub fn display_path(path: &Path) -> String {
    let text = path.display().to_string();
    match text.split_once('?') {
        Some((before, _)) if is_remote(path) => format!("{before}?…"),
        _ => text,
    }
}

/// Sets GDAL's process-wide options for remote files. Call it once, before any source opens.
pub fn configure_gdal(config: &RemoteConfig) {
    let yes_no = |value: bool| if value { "YES" } else { "NO" };
    let mut options: Vec<(&str, String)> = vec![
        // Without it, opening a file also lists its "folder", a request that S3 and most
        // HTTP servers serve slowly or not at all.
        ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR".to_owned()),
        ("GDAL_HTTP_TIMEOUT", config.timeout.to_string()),
        (
            "GDAL_HTTP_CONNECTTIMEOUT",
            config.connect_timeout.to_string(),
        ),
        ("GDAL_HTTP_MAX_RETRY", config.retries.to_string()),
        ("GDAL_HTTP_RETRY_DELAY", config.retry_delay.to_string()),
        (
            "CPL_VSIL_CURL_CACHE_SIZE",
            (u64::from(config.block_cache_mb) << 20).to_string(),
        ),
        (
            "CPL_VSIL_CURL_CHUNK_SIZE",
            (u64::from(config.chunk_kb) << 10).to_string(),
        ),
        // Neighbouring ranges of one request are merged into one GET.
        ("GDAL_HTTP_MERGE_CONSECUTIVE_RANGES", "YES".to_owned()),
        ("GDAL_HTTP_MULTIPLEX", "YES".to_owned()),
        ("VSI_CACHE", "TRUE".to_owned()),
    ];
    let s3 = [
        ("AWS_S3_ENDPOINT", config.s3_endpoint.clone()),
        ("AWS_REGION", config.s3_region.clone()),
        ("AWS_ACCESS_KEY_ID", config.s3_access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", config.s3_secret_access_key.clone()),
        ("AWS_HTTPS", config.s3_https.map(|v| yes_no(v).to_owned())),
        (
            "AWS_VIRTUAL_HOSTING",
            config.s3_virtual_hosting.map(|v| yes_no(v).to_owned()),
        ),
    ];
    options.extend(
        s3.into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value))),
    );
    for (key, value) in options {
        if let Err(error) = gdal::config::set_config_option(key, &value) {
            // The value is not logged: it may be a secret.
            tracing::warn!(option = key, %error, "cannot set a GDAL option for remote files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdal_paths_get_their_prefix() {
        let cases = [
            (
                "https://example.org/a.tif",
                "/vsicurl/https://example.org/a.tif",
            ),
            (
                "http://127.0.0.1:8/a.tif",
                "/vsicurl/http://127.0.0.1:8/a.tif",
            ),
            ("s3://bucket/dir/a.tif", "/vsis3/bucket/dir/a.tif"),
            ("/vsis3/bucket/a.tif", "/vsis3/bucket/a.tif"),
            ("/vsicurl/https://h/a.tif", "/vsicurl/https://h/a.tif"),
            ("geodata/a.tif", "geodata/a.tif"),
        ];
        for (given, expected) in cases {
            assert_eq!(gdal_path(Path::new(given)), Path::new(expected), "{given}");
        }
    }

    #[test]
    fn remote_paths_are_recognised() {
        let cases = [
            ("https://example.org/a.tif", true),
            ("s3://bucket/a.tif", true),
            ("/vsicurl/http://h/a.tif", true),
            ("/vsis3/b/a.tif", true),
            ("/data/a.tif", false),
            ("https.tif", false),
        ];
        for (given, remote) in cases {
            assert_eq!(is_remote(Path::new(given)), remote, "{given}");
        }
    }

    #[test]
    fn secret_key_is_not_shown() {
        let config = RemoteConfig {
            s3_secret_access_key: Some("wJalrXUtnFEMI".to_owned()),
            ..RemoteConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn signed_url_query_is_cut() {
        let path = Path::new("/vsicurl/https://h/a.tif?X-Amz-Signature=abc");
        assert_eq!(display_path(path), "/vsicurl/https://h/a.tif?…");
        assert_eq!(display_path(Path::new("/data/a?.tif")), "/data/a?.tif");
    }
}
