//! Tile encodings named by URL extension, with their media types.

use std::fmt;

/// The encoding of a tile's bytes, as named by the extension of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TileFormat {
    Png,
    Jpeg,
    Webp,
    /// Mapbox Vector Tile 2.1, protobuf-encoded.
    Mvt,
}

impl TileFormat {
    /// Parses a URL extension (`png`, `jpg`, `jpeg`, `webp`, `pbf`, `mvt`), ignoring case.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "webp" => Some(Self::Webp),
            "pbf" | "mvt" => Some(Self::Mvt),
            _ => None,
        }
    }

    /// Returns the extension that TileJSON `tiles` templates use for this format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Mvt => "pbf",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Mvt => "application/vnd.mapbox-vector-tile",
        }
    }

    pub fn is_raster(self) -> bool {
        self != Self::Mvt
    }

    /// Detects an image or vector tile format from the first bytes of a tile.
    /// Gzip-compressed data is taken to be MVT, because raster tiles are never gzipped.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else if bytes.starts_with(&[0x1F, 0x8B]) {
            Some(Self::Mvt)
        } else {
            None
        }
    }
}

impl fmt::Display for TileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A `Content-Encoding` that tile bytes are stored or sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Brotli,
    Zstd,
}

impl Compression {
    /// Returns the `Content-Encoding` header value, or `None` for uncompressed bytes.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Brotli => Some("br"),
            Self::Zstd => Some("zstd"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_round_trip() {
        for format in [
            TileFormat::Png,
            TileFormat::Jpeg,
            TileFormat::Webp,
            TileFormat::Mvt,
        ] {
            assert_eq!(TileFormat::from_extension(format.extension()), Some(format));
        }
        assert_eq!(TileFormat::from_extension("JPEG"), Some(TileFormat::Jpeg));
        assert_eq!(TileFormat::from_extension("mvt"), Some(TileFormat::Mvt));
        assert_eq!(TileFormat::from_extension("gif"), None);
    }

    #[test]
    fn sniff_detects_magic_bytes() {
        assert_eq!(
            TileFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(TileFormat::Png)
        );
        assert_eq!(
            TileFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(TileFormat::Jpeg)
        );
        assert_eq!(
            TileFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(TileFormat::Webp)
        );
        assert_eq!(TileFormat::sniff(&[0x1F, 0x8B, 8]), Some(TileFormat::Mvt));
        assert_eq!(TileFormat::sniff(b"abc"), None);
    }
}
