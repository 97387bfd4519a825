//! The byte plumbing `save` and `load` share: large writes, a running sha256, and reading an
//! archive's `manifest.json` off a file.

use std::fs::File;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::core::archive::{self, scan::Scanner, ArchiveImage};
use crate::error::Error;

/// Size of every read, and the least size of every write but the last: 256 KiB or more keeps
/// the syscall count low and the memory constant.
pub const CHUNK: usize = 1 << 20;

/// Gathers small writes into writes of at least [`CHUNK`] bytes.
pub struct BigWrites<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> BigWrites<W> {
    pub fn new(inner: W) -> Self {
        BigWrites { inner, buf: Vec::with_capacity(CHUNK) }
    }

    /// Writes what is left and hands back the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for BigWrites<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.is_empty() && data.len() >= CHUNK {
            self.inner.write_all(data)?;
            return Ok(data.len());
        }
        let take = (CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.inner.flush()
    }
}

/// Writes every chunk, in as few `writev` calls as the writer takes (no copy into one buffer).
/// Hand-written: std's `Write::write_all_vectored` is not stable yet; this is its loop.
pub fn write_all_vectored(w: &mut impl Write, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|b| IoSlice::new(b)).collect();
    let mut left = &mut slices[..];
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match w.write_vectored(left) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Alignment of every `O_DIRECT` write (its buffer, its size, its offset in the file): 4 KiB covers
/// the logical block size of the disks this runs on (512 B or 4 KiB).
const DIRECT_ALIGN: usize = 4096;

/// Size of each `O_DIRECT` write.
const DIRECT_CHUNK: usize = 1 << 20;

/// Writes a new file past the page cache (`O_DIRECT`) where the filesystem allows it, through
/// one aligned 1 MiB buffer; elsewhere (tmpfs, or a write the device refuses) through the page
/// cache as usual.
///
/// Why: a large archive written through the page cache costs the writer a page allocation and a
/// copy per 4 KiB and leaves a gigabyte of dirty pages that its fsync must then write (measured
/// here for 1 GiB: 0.6-3.5 s of system time through the cache, depending on how warm the
/// machine's memory is, against 0.1 s and 0.4-0.55 s in all with `O_DIRECT`). A durable save
/// wants the bytes on disk anyway, and other processes keep their page cache. The last partial
/// block is written through the cache (`O_DIRECT` cleared) and covered by the caller's fsync.
pub struct DirectFile {
    file: File,
    /// `DIRECT_CHUNK` bytes at an aligned offset inside: std's allocator gives no alignment
    /// beyond 16 bytes without `unsafe`, so the buffer is over-allocated and sliced.
    raw: Vec<u8>,
    start: usize,
    len: usize,
    direct: bool,
}

impl DirectFile {
    /// Takes `file`, which must be empty and at offset 0.
    pub fn new(file: File) -> DirectFile {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        let direct =
            fcntl_getfl(&file).and_then(|flags| fcntl_setfl(&file, flags | OFlags::DIRECT)).is_ok();
        let raw = if direct { vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN] } else { Vec::new() };
        let start = raw.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        DirectFile { file, raw, start, len: 0, direct }
    }

    /// Whether the writes bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Writes what is buffered and hands back the file (the caller fsyncs it).
    pub fn finish(mut self) -> io::Result<File> {
        if self.direct && self.len > 0 {
            let whole = self.len / DIRECT_ALIGN * DIRECT_ALIGN;
            self.write_direct(whole)?;
            let (start, len) = (self.start, self.len);
            self.buffered()?;
            self.file.write_all(&self.raw[start..start + len])?;
        }
        Ok(self.file)
    }

    /// Writes the first `n` buffered bytes (a multiple of [`DIRECT_ALIGN`]) and keeps the rest.
    fn write_direct(&mut self, n: usize) -> io::Result<()> {
        let at = self.start;
        let mut done = 0;
        while done < n {
            match self.file.write(&self.raw[at + done..at + n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // After a short write the offset is no longer aligned: the rest goes through
                // the cache.
                Ok(k) => {
                    done += k;
                    if done < n {
                        self.buffered()?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A device or filesystem that takes O_DIRECT at open but not these writes: the
                // offset has not moved, so the same bytes go through the cache instead.
                Err(e)
                    if self.direct
                        && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
                {
                    self.buffered()?;
                }
                Err(e) => return Err(e),
            }
        }
        self.raw.copy_within(at + n..at + self.len, at);
        self.len -= n;
        Ok(())
    }

    /// Back to writes through the page cache, for good.
    fn buffered(&mut self) -> io::Result<()> {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        if self.direct {
            let flags = fcntl_getfl(&self.file)?;
            fcntl_setfl(&self.file, flags - OFlags::DIRECT)?;
        }
        self.direct = false;
        Ok(())
    }
}

impl Write for DirectFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // Nothing is ever left in the buffer once writes go through the cache: a refused direct
        // write is rewritten through it at once, and the buffer empties with every full one.
        if !self.direct {
            return self.file.write(data);
        }
        let take = (DIRECT_CHUNK - self.len).min(data.len());
        let at = self.start + self.len;
        self.raw[at..at + take].copy_from_slice(&data[..take]);
        self.len += take;
        if self.len == DIRECT_CHUNK {
            self.write_direct(DIRECT_CHUNK)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts and hashes what passes through to the inner writer.
pub struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing { inner, hasher: Sha256::new(), size: 0 }
    }

    /// The writer, the sha256 (hex) and the byte count of everything written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads an archive file's `manifest.json` (plain or gzip, told by the magic number), checking
/// that the archive is complete. A plain archive is read header by header, seeking past the
/// layers; gzip has to be decompressed through. The file is left at its start.
pub fn read_manifest(file: &mut File, shown: &Path) -> Result<Vec<ArchiveImage>, Error> {
    let io_err = |e: io::Error| Error::io(shown, e);
    let bad = |msg: String| Error::Other(format!("{}: {msg}", shown.display()));
    let mut head = [0u8; 2];
    let n = read_full(file, &mut head).map_err(io_err)?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut scanner = Scanner::new();
    let mut buf = vec![0u8; CHUNK];
    if archive::is_gzip(&head[..n]) {
        let mut gz = flate2::read::GzDecoder::new(&mut *file);
        loop {
            let n = match gz.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(bad(format!(
                        "truncated gzip archive (ends after {} bytes of the archive)",
                        scanner.offset()
                    )));
                }
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidInput
                        || e.kind() == io::ErrorKind::InvalidData =>
                {
                    return Err(bad(format!("corrupt gzip data: {e}")));
                }
                Err(e) => return Err(io_err(e)),
            };
            scanner.feed(&buf[..n]).map_err(|e| bad(e.to_string()))?;
        }
    } else {
        loop {
            let skip = scanner.skippable();
            if skip > 0 {
                let skip_i = i64::try_from(skip).unwrap_or(i64::MAX);
                file.seek(SeekFrom::Current(skip_i)).map_err(io_err)?;
                scanner.skip(skip);
                continue;
            }
            // Small reads here: mostly headers, each followed by a seek.
            let n = file.read(&mut buf[..64 << 10]).map_err(io_err)?;
            if n == 0 {
                break;
            }
            scanner.feed(&buf[..n]).map_err(|e| bad(e.to_string()))?;
        }
        // A seek past the end succeeds: the size says whether the data was really there.
        let len = file.metadata().map_err(io_err)?.len();
        if scanner.offset() > len {
            return Err(bad(format!("truncated archive (ends at byte {len})")));
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let members = scanner.members().cloned();
    let manifest = scanner.finish().map_err(|e| bad(e.to_string()))?;
    let images = archive::parse_manifest(&manifest).map_err(|e| bad(e.to_string()))?;
    if let Some(missing) = members.and_then(|m| archive::missing_member(&manifest, &m)) {
        return Err(bad(format!("not a docker image archive: manifest.json {missing}")));
    }
    Ok(images)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sizes(Vec<usize>);
    impl Write for Sizes {
        fn write(&mut self, d: &[u8]) -> io::Result<usize> {
            self.0.push(d.len());
            Ok(d.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_are_large() {
        let mut w = BigWrites::new(Sizes(Vec::new()));
        let piece = vec![1u8; 40_000];
        for _ in 0..100 {
            w.write_all(&piece).unwrap();
        }
        let sizes = w.into_inner().unwrap().0;
        let (last, rest) = sizes.split_last().unwrap();
        assert!(rest.iter().all(|s| *s == CHUNK), "{sizes:?}");
        assert_eq!(rest.iter().sum::<usize>() + last, 4_000_000);
    }

    #[test]
    fn vectored_writes_survive_short_writes() {
        // Takes at most 5 bytes of the first slice per call: every short write is resumed.
        struct Short(Vec<u8>);
        impl Write for Short {
            fn write(&mut self, d: &[u8]) -> io::Result<usize> {
                let n = d.len().min(5);
                self.0.extend_from_slice(&d[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let chunks: Vec<Bytes> =
            ["", "abcdefgh", "", "ij", "klmnopqrstu"].iter().map(|s| Bytes::from(*s)).collect();
        let mut w = Short(Vec::new());
        write_all_vectored(&mut w, &chunks).unwrap();
        assert_eq!(w.0, b"abcdefghijklmnopqrstu");
        let mut full = Vec::new();
        write_all_vectored(&mut full, &chunks).unwrap();
        assert_eq!(full, b"abcdefghijklmnopqrstu");
    }

    #[test]
    fn direct_writes_give_the_same_file() {
        // The temporary directory (a disk here: O_DIRECT) and /dev/shm (tmpfs: refuses it, so
        // through the cache), where there is one.
        let dirs = [tempfile::tempdir().ok(), tempfile::tempdir_in("/dev/shm").ok()];
        for dir in dirs.iter().flatten() {
            write_and_compare(&dir.path().join("f"));
        }
    }

    fn write_and_compare(path: &Path) {
        // Odd sizes: whole 1 MiB writes, a tail of less than a block, chunk edges anywhere.
        let data: Vec<u8> =
            (0..3_300_001u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut w = DirectFile::new(File::create(path).unwrap());
        let mut at = 0;
        for size in [1usize, 4095, 4097, 1 << 20, 77_777, 3].iter().cycle() {
            let end = (at + size).min(data.len());
            w.write_all(&data[at..end]).unwrap();
            at = end;
            if at == data.len() {
                break;
            }
        }
        let direct = w.is_direct();
        w.finish().unwrap().sync_all().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), data, "{}, direct: {direct}", path.display());
    }

    #[test]
    fn hashes_what_it_writes() {
        let mut h = Hashing::new(Vec::new());
        h.write_all(b"abc").unwrap();
        let (inner, sha, size) = h.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(size, 3);
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
