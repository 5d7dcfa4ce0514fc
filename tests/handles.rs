//! Freed handles through the C ABI (issue 13, item 1): tests/c/handles.c
//! frees every handle type (reservoir, admission, ledger) and then uses it,
//! frees it again, and checks that a new handle is not reachable through
//! the stale one, asserting the status of every call. Built here with the
//! system `cc` against include/vmmresv.h and the release `.so` of
//! target/lib (what `make` links and ships), then run on an emulated
//! /dev/vmmctl: once plainly and once under valgrind memcheck, where any
//! error (a read of freed memory, an invalid free) or a definite leak
//! fails. .ci/sanitizers.sh (`make sanitizers`) runs it under ASan + UBSan.
//!
//! Against the library before the fix this failed in all three (the
//! regression note at the top of tests/c/handles.c says how).

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]

mod common;

use common::*;
use std::process::Output;

const HOST: u64 = 16 * GIB;

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
    let o = host.command(program("handles")).output().unwrap();
    assert_all_passed(&o);
    assert_eq!(stderr(&o), "", "{}", show(&o));
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
        .arg(program("handles"))
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
