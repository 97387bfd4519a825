//! `docker compose build` / `docker-compose build`: the command is in a script, a Makefile or
//! a CI file, the tag is in a compose file. The shell analysis records each such command (its
//! place, `-f` files and named services) as a [`ComposeBuild`]; the caller finds the compose
//! files the command would read and hands their text to [`resolve`], which reports IG003 on
//! the command's line when a built service has a fixed `image:` name (rebuilding it moves the
//! tag and leaves the previous image `<none>`). No compose file, or no fixed name: silent.
//! Pure.

use std::path::{Path, PathBuf};

use super::{Finding, RuleId, Rules};

/// The compose file names `docker compose` looks for, in its order.
pub const DEFAULT_FILES: &[&str] =
    &["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

/// One `docker compose build` command found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeBuild {
    /// The file the command is in (as reported).
    pub path: PathBuf,
    /// 1-based line and column of the command word, and its last line.
    pub line: usize,
    /// Column of the command word.
    pub column: usize,
    /// Last line of the command.
    pub end_line: usize,
    /// The source line.
    pub excerpt: String,
    /// The command as written (`docker compose`, `docker-compose`).
    pub command: String,
    /// The `-f`/`--file` values, in order (empty: the default names).
    pub files: Vec<String>,
    /// The services named after `build` (empty: all).
    pub services: Vec<String>,
}

/// Services of a compose file that are built (`build:`) and tagged with a fixed `image:`
/// (no `${…}` interpolation), as `(service, image)`.
pub fn fixed_builds(text: &str) -> Vec<(String, String)> {
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else { return Vec::new() };
    let Some(services) = doc.get("services").and_then(serde_norway::Value::as_mapping) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, service) in services {
        let (Some(name), Some(image)) =
            (name.as_str(), service.get("image").and_then(serde_norway::Value::as_str))
        else {
            continue;
        };
        if service.get("build").is_some() && !image.contains('$') {
            out.push((name.to_string(), image.to_string()));
        }
    }
    out
}

/// The finding for `build`, given the compose files it reads (`(path as reported, text)`, the
/// first one that has fixed builds wins, as compose reads the first default file it finds).
pub fn resolve(
    build: &ComposeBuild,
    files: &[(PathBuf, String)],
    rules: &Rules,
) -> Option<Finding> {
    let severity = rules.severity(RuleId::Ig003)?;
    for (path, text) in files {
        let built: Vec<(String, String)> = fixed_builds(text)
            .into_iter()
            .filter(|(s, _)| build.services.is_empty() || build.services.contains(s))
            .collect();
        let Some((service, image)) = built.first() else { continue };
        let more = match built.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        return Some(Finding {
            rule: RuleId::Ig003,
            severity,
            path: build.path.clone(),
            line: build.line,
            column: build.column,
            end_line: build.end_line,
            message: format!(
                "`{} build` rebuilds `{image}` (service `{service}`{more} in {}): the tag \
                 moves and the image it pointed to is left as <none>:<none>",
                build.command,
                slash(path)
            ),
            fix: RuleId::Ig003.info().fix.to_string(),
            excerpt: build.excerpt.clone(),
            edits: Vec::new(),
        });
    }
    None
}

/// Where to look for the compose files of `build`, relative to the scanned root: the `-f`
/// files (relative to the command's directory, then to the root), else the default names in
/// the command's directory and each directory above it.
pub fn candidates(build: &ComposeBuild) -> Vec<PathBuf> {
    let dir = build.path.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    if build.files.is_empty() {
        let mut at = Some(dir);
        while let Some(d) = at {
            out.extend(DEFAULT_FILES.iter().map(|f| d.join(f)));
            at = d.parent();
        }
    } else {
        for f in &build.files {
            out.push(dir.join(f));
            out.push(PathBuf::from(f));
        }
    }
    out.dedup();
    out
}

fn slash(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/").trim_start_matches("./").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(services: &[&str]) -> ComposeBuild {
        ComposeBuild {
            path: PathBuf::from("ci/build.sh"),
            line: 2,
            column: 1,
            end_line: 2,
            excerpt: "docker compose build".into(),
            command: "docker compose".into(),
            files: Vec::new(),
            services: services.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    const COMPOSE: &str = "services:\n  web:\n    build: .\n    image: shop/web:dev\n  db:\n    image: postgres:16\n  tool:\n    build: ./tool\n    image: tool:${TAG}\n";

    #[test]
    fn only_built_services_with_fixed_names() {
        assert_eq!(fixed_builds(COMPOSE), [("web".to_string(), "shop/web:dev".to_string())]);
    }

    #[test]
    fn named_services_narrow_it() {
        let files = [(PathBuf::from("compose.yaml"), COMPOSE.to_string())];
        let f = resolve(&build(&[]), &files, &Rules::default()).unwrap();
        assert!(
            f.message.contains("`shop/web:dev` (service `web` in compose.yaml)"),
            "{}",
            f.message
        );
        assert!(resolve(&build(&["tool"]), &files, &Rules::default()).is_none());
        assert!(resolve(&build(&[]), &[], &Rules::default()).is_none());
    }

    #[test]
    fn default_files_up_the_tree() {
        let c = candidates(&build(&[]));
        assert_eq!(c[0], PathBuf::from("ci/compose.yaml"));
        assert!(c.contains(&PathBuf::from("docker-compose.yml")));
    }
}
