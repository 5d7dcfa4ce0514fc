//! cmd/rsrvrctl/rsrvrctl.c — the illumos rsrvrctl ported onto libvmmresv's C ABI
//! — built here with the system `cc` against include/vmmresv.h and the
//! linked .so, then run against an emulated /dev/vmmctl (the LD_PRELOAD
//! emulator of tests/emu) with exact checks of its stdout, stderr, exit
//! status and of the emulator's state afterwards.
//!
//! The original's behaviour: illumos-gate `usr/src/cmd/rsrvrctl/rsrvrctl.c`
//! (`main`, `do_add`, `do_remove`, `do_set`).

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
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use vmmresv::status::Status;

/// The original's usage text, verbatim, for a program called `rsrvrctl`,
/// plus the line of the -b extension (the boot-time setting).
const USAGE: &str = "Usage: rsrvrctl [-a add] [-r remove] [-q]\n\
\t-a <SZ> add SZ MiB to the reservoir\n\
\t-r <SZ> remove SZ MiB from the reservoir\n\
\t-s <SZ> set reservoir to SZ MiB, if possible\n\
\t-c <SZ> use SZ MiB chunks when performing resize ops\n\
\t-q query reservoir state\n\
\t-b <SETTING> apply a boot-time setting (N%, a size, or default)\n";

const HOST: u64 = 16 * GIB;

/// Run rsrvrctl on `host` with `args`. With `VMMRESV_VALGRIND=1` in the
/// environment (CI sets it for a second pass) every run is under valgrind
/// memcheck: `-q` keeps stderr to what rsrvrctl itself prints, and any
/// memcheck error or definite leak turns the exit code into 99, which
/// fails the exit-code assertion of every case.
fn run(host: &EmuHost, args: &[&str]) -> Output {
    let under_valgrind = std::env::var_os("VMMRESV_VALGRIND").is_some_and(|v| !v.is_empty());
    if under_valgrind {
        host.command(&valgrind())
            .args([
                "-q",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
            ])
            .arg(rsrvrctl())
            .args(args)
            .output()
            .unwrap()
    } else {
        host.command(rsrvrctl()).args(args).output().unwrap()
    }
}

/// What every check prints when it fails: the whole run.
fn show_run(args: &[&str], o: &Output) -> String {
    format!(
        "rsrvrctl {:?}: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        args,
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// Run and expect exit 0 with nothing on stderr; returns stdout.
fn ok(host: &EmuHost, args: &[&str]) -> String {
    let o = run(host, args);
    assert_eq!(o.status.code(), Some(0), "{}", show_run(args, &o));
    assert_eq!(stderr(&o), "", "{}", show_run(args, &o));
    stdout(&o)
}

/// Run and expect exit 1 with nothing on stdout; returns stderr.
fn fails(host: &EmuHost, args: &[&str]) -> String {
    let o = run(host, args);
    assert_eq!(o.status.code(), Some(1), "{}", show_run(args, &o));
    assert_eq!(stdout(&o), "", "{}", show_run(args, &o));
    stderr(&o)
}

/// The four lines of `rsrvrctl -q`.
fn query_text(free: u64, alloc: u64, transient: u64, limit: u64) -> String {
    format!(
        "Free MiB:\t{}\nAllocated MiB:\t{}\nTransient Allocated MiB:\t{}\nSize limit MiB:\t{}\n",
        free / MIB,
        alloc / MIB,
        transient / MIB,
        limit / MIB
    )
}

/// The reservoir's free bytes as `rsrvrctl -q` reports them, and as the
/// emulator holds them; asserts the two agree and nothing is allocated.
fn free_mib(host: &EmuHost) -> u64 {
    let q = ok(host, &["-q"]);
    let free = host.stat("free");
    assert_eq!(
        q,
        query_text(free, 0, 0, kernel_limit(HOST)),
        "rsrvrctl -q disagrees with the emulator"
    );
    assert_eq!(host.stat("alloc"), 0);
    assert_eq!(free % MIB, 0, "free={} is not whole MiB", free);
    free / MIB
}

/// The library's text for a status (what vmmresv_strerror() returns).
fn msg(s: Status) -> &'static str {
    s.message()
}

/// Invariants every test ends with: no resize left active, the limit
/// never passed.
fn assert_quiescent(host: &EmuHost) {
    assert_eq!(host.stat("target_active"), 0, "a resize was left active");
    assert_eq!(host.stat("adding"), 0, "bytes left in flight");
    assert_eq!(host.stat("limit_exceeded"), 0, "the limit was exceeded");
}

// 1 ----------------------------------------------------------------------

#[test]
fn query_fresh_host() {
    let host = EmuHost::new("rsrvrctl-query", HOST);
    let out = ok(&host, &["-q"]);
    assert_eq!(
        out,
        format!(
            "Free MiB:\t0\nAllocated MiB:\t0\nTransient Allocated MiB:\t0\nSize limit MiB:\t{}\n",
            kernel_limit(HOST) / MIB
        )
    );
    // 16 GiB: limit 16350203084 bytes = 15592 MiB (integer division).
    assert_eq!(kernel_limit(HOST) / MIB, 15592);
    assert_eq!(host.stat("limit"), kernel_limit(HOST));
    assert_eq!(host.stat("free"), 0);
    assert_eq!(host.stat("grown_total"), 0, "a query must not resize");
}

// 2 ----------------------------------------------------------------------

#[test]
fn set_target() {
    let host = EmuHost::new("rsrvrctl-set", HOST);
    assert_eq!(ok(&host, &["-s", "4096"]), "");
    assert_eq!(
        ok(&host, &["-q"]),
        query_text(4 * GIB, 0, 0, kernel_limit(HOST))
    );
    assert_eq!(host.stat("free"), 4 * GIB);
    // Shrinking with -s, in chunks.
    assert_eq!(ok(&host, &["-s", "1024", "-c", "256"]), "");
    assert_eq!(host.stat("free"), GIB);
    // Setting the size it already has is a success that changes nothing.
    assert_eq!(ok(&host, &["-s", "1024"]), "");
    assert_eq!(free_mib(&host), 1024);
    // -s 0 empties it.
    assert_eq!(ok(&host, &["-s", "0"]), "");
    assert_eq!(host.stat("free"), 0);
    assert_quiescent(&host);
}

// 3 ----------------------------------------------------------------------

#[test]
fn add() {
    let host = EmuHost::new("rsrvrctl-add", HOST);
    ok(&host, &["-s", "4096"]);
    assert_eq!(ok(&host, &["-a", "1024"]), "");
    assert_eq!(ok(&host, &["-a", "1024"]), "");
    assert_eq!(free_mib(&host), 6144);
    // Chunked: 2048 MiB in four 512 MiB steps.
    assert_eq!(ok(&host, &["-a", "2048", "-c", "512"]), "");
    assert_eq!(free_mib(&host), 8192);
    assert_eq!(host.stat("free"), 8 * GIB);
    // A chunk larger than the addition is clamped to it (MIN(chunk, sz)).
    assert_eq!(ok(&host, &["-a", "256", "-c", "4096"]), "");
    assert_eq!(free_mib(&host), 8448);
    // Beyond the limit: refused, and the size it stands at is reported.
    let err = fails(&host, &["-a", "8192"]);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not add {} bytes to reservoir: {}\n\
             rsrvrctl: reservoir size is now 8448 MiB\n",
            8192 * MIB,
            msg(Status::NoSpace)
        )
    );
    assert_eq!(free_mib(&host), 8448);
    assert_quiescent(&host);
}

// 4 ----------------------------------------------------------------------

#[test]
fn remove() {
    let host = EmuHost::new("rsrvrctl-remove", HOST);
    ok(&host, &["-s", "4096"]);
    assert_eq!(ok(&host, &["-r", "1024"]), "");
    assert_eq!(free_mib(&host), 3072);
    assert_eq!(ok(&host, &["-r", "1024", "-c", "256"]), "");
    assert_eq!(free_mib(&host), 2048);
    // More than the reservoir holds: clamped to its size, exit 0.
    assert_eq!(ok(&host, &["-r", "999999"]), "");
    assert_eq!(free_mib(&host), 0);
    assert_eq!(host.stat("free"), 0);
    // An empty reservoir is left alone, exit 0, the state untouched.
    let before = host.show();
    assert_eq!(ok(&host, &["-r", "5"]), "");
    assert_eq!(
        host.show(),
        before,
        "-r on an empty reservoir changed state"
    );
    assert_quiescent(&host);
}

// 5 ----------------------------------------------------------------------

#[test]
fn interrupted_resize_resumes_to_the_target() {
    let mut host = EmuHost::new("rsrvrctl-eintr", HOST);
    // Every SET_TARGET call stops with EINTR after one chunk: 8 chunks
    // take 8 calls (7 interrupted), and the library resumes each time.
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    // No progress signal arrived, so no "Reservoir size" line.
    assert_eq!(ok(&host, &["-s", "8192", "-c", "1024"]), "");
    assert_eq!(host.stat("free"), 8 * GIB);
    assert_eq!(host.stat("grown_total"), 8 * GIB);
    // Shrinking is interrupted and resumed the same way.
    assert_eq!(ok(&host, &["-s", "2048", "-c", "2048"]), "");
    assert_eq!(host.stat("free"), 2 * GIB);
    assert_quiescent(&host);
}

/// The original's -a and -r do not retry: any SET_TARGET error, EINTR
/// included, is `err(1, "Could not add %zu bytes to reservoir")`. The
/// kernel's EINTR may come after some chunks (they stay), before the first
/// one (nothing done, even with chunk 0), or inside a growth chunk (that
/// chunk undone). Seen failing before the port used
/// VMMRESV_RESIZE_STOP_ON_SIGNAL: it resumed silently and exited 0.
#[test]
fn add_and_remove_fail_on_eintr_as_the_original() {
    let mut host = EmuHost::new("rsrvrctl-eintr-ar", HOST);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let err = fails(&host, &["-a", "2048", "-c", "512"]);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not add {} bytes to reservoir: Interrupted system call\n\
             rsrvrctl: reservoir size is now 512 MiB\n",
            2048 * MIB
        )
    );
    assert_eq!(host.stat("free"), 512 * MIB);
    // Before the first pass: nothing done, even with chunk 0.
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "0");
    let err = fails(&host, &["-a", "1024"]);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not add {} bytes to reservoir: Interrupted system call\n\
             rsrvrctl: reservoir size is now 512 MiB\n",
            1024 * MIB
        )
    );
    let err = fails(&host, &["-r", "256"]);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not remove {} bytes from reservoir: Interrupted system call\n\
             rsrvrctl: reservoir size is now 512 MiB\n",
            256 * MIB
        )
    );
    // Inside a growth chunk: that chunk is undone.
    host.set("VMMEMU_EINTR_IN_ADD", "1");
    fails(&host, &["-a", "1024", "-c", "256"]);
    assert_eq!(host.stat("free"), 512 * MIB);
    assert_eq!(host.stat("adding"), 0);
    // -s still resumes through all of these.
    host.set(
        "VMMEMU_EINTR_LIMIT",
        &(host.stat("eintr_given") + 3).to_string(),
    );
    assert_eq!(ok(&host, &["-s", "1024"]), "");
    assert_eq!(host.stat("free"), GIB);
    assert_quiescent(&host);
}

/// Start `rsrvrctl -s <target_mib> -c <chunk_mib>` on a slow host, wait
/// until the resize is under way (so the progress handler is installed:
/// rsrvrctl installs it before it starts the resize), send SIGUSR1 —
/// Linux's stand-in for SIGINFO — and return the reservoir size seen just
/// before the signal and the finished run.
fn signal_during_resize(host: &EmuHost, target_mib: u64, chunk_mib: u64) -> (u64, Output) {
    let (t, c) = (target_mib.to_string(), chunk_mib.to_string());
    let child = host
        .command(rsrvrctl())
        .args(["-s", t.as_str(), "-c", c.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let free = host.stat("free");
        if free > 0 {
            break free;
        }
        assert!(
            Instant::now() < deadline,
            "the resize never started: {:?}",
            host.show()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        seen < target_mib * MIB / 2,
        "the resize ran too fast to be signalled half-way ({} bytes already)",
        seen
    );
    // SAFETY: kill(2) on our own, not yet reaped, child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    (seen, child.wait_with_output().unwrap())
}

/// The MiB values of the "Reservoir size: N MiB" lines; any other line
/// fails the test.
fn progress_lines(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| {
            l.strip_prefix("Reservoir size: ")
                .and_then(|r| r.strip_suffix(" MiB"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected stdout line {:?} in {:?}", l, out))
        })
        .collect()
}

#[test]
fn progress_signal_prints_the_size_reached() {
    let mut host = EmuHost::new("rsrvrctl-siginfo", HOST);
    // 128 chunks of 64 MiB, 20 ms each: about 2.5 s.
    host.set("VMMEMU_CHUNK_DELAY_US", "20000");
    // The kernel checks for signals between chunks (issig()) and returns
    // EINTR; the emulator stands for that with an EINTR after every chunk,
    // so each chunk boundary reaches rsrvrctl's progress hook, which must
    // print only once the signal has arrived.
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let (seen, o) = signal_during_resize(&host, 8192, 64);
    let args = ["-s", "8192", "-c", "64"];
    assert_eq!(o.status.code(), Some(0), "{}", show_run(&args, &o));
    assert_eq!(stderr(&o), "", "{}", show_run(&args, &o));
    let lines = progress_lines(&stdout(&o));
    assert_eq!(
        lines.len(),
        1,
        "one signal, one line: {}",
        show_run(&args, &o)
    );
    let n = lines[0];
    assert!(
        n > 0 && n <= 8192 && n * MIB >= seen,
        "Reservoir size: {} MiB, but {} MiB had been reached before the signal",
        n,
        seen / MIB
    );
    assert_eq!(n % 64, 0, "a size between whole chunks: {} MiB", n);
    assert_eq!(host.stat("free"), 8 * GIB);
    assert_quiescent(&host);
}

// 6 ----------------------------------------------------------------------

#[test]
fn refused_to_an_unprivileged_caller() {
    let mut host = EmuHost::new("rsrvrctl-eperm", HOST);
    ok(&host, &["-s", "512"]);
    host.set("VMMEMU_UNPRIVILEGED", "1");
    let err = fails(&host, &["-s", "1024"]);
    assert!(err.contains("Could not set reservoir size to 1073741824 bytes"));
    assert!(err.contains("permission denied"), "{}", err);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not set reservoir size to 1073741824 bytes: {}\n\
             rsrvrctl: reservoir size is now 512 MiB\n",
            msg(Status::Permission)
        )
    );
    assert_eq!(host.stat("free"), 512 * MIB);
    let err = fails(&host, &["-a", "1"]);
    assert!(err.starts_with(&format!(
        "rsrvrctl: Could not add 1048576 bytes to reservoir: {}\n",
        msg(Status::Permission)
    )));
    let err = fails(&host, &["-r", "1"]);
    assert!(err.starts_with(&format!(
        "rsrvrctl: Could not remove 1048576 bytes from reservoir: {}\n",
        msg(Status::Permission)
    )));
    // Querying needs no privilege.
    assert_eq!(
        ok(&host, &["-q"]),
        query_text(512 * MIB, 0, 0, kernel_limit(HOST))
    );
    assert_eq!(host.stat("free"), 512 * MIB);
}

// 7 ----------------------------------------------------------------------

#[test]
fn missing_device() {
    assert!(
        !Path::new("/dev/vmmctl").exists(),
        "this test needs a host without a real /dev/vmmctl"
    );
    let host = EmuHost::new("rsrvrctl-nodev", HOST);
    let want = format!(
        "rsrvrctl: Could not open vmmctl: {}\n{}",
        msg(Status::NoDevice),
        USAGE
    );
    assert!(want.contains("no vmm device"));
    // Without the emulator at all, and with it loaded but inactive.
    for unset in ["LD_PRELOAD", "VMMEMU_STATE"] {
        for args in [&["-q"][..], &["-s", "1024"][..]] {
            let o = host
                .command(rsrvrctl())
                .env_remove(unset)
                .args(args)
                .output()
                .unwrap();
            let what = format!("without {}: {}", unset, show_run(args, &o));
            assert_eq!(o.status.code(), Some(1), "{}", what);
            assert_eq!(stdout(&o), "", "{}", what);
            assert_eq!(stderr(&o), want, "{}", what);
        }
    }
    // Nothing reached the emulator's state.
    assert!(!host.dir.path().join("vmmctl.state").exists());
}

// 8 ----------------------------------------------------------------------

#[test]
fn usage_errors() {
    let host = EmuHost::new("rsrvrctl-usage", HOST);
    for args in [
        &[][..],
        &["-a", "1", "-r", "1"][..],
        &["-s", "1", "-a", "1"][..],
        &["-a", "1", "-r", "1", "-s", "1"][..],
        &["-c", "1"][..],
        &["-q", "extra"][..],
        &["-s", "1024", "extra"][..],
    ] {
        let o = run(&host, args);
        assert_eq!(o.status.code(), Some(1), "{}", show_run(args, &o));
        assert_eq!(stdout(&o), "", "{}", show_run(args, &o));
        assert_eq!(stderr(&o), USAGE, "{}", show_run(args, &o));
    }
    // -a without its argument, or an unknown option: getopt's own message,
    // then the usage.
    for args in [&["-a"][..], &["-x"][..], &["-q", "-x"][..]] {
        let o = run(&host, args);
        assert_eq!(o.status.code(), Some(1), "{}", show_run(args, &o));
        assert!(stderr(&o).ends_with(USAGE), "{}", show_run(args, &o));
    }
    // -h: the usage on stderr, exit 0, even with other options.
    for args in [
        &["-h"][..],
        &["-q", "-h"][..],
        &["-a", "1", "-r", "1", "-h"][..],
    ] {
        let o = run(&host, args);
        assert_eq!(o.status.code(), Some(0), "{}", show_run(args, &o));
        assert_eq!(stdout(&o), "", "{}", show_run(args, &o));
        assert_eq!(stderr(&o), USAGE, "{}", show_run(args, &o));
    }
    // Sizes the original took as garbage (12, 0, a wrapped negative, an
    // overflowing multiply, octal stopped at 9) are refused.
    let overflow = ((u64::MAX / MIB) + 1).to_string();
    for (opt, bad) in [
        ("-a", "12abc"),
        ("-r", "12abc"),
        ("-s", "12abc"),
        ("-s", ""),
        ("-s", "-5"),
        ("-s", " -5"),
        ("-s", overflow.as_str()),
        ("-s", "18446744073709551616"),
        ("-s", "099"),
        ("-s", "1.5"),
        ("-s", "0x"),
        ("-s", "12Q"),
        ("-s", "101%"),
        ("-s", "16E"),
    ] {
        let args = [opt, bad];
        let err = fails(&host, &args);
        assert_eq!(err, format!("rsrvrctl: Invalid size {}\n{}", bad, USAGE));
    }
    for bad in ["12abc", "", "-1", "1.5"] {
        let args = ["-c", bad, "-s", "1024"];
        let err = fails(&host, &args);
        assert_eq!(
            err,
            format!("rsrvrctl: Invalid chunk size {}\n{}", bad, USAGE)
        );
    }
    // None of that touched the reservoir.
    assert_eq!(host.stat("grown_total"), 0);
}

#[test]
fn argument_rules_and_size_syntax() {
    let host = EmuHost::new("rsrvrctl-syntax", HOST);
    // strtoul base 0: hex and octal MiB.
    ok(&host, &["-s", "0x400"]);
    assert_eq!(free_mib(&host), 1024);
    ok(&host, &["-s", "04000"]);
    assert_eq!(free_mib(&host), 2048);
    // Blanks around a number, as strtoul allowed in front.
    ok(&host, &["-s", " 512 "]);
    assert_eq!(free_mib(&host), 512);
    // A repeated option keeps its first value and counts once.
    ok(&host, &["-s", "1024", "-s", "2048"]);
    assert_eq!(free_mib(&host), 1024);
    ok(&host, &["-a", "256", "-a", "4096"]);
    assert_eq!(free_mib(&host), 1280);
    // A resize with -q: the resize runs, the query is ignored.
    assert_eq!(ok(&host, &["-q", "-s", "3072"]), "");
    assert_eq!(free_mib(&host), 3072);
    assert_eq!(ok(&host, &["-r", "1024", "-q"]), "");
    assert_eq!(free_mib(&host), 2048);
    // -c: a repeated one keeps the last value (the original parsed each).
    ok(&host, &["-c", "4096", "-c", "256", "-s", "4096"]);
    assert_eq!(free_mib(&host), 4096);

    // The extension: sizes with a unit.
    ok(&host, &["-s", "2G"]);
    assert_eq!(free_mib(&host), 2048);
    ok(&host, &["-s", "1.5G", "-c", "512M"]);
    assert_eq!(free_mib(&host), 1536);
    ok(&host, &["-a", "512MiB"]);
    assert_eq!(free_mib(&host), 2048);
    ok(&host, &["-r", "1g"]);
    assert_eq!(free_mib(&host), 1024);
    ok(&host, &["-s", "3221225472B"]);
    assert_eq!(free_mib(&host), 3072);
    // A percentage of the limit, rounded down to the page.
    let half = kernel_limit(HOST) / 2 / 4096 * 4096;
    ok(&host, &["-s", "50%", "-c", "10%"]);
    assert_eq!(host.stat("free"), half);
    ok(&host, &["-s", "0%"]);
    assert_eq!(host.stat("free"), 0);
    // A unit size that is not page-aligned: the library refuses it.
    let err = fails(&host, &["-s", "1.5K"]);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not set reservoir size to 1536 bytes: {}\n\
             rsrvrctl: reservoir size is now 0 MiB\n",
            msg(Status::Unaligned)
        )
    );
    assert_eq!(host.stat("free"), 0);
    assert_quiescent(&host);
}

// 9 ----------------------------------------------------------------------

#[test]
fn out_of_memory_reports_partial_progress() {
    let mut host = EmuHost::new("rsrvrctl-enomem", HOST);
    // The emulated kernel finds pages for 3 GiB, then no more.
    host.set("VMMEMU_ENOMEM_AFTER", &(3 * GIB).to_string());
    let err = fails(&host, &["-s", "8192", "-c", "1024"]);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not set reservoir size to 8589934592 bytes: {}\n\
             rsrvrctl: reservoir size is now 3072 MiB\n",
            msg(Status::OutOfMemory)
        )
    );
    assert_eq!(host.stat("free"), 3 * GIB);
    assert_eq!(free_mib(&host), 3072);
    assert_quiescent(&host);
}

// 10 ---------------------------------------------------------------------

#[test]
fn beyond_the_limit() {
    let host = EmuHost::new("rsrvrctl-nospace", HOST);
    let limit = kernel_limit(HOST);
    let target_mib = limit.div_ceil(GIB) * 1024 + 1024;
    assert_eq!(target_mib, 17408);
    let t = target_mib.to_string();
    let err = fails(&host, &["-s", t.as_str()]);
    assert!(err.contains("not enough space"), "{}", err);
    assert_eq!(
        err,
        format!(
            "rsrvrctl: Could not set reservoir size to {} bytes: {}\n\
             rsrvrctl: reservoir size is now 0 MiB\n",
            target_mib * MIB,
            msg(Status::NoSpace)
        )
    );
    assert_eq!(host.stat("free"), 0);
    // In chunks, the whole chunks that fit stay: 15 GiB of 1 GiB chunks.
    let err = fails(&host, &["-s", t.as_str(), "-c", "1024"]);
    assert!(
        err.ends_with("rsrvrctl: reservoir size is now 15360 MiB\n"),
        "{}",
        err
    );
    assert_eq!(host.stat("free"), 15 * GIB);
    // Up to the limit itself, in whole MiB, fits.
    let max = (limit / MIB).to_string();
    ok(&host, &["-s", max.as_str()]);
    assert_eq!(free_mib(&host), limit / MIB);
    // 100% is the limit rounded down to the page.
    ok(&host, &["-s", "100%"]);
    assert_eq!(host.stat("free"), limit / 4096 * 4096);
    assert_quiescent(&host);
}

// valgrind ---------------------------------------------------------------

/// Run rsrvrctl under memcheck. LD_PRELOAD stays in valgrind's own
/// environment: valgrind appends its preload objects to it for the client,
/// so the emulator is still interposed in the program being checked.
fn run_valgrind(host: &EmuHost, args: &[&str]) -> Output {
    let mut c = host.command(&valgrind());
    c.args([
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
    ])
    .arg(rsrvrctl())
    .args(args);
    c.output().unwrap()
}

fn assert_clean(args: &[&str], o: &Output) {
    let what = format!("valgrind {}", show_run(args, o));
    assert_eq!(o.status.code(), Some(0), "{}", what);
    let err = stderr(o);
    assert!(err.contains("ERROR SUMMARY: 0 errors"), "{}", what);
    assert!(
        !err.contains("definitely lost:") || err.contains("definitely lost: 0 bytes"),
        "{}",
        what
    );
}

#[test]
fn valgrind_memcheck_is_clean() {
    let _ = valgrind();
    let host = EmuHost::new("rsrvrctl-valgrind", HOST);

    let args = ["-q"];
    let o = run_valgrind(&host, &args);
    assert_clean(&args, &o);
    assert_eq!(stdout(&o), query_text(0, 0, 0, kernel_limit(HOST)));

    // A resize interrupted after every chunk and resumed: the progress
    // callback path, and the signal handler installed by -s.
    let mut host2 = EmuHost::new("rsrvrctl-valgrind2", HOST);
    host2.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let args = ["-s", "1024", "-c", "256"];
    let o = run_valgrind(&host2, &args);
    assert_clean(&args, &o);
    assert_eq!(stdout(&o), "");
    // The emulator was interposed in the checked program: the state moved.
    assert_eq!(host2.stat("free"), GIB);

    // A failure path (permission refused) is clean too.
    host2.set("VMMEMU_UNPRIVILEGED", "1");
    let args = ["-a", "1024"];
    let o = run_valgrind(&host2, &args);
    let what = format!("valgrind {}", show_run(&args, &o));
    assert_eq!(o.status.code(), Some(1), "{}", what);
    assert!(stderr(&o).contains("ERROR SUMMARY: 0 errors"), "{}", what);
    assert!(stderr(&o).contains(msg(Status::Permission)), "{}", what);
    assert_eq!(host2.stat("free"), GIB);

    // And the open failure (no device).
    let args = ["-q"];
    let o = host
        .command(&valgrind())
        .env_remove("VMMEMU_STATE")
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(rsrvrctl())
        .args(args)
        .output()
        .unwrap();
    let what = format!("valgrind {}", show_run(&args, &o));
    assert_eq!(o.status.code(), Some(1), "{}", what);
    assert!(stderr(&o).contains("ERROR SUMMARY: 0 errors"), "{}", what);
    assert!(stderr(&o).contains(msg(Status::NoDevice)), "{}", what);
}

// 11 ---------------------------------------------------------------------
// The -b extension: the boot-time setting of RFD 185 (the SMF method's
// workhorse; tests/smf.rs runs it through the method).

/// The five lines of a successful -b.
fn boot_text(setting: &str, previous: u64, target: u64) -> String {
    format!(
        "Boot setting:\t{}\nSize limit MiB:\t{}\nPrevious MiB:\t{}\nTarget MiB:\t{}\nReached MiB:\t{}\n",
        setting,
        kernel_limit(HOST) / MIB,
        previous / MIB,
        target / MIB,
        target / MIB
    )
}

#[test]
fn boot_setting_applies_and_is_idempotent() {
    let host = EmuHost::new("rsrvrctl-boot", HOST);
    // The default: 75% of the limit (15592 MiB) rounded down to 1 GiB.
    let want = 11 * GIB;
    assert_eq!(
        ok(&host, &["-b", "default", "-c", "1G"]),
        boot_text("75%", 0, want)
    );
    assert_eq!(host.stat("free"), want);
    // Again, spelled "" and "75%": the same size, nothing grown.
    let grown = host.stat("grown_total");
    assert_eq!(
        ok(&host, &["-b", "", "-c", "1024"]),
        boot_text("75%", want, want)
    );
    assert_eq!(
        ok(&host, &["-c", "1G", "-b", " 75% "]),
        boot_text("75%", want, want)
    );
    assert_eq!(host.stat("grown_total"), grown, "an idempotent -b resized");
    // Without a chunk, rounded down to the page only.
    let pct = (kernel_limit(HOST) as u128 * 75 / 100) as u64 / 4096 * 4096;
    assert_eq!(ok(&host, &["-b", "75%"]), boot_text("75%", want, pct));
    assert_eq!(host.stat("free"), pct);
    // A size, shrinking.
    assert_eq!(ok(&host, &["-b", "4G"]), boot_text("4G", pct, 4 * GIB));
    assert_eq!(host.stat("free"), 4 * GIB);
    assert_quiescent(&host);
}

#[test]
fn boot_setting_clamps_to_the_limit() {
    let host = EmuHost::new("rsrvrctl-boot-clamp", HOST);
    let o = run(&host, &["-b", "64G", "-c", "1G"]);
    assert_eq!(o.status.code(), Some(0), "{}", show_run(&["-b"], &o));
    assert_eq!(stdout(&o), boot_text("64G", 0, 15 * GIB));
    assert_eq!(
        stderr(&o),
        "rsrvrctl: boot setting 64G is more than the size limit: clamped to 15360 MiB\n"
    );
    assert_eq!(host.stat("free"), 15 * GIB);
    assert_quiescent(&host);
}

#[test]
fn boot_setting_refuses_bad_settings_with_exit_2() {
    let host = EmuHost::new("rsrvrctl-boot-bad", HOST);
    for bad in ["12288", "101%", "12.5%", "75 %", "lots", "-1G"] {
        let o = run(&host, &["-b", bad]);
        let what = show_run(&["-b", bad], &o);
        assert_eq!(o.status.code(), Some(2), "{}", what);
        assert_eq!(stdout(&o), "", "{}", what);
        assert_eq!(
            stderr(&o),
            format!(
                "rsrvrctl: Invalid boot setting {}: {} (a whole percentage such as 75%, \
                 a size with a unit such as 12G, or default)\n",
                bad,
                msg(Status::ParseSize)
            ),
            "{}",
            what
        );
    }
    // A chunk that is not a multiple of the page: a configuration error too.
    let o = run(&host, &["-b", "50%", "-c", "1.5K"]);
    assert_eq!(o.status.code(), Some(2), "{}", show_run(&["-b"], &o));
    assert_eq!(
        stderr(&o),
        format!(
            "rsrvrctl: Could not compute the boot target of 50%: {}\n",
            msg(Status::Unaligned)
        )
    );
    // -b with another resize option is a usage error, like -a with -s.
    let o = run(&host, &["-b", "75%", "-s", "1024"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), USAGE);
    assert_eq!(host.stat("grown_total"), 0);
}

#[test]
fn boot_setting_unprivileged_fails_with_the_size_reached() {
    let mut host = EmuHost::new("rsrvrctl-boot-eperm", HOST);
    ok(&host, &["-s", "512"]);
    host.set("VMMEMU_UNPRIVILEGED", "1");
    let o = run(&host, &["-b", "4G"]);
    assert_eq!(o.status.code(), Some(1), "{}", show_run(&["-b"], &o));
    // What it asked for is printed before the attempt; no "Reached" line.
    assert_eq!(
        stdout(&o),
        format!(
            "Boot setting:\t4G\nSize limit MiB:\t{}\nPrevious MiB:\t512\nTarget MiB:\t4096\n",
            kernel_limit(HOST) / MIB
        )
    );
    assert_eq!(
        stderr(&o),
        format!(
            "rsrvrctl: Could not set reservoir size to 4294967296 bytes: {}\n\
             rsrvrctl: reservoir size is now 512 MiB\n",
            msg(Status::Permission)
        )
    );
    assert_eq!(host.stat("free"), 512 * MIB);
}
