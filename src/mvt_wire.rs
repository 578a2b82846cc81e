//! A bounds-checked reader of the protobuf wire format, for vector tiles.
//!
//! The access filter rewrites tiles at this level, and static maps decode archive tiles with
//! it. Every read checks its length, so a damaged tile gives the offset of the first bad byte
//! instead of a panic.

/// The offset in the tile of the byte where reading failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError(pub usize);

/// A protobuf reader over `bytes`, which start at offset `base` of the tile.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    base: usize,
    /// The start of the key read last, so that `skip_raw` can return the field whole.
    key_start: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            position: 0,
            base,
            key_start: 0,
        }
    }

    /// Returns the error at the current position.
    pub(crate) fn malformed(&self) -> WireError {
        WireError(self.base + self.position)
    }

    /// Returns whether every byte has been read.
    pub(crate) fn is_at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0_u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.position)
                .ok_or_else(|| self.malformed())?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed())
    }

    /// Reads the next field number and wire type, or `None` at the end.
    pub(crate) fn key(&mut self) -> Result<Option<(u64, u8)>, WireError> {
        if self.is_at_end() {
            return Ok(None);
        }
        self.key_start = self.position;
        let key = self.varint()?;
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .position
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.malformed())?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    /// Reads a length-delimited field and returns it with its offset in the tile.
    pub(crate) fn bytes(&mut self) -> Result<(&'a [u8], usize), WireError> {
        let length = usize::try_from(self.varint()?).map_err(|_| self.malformed())?;
        let offset = self.base + self.position;
        Ok((self.take(length)?, offset))
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let raw = self.take(N)?;
        Ok(raw.try_into().expect("the slice has N bytes"))
    }

    /// Reads packed varints that each fit in 32 bits, as MVT tags and commands do.
    pub(crate) fn packed(&mut self) -> Result<Vec<u32>, WireError> {
        let (bytes, offset) = self.bytes()?;
        let mut inner = Reader::new(bytes, offset);
        let mut values = Vec::new();
        while !inner.is_at_end() {
            let value = inner.varint()?;
            values.push(u32::try_from(value).map_err(|_| inner.malformed())?);
        }
        Ok(values)
    }

    /// Skips the value of the field whose key was just read.
    pub(crate) fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.take(8).map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => self.take(4).map(|_| ()),
            _ => Err(self.malformed()),
        }
    }

    /// Skips the value of the field whose key was just read and returns the field's raw
    /// bytes, key included.
    pub(crate) fn skip_raw(&mut self, wire: u8) -> Result<&'a [u8], WireError> {
        let start = self.key_start;
        self.skip(wire)?;
        Ok(&self.bytes[start..self.position])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_raw_bytes() {
        // Field 1 varint 150, field 2 bytes "hi", field 3 fixed32.
        let bytes = [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0];
        let mut reader = Reader::new(&bytes, 10);
        assert_eq!(reader.key(), Ok(Some((1, 0))));
        assert_eq!(reader.varint(), Ok(150));
        assert_eq!(reader.key(), Ok(Some((2, 2))));
        assert_eq!(reader.skip_raw(2), Ok(&bytes[3..7]));
        assert_eq!(reader.key(), Ok(Some((3, 5))));
        assert_eq!(reader.fixed::<4>(), Ok([1, 0, 0, 0]));
        assert_eq!(reader.key(), Ok(None));
    }

    #[test]
    fn truncated_input_gives_its_offset() {
        let cases: [(&[u8], usize); 3] = [
            (&[0x12, 0x05, b'a'], 12),
            (&[0x08, 0x96], 12),
            (&[0x0d, 1, 2], 11),
        ];
        for (bytes, offset) in cases {
            let mut reader = Reader::new(bytes, 10);
            let (_, wire) = reader.key().expect("key").expect("a field");
            assert_eq!(reader.skip(wire), Err(WireError(offset)), "{bytes:?}");
        }
    }
}
