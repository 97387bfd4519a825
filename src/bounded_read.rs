//! Reading files that a repository (or a command line) controls: `.imgguard.yml`, `--config`,
//! and every file `imgguard check` scans. Such a file may be a FIFO (opening it for reading
//! would wait for a writer forever), a symbolic link to `/dev/zero` (reading it would never
//! end), a directory, or just huge. Files are opened with `O_NONBLOCK` (so opening a FIFO or a
//! device returns at once), checked to be regular files on the open descriptor (no gap between
//! the check and the read), and read up to a limit. This module only reads; what to do with a
//! refusal (an error for a configuration, a skipped file the user is told about for a scan) is
//! the caller's.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most a configuration file may hold.
pub const CONFIG_LIMIT: u64 = 1 << 20;

/// The most a scanned source file may hold (larger ones are skipped, and said so).
pub const SOURCE_LIMIT: u64 = 16 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Not a regular file (`kind` says what it is).
    #[error("is {kind}, not a regular file")]
    NotRegular {
        /// "a FIFO", "a character device", …
        kind: &'static str,
    },
    /// Larger than the limit.
    #[error("is larger than {}", human_limit(*limit))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// Opens `path` for reading without blocking and insists it is a regular file.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file =
        OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular { kind: kind_of(&meta) });
    }
    Ok((file, meta))
}

/// The whole content of the regular file `path`, if it holds at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, meta) = open_regular(path)?;
    read_rest(file, &meta, Vec::new(), limit)
}

/// Appends what is left of `file` to `bytes` (already read from it), up to `limit` in all.
pub fn read_rest(
    file: File,
    meta: &Metadata,
    mut bytes: Vec<u8>,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    // The size may grow between the check and the read: the limit holds for what is read.
    let room = (limit + 1).saturating_sub(bytes.len() as u64);
    file.take(room).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// What a non-regular file is, for messages.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

fn human_limit(limit: u64) -> String {
    if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = read_regular(Path::new("/"), 10).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
    }

    #[test]
    fn the_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 11]).unwrap();
        assert_eq!(read_regular(&path, 11).unwrap().len(), 11);
        let e = read_regular(&path, 10).unwrap_err();
        assert_eq!(e.to_string(), "is larger than 10 bytes");
        assert_eq!(ReadError::TooLarge { limit: 1 << 20 }.to_string(), "is larger than 1 MiB");
    }
}
