//! The habits of a command-line tool: shell completions and manual pages, made from the same
//! clap definition as the parser. The bash completion is exercised in a real bash.

use std::process::Command;

use crate::support::Test;

/// `imgguard pr<TAB>` completes to `prune` in an interactive bash on a terminal (`script` gives
/// it one): the script from `imgguard completions bash` is sourced, the keys are typed, and
/// after the TAB, `C-a` and `echo` print the line as readline completed it.
#[test]
fn interactive_bash_completes_pr_to_prune() {
    let script = Test::new().args(["completions", "bash"]).run();
    script.status(0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imgguard.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let keys = format!("source {}\nimgguard pr\t\x01echo COMPLETED: \nexit\n", path.display());
    let mut child = Command::new("script")
        .args(["-qec", "env -i TERM=dumb HOME=/tmp PATH=/usr/bin:/bin bash --norc --noprofile -i"])
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("`script` is needed to give bash a terminal: apt-get install bsdutils");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), keys.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let line = text.lines().find(|l| l.starts_with("COMPLETED:"));
    assert_eq!(line, Some("COMPLETED: imgguard prune"), "{text}");
}

/// The same completion function, called as readline calls it, also completes options.
#[test]
fn bash_completes_commands_and_options() {
    let script = Test::new().args(["completions", "bash"]).run();
    script.status(0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imgguard.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {path}\n\
             spec=$(complete -p imgguard) || exit 3\n\
             func=${{spec#*-F }}; func=${{func%% *}}\n\
             COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}\n\
             COMP_WORDS=({words}); COMP_CWORD={cword}\n\
             \"$func\" imgguard {cur:?} {prev:?}\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            path = path.display(),
            words = words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .output()
            .expect("bash is needed for this test");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    };
    assert_eq!(complete("imgguard pr"), ["prune"]);
    let options = complete("imgguard prune --dr");
    assert_eq!(options, ["--dry-run"]);
}

#[test]
fn completions_for_every_shell_name_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = Test::new().args(["completions", shell]).run();
        r.status(0);
        for command in ["build", "prune", "rmi", "save", "load", "check", "completions", "man"] {
            assert!(r.stdout.contains(command), "{shell} completion lacks {command}");
        }
    }
    Test::new()
        .args(["completions", "tcsh"])
        .run()
        .status(2)
        .stderr_has("invalid value 'tcsh' for '<SHELL>'");
}

/// `imgguard man` prints imgguard(1); `--dir` writes a page per command, which man(1) renders.
#[test]
fn man_pages_for_imgguard_and_each_command() {
    let r = Test::new().arg("man").run();
    r.status(0);
    assert!(
        r.stdout.starts_with(".ie \\n(.g .ds Aq \\(aq"),
        "{}",
        &r.stdout[..80.min(r.stdout.len())]
    );
    assert!(r.stdout.contains(".TH imgguard 1"), "roff title");
    let dir = tempfile::tempdir().unwrap();
    Test::new().args(["man", "--dir"]).arg(dir.path()).run().status(0);
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in ["imgguard.1", "imgguard-build.1", "imgguard-prune.1", "imgguard-man.1"] {
        assert!(pages.iter().any(|p| p == want), "{want} in {pages:?}");
    }
    let prune = std::fs::read_to_string(dir.path().join("imgguard-prune.1")).unwrap();
    assert!(prune.contains(".TH imgguard-prune 1"), "{}", &prune[..200]);
    assert!(prune.contains("dry\\-run"), "the options are documented");
    // Rendered by man(1), as a reader would see it.
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("imgguard-prune.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap_or_else(|e| panic!("man is needed by this test ({e}): apt-get install man-db"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("imgguard-prune"), "{text}");
    assert!(text.contains("--dry-run"), "{text}");
}
