//! Image references as docker reads them (distribution/reference): validation and the
//! normalisation docker applies (`app` → `app:latest`, `docker.io/library/app` → `app`). Pure.

use std::fmt;

/// A normalised `name:tag` in docker's familiar form, as `RepoTags` shows it
/// (`app:latest`, `ghcr.io/org/app:v1`, `localhost:5000/x:y`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The familiar form, e.g. `app:v1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a string that is already normalised (read back from the ledger or the daemon).
    pub fn from_normalised(s: impl Into<String>) -> Tag {
        Tag(s.into())
    }

    /// Parses what a user wrote after `-t`: a name with an optional tag, no digest.
    pub fn parse(input: &str) -> Result<Tag, ReferenceError> {
        match Reference::parse(input)? {
            Reference::Named { name, tag, digest: None } => {
                Ok(Tag(format!("{name}:{}", tag.as_deref().unwrap_or("latest"))))
            }
            Reference::Named { digest: Some(_), .. } => {
                Err(ReferenceError::new(input, "a tag cannot carry a digest"))
            }
            Reference::Id(_) => Err(ReferenceError::new(
                input,
                "a 64-character hex string is an image ID, not a repository name",
            )),
        }
    }

    /// The repository part (`app` of `app:v1`).
    pub fn repository(&self) -> &str {
        self.0.rsplit_once(':').map_or(self.0.as_str(), |(r, _)| r)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a reference is not valid, worded like docker's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference `{input}`: {reason}")]
pub struct ReferenceError {
    /// What the user wrote.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ReferenceError {
    fn new(input: &str, reason: &str) -> Self {
        ReferenceError { input: input.to_string(), reason: reason.to_string() }
    }
}

/// A parsed reference: either an image ID or a name with optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// An image ID (`sha256:` + 64 hex, or 64 hex alone).
    Id(String),
    /// A name in familiar form, with its tag and digest if given.
    Named {
        /// Familiar repository name (`app`, `ghcr.io/org/app`).
        name: String,
        /// The tag, if one was written.
        tag: Option<String>,
        /// The digest (`sha256:…`), if one was written.
        digest: Option<String>,
    },
}

const MAX_NAME: usize = 255;

impl Reference {
    /// Parses a reference the way docker's `ParseNormalizedNamed` does.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let bad = |reason: &str| ReferenceError::new(input, reason);
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        if let Some(hex) = input.strip_prefix("sha256:") {
            if is_hex64(hex) {
                return Ok(Reference::Id(input.to_string()));
            }
            return Err(bad("`sha256:` must be followed by 64 lowercase hex characters"));
        }
        if is_hex64(input) {
            return Ok(Reference::Id(format!("sha256:{input}")));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let ok = d
                    .split_once(':')
                    .is_some_and(|(alg, hex)| !alg.is_empty() && hex.len() >= 32 && is_hex(hex));
                if !ok {
                    return Err(bad("invalid digest"));
                }
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A tag is the part after the last ':' when that part has no '/' (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad(
                    "a tag is up to 128 characters of letters, digits, `_`, `.` and `-`, \
                     not starting with `.` or `-`",
                ));
            }
        }
        let (domain, path) = split_domain(name);
        if let Some(d) = domain {
            if !valid_domain(d) {
                return Err(bad("invalid registry host"));
            }
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad("invalid repository name"));
        }
        if name.len() > MAX_NAME {
            return Err(bad("repository name is longer than 255 characters"));
        }
        Ok(Reference::Named { name: familiar(domain, path), tag: tag.map(str::to_string), digest })
    }
}

/// Splits a name into registry host and path the way docker's `splitDockerDomain` does.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Docker's familiar form: `docker.io/library/x` and `index.docker.io/x` become `x`.
fn familiar(domain: Option<&str>, path: &str) -> String {
    match domain {
        None | Some("docker.io" | "index.docker.io") => {
            path.strip_prefix("library/").filter(|p| !p.contains('/')).unwrap_or(path).to_string()
        }
        Some(d) => format!("{d}/{path}"),
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {}
        _ => return false,
    }
    tag.len() <= 128 && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']') && host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! tag_ok {
        ($input:expr, $want:expr) => {
            assert_eq!(Tag::parse($input).unwrap().as_str(), $want, "{}", $input);
        };
    }

    #[test]
    fn normalises_like_docker() {
        tag_ok!("app", "app:latest");
        tag_ok!("app:v1", "app:v1");
        tag_ok!("docker.io/library/app:v1", "app:v1");
        tag_ok!("index.docker.io/library/app", "app:latest");
        tag_ok!("docker.io/org/app:v1", "org/app:v1");
        tag_ok!("library/app:v1", "app:v1");
        tag_ok!("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2");
        tag_ok!("localhost:5000/x", "localhost:5000/x:latest");
        tag_ok!("localhost/x:y", "localhost/x:y");
        tag_ok!("a__b-c/e---f.g:V_1.0-rc", "a__b-c/e---f.g:V_1.0-rc");
        tag_ok!("[::1]:5000/app:v1", "[::1]:5000/app:v1");
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "App:v1",
            "app:",
            "app:-x",
            "app:.x",
            "app/:v1",
            "-app",
            "app_",
            "a...b",
            "app:v1@sha256:zz",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123",
            "has space:v1",
            "host:port/app",
        ] {
            assert!(Tag::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn long_tag_rejected() {
        let t = format!("app:{}", "a".repeat(129));
        assert!(Tag::parse(&t).is_err());
        let t = format!("app:{}", "a".repeat(128));
        assert!(Tag::parse(&t).is_ok());
    }

    #[test]
    fn ids_are_recognised() {
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(Reference::parse(hex).unwrap(), Reference::Id(format!("sha256:{hex}")));
        assert_eq!(
            Reference::parse(&format!("sha256:{hex}")).unwrap(),
            Reference::Id(format!("sha256:{hex}"))
        );
    }

    #[test]
    fn repository_part() {
        assert_eq!(Tag::parse("localhost:5000/x:y").unwrap().repository(), "localhost:5000/x");
    }
}
