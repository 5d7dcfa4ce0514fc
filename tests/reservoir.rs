//! The Rust reservoir API against the emulated `/dev/vmmctl`.
//!
//! The emulator is an LD_PRELOAD interposer, so the library must run in a
//! process started with it: each test re-runs this test binary as a child
//! (`VMMRESV_TEST_ROLE` says what the child does) under an [`EmuHost`], and
//! the child reports one `RESULT ...` line on stdout. Several children at
//! once are how the concurrency tests get real separate processes.

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

use std::process::Child;

use common::*;
use vmmresv::{Progress, Reservoir, Status};

/// What a child does, by role: `query`, `add:<bytes>:<chunk>`,
/// `set:<target>:<chunk>`, `set_cancel_after:<target>:<chunk>:<n>`,
/// `naive_add:<bytes>` (rsrvrctl's racy query-then-set, no lock),
/// `raw_set:<target>:<chunk>` (a resizer that does not use the library),
/// `threads_add:<threads>:<bytes>`.
fn child(role: &str) {
    let r = Reservoir::open().expect("open the emulated /dev/vmmctl");
    let parts: Vec<&str> = role.split(':').collect();
    let num = |i: usize| -> u64 { parts[i].parse().unwrap() };
    match parts[0] {
        "query" => {
            let q = r.query().unwrap();
            println!(
                "RESULT query {} {} {} {} {}",
                q.free,
                q.alloc,
                q.alloc_transient,
                q.limit,
                r.interface_version()
            );
        }
        "add" => report(r.add(num(1), num(2), None)),
        "set" => report(r.set_target(num(1), num(2), None)),
        "set_cancel_after" => {
            let mut calls = 0u64;
            let mut seen = Vec::new();
            let limit = num(3);
            let mut cb = |reached: u64, target: u64| {
                assert_eq!(target, num(1));
                seen.push(reached);
                calls += 1;
                if calls >= limit {
                    Progress::Cancel
                } else {
                    Progress::Continue
                }
            };
            let res = r.set_target(num(1), num(2), Some(&mut cb));
            // Each callback saw strictly more than the one before.
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress {:?}", seen);
            println!("PROGRESS {}", seen.len());
            report(res);
        }
        "naive_add" => {
            // rsrvrctl -a as illumos ships it: read, then set, unlocked.
            let cur = r.query().unwrap().size();
            std::thread::sleep(std::time::Duration::from_millis(50));
            report(r.set_target(cur + num(1), 0, None));
        }
        "raw_set" => {
            let mut t = vmmresv::sys::vmm_resv_target {
                vrt_target_sz: num(1),
                vrt_chunk_sz: num(2),
                vrt_result_sz: 0,
            };
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags_excl()
                .open("/dev/vmmctl")
                .unwrap();
            use std::os::fd::AsFd;
            use zerocopy::IntoBytes;
            // SAFETY: `t` is a live vmm_resv_target for the duration.
            let rv = unsafe {
                vmmresv::sys::ioctl(
                    f.as_fd(),
                    vmmresv::sys::VMM_RESV_SET_TARGET,
                    t.as_mut_bytes().as_mut_ptr().cast(),
                )
            };
            println!("RESULT raw {:?}", rv);
        }
        "set_log" => {
            // Every interrupted step's (reached, target), then the result.
            let mut seen = Vec::new();
            let mut cb = |reached: u64, target: u64| {
                seen.push(format!("{reached}/{target}"));
                Progress::Continue
            };
            let res = r.set_target(num(1), num(2), Some(&mut cb));
            println!("PROGRESS {}", seen.join(" "));
            report(res);
        }
        "c_resize_stop" => {
            // The C ABI's signal-stopping resize, with no callback.
            use vmmresv::ffi::*;
            let mut h = std::ptr::null_mut();
            assert_eq!(
                vmmresv_reservoir_open(std::ptr::null(), std::ptr::null(), &mut h),
                Status::Ok
            );
            let op = match parts[1] {
                "target" => VMMRESV_RESIZE_TARGET,
                "add" => VMMRESV_RESIZE_ADD,
                _ => VMMRESV_RESIZE_REMOVE,
            };
            let mut reached = 0u64;
            let st = vmmresv_reservoir_resize(
                h,
                op,
                num(2),
                num(3),
                VMMRESV_RESIZE_STOP_ON_SIGNAL,
                None,
                std::ptr::null_mut(),
                &mut reached,
            );
            let errno = vmmresv_last_errno();
            // Unknown op and flag bits are refused before anything else.
            assert_eq!(
                vmmresv_reservoir_resize(h, 3, 0, 0, 0, None, std::ptr::null_mut(), &mut 0),
                Status::InvalidArgument
            );
            assert_eq!(
                vmmresv_reservoir_resize(h, op, 0, 0, 2, None, std::ptr::null_mut(), &mut 0),
                Status::InvalidArgument
            );
            vmmresv_reservoir_close(h);
            println!("RESULT {:?} {} {}", st, errno, reached);
        }
        "threads_add" => {
            let n = num(1);
            let bytes = num(2);
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| r.add(bytes, 0, None).unwrap());
                }
            });
            report(Ok(r.query().unwrap().size()));
        }
        other => panic!("unknown role {}", other),
    }
}

fn report(res: Result<u64, vmmresv::ResizeError>) {
    match res {
        Ok(v) => println!("RESULT ok {}", v),
        Err(e) => println!(
            "RESULT err {:?} {}",
            e.error.status(),
            e.reached.map(|v| v as i128).unwrap_or(-1)
        ),
    }
}

use common::child::{result, run, spawn};

fn size_of_host(host: &EmuHost) -> u64 {
    host.stat("free") + host.stat("alloc")
}

#[test]
fn query_reads_the_counters_and_version() {
    if child::play(child) {
        return;
    }
    let host = EmuHost::new("query", 16 * GIB);
    let r = run(&host, "query_reads_the_counters_and_version", "query");
    assert_eq!(
        r,
        [
            "query",
            "0",
            "0",
            "0",
            &kernel_limit(16 * GIB).to_string(),
            "18"
        ]
    );
}

#[test]
fn query_survives_a_fork_with_a_longer_struct() {
    if child::play(child) {
        return;
    }
    // grwilson/oxide-illumos copies 48 bytes out; ours must take 32 of
    // them and not be overrun.
    let mut host = EmuHost::new("query48", 8 * GIB);
    host.set("VMMEMU_QUERY_SIZE", "48");
    run(
        &host,
        "query_survives_a_fork_with_a_longer_struct",
        &format!("set:{}:0", GIB),
    );
    let r = run(&host, "query_survives_a_fork_with_a_longer_struct", "query");
    assert_eq!(
        r,
        [
            "query",
            &GIB.to_string(),
            "0",
            "0",
            &kernel_limit(8 * GIB).to_string(),
            "18"
        ]
    );
}

#[test]
fn set_add_remove_follow_rsrvrctl() {
    if child::play(child) {
        return;
    }
    let t = "set_add_remove_follow_rsrvrctl";
    let host = EmuHost::new("sar", 16 * GIB);
    assert_eq!(
        run(&host, t, &format!("set:{}:{}", 4 * GIB, GIB)),
        ["ok", &(4 * GIB).to_string()]
    );
    assert_eq!(size_of_host(&host), 4 * GIB);
    assert_eq!(
        run(&host, t, &format!("add:{}:0", GIB)),
        ["ok", &(5 * GIB).to_string()]
    );
    assert_eq!(host.stat("free"), 5 * GIB);
    // remove clamps to the current size.
    let r = run(&host, t, "set:0:0");
    assert_eq!(r, ["ok", "0"]);
    // unaligned target never reaches the kernel.
    let r = run(&host, t, "set:4097:0");
    assert_eq!(r, ["err", "Unaligned", "0"]);
}

#[test]
fn default_target_is_75_percent_of_the_limit() {
    let host = EmuHost::new("default", 64 * GIB);
    let limit = kernel_limit(64 * GIB);
    let want = limit / 100 * 75 + limit % 100 * 75 / 100;
    let want = want / GIB * GIB;
    assert_eq!(
        vmmresv::policy::default_target_for(limit, GIB).unwrap(),
        want
    );
    // And the handle's version of it asks the kernel for the limit.
    drop(host);
}

#[test]
fn concurrent_adds_from_processes_all_take_effect() {
    if child::play(child) {
        return;
    }
    let t = "concurrent_adds_from_processes_all_take_effect";
    let mut host = EmuHost::new("cadd", 32 * GIB);
    // Slow chunks make the resizes overlap in time.
    host.set("VMMEMU_CHUNK_DELAY_US", "20000");
    let kids: Vec<Child> = (0..6)
        .map(|_| spawn(&host, t, &format!("add:{}:{}", GIB, 256 * MIB)))
        .collect();
    for k in kids {
        assert_eq!(result(k)[0], "ok");
    }
    assert_eq!(size_of_host(&host), 6 * GIB, "an addition was lost");
}

#[test]
fn naive_query_then_set_loses_additions() {
    if child::play(child) {
        return;
    }
    // The control for the test above: the same race without the library's
    // lock (rsrvrctl -a as shipped) loses additions, so the test above can
    // see the failure it guards against.
    let t = "naive_query_then_set_loses_additions";
    let mut host = EmuHost::new("naive", 32 * GIB);
    host.set("VMMEMU_CHUNK_DELAY_US", "20000");
    let kids: Vec<Child> = (0..6)
        .map(|_| spawn(&host, t, &format!("naive_add:{}", GIB)))
        .collect();
    for k in kids {
        result(k);
    }
    assert!(
        size_of_host(&host) < 6 * GIB,
        "six racing query-then-set additions all landed: {}",
        size_of_host(&host)
    );
}

#[test]
fn concurrent_adds_from_threads_all_take_effect() {
    if child::play(child) {
        return;
    }
    let mut host = EmuHost::new("tadd", 32 * GIB);
    host.set("VMMEMU_CHUNK_DELAY_US", "5000");
    let r = run(
        &host,
        "concurrent_adds_from_threads_all_take_effect",
        &format!("threads_add:8:{}", 512 * MIB),
    );
    assert_eq!(r, ["ok", &(4 * GIB).to_string()]);
    assert_eq!(size_of_host(&host), 4 * GIB);
}

#[test]
fn interrupted_resize_resumes_to_the_target() {
    if child::play(child) {
        return;
    }
    let mut host = EmuHost::new("eintr", 16 * GIB);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let r = run(
        &host,
        "interrupted_resize_resumes_to_the_target",
        &format!("set:{}:{}", 8 * GIB, GIB),
    );
    assert_eq!(r, ["ok", &(8 * GIB).to_string()]);
    assert_eq!(size_of_host(&host), 8 * GIB);
}

#[test]
fn progress_callback_can_cancel_and_reports_exact_size() {
    if child::play(child) {
        return;
    }
    let mut host = EmuHost::new("cancel", 16 * GIB);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let c = spawn(
        &host,
        "progress_callback_can_cancel_and_reports_exact_size",
        &format!("set_cancel_after:{}:{}:3", 8 * GIB, GIB),
    );
    let r = result(c);
    // Three interrupted steps of one chunk each, then cancelled.
    assert_eq!(r, ["err", "Interrupted", &(3 * GIB).to_string()]);
    assert_eq!(size_of_host(&host), 3 * GIB);
}

/// The kernel checks for a signal before the first chunk too, so EINTR can
/// come with no progress (even with chunk 0): the callback sees the size
/// the call began from, and the library resumes from there. Seen failing
/// before the emulator modelled it (VMMEMU_EINTR_AFTER_CHUNKS=0 meant "off",
/// so no callback ran).
#[test]
fn eintr_with_no_progress_is_reported_and_resumed() {
    if child::play(child) {
        return;
    }
    let mut host = EmuHost::new("eintr0", 16 * GIB);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "0");
    host.set("VMMEMU_EINTR_LIMIT", "2");
    let c = spawn(
        &host,
        "eintr_with_no_progress_is_reported_and_resumed",
        &format!("set_log:{}:0", 2 * GIB),
    );
    let out = c.wait_with_output().unwrap();
    let so = stdout(&out);
    assert!(out.status.success(), "{}{}", so, stderr(&out));
    let t = 2 * GIB;
    assert!(so.contains(&format!("PROGRESS 0/{t} 0/{t}\n")), "{}", so);
    assert!(so.contains(&format!("RESULT ok {t}")), "{}", so);
    assert_eq!(host.stat("eintr_given"), 2);
    assert_eq!(size_of_host(&host), 2 * GIB);
}

/// VMMRESV_1.2's vmmresv_reservoir_resize() with
/// VMMRESV_RESIZE_STOP_ON_SIGNAL: the first EINTR ends the call with
/// INTERRUPTED, errno EINTR and the size reached — after some chunks, with
/// none (signal before the first pass, chunk 0), or with a growth chunk
/// undone inside vmmr_add. (New function: there was nothing to fail on
/// before it.)
#[test]
fn c_resize_can_stop_on_a_signal() {
    if child::play(child) {
        return;
    }
    let t = "c_resize_can_stop_on_a_signal";
    let mut host = EmuHost::new("stop", 16 * GIB);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "2");
    let r = run(&host, t, &format!("c_resize_stop:add:{}:{}", 4 * GIB, GIB));
    let eintr = libc::EINTR.to_string();
    assert_eq!(r, ["Interrupted", &eintr, &(2 * GIB).to_string()]);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "0");
    let r = run(&host, t, &format!("c_resize_stop:target:{}:0", 8 * GIB));
    assert_eq!(r, ["Interrupted", &eintr, &(2 * GIB).to_string()]);
    let r = run(&host, t, &format!("c_resize_stop:remove:{}:0", GIB));
    assert_eq!(r, ["Interrupted", &eintr, &(2 * GIB).to_string()]);
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    host.set("VMMEMU_EINTR_IN_ADD", "1");
    let r = run(&host, t, &format!("c_resize_stop:add:{}:{}", 2 * GIB, GIB));
    assert_eq!(r, ["Interrupted", &eintr, &(3 * GIB).to_string()]);
    assert_eq!(size_of_host(&host), 3 * GIB);
    assert_eq!(host.stat("adding"), 0);
    assert_eq!(host.stat("target_active"), 0);
    // No signal: it behaves as vmmresv_reservoir_remove().
    host.set("VMMEMU_EINTR_LIMIT", &host.stat("eintr_given").to_string());
    let r = run(&host, t, &format!("c_resize_stop:remove:{}:0", GIB));
    assert_eq!(r, ["Ok", "0", &(2 * GIB).to_string()]);
}

#[test]
fn out_of_memory_reports_the_size_reached() {
    if child::play(child) {
        return;
    }
    let mut host = EmuHost::new("enomem", 16 * GIB);
    host.set("VMMEMU_ENOMEM_AFTER", &(3 * GIB).to_string());
    let r = run(
        &host,
        "out_of_memory_reports_the_size_reached",
        &format!("set:{}:{}", 8 * GIB, GIB),
    );
    // The kernel does not report it; the library queried again.
    assert_eq!(r, ["err", "OutOfMemory", &(3 * GIB).to_string()]);
    assert_eq!(size_of_host(&host), 3 * GIB);
}

#[test]
fn beyond_the_limit_is_no_space() {
    if child::play(child) {
        return;
    }
    let host = EmuHost::new("nospace", 4 * GIB);
    let too_big = (kernel_limit(4 * GIB) / GIB + 1) * GIB;
    let r = run(
        &host,
        "beyond_the_limit_is_no_space",
        &format!("set:{}:0", too_big),
    );
    assert_eq!(r, ["err", "NoSpace", "0"]);
}

#[test]
fn unprivileged_resize_is_permission() {
    if child::play(child) {
        return;
    }
    let t = "unprivileged_resize_is_permission";
    let mut host = EmuHost::new("eperm", 4 * GIB);
    host.set("VMMEMU_UNPRIVILEGED", "1");
    assert_eq!(
        run(&host, t, &format!("set:{}:0", GIB)),
        ["err", "Permission", "0"]
    );
    // Querying needs no privilege.
    assert_eq!(run(&host, t, "query")[0], "query");
}

#[test]
fn old_kernel_is_never_sent_set_target() {
    if child::play(child) {
        return;
    }
    // On a pre-V9 kernel 0x564D11 is VMM_RESV_ADD taking a size by value;
    // the emulator aborts the process ("kernel panic") if we send it.
    let t = "old_kernel_is_never_sent_set_target";
    let mut host = EmuHost::new("oldkernel", 4 * GIB);
    host.set("VMMEMU_VERSION", "8");
    assert_eq!(
        run(&host, t, &format!("set:{}:0", GIB)),
        ["err", "InterfaceTooOld", "0"]
    );
    assert_eq!(
        run(&host, t, &format!("add:{}:0", GIB)),
        ["err", "InterfaceTooOld", "0"]
    );
    assert_eq!(run(&host, t, "query")[5], "8");
    assert_eq!(size_of_host(&host), 0);
}

#[test]
fn foreign_resizer_gives_resize_in_progress() {
    if child::play(child) {
        return;
    }
    let t = "foreign_resizer_gives_resize_in_progress";
    let mut host = EmuHost::new("ealready", 16 * GIB);
    host.set("VMMEMU_CHUNK_DELAY_US", "100000");
    // A resizer outside the library: 16 slow chunks (~1.6 s).
    let raw = spawn(&host, t, &format!("raw_set:{}:{}", 4 * GIB, 256 * MIB));
    // Wait until it is running.
    let t0 = std::time::Instant::now();
    while host.stat("target_active") == 0 {
        assert!(t0.elapsed().as_secs() < 10, "foreign resize never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let r = run(&host, t, &format!("set:{}:0", 8 * GIB));
    assert_eq!(r[0..2], ["err", "ResizeInProgress"]);
    let reached: u64 = r[2].parse().unwrap();
    assert!(reached <= 4 * GIB);
    assert_eq!(result(raw), ["raw", "Ok(0)"]);
    assert_eq!(size_of_host(&host), 4 * GIB);
}

#[test]
fn missing_device_and_wrong_device() {
    let e = Reservoir::open_at(std::path::Path::new("/nonexistent/vmmctl"), None).unwrap_err();
    assert_eq!(e.status(), Status::NoDevice);
    assert_eq!(e.errno(), Some(libc::ENOENT));
    // A character device that is not vmm answers the version ioctl ENOTTY.
    let e = Reservoir::open_at(std::path::Path::new("/dev/null"), None).unwrap_err();
    assert_eq!(e.status(), Status::NotVmmDevice);
}
