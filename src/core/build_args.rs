//! Reads what imgguard needs out of `docker build` arguments without changing them: the tags,
//! the build context, the Dockerfile, the names of build args (never their values), and whether
//! the user asked for an iidfile of their own. Pure.

use std::ffi::OsString;

use crate::core::reference::{ReferenceError, Tag};

/// `docker build` / `docker buildx build` options that take a value (as a separate argument when
/// not written `--opt=value`). Anything not listed is a boolean flag.
const VALUE_FLAGS: &[&str] = &[
    "--add-host",
    "--allow",
    "--annotation",
    "--attest",
    "--build-arg",
    "--build-context",
    "--builder",
    "--cache-from",
    "--cache-to",
    "--call",
    "--cgroup-parent",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-shares",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--file",
    "--iidfile",
    "--isolation",
    "--label",
    "--memory",
    "--memory-swap",
    "--metadata-file",
    "--network",
    "--no-cache-filter",
    "--output",
    "--platform",
    "--progress",
    "--secret",
    "--security-opt",
    "--shm-size",
    "--ssh",
    "--tag",
    "--target",
    "--ulimit",
];

/// Short options that take a value: `-t`, `-f`, `-m`, `-c`, `-o`.
const SHORT_VALUE_FLAGS: &[char] = &['t', 'f', 'm', 'c', 'o'];

/// What imgguard read from the arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildArgs {
    /// Normalised tags, in the order given, without repeats.
    pub tags: Vec<Tag>,
    /// The build context operand (`.`, a path, a URL or `-`).
    pub context: Option<String>,
    /// `-f` / `--file`, as given.
    pub dockerfile: Option<String>,
    /// `--build-arg` names only (`NAME=value` and `NAME` forms).
    pub build_arg_names: Vec<String>,
    /// `--iidfile` if the user gave one.
    pub iidfile: Option<String>,
    /// `--push` was given.
    pub push: bool,
}

/// Why the arguments cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildArgsError {
    /// A tag is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// An option that needs a value came last.
    #[error("docker build option `{0}` needs a value")]
    MissingValue(String),
    /// An argument is not UTF-8 where imgguard must read it.
    #[error("docker build argument {0:?} is not valid UTF-8")]
    NotUtf8(OsString),
}

/// Reads the arguments. Operands (the context) and options may come in any order, as docker
/// allows; `--` ends the options.
pub fn parse(args: &[OsString]) -> Result<BuildArgs, BuildArgsError> {
    let mut out = BuildArgs::default();
    let mut i = 0;
    let mut options_done = false;
    let text = |i: usize| -> Result<&str, BuildArgsError> {
        args[i].to_str().ok_or_else(|| BuildArgsError::NotUtf8(args[i].clone()))
    };
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            // Non-UTF-8 values can only be values of options we do not read, or the context.
            i += 1;
            continue;
        };
        if options_done || arg == "-" || !arg.starts_with('-') {
            out.context = Some(arg.to_string());
            i += 1;
            continue;
        }
        if arg == "--" {
            options_done = true;
            i += 1;
            continue;
        }
        // Long option: `--name=value` or `--name value`.
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.to_string(), None),
            };
            if name == "--push" {
                out.push = inline.as_deref().is_none_or(|v| v != "false");
            }
            if VALUE_FLAGS.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        if i >= args.len() {
                            return Err(BuildArgsError::MissingValue(name));
                        }
                        text(i)?.to_string()
                    }
                };
                take(&mut out, &name, value)?;
            }
            i += 1;
            continue;
        }
        // Short options, possibly clustered (`-qt app`) or attached (`-tapp`).
        let shorts: Vec<char> = arg[1..].chars().collect();
        let mut j = 0;
        while j < shorts.len() {
            let c = shorts[j];
            if SHORT_VALUE_FLAGS.contains(&c) {
                let rest: String = shorts[j + 1..].iter().collect();
                let rest = rest.strip_prefix('=').map(str::to_string).unwrap_or(rest);
                let value = if rest.is_empty() {
                    i += 1;
                    if i >= args.len() {
                        return Err(BuildArgsError::MissingValue(format!("-{c}")));
                    }
                    text(i)?.to_string()
                } else {
                    rest
                };
                let long = match c {
                    't' => "--tag",
                    'f' => "--file",
                    _ => "",
                };
                take(&mut out, long, value)?;
                break;
            }
            j += 1;
        }
        i += 1;
    }
    Ok(out)
}

fn take(out: &mut BuildArgs, name: &str, value: String) -> Result<(), BuildArgsError> {
    match name {
        "--tag" => {
            let tag = Tag::parse(&value)?;
            if !out.tags.contains(&tag) {
                out.tags.push(tag);
            }
        }
        "--file" => out.dockerfile = Some(value),
        "--iidfile" => out.iidfile = Some(value),
        "--build-arg" => {
            let name = value.split_once('=').map_or(value.as_str(), |(n, _)| n).to_string();
            if !out.build_arg_names.contains(&name) {
                out.build_arg_names.push(name);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<BuildArgs, BuildArgsError> {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&v)
    }

    fn tags(b: &BuildArgs) -> Vec<&str> {
        b.tags.iter().map(Tag::as_str).collect()
    }

    #[test]
    fn every_tag_form() {
        let b = p(&["-t", "a", "-tb:v2", "--tag", "c:v3", "--tag=docker.io/library/d:v4", "."])
            .unwrap();
        assert_eq!(tags(&b), ["a:latest", "b:v2", "c:v3", "d:v4"]);
        assert_eq!(b.context.as_deref(), Some("."));
    }

    #[test]
    fn clustered_short_flags() {
        let b = p(&["-qt", "x:1", "ctx"]).unwrap();
        assert_eq!(tags(&b), ["x:1"]);
        assert_eq!(b.context.as_deref(), Some("ctx"));
        let b = p(&["-t=x:2", "."]).unwrap();
        assert_eq!(tags(&b), ["x:2"]);
    }

    #[test]
    fn values_are_not_mistaken_for_the_context() {
        let b = p(&[
            "--build-arg",
            "SECRET=hunter2",
            "--label",
            "a=b",
            "-f",
            "docker/Dockerfile",
            "--no-cache",
            "--target",
            "final",
            "ctx",
            "--build-arg=VERSION",
        ])
        .unwrap();
        assert_eq!(b.context.as_deref(), Some("ctx"));
        assert_eq!(b.dockerfile.as_deref(), Some("docker/Dockerfile"));
        assert_eq!(b.build_arg_names, ["SECRET", "VERSION"]);
        assert!(!format!("{b:?}").contains("hunter2"));
    }

    #[test]
    fn invalid_tag_is_an_error() {
        let e = p(&["-t", "App:v1", "."]).unwrap_err().to_string();
        assert!(e.contains("App:v1") && e.contains("lowercase"), "{e}");
    }

    #[test]
    fn missing_value() {
        assert_eq!(
            p(&[".", " -t"].map(str::trim)).unwrap_err(),
            BuildArgsError::MissingValue("-t".into())
        );
        assert_eq!(p(&["--tag"]).unwrap_err(), BuildArgsError::MissingValue("--tag".into()));
    }

    #[test]
    fn stdin_context_and_push() {
        let b = p(&["--push", "-t", "x", "-"]).unwrap();
        assert!(b.push);
        assert_eq!(b.context.as_deref(), Some("-"));
    }

    #[test]
    fn repeated_tag_counted_once() {
        let b = p(&["-t", "x", "-t", "x:latest", "."]).unwrap();
        assert_eq!(tags(&b), ["x:latest"]);
    }
}
