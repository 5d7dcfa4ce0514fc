//! The admission guarantee on a real kernel: launcher processes start
//! "VMs" whose memory comes from the Linux hugetlb pool the way QEMU takes
//! it with preallocation (a hugetlb memfd, mapped shared, every page
//! touched), against the real pool counters.
//!
//! - `free_running_starts_never_fail`: 16 launchers, 11,200 starts, each
//!   admitted through the ledger, then allocated, held a moment and freed:
//!   no allocation of an admitted VM fails. `..._in_namespaces`: the same
//!   (6,400 starts) with every launcher in a PID + mount namespace of its
//!   own, pid 1 there like the others (the deployment shape: a zone per
//!   launcher).
//! - `forced_interleaving_with_and_without_the_ledger`: rounds in which all
//!   16 launchers decide first and allocate only when all have decided (a
//!   barrier the test holds), so the race RFD 185 describes happens every
//!   round. Query-then-launch (no ledger) must fail allocations — every
//!   launcher sees the whole pool free, and together they ask for more —
//!   and with the ledger none may.
//!
//! Needs root (the pool is resized; its size is restored afterwards, and
//! at the start of the next run if this one is killed); prints a loud
//! SKIPPED line where the pool cannot be resized.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
// The Linux hugetlb pool: nothing to test elsewhere.
#![cfg(target_os = "linux")]
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

#[path = "common/hugepool.rs"]
mod hugepool;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use vmmresv::admission::{Admission, Decision, Preference};
use vmmresv::reservoir::hugetlb::HugetlbPool;
use vmmresv::Reservoir;

const MB2: u64 = 2 << 20;
const LAUNCHERS: usize = 16;
const ROLE: &str = "VMMRESV_HUGETLB_ROLE";

/// A VM's memory, taken from the pool as QEMU's prealloc does; None when
/// the kernel refused it (the failure the ledger exists to prevent).
struct VmMemory {
    addr: *mut libc::c_void,
    len: usize,
    fd: libc::c_int,
}

fn allocate(pages: u64) -> Option<VmMemory> {
    let len = (pages * MB2) as usize;
    // SAFETY: a fresh hugetlb memfd, sized and mapped shared over exactly
    // its length; every touched address is inside the mapping.
    unsafe {
        let fd = libc::memfd_create(c"vmmresv-vm".as_ptr(), libc::MFD_HUGETLB);
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
        // MAP_SHARED reserves the pages at mmap: a pool that cannot supply
        // them fails here with ENOMEM rather than SIGBUS at a touch.
        let addr = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if addr == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::ENOMEM), "mmap: {e}");
            libc::close(fd);
            return None;
        }
        for i in 0..pages as usize {
            addr.cast::<u8>().add(i * MB2 as usize).write_volatile(1);
        }
        Some(VmMemory { addr, len, fd })
    }
}

impl Drop for VmMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping and descriptor made by `allocate`, once.
        unsafe {
            libc::munmap(self.addr, self.len);
            libc::close(self.fd);
        }
    }
}

fn uuid(launcher: usize, n: u64) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&(launcher as u64).to_le_bytes());
    u[8..].copy_from_slice(&n.to_le_bytes());
    u
}

fn admission(run_dir: &Path) -> Admission {
    let pool = Reservoir::open_hugetlb(0, None, Some(run_dir)).unwrap();
    Admission::open(pool, None).unwrap()
}

/// A launcher's counts.
#[derive(Default, Debug)]
struct Counts {
    /// Admitted to the pool, and its memory allocated.
    huge: u64,
    /// Admitted to the pool, and its allocation failed.
    failed: u64,
    /// Started without huge pages (NO_RESERVOIR).
    plain: u64,
    /// Refused.
    refused: u64,
}

/// Child: `starts` free-running starts of `pages`-page VMs.
fn free_running(me: usize, run_dir: &Path, pages: u64, starts: u64) -> Counts {
    let adm = admission(run_dir);
    let mut c = Counts::default();
    let mut seed = me as u64 * 7919 + 1;
    for n in 0..starts {
        let id = uuid(me, n);
        let v = adm.admit(&id, pages * MB2, Preference::Prefer).unwrap();
        match v.decision {
            Decision::UseReservoir => match allocate(pages) {
                Some(mem) => {
                    adm.commit(&id).unwrap();
                    c.huge += 1;
                    // Hold it a moment (0-255 µs), as a VM would for longer.
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    std::thread::sleep(std::time::Duration::from_micros(seed >> 56));
                    drop(mem);
                }
                None => {
                    adm.abort(&id).unwrap();
                    c.failed += 1;
                }
            },
            Decision::NoReservoir => {
                adm.commit(&id).unwrap();
                c.plain += 1;
            }
            Decision::Refuse => c.refused += 1,
        }
    }
    c
}

/// Child: rounds driven by the parent through stdin/stdout. Each round:
/// wait for "start", decide (admit, or read the pool and compare, without the ledger), say
/// "decided", wait for "go", allocate if the decision said so, say how it
/// went, wait for "release", free and say so.
fn in_rounds(me: usize, run_dir: &Path, pages: u64, rounds: u64, ledger: bool) -> Counts {
    let adm = ledger.then(|| admission(run_dir));
    let pool = HugetlbPool::open(0, None).unwrap();
    let mut c = Counts::default();
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut wait = |what: &str| {
        let mut b = [0u8; 1];
        stdin
            .read_exact(&mut b)
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    };
    for n in 0..rounds {
        wait("start");
        let id = uuid(me, n);
        let use_pool = match &adm {
            Some(a) => match a
                .admit(&id, pages * MB2, Preference::Require)
                .unwrap()
                .decision
            {
                Decision::UseReservoir => true,
                _ => {
                    c.refused += 1;
                    false
                }
            },
            // Query-then-launch: the pool looks big enough.
            None => {
                let fits = pool.query().unwrap().available_pages() >= pages;
                if !fits {
                    c.refused += 1;
                }
                fits
            }
        };
        writeln!(out, "decided").unwrap();
        out.flush().unwrap();
        wait("go");
        let mem = if use_pool {
            let m = allocate(pages);
            match (&m, &adm) {
                (Some(_), Some(a)) => drop(a.commit(&id).unwrap()),
                (None, Some(a)) => drop(a.abort(&id).unwrap()),
                _ => {}
            }
            if m.is_some() {
                c.huge += 1;
            } else {
                c.failed += 1;
            }
            m
        } else {
            None
        };
        writeln!(out, "allocated").unwrap();
        out.flush().unwrap();
        wait("release");
        drop(mem);
        writeln!(out, "freed").unwrap();
        out.flush().unwrap();
    }
    c
}

fn report(c: &Counts) -> String {
    format!("RESULT {} {} {} {}", c.huge, c.failed, c.plain, c.refused)
}

/// Run as a child if this process is one; true if it was.
fn child_role() -> bool {
    let Ok(role) = std::env::var(ROLE) else {
        return false;
    };
    let w: Vec<&str> = role.split(',').collect();
    let me: usize = w[1].parse().unwrap();
    let dir = PathBuf::from(w[2]);
    let pages: u64 = w[3].parse().unwrap();
    let n: u64 = w[4].parse().unwrap();
    let c = match w[0] {
        "free" => free_running(me, &dir, pages, n),
        "rounds-ledger" => in_rounds(me, &dir, pages, n, true),
        "rounds-none" => in_rounds(me, &dir, pages, n, false),
        r => panic!("unknown role {r}"),
    };
    // The harness's own lines go to stdout too: a line of its own. The
    // pid as this launcher sees itself (1 in a namespace of its own).
    println!("\n{} PID {}", report(&c), std::process::id());
    true
}

fn spawn(test: &str, role: &str) -> Child {
    spawn_in(test, role, false)
}

/// unshare(1)'s options for a launcher in its own PID + mount namespace
/// with its own /proc (the Linux analog of a zone, as in tests/zones.rs):
/// it is pid 1 there, as every other such launcher is in its own.
const UNSHARE: &[&str] = &[
    "--pid",
    "--fork",
    "--mount",
    "--mount-proc",
    "--kill-child",
    "--",
];

/// Whether launchers can run in namespaces of their own (root, unshare);
/// a loud SKIPPED line naming the test when not.
fn namespaces_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let why = if unsafe { libc::geteuid() } != 0 {
        "not root".to_string()
    } else {
        match Command::new("unshare").args(UNSHARE).arg("true").output() {
            Ok(o) if o.status.success() => return true,
            Ok(o) => format!("unshare failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => format!("cannot run unshare: {e}"),
        }
    };
    eprintln!("SKIPPED: {test}: needs root and unshare(1) PID + mount namespaces ({why}); CI runs as root");
    println!("SKIPPED: {test}");
    false
}

/// A launcher: this test binary again, in the role `role`; with `zoned`,
/// in a PID + mount namespace of its own.
fn spawn_in(test: &str, role: &str, zoned: bool) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut c = if zoned {
        let mut c = Command::new("unshare");
        c.args(UNSHARE).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    c.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn counts(line: &str) -> Counts {
    let w: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(|x| x.parse().unwrap())
        .collect();
    Counts {
        huge: w[0],
        failed: w[1],
        plain: w[2],
        refused: w[3],
    }
}

fn sum(all: &[Counts]) -> Counts {
    all.iter().fold(Counts::default(), |a, c| Counts {
        huge: a.huge + c.huge,
        failed: a.failed + c.failed,
        plain: a.plain + c.plain,
        refused: a.refused + c.refused,
    })
}

fn run_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hugetlb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Read lines from a child until one is `want` (the harness prints its own
/// "running 1 test" lines first); the RESULT line when `want` is RESULT.
fn expect(r: &mut impl BufRead, want: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "child ended before {want}"
        );
        // The harness's "test ... " may start the child's first line.
        if want == "RESULT" {
            if let Some(i) = line.find("RESULT ") {
                return line[i..].trim().to_string();
            }
        } else if line.trim_end().ends_with(want) {
            return want.to_string();
        }
    }
}

#[test]
fn free_running_starts_never_fail() {
    if child_role() {
        return;
    }
    free_running_race("free_running_starts_never_fail", false, 700);
}

/// The same in the deployment shape: every launcher in a PID + mount
/// namespace of its own, where each is pid 1 (so every claim records the
/// same pid): liveness is the kernel's record locks, which know the
/// processes apart in any namespace.
#[test]
fn free_running_starts_never_fail_in_namespaces() {
    if child_role() {
        return;
    }
    let test = "free_running_starts_never_fail_in_namespaces";
    if namespaces_available(test) {
        free_running_race(test, true, 400);
    }
}

fn free_running_race(test: &str, zoned: bool, starts: u64) {
    let Some(_pool) = hugepool::borrow(test) else {
        return;
    };
    // 24 pages (48 MiB): 16 launchers of 1-4 pages want up to 40.
    let pool = HugetlbPool::open(0, None).unwrap();
    assert_eq!(pool.resize(24 * MB2, 0, None), Ok(24 * MB2));
    let dir = run_dir(if zoned { "free-ns" } else { "free" });
    let kids: Vec<Child> = (0..LAUNCHERS)
        .map(|i| {
            let pages = 1 + (i as u64 % 4);
            spawn_in(
                test,
                &format!("free,{i},{},{pages},{starts}", dir.display()),
                zoned,
            )
        })
        .collect();
    let mut pids = Vec::new();
    let all: Vec<Counts> = kids
        .into_iter()
        .map(|k| {
            let out = k.wait_with_output().unwrap();
            assert!(out.status.success(), "a launcher failed: {:?}", out.status);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let line = text
                .lines()
                .find(|l| l.starts_with("RESULT "))
                .unwrap_or_else(|| panic!("no RESULT:\n{text}"));
            pids.push(line.rsplit(' ').next().unwrap().parse::<u32>().unwrap());
            counts(line)
        })
        .collect();
    if zoned {
        // Each saw itself as its namespace's pid 1: the same pid 16 times.
        assert!(pids.iter().all(|&p| p == 1), "{pids:?}");
    }
    let t = sum(&all);
    println!(
        "with the ledger, free running{}: {} starts: {} with huge pages, {} without, {} refused; {} allocations failed",
        if zoned { ", each launcher pid 1 of its own PID namespace" } else { "" },
        t.huge + t.plain + t.refused + t.failed,
        t.huge,
        t.plain,
        t.refused,
        t.failed
    );
    assert_eq!(
        t.huge + t.plain + t.refused + t.failed,
        LAUNCHERS as u64 * starts
    );
    assert!(t.huge + t.plain + t.refused >= LAUNCHERS as u64 * starts * 9 / 10);
    assert_eq!(t.failed, 0, "an admitted VM's allocation failed: {t:?}");
    // The pool was contended: some starts had to go without it.
    assert!(t.plain > 0 && t.huge > 0, "{t:?}");
    // Every claim committed: the ledger is empty, the pool free again.
    let q = pool.query().unwrap();
    assert_eq!((q.free_pages, q.reserved_pages), (24, 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Drive `LAUNCHERS` children in lock step; their summed counts.
fn rounds(test: &str, ledger: bool, pages: u64, n: u64) -> Counts {
    let dir = run_dir(if ledger { "ledger" } else { "none" });
    let role = if ledger {
        "rounds-ledger"
    } else {
        "rounds-none"
    };
    let mut kids: Vec<Child> = (0..LAUNCHERS)
        .map(|i| spawn(test, &format!("{role},{i},{},{pages},{n}", dir.display())))
        .collect();
    let mut ins: Vec<_> = kids.iter_mut().map(|k| k.stdin.take().unwrap()).collect();
    let mut outs: Vec<_> = kids
        .iter_mut()
        .map(|k| BufReader::new(k.stdout.take().unwrap()))
        .collect();
    let all_say = |outs: &mut Vec<BufReader<_>>, what: &str| {
        for o in outs.iter_mut() {
            expect(o, what);
        }
    };
    let tell_all = |ins: &mut Vec<std::process::ChildStdin>| {
        for i in ins.iter_mut() {
            i.write_all(b"x").unwrap();
            i.flush().unwrap();
        }
    };
    for _ in 0..n {
        tell_all(&mut ins); // a round starts with every launcher's VM gone
        all_say(&mut outs, "decided"); // every launcher has decided...
        tell_all(&mut ins); // ...before any allocates
        all_say(&mut outs, "allocated"); // every allocation is held...
        tell_all(&mut ins); // ...until all have been tried,
        all_say(&mut outs, "freed"); // and the next round starts empty
    }
    let all: Vec<Counts> = outs
        .iter_mut()
        .map(|o| counts(&expect(o, "RESULT")))
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    std::fs::remove_dir_all(&dir).unwrap();
    sum(&all)
}

#[test]
fn forced_interleaving_with_and_without_the_ledger() {
    if child_role() {
        return;
    }
    let Some(_pool) = hugepool::borrow("hugetlb race (forced interleaving)") else {
        return;
    };
    // 20 pages; 16 launchers of 3 pages each want 48 at once.
    let pool = HugetlbPool::open(0, None).unwrap();
    assert_eq!(pool.resize(20 * MB2, 0, None), Ok(20 * MB2));
    let test = "forced_interleaving_with_and_without_the_ledger";
    let n = 20;

    let none = rounds(test, false, 3, n);
    println!(
        "query-then-launch: {} starts decided to use the pool, {} allocations failed, {} succeeded",
        none.huge + none.failed,
        none.failed,
        none.huge
    );
    // Everyone saw the whole pool free, so everyone tried: 6 fit a round.
    assert_eq!(none.refused, 0);
    assert_eq!((none.huge, none.failed), (6 * n, 10 * n), "{none:?}");

    let with = rounds(test, true, 3, n);
    println!(
        "with the ledger: {} starts admitted to the pool, {} allocations failed, {} refused",
        with.huge + with.failed,
        with.failed,
        with.refused
    );
    assert_eq!(
        with.failed, 0,
        "an admitted VM's allocation failed: {with:?}"
    );
    assert_eq!((with.huge, with.refused), (6 * n, 10 * n), "{with:?}");
    let q = pool.query().unwrap();
    assert_eq!((q.free_pages, q.reserved_pages), (20, 0));
}
