//! What connecting to a daemon over its Unix socket learns from `/_ping` (the API version it
//! speaks and whether it is dockerd or Podman), remembered per endpoint under the daemon's stamp
//! (see [`super::Engine::stamp`]) so that the next command skips the round trip: on Docker 20.10
//! on a 2-core machine `/_ping` is ~1 ms of the ~5 ms imgguard adds to a cached build.
//!
//! The stamp (socket device, inode and change time, and the PID answering on it) costs a
//! `connect`, a `getsockopt` and a `stat` — no HTTP. A daemon restarted or upgraded answers from
//! another PID, so a remembered handshake is never used for a daemon that could speak another
//! API version; it is trusted for at most [`TTL_MS`] even so.
//!
//! The file is a cache: one line per endpoint, tab-separated, anything unexpected in it (a
//! broken line, a future format) is simply not a hit, and it is rewritten whole.

use super::Flavor;

/// How long a remembered handshake is trusted, even under the same stamp.
pub const TTL_MS: i64 = 3_600_000;

/// The most endpoints remembered (the most recently used are kept).
const MAX_ENTRIES: usize = 16;

/// The format's name, first on each line.
const FORMAT: &str = "handshake1";

/// One endpoint's remembered handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The endpoint (`unix:///var/run/docker.sock`).
    pub endpoint: String,
    /// The daemon's stamp when it answered.
    pub stamp: String,
    /// The API version it speaks (from `Api-Version`), as major and minor.
    pub api_version: (usize, usize),
    pub flavor: Flavor,
    /// When it answered (ms since the epoch).
    pub at_ms: i64,
}

/// The handshake remembered for `endpoint` under `stamp`, if it is recent enough.
pub fn lookup(text: &str, endpoint: &str, stamp: &str, now_ms: i64) -> Option<Handshake> {
    parse(text).into_iter().find(|h| {
        h.endpoint == endpoint
            && h.stamp == stamp
            && now_ms >= h.at_ms
            && now_ms.saturating_sub(h.at_ms) < TTL_MS
    })
}

/// The file's new content: `new` first, then the other endpoints' entries (at most
/// sixteen in all). `None` when `new` cannot be written as one line.
pub fn remember(text: &str, new: &Handshake) -> Option<String> {
    let fields = [new.endpoint.as_str(), new.stamp.as_str()];
    if fields.iter().any(|f| f.is_empty() || f.contains(['\t', '\n', '\r'])) {
        return None;
    }
    let others = parse(text).into_iter().filter(|h| h.endpoint != new.endpoint);
    let lines: Vec<String> =
        std::iter::once(new.clone()).chain(others).take(MAX_ENTRIES).map(|h| line(&h)).collect();
    Some(lines.join("\n") + "\n")
}

fn line(h: &Handshake) -> String {
    let flavor = match h.flavor {
        Flavor::Docker => "docker",
        Flavor::Podman => "podman",
    };
    let (major, minor) = h.api_version;
    format!("{FORMAT}\t{}\t{}\t{major}.{minor}\t{flavor}\t{}", h.endpoint, h.stamp, h.at_ms)
}

fn parse(text: &str) -> Vec<Handshake> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(l: &str) -> Option<Handshake> {
    let mut f = l.split('\t');
    if f.next()? != FORMAT {
        return None;
    }
    let endpoint = f.next().filter(|e| !e.is_empty())?.to_string();
    let stamp = f.next().filter(|s| !s.is_empty())?.to_string();
    let (major, minor) = f.next()?.split_once('.')?;
    let api_version = (major.parse().ok()?, minor.parse().ok()?);
    let flavor = match f.next()? {
        "docker" => Flavor::Docker,
        "podman" => Flavor::Podman,
        _ => return None,
    };
    let at_ms = f.next()?.parse().ok()?;
    f.next().is_none().then_some(Handshake { endpoint, stamp, api_version, flavor, at_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(endpoint: &str, stamp: &str, at_ms: i64) -> Handshake {
        Handshake {
            endpoint: endpoint.into(),
            stamp: stamp.into(),
            api_version: (1, 41),
            flavor: Flavor::Docker,
            at_ms,
        }
    }

    #[test]
    fn round_trip_and_lookup_rules() {
        let a = hs("unix:///var/run/docker.sock", "2049:77:1.5:812", 1_000);
        let text = remember("", &a).unwrap();
        assert_eq!(
            text,
            "handshake1\tunix:///var/run/docker.sock\t2049:77:1.5:812\t1.41\tdocker\t1000\n"
        );
        assert_eq!(lookup(&text, &a.endpoint, &a.stamp, 2_000), Some(a.clone()));
        // Another stamp (the daemon restarted), another endpoint, too old, or from the future.
        assert_eq!(lookup(&text, &a.endpoint, "2049:77:1.5:813", 2_000), None);
        assert_eq!(lookup(&text, "unix:///run/podman.sock", &a.stamp, 2_000), None);
        assert_eq!(lookup(&text, &a.endpoint, &a.stamp, 1_000 + TTL_MS), None);
        assert_eq!(lookup(&text, &a.endpoint, &a.stamp, 999), None);
    }

    #[test]
    fn one_entry_per_endpoint_newest_first_and_bounded() {
        let mut text = String::new();
        for i in 0..40 {
            let mut h = hs(&format!("unix:///s{}", i % 20), &format!("st{i}"), i);
            h.flavor = if i % 2 == 0 { Flavor::Podman } else { Flavor::Docker };
            text = remember(&text, &h).unwrap();
        }
        let entries = parse(&text);
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0].stamp, "st39");
        assert_eq!(entries.iter().filter(|h| h.endpoint == "unix:///s19").count(), 1);
        assert_eq!(
            lookup(&text, "unix:///s18", "st38", 40).map(|h| h.flavor),
            Some(Flavor::Podman)
        );
    }

    #[test]
    fn garbage_is_a_miss_and_is_dropped_on_rewrite() {
        let good = line(&hs("unix:///a", "s", 5));
        let text = format!(
            "\u{0}\u{1}binary\nhandshake2\tunix:///a\ts\t1.41\tdocker\t5\n{good}\textra\n\
             handshake1\tunix:///a\ts\t1.x\tdocker\t5\nhandshake1\tunix:///a\ts\t1.41\tcri-o\t5\n"
        );
        assert_eq!(lookup(&text, "unix:///a", "s", 6), None);
        let rewritten = remember(&text, &hs("unix:///b", "t", 6)).unwrap();
        assert_eq!(parse(&rewritten).len(), 1);
        // What cannot be one line is not remembered.
        assert_eq!(remember("", &hs("unix:///a\tb", "s", 1)), None);
        assert_eq!(remember("", &hs("unix:///a", "s\n", 1)), None);
        assert_eq!(remember("", &hs("unix:///a", "", 1)), None);
    }
}
