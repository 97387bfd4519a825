//! The rule registry: every rule is ONE entry of `registry!` below (ID, name, default
//! severity, summary, why, fix text, check function, automatic fix), and everything else — the
//! [`RuleId`] enum, [`RuleId::ALL`], the "known:" lists of errors, SARIF's rule list, the docs
//! table test — is derived from it. Also the severities and the `check:` section of
//! `.imgguard.yml` turned into effective [`Rules`]. Pure: no I/O.
//!
//! Adding IG005: write its check function in `super::checks`, add one entry here, add its
//! table tests (`tests/guard.rs`) and a row in `docs/check.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::checks::{self, CheckFn};

/// Declares the rules: the `RuleId` enum, `RuleId::ALL` and the `RULES` table, from one list.
macro_rules! registry {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal {
            name: $name:literal,
            severity: $severity:ident,
            summary: $summary:expr,
            why: $why:expr,
            fix: $fix:expr,
            check: $check:path,
            autofix: $autofix:ident $(,)?
        }
    ),+ $(,)?) => {
        /// A rule's stable identifier (other tools and CI key on it).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $($(#[$doc])* $variant,)+
        }

        impl RuleId {
            /// Every rule, in ID order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),+];
        }

        /// The registry, indexed by `RuleId as usize`.
        pub static RULES: &[RuleInfo] = &[$(
            RuleInfo {
                id: RuleId::$variant,
                code: $code,
                name: $name,
                default_severity: Severity::$severity,
                summary: $summary,
                why: $why,
                fix: $fix,
                check: $check,
                autofix: Autofix::$autofix,
            },
        )+];
    };
}

registry! {
    /// `docker save` of an image ID or digest-only reference.
    Ig001 = "IG001" {
        name: "id-only-save",
        severity: Error,
        summary: "`docker save` of an image ID or digest-only reference",
        why: "the archive records no repository:tag, so `docker load` brings it back as a \
              <none>:<none> image",
        fix: "save by name:tag (`docker save -o app.tar app:1.2`), or use `imgguard save`",
        check: checks::id_only_save,
        autofix: None,
    },
    /// `docker rmi -f` and friends.
    Ig002 = "IG002" {
        name: "forced-image-removal",
        severity: Error,
        summary: "forced image removal (`docker rmi -f`, `docker image rm --force`)",
        why: "a forced removal untags images that containers still use and leaves them as \
              <none>:<none>",
        fix: "drop -f/--force (docker then refuses to remove images in use), or remove only \
              dangling images with `docker image prune`",
        check: checks::forced_removal,
        autofix: Default,
    },
    /// `docker build -t X`: the previous image of X dangles.
    Ig003 = "IG003" {
        name: "plain-rebuild-of-fixed-tag",
        severity: Note,
        summary: "plain rebuild of a fixed tag (`docker build -t X`)",
        why: "the tag moves to the new image and the previous one is left dangling as \
              <none>:<none>",
        fix: "use `imgguard build -t X …`, which records the lineage and removes the superseded \
              image when nothing uses it",
        check: checks::plain_rebuild,
        autofix: OnRequest,
    },
    /// `docker system prune -a`, `docker image prune -a`.
    Ig004 = "IG004" {
        name: "blanket-prune",
        severity: Warning,
        summary: "blanket prune (`docker system prune -a`, `docker image prune -a`)",
        why: "`-a` removes every image without a container, tagged or not, including ones \
              still needed",
        fix: "prune only dangling images (`docker image prune` without -a), or `imgguard prune`",
        check: checks::blanket_prune,
        autofix: None,
    },
}

impl RuleId {
    /// The ID as written in output, config and inline ignores (`IG001`).
    pub fn as_str(self) -> &'static str {
        self.info().code
    }

    /// The rule's registry entry.
    pub fn info(self) -> &'static RuleInfo {
        &RULES[self as usize]
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every rule ID, comma-separated (`IG001, IG002, …`), for error messages.
pub fn known_ids() -> String {
    RuleId::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// A rule ID that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{0}` (known: {known})", known = known_ids())]
pub struct UnknownRule(pub String);

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .iter()
            .copied()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRule(s.trim().to_string()))
    }
}

/// How serious a finding is; ordered so that `Note < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (SARIF `note`, GitHub `notice`).
    Note,
    /// Likely to leave `<none>` images.
    Warning,
    /// Creates `<none>` images or destroys what is still needed.
    Error,
}

impl Severity {
    /// The lowercase name used in every output format (`error`, `warning`, `note`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `imgguard check --fix` may rewrite a rule's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autofix {
    /// No automatic fix; the message carries what to do.
    None,
    /// Applied by a bare `--fix`.
    Default,
    /// Applied only when named (`--fix=IG003`): the fix adds a dependency.
    OnRequest,
}

/// One registry entry: what is known about one rule.
#[derive(Debug)]
pub struct RuleInfo {
    /// The stable ID.
    pub id: RuleId,
    /// The ID as written (`IG001`).
    pub code: &'static str,
    /// A short kebab-case name (SARIF `name`).
    pub name: &'static str,
    /// The severity unless the configuration changes it.
    pub default_severity: Severity,
    /// One sentence: what is detected.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// What to do instead.
    pub fix: &'static str,
    /// Judges one engine command line.
    pub(crate) check: CheckFn,
    /// Whether `--fix` applies this rule's edits.
    pub autofix: Autofix,
}

/// One rule's setting in `.imgguard.yml`: `off` or a severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSetting {
    /// The rule is disabled.
    Off,
    /// Report as a note.
    Note,
    /// Report as a warning.
    Warning,
    /// Report as an error.
    Error,
}

/// The `check:` section of `.imgguard.yml`.
///
/// ```yaml
/// check:
///   rules:
///     IG003: off
///     IG004: error
///   exclude: ["vendor/**", "legacy/*.sh"]
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSettings {
    /// Per-rule severity or `off`, keyed by rule ID (an unknown ID is an error).
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSetting>,
    /// Glob patterns (gitignore-style, relative to the repository root) of paths not scanned.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// The effective severity of each rule (`None`: disabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    severity: Vec<Option<Severity>>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { severity: RULES.iter().map(|r| Some(r.default_severity)).collect() }
    }
}

impl Rules {
    /// Applies the configuration to the defaults; an unknown rule ID is an error naming it.
    pub fn from_settings(settings: &CheckSettings) -> Result<Rules, UnknownRule> {
        let mut rules = Rules::default();
        for (id, setting) in &settings.rules {
            let id: RuleId = id.parse()?;
            rules.severity[id as usize] = match setting {
                RuleSetting::Off => None,
                RuleSetting::Note => Some(Severity::Note),
                RuleSetting::Warning => Some(Severity::Warning),
                RuleSetting::Error => Some(Severity::Error),
            };
        }
        Ok(rules)
    }

    /// The severity `rule` reports with, or `None` when it is off.
    pub fn severity(&self, rule: RuleId) -> Option<Severity> {
        self.severity[rule as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_indexed_by_id() {
        for &rule in RuleId::ALL {
            assert_eq!(rule.info().id, rule);
            assert_eq!(rule.as_str().parse::<RuleId>().unwrap(), rule);
        }
    }

    #[test]
    fn known_lists_every_rule() {
        assert_eq!(known_ids().matches("IG0").count(), RULES.len());
    }

    #[test]
    fn unknown_rule_is_named() {
        let e = "IG009".parse::<RuleId>().unwrap_err();
        assert!(e.to_string().contains("`IG009`"), "{e}");
    }

    #[test]
    fn settings_change_severity_and_disable() {
        let mut settings = CheckSettings::default();
        settings.rules.insert("IG003".into(), RuleSetting::Off);
        settings.rules.insert("ig004".into(), RuleSetting::Error);
        let rules = Rules::from_settings(&settings).unwrap();
        assert_eq!(rules.severity(RuleId::Ig003), None);
        assert_eq!(rules.severity(RuleId::Ig004), Some(Severity::Error));
        assert_eq!(rules.severity(RuleId::Ig001), Some(Severity::Error));
        settings.rules.insert("IG042".into(), RuleSetting::Note);
        assert_eq!(Rules::from_settings(&settings).unwrap_err(), UnknownRule("IG042".into()));
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Note < Severity::Warning && Severity::Warning < Severity::Error);
    }
}
