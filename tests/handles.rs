//! Freed handles through the C ABI (issue 13, item 1): tests/c/handles.c
//! frees every handle type (reservoir, admission, ledger) and then uses it,
//! frees it again, and checks that a new handle is not reachable through
//! the stale one, asserting the status of every call. Built here with the
//! system `cc` against include/vmmresv.h and the release `.so` of
//! target/lib (what `make` links and ships), then run on an emulated
//! /dev/vmmctl: once plainly and once under valgrind memcheck, where any
//! error (a read of freed memory, an invalid free) or a definite leak
//! fails. tests/sanitizers.sh runs the same program under ASan + UBSan.
//!
//! Against the library before the fix this failed in all three (the
//! regression note at the top of tests/c/handles.c says how).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const HOST: u64 = 16 * GIB;

/// Build tests/c/handles.c once per test binary, with the flags of the
/// Makefile's C consumers, under a unique name renamed into place.
fn handles() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = root();
        let lib = libdir();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("handles-c");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("handles");
        let tmp = dir.join(format!("handles.{}.tmp", std::process::id()));
        let out = Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
            .arg(format!("-I{}", root.join("include").display()))
            .arg("-o")
            .arg(&tmp)
            .arg(root.join("tests/c/handles.c"))
            .arg(format!("-L{}", lib.display()))
            .arg("-lvmmresv")
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .output()
            .expect("cannot run the system C compiler `cc`");
        assert!(
            out.status.success(),
            "cc failed to build tests/c/handles.c ({}):\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        std::fs::rename(&tmp, &bin).unwrap();
        bin
    })
}

fn show(o: &Output) -> String {
    format!(
        "handles: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// Every check of the program passed, and it said how many.
fn assert_all_passed(o: &Output) {
    let out = stdout(o);
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
    assert!(!out.contains("FAIL"), "{}", show(o));
    let last = out.lines().last().unwrap_or("");
    assert!(
        last.starts_with("handles: ") && last.ends_with(" passed, 0 failed"),
        "{}",
        show(o)
    );
    // Every handle type was exercised.
    for t in ["vmmresv_ledger", "vmmresv_reservoir", "vmmresv_admission"] {
        assert!(out.contains(&format!("== {}\n", t)), "{}", show(o));
    }
}

#[test]
fn freed_handles_return_a_status() {
    let host = EmuHost::new("handles", HOST);
    let o = host.command(handles()).output().unwrap();
    assert_all_passed(&o);
    assert_eq!(stderr(&o), "", "{}", show(&o));
}

/// `valgrind` on PATH, or a failure: CI installs it, and a check that
/// silently did not run would be worse than none.
fn valgrind() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("valgrind"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("valgrind is not installed: install it (apt-get install valgrind) to run this test")
    })
}

#[test]
fn freed_handles_are_valgrind_clean() {
    let host = EmuHost::new("handles-valgrind", HOST);
    // LD_PRELOAD (the emulator) stays in valgrind's environment: valgrind
    // appends its own preloads for the client.
    let o = host
        .command(&valgrind())
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(handles())
        .output()
        .unwrap();
    assert_all_passed(&o);
    let err = stderr(&o);
    assert!(err.contains("ERROR SUMMARY: 0 errors"), "{}", show(&o));
    assert!(
        !err.contains("definitely lost:") || err.contains("definitely lost: 0 bytes"),
        "{}",
        show(&o)
    );
}
