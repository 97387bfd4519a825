//! The pure core (`src/core/`) does no I/O: `.ci/pure-core` says so for the tree, and fails on a
//! file that breaks the rule (so the check itself can fail).

use std::path::Path;

use crate::support::Test;

fn check(root: &Path) -> crate::support::Run {
    Test::program("bash").arg(root.join(".ci/pure-core")).current_dir(root).run()
}

#[test]
fn the_core_folder_is_pure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check(root).status(0).stdout("");
}

#[test]
fn the_check_catches_io_grouped_imports_the_environment_and_the_clock() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join(".ci")).unwrap();
    std::fs::create_dir_all(t.path().join("src/core/sub")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/pure-core");
    std::fs::copy(script, t.path().join(".ci/pure-core")).unwrap();
    let cases = [
        (
            "use std::{\n    collections::HashMap,\n    fs,\n};\n",
            "use std::{ collections::HashMap, fs",
        ),
        ("fn f() { let _ = std::env::var(\"X\"); }\n", "std::env"),
        ("fn f() { let _ = SystemTime::now(); }\n", "SystemTime::now"),
        ("use tokio::task;\n", "tokio::"),
        ("fn f() { println!(\"x\"); }\n", "println!"),
        ("use std::process::Command;\n", "std::process"),
    ];
    for (text, hit) in cases {
        std::fs::write(t.path().join("src/core/sub/x.rs"), text).unwrap();
        let run = check(t.path());
        run.status(1);
        assert!(run.stdout.contains(hit), "{text:?} not caught: {}", run.stdout);
        assert!(run.stdout.starts_with("src/core/sub/x.rs:"), "{}", run.stdout);
    }
    std::fs::write(t.path().join("src/core/sub/x.rs"), "use std::fmt;\n").unwrap();
    check(t.path()).status(0);
}
