//! The rule catalogue (stable IDs IG001–IG004 that other tools and CI key on), severities, and the
//! `check:` section of `.imgguard.yml` turned into effective [`Rules`]. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A rule's stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    /// `docker save` of an image ID or digest-only reference.
    Ig001,
    /// `docker rmi -f` and friends.
    Ig002,
    /// `docker build -t X`: the previous image of X dangles.
    Ig003,
    /// `docker system prune -a`, `docker image prune -a`.
    Ig004,
}

impl RuleId {
    /// Every rule, in ID order.
    pub const ALL: [RuleId; 4] = [RuleId::Ig001, RuleId::Ig002, RuleId::Ig003, RuleId::Ig004];

    /// The ID as written in output, config and inline ignores (`IG001`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Ig001 => "IG001",
            RuleId::Ig002 => "IG002",
            RuleId::Ig003 => "IG003",
            RuleId::Ig004 => "IG004",
        }
    }

    /// The rule's description.
    pub fn info(self) -> &'static RuleInfo {
        &CATALOGUE[self as usize]
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule ID that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule `{0}` (known: IG001, IG002, IG003, IG004)")]
pub struct UnknownRule(pub String);

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleId::ALL
            .into_iter()
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

/// What the catalogue says about one rule.
#[derive(Debug)]
pub struct RuleInfo {
    /// The stable ID.
    pub id: RuleId,
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
}

/// The catalogue, indexed by `RuleId as usize`.
pub static CATALOGUE: [RuleInfo; 4] = [
    RuleInfo {
        id: RuleId::Ig001,
        name: "id-only-save",
        default_severity: Severity::Error,
        summary: "`docker save` of an image ID or digest-only reference",
        why: "the archive records no repository:tag, so `docker load` brings it back as a \
              <none>:<none> image",
        fix: "save by name:tag (`docker save -o app.tar app:1.2`), or use `imgguard save`",
    },
    RuleInfo {
        id: RuleId::Ig002,
        name: "forced-image-removal",
        default_severity: Severity::Error,
        summary: "forced image removal (`docker rmi -f`, `docker image rm --force`)",
        why: "a forced removal untags images that containers still use and leaves them as \
              <none>:<none>",
        fix: "drop -f/--force (docker then refuses to remove images in use), or remove only \
              dangling images with `docker image prune`",
    },
    RuleInfo {
        id: RuleId::Ig003,
        name: "plain-rebuild-of-fixed-tag",
        default_severity: Severity::Note,
        summary: "plain rebuild of a fixed tag (`docker build -t X`)",
        why: "the tag moves to the new image and the previous one is left dangling as \
              <none>:<none>",
        fix: "use `imgguard build -t X …`, which records the lineage and removes the superseded \
              image when nothing uses it",
    },
    RuleInfo {
        id: RuleId::Ig004,
        name: "blanket-prune",
        default_severity: Severity::Warning,
        summary: "blanket prune (`docker system prune -a`, `docker image prune -a`)",
        why: "`-a` removes every image without a container, tagged or not, including ones \
              still needed",
        fix: "prune only dangling images (`docker image prune` without -a), or `imgguard prune`",
    },
];

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
    severity: [Option<Severity>; 4],
}

impl Default for Rules {
    fn default() -> Self {
        Rules { severity: RuleId::ALL.map(|r| Some(r.info().default_severity)) }
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
        for rule in RuleId::ALL {
            assert_eq!(rule.info().id, rule);
            assert_eq!(rule.as_str().parse::<RuleId>().unwrap(), rule);
        }
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
