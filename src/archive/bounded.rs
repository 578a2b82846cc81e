//! A `PMTiles` backend that reads a file held open and bounds what the reader inflates.
//!
//! The `pmtiles` crate (0.26) inflates a directory or the metadata section with no size limit,
//! so a leaf directory of a few hundred KiB can inflate to hundreds of MiB on every tile
//! request. [`BoundedBackend`] sits between the reader and the file and inflates each
//! directory and the metadata once itself, up to a limit, before the reader does.
//!
//! It reads with `pread` rather than a memory map, because a mapped file truncated while it
//! is served kills the process with SIGBUS; here the read fails instead (see `pinned`).

use std::io::{self, Read as _};
use std::ops::Range;

use ::pmtiles::{AsyncBackend, BackendResponse, PmtError, PmtResult};
use bytes::Bytes;

use super::pinned::PinnedFile;

/// Largest inflated directory (root or leaf), in bytes. A leaf directory of the planet
/// written by go-pmtiles inflates to about 1 MiB.
pub(super) const MAX_DIRECTORY_BYTES: u64 = 8 << 20;

/// Maximum entries in one directory. The reader keeps 24 bytes per entry while a tile is read.
pub(super) const MAX_DIRECTORY_ENTRIES: u64 = 500_000;

/// Largest inflated JSON metadata section, in bytes.
pub(super) const MAX_METADATA_BYTES: u64 = 8 << 20;

/// Size of a `PMTiles` v3 header.
const HEADER_SIZE: usize = 127;

/// `internal_compression` codes of the header.
const COMPRESSION_UNKNOWN: u8 = 0;
const COMPRESSION_NONE: u8 = 1;
const COMPRESSION_GZIP: u8 = 2;

/// The sections of the archive whose inflated size is checked, read from its header.
#[derive(Debug, Clone)]
struct Sections {
    root: Range<u64>,
    metadata: Range<u64>,
    leaves: Range<u64>,
    internal_compression: u8,
}

/// An archive file whose directories and metadata are checked before the reader inflates
/// them.
pub(super) struct BoundedBackend {
    inner: PinnedFile,
    /// `None` when the header is too short or not a v3 header: the reader then rejects the
    /// file itself.
    sections: Option<Sections>,
}

impl BoundedBackend {
    /// Wraps `inner`, reading the section offsets from its header.
    pub(super) fn new(inner: PinnedFile) -> Self {
        let header = inner.read_at(0, HEADER_SIZE).ok();
        let sections = header.and_then(|bytes| parse_sections(&bytes));
        Self { inner, sections }
    }

    fn check(&self, offset: u64, bytes: &Bytes) -> PmtResult<()> {
        let Some(sections) = &self.sections else {
            return Ok(());
        };
        let compression = sections.internal_compression;
        if offset == 0 {
            // The first read contains the header and the root directory.
            let start = usize::try_from(sections.root.start).unwrap_or(usize::MAX);
            let end = usize::try_from(sections.root.end).unwrap_or(usize::MAX);
            if let Some(root) = bytes.get(start..end) {
                check_directory(root, compression, "root directory", offset)?;
            }
        } else if sections.leaves.contains(&offset) {
            check_directory(bytes, compression, "leaf directory", offset)?;
        } else if offset == sections.metadata.start && !sections.metadata.is_empty() {
            inflate(bytes, compression, MAX_METADATA_BYTES)
                .map_err(|error| section_error("metadata", offset, &error))?;
        }
        Ok(())
    }
}

impl AsyncBackend for BoundedBackend {
    async fn read_exact(&self, offset: u64, length: usize) -> PmtResult<BackendResponse> {
        let response = self.read(offset, length).await?;
        if response.bytes.len() != length {
            return Err(PmtError::UnexpectedNumberOfBytesReturned(
                length,
                response.bytes.len(),
            ));
        }
        Ok(response)
    }

    // NOTE: the read blocks the runtime's thread; the reads are directory and tile sized and
    // usually come from the page cache, as the memory map's page faults did before.
    async fn read(&self, offset: u64, length: usize) -> PmtResult<BackendResponse> {
        let bytes = Bytes::from(self.inner.read_at(offset, length)?);
        self.check(offset, &bytes)?;
        Ok(BackendResponse::new(bytes))
    }
}

/// Reads the root, metadata and leaf sections and the internal compression of a v3 header.
fn parse_sections(header: &[u8]) -> Option<Sections> {
    if header.len() < HEADER_SIZE || !header.starts_with(b"PMTiles\x03") {
        return None;
    }
    let field = |index: usize| -> u64 {
        let start = 8 + 8 * index;
        let bytes: [u8; 8] = header[start..start + 8]
            .try_into()
            .expect("the slice is 8 bytes long");
        u64::from_le_bytes(bytes)
    };
    let range = |offset: u64, length: u64| offset..offset.saturating_add(length);
    Some(Sections {
        root: range(field(0), field(1)),
        metadata: range(field(2), field(3)),
        leaves: range(field(4), field(5)),
        internal_compression: header[97],
    })
}

/// Inflates a directory up to [`MAX_DIRECTORY_BYTES`] and checks its entry count.
fn check_directory(bytes: &[u8], compression: u8, what: &str, offset: u64) -> PmtResult<()> {
    let inflated = inflate(bytes, compression, MAX_DIRECTORY_BYTES)
        .map_err(|error| section_error(what, offset, &error))?;
    let entries = leading_varint(&inflated).unwrap_or(0);
    if entries > MAX_DIRECTORY_ENTRIES {
        return Err(section_error(
            what,
            offset,
            &io::Error::other(format!(
                "it lists {entries} entries, more than the limit of {MAX_DIRECTORY_ENTRIES}"
            )),
        ));
    }
    Ok(())
}

/// Inflates `bytes` compressed with the header's internal compression, failing once the
/// output exceeds `limit` bytes. Compressions the reader does not support pass through, so
/// that the reader reports them.
fn inflate(bytes: &[u8], compression: u8, limit: u64) -> io::Result<Vec<u8>> {
    match compression {
        COMPRESSION_GZIP => {
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .take(limit + 1)
                .read_to_end(&mut inflated)?;
            if inflated.len() as u64 > limit {
                return Err(io::Error::other(format!(
                    "it inflates to more than {limit} bytes"
                )));
            }
            Ok(inflated)
        }
        COMPRESSION_UNKNOWN | COMPRESSION_NONE => check_length(bytes, limit),
        _ => Ok(Vec::new()),
    }
}

fn check_length(bytes: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "it is {} bytes long, more than the limit of {limit}",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

/// Decodes the protobuf varint at the start of `bytes`.
fn leading_varint(bytes: &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn section_error(what: &str, offset: u64, error: &io::Error) -> PmtError {
    PmtError::Reading(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the {what} at byte {offset} is rejected: {error}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_varint_decodes() {
        let cases: [(&[u8], Option<u64>); 4] = [
            (&[0x05], Some(5)),
            (&[0xAC, 0x02], Some(300)),
            (&[0x80, 0x80, 0x80, 0x01], Some(1 << 21)),
            (&[0x80], None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(leading_varint(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn inflation_bounded() {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder
            .write_all(&vec![0_u8; 2 * 1024 * 1024])
            .expect("compress zeros");
        let bomb = encoder.finish().expect("finish gzip");
        assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());

        let error = inflate(&bomb, COMPRESSION_GZIP, 1024 * 1024).expect_err("2 MiB > 1 MiB");
        assert!(error.to_string().contains("more than 1048576"), "{error}");
        let inflated = inflate(&bomb, COMPRESSION_GZIP, 4 * 1024 * 1024).expect("within");
        assert_eq!(inflated.len(), 2 * 1024 * 1024);
    }

    #[test]
    fn uncompressed_length_bounded() {
        assert!(inflate(&[0; 10], COMPRESSION_NONE, 9).is_err());
        assert!(inflate(&[0; 10], COMPRESSION_NONE, 10).is_ok());
    }
}
