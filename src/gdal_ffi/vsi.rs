//! Byte ranges read through GDAL's virtual file systems, so that a remote file
//! (`/vsicurl/`, `/vsis3/`) is read with one range request through GDAL's HTTP options and
//! block cache, like the rest of the file.

use std::ffi::CString;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum VsiError {
    #[error("path {0:?} is not UTF-8 or contains a NUL byte")]
    Path(String),
    #[error("cannot open {0} through GDAL: {1}")]
    Open(String, String),
    #[error("cannot read {length} bytes at {offset} of {path}: {message}")]
    Read {
        path: String,
        offset: u64,
        length: usize,
        message: String,
    },
}

/// `whence` values of `VSIFSeekL`, as in C's `fseek`.
const SEEK_SET: i32 = 0;
const SEEK_END: i32 = 2;

/// A file opened with `VSIFOpenL`, closed when dropped.
struct VsiFile(*mut gdal_sys::VSILFILE);

impl Drop for VsiFile {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful VSIFOpenL and is closed only here.
        unsafe {
            gdal_sys::VSIFCloseL(self.0);
        }
    }
}

/// Reads `length` bytes at `offset` of `path`. Returns `Ok(None)` when the range passes the
/// end of the file, which a corrupt file can declare.
pub fn read_range(path: &Path, offset: u64, length: usize) -> Result<Option<Vec<u8>>, VsiError> {
    let shown = crate::remote::display_path(path);
    let c_path = path
        .to_str()
        .and_then(|text| CString::new(text).ok())
        .ok_or_else(|| VsiError::Path(shown.clone()))?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the call.
    let handle = unsafe { gdal_sys::VSIFOpenL(c_path.as_ptr(), c"rb".as_ptr()) };
    if handle.is_null() {
        return Err(VsiError::Open(shown, super::last_error_message()));
    }
    let file = VsiFile(handle);
    let read_error = |message: String| VsiError::Read {
        path: shown.clone(),
        offset,
        length,
        message,
    };
    // SAFETY: `file.0` is an open handle for the whole block; the buffer has `length` bytes.
    unsafe {
        if gdal_sys::VSIFSeekL(file.0, 0, SEEK_END) != 0 {
            return Err(read_error(super::last_error_message()));
        }
        let size = gdal_sys::VSIFTellL(file.0);
        if offset
            .checked_add(length as u64)
            .is_none_or(|end| end > size)
        {
            return Ok(None);
        }
        if gdal_sys::VSIFSeekL(file.0, offset, SEEK_SET) != 0 {
            return Err(read_error(super::last_error_message()));
        }
        let mut bytes = vec![0_u8; length];
        let read = gdal_sys::VSIFReadL(bytes.as_mut_ptr().cast(), 1, length, file.0);
        if read != length {
            return Err(read_error(format!("only {read} bytes were read")));
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_the_file() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("bytes.bin");
        let content: Vec<u8> = (0..=255).collect();
        std::fs::write(&path, &content).expect("write file");
        let read = read_range(&path, 10, 5).expect("read");
        assert_eq!(read.as_deref(), Some(&content[10..15]));
        assert_eq!(
            read_range(&path, 250, 10).expect("read"),
            None,
            "past the end"
        );
        assert!(read_range(&folder.path().join("missing"), 0, 1).is_err());
    }
}
