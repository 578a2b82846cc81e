//! An archive file held open from start-up, so that a file renamed over it does not change
//! what is served, and a file rewritten in place is detected instead of read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// The identity of a file's content as `fstat` reports it. A write changes the modification
/// time, and maybe the size. NOTE: a writer that resets the modification time afterwards
/// without changing the size goes unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    size: u64,
    modified_seconds: i64,
    modified_nanoseconds: i64,
}

impl Version {
    fn of(file: &File) -> io::Result<Self> {
        let metadata = file.metadata()?;
        Ok(Self {
            size: metadata.size(),
            modified_seconds: metadata.mtime(),
            modified_nanoseconds: metadata.mtime_nsec(),
        })
    }
}

/// An open archive file and the version it had when opened.
#[derive(Debug)]
pub(super) struct PinnedFile {
    path: PathBuf,
    file: File,
    opened: Version,
}

impl PinnedFile {
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let opened = Version::of(&file)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            opened,
        })
    }

    /// Returns a path that names the open file itself (`/proc/self/fd/N`), for libraries such
    /// as `SQLite` that open files by name. It keeps naming this file after a rename over the
    /// original path.
    pub(super) fn proc_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd as _;
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// Fails when the file was written to since it was opened.
    pub(super) fn check_unchanged(&self) -> io::Result<()> {
        if Version::of(&self.file)? == self.opened {
            Ok(())
        } else {
            Err(changed_error(&self.path))
        }
    }

    /// Reads up to `length` bytes at `offset`, fewer only at the end of the file, and fails
    /// when the file changed before or during the read.
    pub(super) fn read_at(&self, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        self.check_unchanged()?;
        let available = self.opened.size.saturating_sub(offset);
        let length = length.min(usize::try_from(available).unwrap_or(usize::MAX));
        let mut bytes = vec![0; length];
        let mut filled = 0;
        while filled < length {
            let read = self
                .file
                .read_at(&mut bytes[filled..], offset + filled as u64)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        bytes.truncate(filled);
        // A write during the read may have mixed old and new bytes.
        self.check_unchanged()?;
        Ok(bytes)
    }
}

fn changed_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} was changed on disk after Tessera opened it, so its tiles are no longer served: replace archives by renaming a new file over them, then restart Tessera",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_keeps_old_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("archive.bin");
        std::fs::write(&path, b"old content").expect("write");
        let pinned = PinnedFile::open(&path).expect("open");

        let replacement = dir.path().join("new.bin");
        std::fs::write(&replacement, b"new content, longer").expect("write");
        std::fs::rename(&replacement, &path).expect("rename over");

        assert_eq!(pinned.read_at(0, 100).expect("read"), b"old content");
        let through_proc = std::fs::read(pinned.proc_path()).expect("read /proc path");
        assert_eq!(through_proc, b"old content");
    }

    #[test]
    fn rewrite_in_place_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("archive.bin");
        std::fs::write(&path, b"old content").expect("write");
        let pinned = PinnedFile::open(&path).expect("open");
        assert_eq!(pinned.read_at(4, 3).expect("read"), b"con");

        std::fs::write(&path, b"new").expect("rewrite in place");
        let error = pinned.read_at(0, 3).expect_err("changed");
        assert!(error.to_string().contains("changed on disk"), "{error}");
    }
}
