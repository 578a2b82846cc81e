//! The file format of one cached tile.
//!
//! All integers are little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `TSRTILE2` |
//! | 1 | 1 for an empty tile (204), else 0 |
//! | 1 | compression: 0 none, 1 gzip, 2 brotli, 3 zstd |
//! | 4 | vector features left out by `max_features_per_tile` |
//! | 2 + n | enhancement header value, length first (0 without one) |
//! | 4 + n | the key's text, length first, compared on read so a hash collision is a miss |
//! | 8 + n | the tile's bytes, length first |
//! | 8 | xxh3-64 of everything before |
//!
//! A truncated or altered file fails the length or checksum checks and is read as a miss.

use bytes::Bytes;
use thiserror::Error;

use super::TileBody;
use crate::format::Compression;

/// The second version added the count of features left out; files of the first are misses.
const MAGIC: &[u8; 8] = b"TSRTILE2";

#[derive(Debug, Error, PartialEq, Eq)]
pub(super) enum EntryError {
    #[error("the file does not start with the cache's magic bytes")]
    Magic,
    #[error("the file is truncated")]
    Truncated,
    #[error("the checksum does not match: the file is corrupt")]
    Checksum,
    #[error("unknown compression code {0}")]
    Compression(u8),
    #[error("the enhancement header is not UTF-8")]
    Enhancement,
    #[error("the file holds another key (a hash collision)")]
    OtherKey,
}

/// Encodes `tile` (`None` for an empty tile) stored under `key`.
pub(super) fn encode(key: &str, tile: Option<&TileBody>) -> Vec<u8> {
    let enhancement = tile
        .and_then(|tile| tile.enhancement.as_deref())
        .unwrap_or_default();
    let bytes: &[u8] = tile.map_or(&[], |tile| &tile.bytes);
    let compression = tile.map_or(Compression::None, |tile| tile.compression);
    let dropped = tile.map_or(0, |tile| {
        u32::try_from(tile.dropped_features).unwrap_or(u32::MAX)
    });
    let mut out = Vec::with_capacity(40 + enhancement.len() + key.len() + bytes.len());
    out.extend_from_slice(MAGIC);
    out.push(u8::from(tile.is_none()));
    out.push(compression_code(compression));
    out.extend_from_slice(&dropped.to_le_bytes());
    // The header value is a short list of steps, far below 64 KiB.
    out.extend_from_slice(&(enhancement.len() as u16).to_le_bytes());
    out.extend_from_slice(enhancement.as_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Decodes a file written by `encode` for `key`: `Some` tile, or `None` for an empty tile.
pub(super) fn decode(key: &str, file: &[u8]) -> Result<Option<TileBody>, EntryError> {
    if !file.starts_with(MAGIC) {
        return Err(if file.len() < MAGIC.len() {
            EntryError::Truncated
        } else {
            EntryError::Magic
        });
    }
    let body_end = file.len().checked_sub(8).ok_or(EntryError::Truncated)?;
    let (body, checksum) = file.split_at(body_end);
    let checksum = u64::from_le_bytes(checksum.try_into().map_err(|_| EntryError::Truncated)?);
    if xxhash_rust::xxh3::xxh3_64(body) != checksum {
        return Err(EntryError::Checksum);
    }
    let mut reader = Reader {
        rest: &body[MAGIC.len()..],
    };
    let empty = reader.take(1)?[0] == 1;
    let compression = compression_from_code(reader.take(1)?[0])?;
    let dropped_features = u32::from_le_bytes(reader.array()?) as usize;
    let length = u16::from_le_bytes(reader.array()?);
    let enhancement = reader.take(usize::from(length))?;
    let enhancement = std::str::from_utf8(enhancement).map_err(|_| EntryError::Enhancement)?;
    let length = u32::from_le_bytes(reader.array()?) as usize;
    if reader.take(length)? != key.as_bytes() {
        return Err(EntryError::OtherKey);
    }
    let length = u64::from_le_bytes(reader.array()?);
    let length = usize::try_from(length).map_err(|_| EntryError::Truncated)?;
    let bytes = reader.take(length)?;
    if !reader.rest.is_empty() {
        return Err(EntryError::Truncated);
    }
    if empty {
        return Ok(None);
    }
    Ok(Some(TileBody {
        bytes: Bytes::copy_from_slice(bytes),
        compression,
        enhancement: (!enhancement.is_empty()).then(|| enhancement.to_owned()),
        dropped_features,
    }))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], EntryError> {
        if self.rest.len() < count {
            return Err(EntryError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryError> {
        let taken = self.take(N)?;
        taken.try_into().map_err(|_| EntryError::Truncated)
    }
}

fn compression_code(compression: Compression) -> u8 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Brotli => 2,
        Compression::Zstd => 3,
    }
}

fn compression_from_code(code: u8) -> Result<Compression, EntryError> {
    Ok(match code {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Brotli,
        3 => Compression::Zstd,
        other => return Err(EntryError::Compression(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TileBody {
        TileBody {
            bytes: Bytes::from_static(b"\x89PNG tile bytes"),
            compression: Compression::Gzip,
            enhancement: Some("resample,sharpen;factor=2".to_owned()),
            dropped_features: 12,
        }
    }

    #[test]
    fn entries_round_trip() {
        let tile = sample();
        let file = encode("k", Some(&tile));
        assert_eq!(decode("k", &file), Ok(Some(tile)));
        let empty = encode("k", None);
        assert_eq!(decode("k", &empty), Ok(None));
    }

    #[test]
    fn damaged_entries_are_rejected() {
        let file = encode("k", Some(&sample()));
        let mut flipped = file.clone();
        flipped[30] ^= 0x40;
        let cases: [(&str, &[u8], EntryError); 5] = [
            ("empty file", &[], EntryError::Truncated),
            ("cut in the magic", &file[..4], EntryError::Truncated),
            (
                "cut in the body",
                &file[..file.len() - 3],
                EntryError::Checksum,
            ),
            ("flipped bit", &flipped, EntryError::Checksum),
            (
                "another format",
                b"not a cache entry at all",
                EntryError::Magic,
            ),
        ];
        for (case, bytes, expected) in cases {
            assert_eq!(decode("k", bytes), Err(expected), "{case}");
        }
        assert_eq!(decode("other", &file), Err(EntryError::OtherKey));
    }
}
