//! A push-style tar reader that checks an image archive as it streams past, in constant memory:
//! every header's checksum, that the archive ends with its end-of-archive block (a truncated
//! download has none), that nothing but zeros follows it (the daemon appends a JSON error to a
//! 200 body when it fails once output has begun), and it keeps the contents of `manifest.json`.
//! Pure: it is fed bytes and never reads a file. The caller may skip file data it has no use
//! for ([`Scanner::skippable`], [`Scanner::skip`]) by seeking instead of reading.

use std::fmt;

const BLOCK: usize = 512;
/// Largest `manifest.json` (and PAX header, GNU long name) kept; a docker archive's manifest is
/// a few hundred bytes per image.
const MAX_KEPT: u64 = 16 << 20;
/// Most member names remembered (to check that the manifest's files are there); an image
/// archive has a handful per layer. Past this the check is not made.
const MAX_MEMBERS: usize = 100_000;

/// Why a byte stream is not a complete image archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// A header block is not a tar header (a foreign file, or an error text inside the body).
    NotTar { offset: u64 },
    /// The stream ended before the archive did.
    Truncated { offset: u64 },
    /// Something other than zeros follows the end of the archive.
    TrailingData { offset: u64 },
    /// The archive has no `manifest.json`.
    NoManifest,
    /// An entry imgguard must keep is larger than it ever is in an image archive.
    TooLarge { name: String, size: u64 },
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NotTar { offset: 0 } => f.write_str("not a tar archive"),
            ScanError::NotTar { offset } => {
                write!(f, "not a tar archive from byte {offset} on (corrupt, or an error text)")
            }
            ScanError::Truncated { offset } => {
                write!(f, "truncated archive (ends at byte {offset})")
            }
            ScanError::TrailingData { offset } => {
                write!(f, "unexpected data after the end of the archive at byte {offset}")
            }
            ScanError::NoManifest => {
                f.write_str("not a docker image archive (no manifest.json in it)")
            }
            ScanError::TooLarge { name, size } => {
                write!(f, "{name} is {size} bytes, too large for an image archive")
            }
        }
    }
}

/// What the data of the current entry is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Nothing,
    Manifest,
    Pax,
    LongName,
}

#[derive(Debug)]
enum State {
    /// Collecting a header block.
    Header,
    /// Inside an entry's data (and its padding to the block size).
    Data { remaining: u64, padding: u64, keep: Keep },
    /// After the first all-zero block: only zeros may follow, and a complete archive has a
    /// second zero block (Go's archive/tar, which the daemon uses, always writes both).
    End { zeros: u64 },
}

/// Feeds on an archive's bytes in any chunking; see the module docs.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    offset: u64,
    block: Vec<u8>,
    kept: Vec<u8>,
    next_path: Option<String>,
    next_size: Option<u64>,
    manifest: Option<Vec<u8>>,
    members: Option<std::collections::BTreeSet<String>>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    /// A scanner at the start of an archive.
    pub fn new() -> Scanner {
        Scanner {
            state: State::Header,
            offset: 0,
            block: Vec::with_capacity(BLOCK),
            kept: Vec::new(),
            next_path: None,
            next_size: None,
            manifest: None,
            members: Some(std::collections::BTreeSet::new()),
        }
    }

    /// The regular files seen so far (paths without a leading `./`); `None` when there were too
    /// many to remember.
    pub fn members(&self) -> Option<&std::collections::BTreeSet<String>> {
        self.members.as_ref()
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Consumes the next bytes of the archive.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), ScanError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Header => {
                    let take = (BLOCK - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    self.offset += take as u64;
                    if self.block.len() == BLOCK {
                        let block = std::mem::take(&mut self.block);
                        self.header(&block)?;
                        self.block = block;
                        self.block.clear();
                    }
                }
                State::Data { remaining, padding, keep } => {
                    let left = *remaining + *padding;
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let in_data = usize::try_from(*remaining).unwrap_or(usize::MAX).min(take);
                    if *keep != Keep::Nothing {
                        self.kept.extend_from_slice(&data[..in_data]);
                    }
                    let consumed_data = in_data as u64;
                    *remaining -= consumed_data;
                    *padding -= take as u64 - consumed_data;
                    let done = *remaining == 0 && *padding == 0;
                    let keep = *keep;
                    data = &data[take..];
                    self.offset += take as u64;
                    if done {
                        self.entry_done(keep);
                    }
                }
                State::End { zeros } => {
                    if let Some(i) = data.iter().position(|b| *b != 0) {
                        return Err(ScanError::TrailingData { offset: self.offset + i as u64 });
                    }
                    *zeros += data.len() as u64;
                    self.offset += data.len() as u64;
                    data = &[];
                }
            }
        }
        Ok(())
    }

    /// How many bytes from here on are file data the scanner has no use for: a caller reading a
    /// file may seek past them and call [`Scanner::skip`].
    pub fn skippable(&self) -> u64 {
        match &self.state {
            State::Data { remaining, padding, keep: Keep::Nothing } => remaining + padding,
            _ => 0,
        }
    }

    /// Accounts for `n` bytes (at most [`Scanner::skippable`]) the caller skipped without reading.
    pub fn skip(&mut self, n: u64) {
        if let State::Data { remaining, padding, keep: Keep::Nothing } = &mut self.state {
            let n = n.min(*remaining + *padding);
            let from_data = n.min(*remaining);
            *remaining -= from_data;
            *padding -= n - from_data;
            self.offset += n;
            if *remaining == 0 && *padding == 0 {
                self.entry_done(Keep::Nothing);
            }
        }
    }

    /// The end of the stream: the archive must be complete. Returns `manifest.json`'s bytes.
    pub fn finish(self) -> Result<Vec<u8>, ScanError> {
        match self.state {
            State::End { zeros } if zeros >= BLOCK as u64 => {
                self.manifest.ok_or(ScanError::NoManifest)
            }
            // Less than one header block (an empty stream, a few bytes of something else) is
            // not an archive at all.
            State::Header if self.offset < BLOCK as u64 => Err(ScanError::NotTar { offset: 0 }),
            _ => Err(ScanError::Truncated { offset: self.offset }),
        }
    }

    fn header(&mut self, block: &[u8]) -> Result<(), ScanError> {
        let at = self.offset - BLOCK as u64;
        if block.iter().all(|b| *b == 0) {
            self.state = State::End { zeros: 0 };
            return Ok(());
        }
        if !checksum_ok(block) {
            return Err(ScanError::NotTar { offset: at });
        }
        let size = match self.next_size.take() {
            Some(s) => s,
            None => parse_size(&block[124..136]).ok_or(ScanError::NotTar { offset: at })?,
        };
        let path = match self.next_path.take() {
            Some(p) => p,
            None => header_path(block),
        };
        let keep = match block[156] {
            b'x' => Keep::Pax,
            b'L' => Keep::LongName,
            b'0' | 0 if path.trim_start_matches("./") == "manifest.json" => Keep::Manifest,
            _ => Keep::Nothing,
        };
        if matches!(block[156], b'0' | 0) {
            if let Some(m) = self.members.as_mut() {
                m.insert(path.trim_start_matches("./").to_string());
                if m.len() > MAX_MEMBERS {
                    self.members = None;
                }
            }
        }
        // Directories, links and the like carry no data whatever their size field says.
        let size =
            if matches!(block[156], b'1' | b'2' | b'3' | b'4' | b'5' | b'6') { 0 } else { size };
        if keep != Keep::Nothing && size > MAX_KEPT {
            return Err(ScanError::TooLarge { name: path, size });
        }
        self.kept.clear();
        let padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        if size == 0 {
            self.state = State::Header;
            self.entry_done(keep);
        } else {
            self.state = State::Data { remaining: size, padding, keep };
        }
        Ok(())
    }

    fn entry_done(&mut self, keep: Keep) {
        let kept = std::mem::take(&mut self.kept);
        match keep {
            Keep::Nothing => {}
            Keep::Manifest => self.manifest = Some(kept),
            Keep::LongName => {
                let end = kept.iter().position(|b| *b == 0).unwrap_or(kept.len());
                self.next_path = Some(String::from_utf8_lossy(&kept[..end]).into_owned());
            }
            Keep::Pax => {
                for (key, value) in pax_records(&kept) {
                    match key {
                        "path" => self.next_path = Some(value.to_string()),
                        "size" => self.next_size = value.parse().ok(),
                        _ => {}
                    }
                }
            }
        }
        self.state = State::Header;
    }
}

fn checksum_ok(block: &[u8]) -> bool {
    let Some(want) = parse_octal(&block[148..156]) else { return false };
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(*b) })
        .sum();
    sum == want
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let s: &[u8] = {
        let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
        &field[..end]
    };
    let s = std::str::from_utf8(s).ok()?.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Octal, or GNU base-256 (high bit of the first byte set) for sizes of 8 GiB and more.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    parse_octal(field)
}

fn c_str(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn header_path(block: &[u8]) -> String {
    let name = c_str(&block[..100]);
    if &block[257..262] == b"ustar" {
        let prefix = c_str(&block[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// PAX extended header records: `"<len> <key>=<value>\n"`.
fn pax_records(data: &[u8]) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|b| *b == b' ') else { break };
        let Some(len) = std::str::from_utf8(&rest[..space]).ok().and_then(|s| s.parse().ok())
        else {
            break;
        };
        let len: usize = len;
        if len <= space || len > rest.len() {
            break;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Ok(text) = std::str::from_utf8(record) {
            if let Some((k, v)) = text.split_once('=') {
                out.push((k, v));
            }
        }
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn scan_in_chunks(bytes: &[u8], chunk: usize) -> Result<Vec<u8>, ScanError> {
        let mut s = Scanner::new();
        for c in bytes.chunks(chunk) {
            s.feed(c)?;
        }
        s.finish()
    }

    #[test]
    fn finds_the_manifest_in_any_chunking() {
        let layer = vec![7u8; 5000];
        let bytes = archive(&[
            ("abc/layer.tar", &layer),
            ("abc.json", b"{}"),
            ("manifest.json", b"[{\"Config\":\"abc.json\"}]"),
            ("repositories", b"{}"),
        ]);
        for chunk in [1, 7, 511, 512, 513, 4096, bytes.len()] {
            assert_eq!(scan_in_chunks(&bytes, chunk).unwrap(), b"[{\"Config\":\"abc.json\"}]");
        }
    }

    #[test]
    fn long_names_and_pax_headers() {
        let long = format!("{}/manifest.json", "d".repeat(120));
        let bytes = archive(&[(&long, b"x"), ("manifest.json", b"[]")]);
        assert_eq!(scan_in_chunks(&bytes, 100).unwrap(), b"[]");

        // A PAX header overriding the path of the next entry.
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("path", b"manifest.json".as_slice())]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        b.append_data(&mut h, "other-name", b"[]".as_slice()).unwrap();
        let bytes = b.into_inner().unwrap();
        assert_eq!(scan_in_chunks(&bytes, 3).unwrap(), b"[]");
    }

    #[test]
    fn truncated_anywhere_is_an_error() {
        let layer = vec![1u8; 3000];
        let bytes = archive(&[("l.tar", &layer), ("manifest.json", b"[]")]);
        for cut in [512, 1000, 3584, bytes.len() - 1024, bytes.len() - 1] {
            let e = scan_in_chunks(&bytes[..cut], 64).unwrap_err();
            assert!(matches!(e, ScanError::Truncated { .. }), "cut at {cut}: {e:?}");
        }
        // Less than one header: nothing says it was ever a tar archive (a gzip of a text).
        for cut in [1, 511] {
            let e = scan_in_chunks(&bytes[..cut], 64).unwrap_err();
            assert_eq!(e, ScanError::NotTar { offset: 0 }, "cut at {cut}");
        }
    }

    #[test]
    fn foreign_data_and_trailing_errors() {
        let e = scan_in_chunks(&[b'x'; 2048], 100).unwrap_err();
        assert_eq!(e, ScanError::NotTar { offset: 0 });
        assert_eq!(e.to_string(), "not a tar archive");
        assert_eq!(scan_in_chunks(&[], 1).unwrap_err(), ScanError::NotTar { offset: 0 });

        let mut bytes = archive(&[("manifest.json", b"[]")]);
        bytes.extend_from_slice(b"{\"errorDetail\":{\"message\":\"boom\"}}");
        assert!(matches!(
            scan_in_chunks(&bytes, 4096).unwrap_err(),
            ScanError::TrailingData { .. }
        ));

        // Garbage where the second header should be.
        let mut bytes = archive(&[("a", b"1"), ("manifest.json", b"[]")]);
        bytes[1024] ^= 0xff;
        assert_eq!(scan_in_chunks(&bytes, 4096).unwrap_err(), ScanError::NotTar { offset: 1024 });

        let bytes = archive(&[("a", b"1")]);
        assert_eq!(scan_in_chunks(&bytes, 4096).unwrap_err(), ScanError::NoManifest);
    }

    #[test]
    fn skipping_data_gives_the_same_result() {
        let layer = vec![9u8; 100_000];
        let bytes = archive(&[("l.tar", &layer), ("manifest.json", b"[1]")]);
        let mut s = Scanner::new();
        let mut pos = 0;
        let mut skipped = 0;
        while pos < bytes.len() {
            let n = s.skippable();
            if n > 0 {
                s.skip(n);
                pos += usize::try_from(n).unwrap();
                skipped += n;
                continue;
            }
            let end = (pos + 512).min(bytes.len());
            s.feed(&bytes[pos..end]).unwrap();
            pos = end;
        }
        assert!(skipped >= 100_000);
        assert_eq!(s.finish().unwrap(), b"[1]");
    }

    #[test]
    fn base256_size() {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[7] = 2; // 2 << 32
        assert_eq!(parse_size(&f), Some(2 << 32));
        assert_eq!(parse_size(b"00000001750\0"), Some(1000));
    }
}
