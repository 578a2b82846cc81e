//! The provenance block of a PDF map: which files were read, their SHA-256, dates, source,
//! licence and enhancement, and what was requested when.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProvenanceError {
    #[error(
        "cannot read {path} to compute its SHA-256: {source}; check that the file exists and is readable"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Bytes read per step while hashing, so that a large GeoTIFF is never held in memory.
const HASH_CHUNK_BYTES: usize = 1 << 20;

/// A file's identity for the digest cache: a file whose size or modification time changed is
/// hashed again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    size: u64,
    modified: Option<SystemTime>,
}

/// SHA-256 digests by path, valid while the file's size and modification time are unchanged.
/// The cache has one entry per file hashed, and only source files of the catalog are hashed.
static DIGESTS: LazyLock<Mutex<HashMap<PathBuf, (FileStamp, String)>>> =
    LazyLock::new(Mutex::default);

/// Returns the lowercase hexadecimal SHA-256 of the file at `path`, reading it in 1 MiB
/// chunks the first time and from the cache afterwards.
pub fn file_sha256(path: &Path) -> Result<String, ProvenanceError> {
    let read_error = |source| ProvenanceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    let stamp = FileStamp {
        size: metadata.len(),
        modified: metadata.modified().ok(),
    };
    {
        let cache = DIGESTS
            .lock()
            .expect("the digest cache lock is never poisoned");
        if let Some((cached, digest)) = cache.get(path)
            && *cached == stamp
        {
            return Ok(digest.clone());
        }
    }
    // Hashing runs outside the lock, so two first requests for one file may both hash it.
    let digest = hash_file(path).map_err(read_error)?;
    tracing::debug!(path = %path.display(), size = stamp.size, "hashed a source file");
    DIGESTS
        .lock()
        .expect("the digest cache lock is never poisoned")
        .insert(path.to_path_buf(), (stamp, digest.clone()));
    Ok(digest)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; HASH_CHUNK_BYTES];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            write!(text, "{byte:02x}").expect("writing to a String cannot fail");
            text
        })
}

/// One source file read for a map.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub path: PathBuf,
    pub sha256: String,
    /// Acquisition dates of the imagery shown from this file; empty for vector files.
    pub dates: Vec<String>,
    /// The source's id and display name.
    pub source: String,
    pub attribution: Option<String>,
    /// The enhancement applied to this file's pixels, or `None` for the plain warp.
    pub enhancement: Option<String>,
}

/// The request a map was rendered for: the style, the extent in degrees, the zoom and the date.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub style: String,
    /// West, south, east, north in degrees.
    pub extent: [f64; 4],
    pub zoom: f64,
    pub date: Option<String>,
}

/// Everything the provenance block states.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    pub files: Vec<FileRecord>,
    pub request: RequestRecord,
    pub rendered_at: DateTime<Utc>,
}

/// A line of the provenance block: a heading or a label with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenanceLine {
    Heading(String),
    Field { label: String, value: String },
}

impl Provenance {
    /// Lays the block out as lines: the request first, then one group per file.
    pub fn lines(&self) -> Vec<ProvenanceLine> {
        let field = |label: &str, value: String| ProvenanceLine::Field {
            label: label.to_string(),
            value,
        };
        let [west, south, east, north] = self.request.extent;
        let mut lines = vec![
            ProvenanceLine::Heading("Provenance".to_string()),
            field(
                "Rendered",
                format!(
                    "{} by Tessera {}",
                    self.rendered_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            field(
                "Request",
                format!(
                    "style {}, extent {west:.6}, {south:.6}, {east:.6}, {north:.6} \
                     (west, south, east, north), zoom {:.2}, date {}",
                    self.request.style,
                    self.request.zoom,
                    self.request.date.as_deref().unwrap_or("newest"),
                ),
            ),
        ];
        if self.files.is_empty() {
            lines.push(field("Files", "none: no source file was read".to_string()));
        }
        for file in &self.files {
            let name = file.path.file_name().map_or_else(
                || file.path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            lines.push(ProvenanceLine::Heading(name));
            lines.push(field("SHA-256", file.sha256.clone()));
            lines.push(field("Source", file.source.clone()));
            let dates = if file.dates.is_empty() {
                "not applicable".to_string()
            } else {
                file.dates.join(", ")
            };
            lines.push(field("Acquired", dates));
            lines.push(field(
                "Attribution",
                file.attribution
                    .clone()
                    .unwrap_or_else(|| "not stated by the source".to_string()),
            ));
            lines.push(field(
                "Enhancement",
                file.enhancement
                    .clone()
                    .unwrap_or_else(|| "none".to_string()),
            ));
        }
        lines
    }
}

/// Reads the time of rendering from `SOURCE_DATE_EPOCH` (seconds since 1970, the
/// reproducible-builds convention) when it is set, so that two runs give the same bytes,
/// and from the clock otherwise.
pub fn rendering_time() -> DateTime<Utc> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|seconds| seconds.trim().parse::<i64>().ok())
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_digest() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("abc.txt");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            file_sha256(&path).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_cache_follows_file_changes() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("changing.bin");
        std::fs::write(&path, vec![7_u8; HASH_CHUNK_BYTES + 3]).expect("write");
        let first = file_sha256(&path).expect("hash");
        assert_eq!(file_sha256(&path).expect("cached hash"), first);
        assert_eq!(first, hash_file(&path).expect("direct hash"));
        std::fs::write(&path, b"shorter").expect("rewrite");
        let second = file_sha256(&path).expect("hash after the change");
        assert_ne!(second, first);
        assert_eq!(second, hash_file(&path).expect("direct hash"));
    }

    #[test]
    fn sha256_of_missing_file_names_path() {
        let error = file_sha256(Path::new("/nonexistent/tessera.tif")).expect_err("missing");
        assert!(
            error.to_string().contains("/nonexistent/tessera.tif"),
            "{error}"
        );
    }

    #[test]
    fn lines_state_every_file_fact() {
        let provenance = Provenance {
            files: vec![FileRecord {
                path: PathBuf::from("/data/scene.tif"),
                sha256: "ab".repeat(32),
                dates: vec!["2021-06-01".to_string()],
                source: "scene (Sentinel-2)".to_string(),
                attribution: Some("ESA, CC BY-SA 3.0 IGO".to_string()),
                enhancement: Some("lanczos3 x2".to_string()),
            }],
            request: RequestRecord {
                style: "imagery".to_string(),
                extent: [126.0, 39.5, 126.1, 39.6],
                zoom: 14.0,
                date: None,
            },
            rendered_at: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        };
        let text: Vec<String> = provenance
            .lines()
            .into_iter()
            .map(|line| match line {
                ProvenanceLine::Heading(text) => text,
                ProvenanceLine::Field { label, value } => format!("{label}: {value}"),
            })
            .collect();
        let expected = [
            "Rendered: 2023-11-14T22:13:20Z by Tessera",
            "style imagery, extent 126.000000, 39.500000",
            "zoom 14.00, date newest",
            "scene.tif",
            &format!("SHA-256: {}", "ab".repeat(32)),
            "Source: scene (Sentinel-2)",
            "Acquired: 2021-06-01",
            "Attribution: ESA, CC BY-SA 3.0 IGO",
            "Enhancement: lanczos3 x2",
        ];
        for fact in expected {
            assert!(
                text.iter().any(|line| line.contains(fact)),
                "{fact:?} missing from {text:#?}"
            );
        }
    }
}
