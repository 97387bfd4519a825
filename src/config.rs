//! Settings: the `.imgguard.yml` file, found at the git repository root (or the working
//! directory, or `--config FILE`). Reading that one file is the only I/O here; the daemon is never
//! touched. The file is in the repository's hands, so it is read only if it is a regular file of
//! at most 1 MiB ([`crate::bounded_read`]), and every error about it is one short line.
//!
//! serde_norway, not serde_yaml: serde_yaml was marked deprecated by its author in 2024
//! (0.9.34+deprecated) and sits on unsafe-libyaml, which is unmaintained too. serde_norway is the
//! maintained fork with the same API, so switching back or forth is a one-line change.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bounded_read::{read_regular, ReadError, CONFIG_LIMIT};
use crate::error::Error;

/// The name of the configuration file looked for at the repository root.
pub const FILE_NAME: &str = ".imgguard.yml";

/// The whole configuration file. Unknown keys are an error that names the key.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file format's version; only 1 exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Record the lineage after a build but remove nothing.
    #[serde(default)]
    pub keep_previous: bool,
    /// Reference patterns (`*` and `?` wildcards) whose images are never removed.
    #[serde(default)]
    pub protect: Vec<String>,
    /// The `check:` section: rules off or severity changed, paths excluded (`imgguard check`).
    #[serde(default)]
    pub check: crate::core::guard::CheckSettings,
    /// The `ledger:` section: `retention` (e.g. `180d`), applied at most once a day; `url` or
    /// `url_env` for the fleet ledger. `ledger: postgres://…` is short for `ledger: { url: … }`.
    #[serde(default, deserialize_with = "ledger_section")]
    pub ledger: LedgerConfig,
}

/// The `ledger:` section of the configuration.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Drop history older than this (as `imgguard ledger compact --older-than`), at most once a
    /// day, from `explain` and `prune` (which list the daemon's images anyway).
    #[serde(default)]
    pub retention: Option<String>,
    /// The fleet ledger's `postgres://` URL (never with a password in it).
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the fleet ledger's URL (which may hold a password).
    #[serde(default)]
    pub url_env: Option<String>,
}

/// `ledger:` is a section, or a URL alone.
fn ledger_section<'de, D: serde::Deserializer<'de>>(d: D) -> Result<LedgerConfig, D::Error> {
    struct Section;
    impl<'de> serde::de::Visitor<'de> for Section {
        type Value = LedgerConfig;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a postgres:// URL, or a map of retention, url, url_env")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LedgerConfig, E> {
            Ok(LedgerConfig { url: Some(v.to_string()), ..LedgerConfig::default() })
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<LedgerConfig, E> {
            Ok(LedgerConfig::default())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<LedgerConfig, A::Error> {
            LedgerConfig::deserialize(serde::de::value::MapAccessDeserializer::new(m))
        }
    }
    d.deserialize_any(Section)
}

/// The fleet ledger's URL as the file gives it, checked: a `postgres://` URL without a password.
fn check_ledger_url(l: &LedgerConfig) -> Result<(), String> {
    if l.url.is_some() && l.url_env.is_some() {
        return Err("ledger: give url or url_env, not both".into());
    }
    if let Some(url) = &l.url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "ledger.url: `{}` is not a postgres:// URL",
                crate::ledger::postgres::shown_url(url)
            ));
        }
        if crate::ledger::postgres::has_password(url) {
            return Err("ledger.url: the URL holds a password; keep it out of the file \
                 (PGPASSWORD, a password file in PGPASSFILE, or the whole URL in the \
                 environment variable named by ledger.url_env)"
                .into());
        }
    }
    Ok(())
}

/// Where the configuration came from, with what it says.
#[derive(Debug, Default, Clone)]
pub struct Config {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// Its contents (defaults when there is no file).
    pub file: FileConfig,
}

impl Config {
    /// Finds and reads the configuration: `explicit` if given (it must exist), else
    /// `.imgguard.yml` at the root of the git repository containing `cwd`, else in `cwd`.
    pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Config, Error> {
        if let Some(path) = explicit {
            let text = read(path)?;
            return Ok(Config { path: Some(path.to_path_buf()), file: parse(path, &text)? });
        }
        let mut candidates = Vec::with_capacity(2);
        if let Some(root) = crate::git::nearest_worktree(cwd) {
            candidates.push(root.join(FILE_NAME));
        }
        candidates.push(cwd.join(FILE_NAME));
        for path in candidates {
            match read(&path) {
                Ok(text) => {
                    let file = parse(&path, &text)?;
                    return Ok(Config { path: Some(path), file });
                }
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Config::default())
    }
}

/// The text of the configuration file `path`: a regular file, at most 1 MiB, UTF-8.
fn read(path: &Path) -> Result<String, Error> {
    let refused = |message: String| Error::Config { path: path.to_path_buf(), message };
    let bytes = match read_regular(path, CONFIG_LIMIT) {
        Ok(bytes) => bytes,
        Err(ReadError::Io(e)) => return Err(Error::io(path, e)),
        Err(e) => return Err(refused(e.to_string())),
    };
    String::from_utf8(bytes)
        .map_err(|e| refused(format!("is not valid UTF-8 (byte {})", e.utf8_error().valid_up_to())))
}

/// Parses the text of a configuration file; `path` only names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, Error> {
    let err = |message: String| Error::Config { path: path.to_path_buf(), message };
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let file: FileConfig = serde_norway::from_str(text).map_err(|e| err(one_line(&e)))?;
    match file.version {
        None | Some(1) => {}
        Some(v) => return Err(err(format!("version {v} is not known (this imgguard reads 1)"))),
    }
    if let Some(r) = &file.ledger.retention {
        let ms = crate::core::policy::parse_duration(r)
            .map_err(|e| err(format!("ledger.retention: {e}")))?;
        if ms == 0 {
            return Err(err(
                "ledger.retention: 0 would drop all history (omit it to keep all)".into()
            ));
        }
    }
    check_ledger_url(&file.ledger).map_err(err)?;
    for pattern in &file.protect {
        if pattern.trim().is_empty() {
            return Err(err("protect: an empty pattern would match nothing".into()));
        }
    }
    Ok(file)
}

/// The parser's message on one line and at most 200 characters: it may quote the file, and the
/// file may be megabytes of garbage.
fn one_line(e: &serde_norway::Error) -> String {
    const MAX: usize = 200;
    let text = e.to_string().replace(['\n', '\r'], " ");
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys() {
        let c = parse(Path::new("x"), "version: 1\nkeep_previous: true\nprotect: [\"app:*\"]\n")
            .unwrap();
        assert!(c.keep_previous);
        assert_eq!(c.protect, ["app:*"]);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(Path::new("x.yml"), "keep_prevous: true\n").unwrap_err().to_string();
        assert!(e.contains("keep_prevous"), "{e}");
        assert!(e.starts_with("config x.yml:"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn a_long_parser_message_is_cut() {
        let garbage = format!("key: [{}", "x".repeat(100_000));
        let e = parse(Path::new("x.yml"), &garbage).unwrap_err().to_string();
        assert!(e.len() < 300, "{}", e.len());
        let e = parse(Path::new("x.yml"), &"\"".repeat(50_000)).unwrap_err().to_string();
        assert!(e.len() < 300 && !e.contains('\n'), "{}", e.len());
    }

    #[test]
    fn unknown_version_is_refused() {
        let e = parse(Path::new("x"), "version: 2\n").unwrap_err().to_string();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn ledger_retention_is_checked() {
        let c = parse(Path::new("x"), "ledger:\n  retention: 180d\n").unwrap();
        assert_eq!(c.ledger.retention.as_deref(), Some("180d"));
        let e = parse(Path::new("x.yml"), "ledger: { retention: soon }\n").unwrap_err();
        assert!(e.to_string().starts_with("config x.yml: ledger.retention: invalid duration"));
        let e = parse(Path::new("x.yml"), "ledger: { retain: 1d }\n").unwrap_err();
        assert!(e.to_string().contains("retain"), "{e}");
    }

    #[test]
    fn the_fleet_ledger_url_is_checked() {
        let c = parse(Path::new("x"), "ledger: postgres://db/imgguard\n").unwrap();
        assert_eq!(c.ledger.url.as_deref(), Some("postgres://db/imgguard"));
        let c = parse(Path::new("x"), "ledger: { url_env: FLEET_URL, retention: 9d }\n").unwrap();
        assert_eq!(c.ledger.url_env.as_deref(), Some("FLEET_URL"));
        let e = parse(Path::new("x.yml"), "ledger: postgres://u:hunter2@db/x\n").unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("config x.yml: ledger.url: the URL holds a password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse(Path::new("x.yml"), "ledger: mysql://db/x\n").unwrap_err().to_string();
        assert!(e.contains("not a postgres:// URL"), "{e}");
    }

    #[test]
    fn empty_file_is_defaults() {
        let c = parse(Path::new("x"), "\n").unwrap();
        assert!(!c.keep_previous);
        assert!(c.protect.is_empty());
    }
}
