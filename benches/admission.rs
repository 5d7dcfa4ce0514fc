//! The public admission path, `vmmresv_admit` + `vmmresv_commit`, called
//! from C through `target/lib/libvmmresv.so.1`, on the real ledger file and
//! the `/dev/vmmctl` emulator, beside the racy query it replaces and the
//! flock-serialised query operators use today. The goal ratios are printed
//! at the end. See benches/README.md ("admission") for the goals, the
//! method and the recorded figures.
//!
//! ```text
//! cargo bench --bench admission                          # 3 rounds, then the ratios
//! VMMRESV_BENCH_QUICK=1 cargo bench --bench admission    # CI: 1 short round
//! VMMRESV_BENCH_ROUNDS=5 cargo bench --bench admission   # more rounds
//! ```
//!
//! Groups (criterion ids `group/function`):
//! - `public_path`: one process, one VM start's admission: the racy
//!   baseline (`vmmresv_reservoir_query` + compare), the flock-serialised
//!   baseline (flock + query + compare + unlock), and `vmmresv_admit` +
//!   `vmmresv_commit` with 0, 64 and 1,024 pending claims held by another
//!   live process.
//! - `launchers_16`: 16 launcher processes starting VMs at once (each VM
//!   runs until its launcher's next start): admit, create the VM and
//!   allocate its memory in the emulated kernel, commit; against the same
//!   with flock + query + compare around the allocation, and the emulated
//!   kernel calls alone (the emulator's own ceiling). Every allocation the
//!   kernel refuses after an admission is an over-admission: the benchmark
//!   fails on one. Before timing, each mode runs with room for only 4 of
//!   the 16 VMs (contention for memory: the over-admission check, and the
//!   racy launch without ledger or lock as its control); timed, the
//!   reservoir has room for 32 (every start fits: the rate of admissions,
//!   not of refusals).
//! - `in_memory_kernel`: `Admission::admit` + `commit` (the Rust API, on
//!   a ledger file of its own) with a kernel that answers the reservoir
//!   query from memory (the library's `Kernel` seam), beside one
//!   `getppid()`: the library's own share of the public path.
//!
//! The benchmark runs itself again as a child process with the emulator
//! preloaded (`LD_PRELOAD`, a fresh emulated 16 GiB host and run
//! directory), so that the library's `open`/`ioctl` calls reach it; the
//! parent builds what it needs first (`make -s lib emu`, then the C side
//! with `cc`) and removes the scratch directory afterwards.
//!
//! Under `cargo test --all-targets` criterion runs each benchmark once as a
//! smoke test; the checks run too, the ratios are not printed.

// Benchmarks are not the library: a panic is how a check fails, and their
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
use std::collections::HashMap;
use std::ffi::{c_void, CString, OsString};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use vmmresv::admission::{Admission, Decision, Preference};
use vmmresv::ledger::Pool;
use vmmresv::reservoir::Kernel;
use vmmresv::sys::{vmm_resv_query, vmm_resv_target};

/// Guest memory of the single-process admissions (a multiple of 4 KiB).
const VM_BYTES: u64 = 1 << 20;
/// The reservoir the benchmark sets up: 64 MiB (16,384 pages: room for
/// the 1,024 held claims of one page and the measured one).
const RESERVOIR_BYTES: u64 = 64 << 20;
/// Launchers in the concurrent group.
const LAUNCHERS: usize = 16;
/// Guest memory of a launcher's VM in the over-admission checks: the
/// reservoir has room for 4 of them at once, so 16 launchers contend for
/// memory.
const CHECK_VM_BYTES: u64 = RESERVOIR_BYTES / 4;
/// Guest memory of a launcher's VM in the timed runs: room for 32, two per
/// launcher (its running VM and the claim of its next one, both counted
/// between the allocation and the commit), so every start fits and the
/// figure is the rate of admissions, not of refusals, while 16 processes
/// contend for the ledger, the lock and the device; see benches/README.md.
const TIMED_VM_BYTES: u64 = RESERVOIR_BYTES / (2 * LAUNCHERS as u64);
/// VM starts per launcher in the untimed over-admission checks.
const CHECK_STARTS: u64 = 100;
/// Pending claims held by the other process.
const PENDING: [u64; 3] = [0, 64, 1024];

// ---------------------------------------------------------------------
// Environment: the parent builds and re-runs itself under the emulator

const ENV_CHILD: &str = "ADMIT_BENCH_CHILD";
const ENV_SHIM: &str = "ADMIT_BENCH_SHIM";
const ENV_WORKER: &str = "ADMIT_BENCH_WORKER";
const ENV_EMU_CTL: &str = "ADMIT_BENCH_EMU_CTL";
const ENV_LOCK: &str = "ADMIT_BENCH_LOCK";

/// `make -s lib emu`: the `.so` and the emulator, rebuilt by make when a
/// source is newer (so a stale `.so` is never measured).
fn make_lib_emu() {
    let root = root();
    let ok = Command::new("make")
        .args(["-s", "lib", "emu"])
        .current_dir(&root)
        .status()
        .is_ok_and(|s| s.success());
    for rel in [
        "target/lib/libvmmresv.so.1",
        "target/emu/libvmmctl_emu.so",
        "target/emu/vmmemu_ctl",
    ] {
        assert!(
            root.join(rel).exists(),
            "`make -s lib emu` failed and {rel} is missing"
        );
    }
    if !ok {
        println!("warning: `make -s lib emu` failed; measuring the existing build");
    }
}

/// Compile benches/c/admit_bench.c against the `.so`, as a C consumer
/// links it: `extra` are the flags that make it a shared object or the
/// worker program.
fn cc(out: &Path, extra: &[&str]) {
    let root = root();
    let libdir = root
        .join("target/lib")
        .canonicalize()
        .expect("target/lib exists");
    let r = Command::new("cc")
        .args([
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .args(extra)
        .arg(format!("-I{}", root.join("include").display()))
        // tests/c/common.h: the illumos vmm_dev.h definitions.
        .arg(format!("-I{}", root.join("tests/c").display()))
        .arg("-o")
        .arg(out)
        .arg(root.join("benches/c/admit_bench.c"))
        .arg(format!("-L{}", libdir.display()))
        .arg("-lvmmresv")
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .output()
        .expect("run the system C compiler `cc`");
    assert!(
        r.status.success(),
        "cc {extra:?} failed on benches/c/admit_bench.c:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// The parent: build, make a fresh emulated host, run this benchmark again
/// under the emulator, clean up, exit with the child's status.
fn parent() -> ! {
    make_lib_emu();
    let root = root();
    let scratch = std::env::temp_dir().join(format!("vmmresv-admit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("run")).expect("create the scratch directory");
    let shim = scratch.join("libadmit_bench.so");
    let worker = scratch.join("admit_bench_worker");
    cc(&shim, &["-fPIC", "-shared"]);
    cc(&worker, &["-DADMIT_BENCH_MAIN"]);
    let emu = root
        .join("target/emu/libvmmctl_emu.so")
        .canonicalize()
        .expect("the emulator exists");
    let ctl = root
        .join("target/emu/vmmemu_ctl")
        .canonicalize()
        .expect("vmmemu_ctl exists");
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let status = Command::new(std::env::current_exe().expect("this benchmark's path"))
        .args(&args)
        .env("LD_PRELOAD", &emu)
        .env("VMMEMU_STATE", scratch.join("vmmctl.state"))
        .env("VMMEMU_PHYSMEM", "16G")
        .env("VMMRESV_RUNDIR", scratch.join("run"))
        .env(ENV_LOCK, scratch.join("launch.lock"))
        .env(ENV_SHIM, &shim)
        .env(ENV_WORKER, &worker)
        .env(ENV_EMU_CTL, &ctl)
        .env(ENV_CHILD, "1")
        .status()
        .expect("run the benchmark under the emulator");
    let _ = std::fs::remove_dir_all(&scratch);
    std::process::exit(status.code().unwrap_or(1));
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set by the parent")))
}

// ---------------------------------------------------------------------
// The C side, dlopen()ed

/// The functions of benches/c/admit_bench.c (an `ab` is opaque here).
struct Shim {
    open: unsafe extern "C" fn(u32) -> *mut c_void,
    close: unsafe extern "C" fn(*mut c_void),
    set_reservoir: unsafe extern "C" fn(*mut c_void, u64) -> i32,
    pending: unsafe extern "C" fn(*mut c_void, *mut u64, *mut u64) -> i32,
    racy: unsafe extern "C" fn(*mut c_void, u64, u64) -> u64,
    flock: unsafe extern "C" fn(*mut c_void, u64, u64) -> u64,
    admit_commit: unsafe extern "C" fn(*mut c_void, u64, u64) -> u64,
}

fn load_shim(path: &Path) -> Shim {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in the path");
    // SAFETY: a NUL-terminated path; the handle is never closed, so the
    // symbols stay valid for the life of the process.
    let h = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {}: {}", path.display(), dlerror());
    let sym = |name: &str| {
        let n = CString::new(name).expect("symbol name");
        // SAFETY: a live handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(h, n.as_ptr()) };
        assert!(!p.is_null(), "dlsym {name}: {}", dlerror());
        p
    };
    type Loop = unsafe extern "C" fn(*mut c_void, u64, u64) -> u64;
    // SAFETY: each symbol is the function of benches/c/admit_bench.c with
    // exactly this C signature (`struct ab *` passed as an opaque pointer,
    // uint64_t as u64, int as i32, unsigned as u32).
    unsafe {
        Shim {
            open: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(u32) -> *mut c_void>(
                sym("ab_open"),
            ),
            close: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void)>(sym(
                "ab_close",
            )),
            set_reservoir: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, u64) -> i32,
            >(sym("ab_set_reservoir")),
            pending: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, *mut u64, *mut u64) -> i32,
            >(sym("ab_pending")),
            racy: std::mem::transmute::<*mut c_void, Loop>(sym("ab_racy")),
            flock: std::mem::transmute::<*mut c_void, Loop>(sym("ab_flock")),
            admit_commit: std::mem::transmute::<*mut c_void, Loop>(sym("ab_admit_commit")),
        }
    }
}

/// An open `struct ab` (reservoir + admission handle + lock file).
struct Ab<'a> {
    shim: &'a Shim,
    p: *mut c_void,
}

impl<'a> Ab<'a> {
    fn open(shim: &'a Shim, tag: u32) -> Ab<'a> {
        // SAFETY: ab_open takes a tag and returns a handle or NULL.
        let p = unsafe { (shim.open)(tag) };
        assert!(
            !p.is_null(),
            "opening the reservoir and the admission ledger through the .so failed"
        );
        Ab { shim, p }
    }

    fn set_reservoir(&self, bytes: u64) {
        // SAFETY: a live handle.
        let rc = unsafe { (self.shim.set_reservoir)(self.p, bytes) };
        assert_eq!(rc, 0, "vmmresv_reservoir_set_target({bytes}) failed");
    }

    /// Pending (reservoir, transient) bytes of every process.
    fn pending(&self) -> (u64, u64) {
        let (mut r, mut t) = (0u64, 0u64);
        // SAFETY: a live handle and two writable u64s.
        let rc = unsafe { (self.shim.pending)(self.p, &mut r, &mut t) };
        assert_eq!(rc, 0, "vmmresv_admission_pending failed");
        (r, t)
    }

    /// Run one of the C loops (`iters` times) and time it; the loop's count
    /// must be `iters` (every query fitted, every admission admitted and
    /// committed with what it charged).
    fn timed(
        &self,
        f: unsafe extern "C" fn(*mut c_void, u64, u64) -> u64,
        iters: u64,
        what: &str,
    ) -> Duration {
        let bytes = black_box(VM_BYTES);
        let t0 = Instant::now();
        // SAFETY: a live handle; the loop only calls the library.
        let n = unsafe { f(self.p, iters, bytes) };
        let t = t0.elapsed();
        assert_eq!(n, iters, "{what}: {n} of {iters} succeeded (see stderr)");
        t
    }
}

impl Drop for Ab<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle from ab_open, freed once.
        unsafe { (self.shim.close)(self.p) };
    }
}

// ---------------------------------------------------------------------
// Other processes

/// A worker process (admit_bench_worker) with its stdin and stdout.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(args: &[&str]) -> Worker {
        let mut child = Command::new(env_path(ENV_WORKER))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn admit_bench_worker");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self
            .stdout
            .read_line(&mut s)
            .expect("read a worker's output");
        assert!(n > 0, "a worker exited early (see stderr)");
        s.trim_end().to_string()
    }

    fn send(&mut self, line: &str) {
        let w = self.stdin.as_mut().expect("stdin open");
        writeln!(w, "{line}").expect("write to a worker");
        w.flush().expect("flush to a worker");
    }

    /// Close stdin (the worker's signal to finish), read what it still
    /// says, and check that it exited 0.
    fn finish(mut self) -> Vec<String> {
        self.stdin = None;
        let mut rest = Vec::new();
        let mut s = String::new();
        while self
            .stdout
            .read_line(&mut s)
            .expect("read a worker's output")
            > 0
        {
            rest.push(s.trim_end().to_string());
            s.clear();
        }
        let st = self.child.wait().expect("wait for a worker");
        assert!(st.success(), "a worker failed: {st} (see stderr)");
        rest
    }
}

/// Another live process holding `n` one-page claims.
fn hold(n: u64) -> Worker {
    let mut w = Worker::spawn(&["hold", &n.to_string()]);
    let l = w.line();
    assert_eq!(l, format!("held {n}"), "the holding process");
    w
}

fn release_held(w: Worker) {
    let rest = w.finish();
    assert_eq!(
        rest,
        ["released"],
        "the holding process released its claims"
    );
}

/// What the launchers did, summed.
#[derive(Clone, Copy, Debug, Default)]
struct Starts {
    admitted: u64,
    refused: u64,
    over: u64,
    errors: u64,
}

impl Starts {
    fn add(&mut self, o: Starts) {
        self.admitted += o.admitted;
        self.refused += o.refused;
        self.over += o.over;
        self.errors += o.errors;
    }

    fn total(&self) -> u64 {
        self.admitted + self.refused + self.over + self.errors
    }
}

/// `LAUNCHERS` launcher processes of one mode.
struct Launchers {
    mode: &'static str,
    w: Vec<Worker>,
}

impl Launchers {
    fn spawn(mode: &'static str, vm_bytes: u64) -> Launchers {
        let bytes = vm_bytes.to_string();
        let w = (0..LAUNCHERS)
            .map(|i| Worker::spawn(&["launch", mode, &i.to_string(), &bytes]))
            .collect();
        Launchers { mode, w }
    }

    /// Every launcher makes `n` VM starts at once; the wall time from the
    /// first order to the last report, and what they did.
    fn run(&mut self, n: u64) -> (Duration, Starts) {
        let order = n.to_string();
        let t0 = Instant::now();
        for w in &mut self.w {
            w.send(&order);
        }
        let mut sum = Starts::default();
        for w in &mut self.w {
            let l = w.line();
            let v: Vec<u64> = l
                .split(' ')
                .map(|x| x.parse().expect("a launcher's counts"))
                .collect();
            assert_eq!(v.len(), 4, "a launcher's report: {l:?}");
            sum.add(Starts {
                admitted: v[0],
                refused: v[1],
                over: v[2],
                errors: v[3],
            });
        }
        let t = t0.elapsed();
        assert_eq!(sum.errors, 0, "{}: launcher errors (see stderr)", self.mode);
        assert_eq!(sum.total(), n * LAUNCHERS as u64);
        (t, sum)
    }

    fn finish(self) {
        for w in self.w {
            let rest = w.finish();
            assert!(rest.is_empty(), "a launcher said more: {rest:?}");
        }
    }
}

/// The emulator's counters (`vmmemu_ctl show`).
fn emu_show() -> HashMap<String, String> {
    let out = Command::new(env_path(ENV_EMU_CTL))
        .arg("show")
        .output()
        .expect("run vmmemu_ctl show");
    assert!(out.status.success(), "vmmemu_ctl show failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn emu_num(show: &HashMap<String, String>, key: &str) -> u64 {
    show.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("vmmemu_ctl show has no numeric {key}"))
}

/// No claim left, no VM left, the emulated kernel never above its limit.
fn check_clean(ab: &Ab<'_>, after: &str) {
    assert_eq!(ab.pending(), (0, 0), "claims left behind after {after}");
    let s = emu_show();
    assert_eq!(emu_num(&s, "vm_count"), 0, "VMs left after {after}");
    assert_eq!(
        emu_num(&s, "limit_exceeded"),
        0,
        "the emulated kernel saw its limit exceeded"
    );
    assert_eq!(
        emu_num(&s, "free"),
        RESERVOIR_BYTES,
        "reservoir free after {after}"
    );
}

// ---------------------------------------------------------------------
// Groups

fn public_path(c: &mut Criterion, ab: &Ab<'_>) {
    let shim = ab.shim;
    let mut g = c.benchmark_group("public_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("racy_query_compare", |b| {
        b.iter_custom(|iters| ab.timed(shim.racy, iters, "racy query + compare"))
    });
    g.bench_function("flock_query_compare", |b| {
        b.iter_custom(|iters| ab.timed(shim.flock, iters, "flock + query + compare"))
    });
    for n in PENDING {
        let holder = (n > 0).then(|| hold(n));
        assert_eq!(
            ab.pending(),
            (n * 4096, 0),
            "{n} claims held by the other process"
        );
        g.bench_with_input(BenchmarkId::new("admit_commit", n), &n, |b, _| {
            b.iter_custom(|iters| ab.timed(shim.admit_commit, iters, "admit + commit"))
        });
        assert_eq!(
            ab.pending(),
            (n * 4096, 0),
            "only the other process's claims are left"
        );
        if let Some(h) = holder {
            release_held(h);
        }
    }
    g.finish();
    check_clean(ab, "public_path");
}

/// The counts of one round's timed launcher runs, by mode.
type LaunchCounts = HashMap<&'static str, Starts>;

fn launchers_16(c: &mut Criterion, ab: &Ab<'_>, counts: &mut LaunchCounts) {
    // Untimed checks first: the ledger never over-admits, and the racy
    // launch (no ledger, no lock) shows the check can see it happen.
    for mode in ["ledger", "flock", "racy"] {
        let mut l = Launchers::spawn(mode, CHECK_VM_BYTES);
        let (t, s) = l.run(CHECK_STARTS);
        l.finish();
        println!(
            "launchers check {mode}: {LAUNCHERS} x {CHECK_STARTS} VM starts of {} MiB (room for 4) in {:.0} ms: {} admitted, {} refused, {} over-admitted{}",
            CHECK_VM_BYTES >> 20,
            t.as_secs_f64() * 1e3,
            s.admitted,
            s.refused,
            s.over,
            match mode {
                "racy" => " (no ledger, no lock: the race RFD 185 describes; not a failure)",
                _ => ": must be 0",
            }
        );
        if mode != "racy" {
            assert_eq!(
                s.over, 0,
                "{mode}: over-admission: the kernel refused memory to an admitted VM"
            );
        }
        check_clean(ab, &format!("the {mode} launchers"));
    }

    let mut g = c.benchmark_group("launchers_16");
    g.throughput(Throughput::Elements(LAUNCHERS as u64));
    for (id, mode) in [
        ("ledger_admit_commit", "ledger"),
        ("flock_query_compare", "flock"),
        ("emulator_floor", "floor"),
    ] {
        let mut l = Launchers::spawn(mode, TIMED_VM_BYTES);
        let mut sum = Starts::default();
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let (t, s) = l.run(iters);
                if mode != "floor" {
                    assert_eq!(
                        s.over, 0,
                        "{mode}: over-admission: the kernel refused memory to an admitted VM"
                    );
                }
                sum.add(s);
                t
            })
        });
        l.finish();
        counts.insert(mode, sum);
        check_clean(ab, &format!("launchers_16/{id}"));
    }
    g.finish();
}

/// A kernel that answers the reservoir query from memory (the library's
/// `Kernel` seam): what admission costs without the emulated ioctl.
struct MemKernel;

impl Kernel for MemKernel {
    fn resv_query(&self) -> Result<vmm_resv_query, i32> {
        Ok(vmm_resv_query {
            vrq_free_sz: RESERVOIR_BYTES,
            vrq_alloc_sz: 0,
            vrq_alloc_transient_sz: 0,
            vrq_limit: 16 << 30,
        })
    }

    fn resv_set_target(&self, _req: &mut vmm_resv_target) -> Result<(), i32> {
        Err(libc::EPERM)
    }
}

fn in_memory_kernel(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("vmmresv-admit-bench-mem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the in-memory kernel's ledger directory");
    let adm = Admission::open_with_kernel(Box::new(MemKernel), &dir.join("admission.ledger"))
        .expect("open admission on the in-memory kernel");
    // The same rotation over 256 UUIDs as the C loop (ab_admit_commit).
    let uuids: Vec<[u8; 16]> = (0..256u32)
        .map(|i| {
            let mut u = [0u8; 16];
            u[0] = 0xbe;
            u[3] = 2;
            u[12..].copy_from_slice(&i.to_be_bytes());
            u
        })
        .collect();

    let mut g = c.benchmark_group("in_memory_kernel");
    g.throughput(Throughput::Elements(1));
    g.bench_function("admit_commit", |b| {
        b.iter_custom(|iters| {
            let bytes = black_box(VM_BYTES);
            let mut ok = 0u64;
            let t0 = Instant::now();
            for i in 0..iters {
                let u = &uuids[(i % 256) as usize];
                let v = adm
                    .admit(u, bytes, Preference::Require)
                    .expect("admit on the in-memory kernel");
                if v.decision == Decision::UseReservoir
                    && adm.commit(u).expect("commit on the in-memory kernel") == v.charged_bytes
                {
                    ok += 1;
                }
            }
            let t = t0.elapsed();
            assert_eq!(
                ok, iters,
                "in-memory kernel: every admission admitted and committed"
            );
            t
        })
    });
    g.bench_function("getppid", |b| {
        // SAFETY: getppid has no preconditions and cannot fail.
        b.iter(|| unsafe { libc::getppid() })
    });
    g.finish();
    assert!(
        adm.claims().expect("readable ledger").is_empty(),
        "claims left behind on the in-memory kernel"
    );
    assert_eq!(adm.pending_bytes(Pool::Reservoir), 0);
    drop(adm);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------
// Ratios from criterion's measurements

/// Benchmarks whose medians are read, in the order printed.
const IDS: &[&str] = &[
    "public_path/racy_query_compare",
    "public_path/flock_query_compare",
    "public_path/admit_commit/0",
    "public_path/admit_commit/64",
    "public_path/admit_commit/1024",
    "launchers_16/ledger_admit_commit",
    "launchers_16/flock_query_compare",
    "launchers_16/emulator_floor",
    "in_memory_kernel/admit_commit",
    "in_memory_kernel/getppid",
];

/// Derived figures of a round (admissions per second of the launchers).
const ADM_LEDGER: &str = "launchers_16: ledger admissions/s";
const ADM_FLOCK: &str = "launchers_16: flock admissions/s";
const STARTS_LEDGER: &str = "launchers_16: ledger starts/s";
const STARTS_FLOCK: &str = "launchers_16: flock starts/s";
const STARTS_FLOOR: &str = "launchers_16: emulator floor starts/s";
const DERIVED: &[&str] = &[
    ADM_LEDGER,
    ADM_FLOCK,
    STARTS_LEDGER,
    STARTS_FLOCK,
    STARTS_FLOOR,
];

/// One round's figures: medians (ns) by id, and the derived rates.
type Round = HashMap<&'static str, f64>;

fn read_round(since: SystemTime, counts: &LaunchCounts) -> Round {
    let mut r: Round = IDS
        .iter()
        .filter_map(|id| Some((*id, median_ns(id, since)?)))
        .collect();
    // Starts per second = 16 / (ns per iteration) * 1e9; admissions are
    // the admitted share of them (over every timed call of the round).
    let rate = |id: &str, mode: &str, all: bool| -> Option<f64> {
        let ns = *r.get(id)?;
        let s = counts.get(mode)?;
        let share = if all {
            1.0
        } else {
            s.admitted as f64 / s.total().max(1) as f64
        };
        Some(LAUNCHERS as f64 * 1e9 / ns * share)
    };
    let derived = [
        (
            ADM_LEDGER,
            rate("launchers_16/ledger_admit_commit", "ledger", false),
        ),
        (
            ADM_FLOCK,
            rate("launchers_16/flock_query_compare", "flock", false),
        ),
        (
            STARTS_LEDGER,
            rate("launchers_16/ledger_admit_commit", "ledger", true),
        ),
        (
            STARTS_FLOCK,
            rate("launchers_16/flock_query_compare", "flock", true),
        ),
        (
            STARTS_FLOOR,
            rate("launchers_16/emulator_floor", "floor", true),
        ),
    ];
    for (k, v) in derived {
        if let Some(v) = v {
            r.insert(k, v);
        }
    }
    r
}

/// A goal: the ratio of two figures of a round against a bound.
struct Goal {
    what: &'static str,
    num: &'static str,
    den: &'static str,
    /// `true`: at most `bound`; `false`: at least; `None`: no bound, shown
    /// for reference.
    at_most: Option<bool>,
    bound: f64,
}

const GOALS: &[Goal] = &[
    Goal {
        what: "admit+commit, no pending / racy query+compare",
        num: "public_path/admit_commit/0",
        den: "public_path/racy_query_compare",
        at_most: Some(true),
        bound: 2.0,
    },
    Goal {
        what: "admit+commit, 64 pending / no pending",
        num: "public_path/admit_commit/64",
        den: "public_path/admit_commit/0",
        at_most: Some(true),
        bound: 1.2,
    },
    Goal {
        what: "admit+commit, 1024 pending / no pending",
        num: "public_path/admit_commit/1024",
        den: "public_path/admit_commit/0",
        at_most: Some(true),
        bound: 1.2,
    },
    Goal {
        what: "(ref) flock query+compare / racy query+compare",
        num: "public_path/flock_query_compare",
        den: "public_path/racy_query_compare",
        at_most: None,
        bound: 0.0,
    },
    Goal {
        what: "16 launchers: admissions/s, ledger / flock",
        num: ADM_LEDGER,
        den: ADM_FLOCK,
        at_most: Some(false),
        bound: 1.0,
    },
    Goal {
        what: "(ref) 16 launchers: starts (decisions)/s, ledger / flock",
        num: STARTS_LEDGER,
        den: STARTS_FLOCK,
        at_most: None,
        bound: 0.0,
    },
    Goal {
        what: "(bound) 16 launchers: ledger admissions/s / floor starts/s",
        num: ADM_LEDGER,
        den: STARTS_FLOOR,
        at_most: None,
        bound: 0.0,
    },
    Goal {
        what: "(bound) 16 launchers: flock admissions/s / floor starts/s",
        num: ADM_FLOCK,
        den: STARTS_FLOOR,
        at_most: None,
        bound: 0.0,
    },
    Goal {
        what: "in-memory kernel: admit+commit / getppid()",
        num: "in_memory_kernel/admit_commit",
        den: "in_memory_kernel/getppid",
        at_most: Some(true),
        bound: 10.0,
    },
];

fn print_ratios(rounds: &[Round], counts: &[LaunchCounts]) {
    println!();
    println!(
        "== median ns per iteration (launchers_16: one VM start on each of {LAUNCHERS} processes), from {}",
        criterion_home().join("<id>/new/sample.json").display()
    );
    let head: Vec<String> = (1..=rounds.len()).map(|r| format!("round {r}")).collect();
    println!("{}  benchmark", fmt_row(&head, 12));
    for id in IDS.iter().chain(DERIVED) {
        let row: Vec<String> = rounds
            .iter()
            .map(|r| r.get(id).map_or("-".into(), |v| format!("{v:.1}")))
            .collect();
        println!("{}  {id}", fmt_row(&row, 12));
    }
    for (i, c) in counts.iter().enumerate() {
        let mut modes: Vec<_> = c.iter().collect();
        modes.sort_by_key(|(m, _)| **m);
        for (m, s) in modes {
            println!(
                "round {}: launchers {m}: {} starts timed: {} admitted ({:.0} %), {} refused, {} over-admitted",
                i + 1,
                s.total(),
                s.admitted,
                100.0 * s.admitted as f64 / s.total().max(1) as f64,
                s.refused,
                s.over
            );
        }
    }
    println!();
    println!(
        "== goals: {} of the ratio of the two figures [range]; a miss is reported, not failed",
        if rounds.len() > 1 {
            format!("the median over {} rounds", rounds.len())
        } else {
            "one round".into()
        }
    );
    let (mut met, mut missed, mut unmeasured) = (0, 0, 0);
    for g in GOALS {
        let mut ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(r.get(g.num)? / r.get(g.den)?))
            .collect();
        if ratios.is_empty() {
            if g.at_most.is_some() {
                unmeasured += 1;
            }
            println!("{:<60} =   n/a (not measured in this run)", g.what);
            continue;
        }
        let ratio = median(&mut ratios);
        let range = if ratios.len() > 1 {
            format!(" [{:.2}-{:.2}]", ratios[0], ratios[ratios.len() - 1])
        } else {
            String::new()
        };
        let verdict = match g.at_most {
            None => String::new(),
            Some(at_most) => {
                let ok = if at_most {
                    ratio <= g.bound
                } else {
                    ratio >= g.bound
                };
                if ok {
                    met += 1;
                } else {
                    missed += 1;
                }
                format!(
                    " (goal {} {}) {}",
                    if at_most { "<=" } else { ">=" },
                    g.bound,
                    if ok { "OK" } else { "MISSED" }
                )
            }
        };
        println!("{:<60} = {ratio:>7.3}{range}{verdict}", g.what);
    }
    println!("over-admissions in the ledger and flock launchers: 0 (checked)");
    println!("goals: {met} met, {missed} missed, {unmeasured} not measured");
}

// ---------------------------------------------------------------------

fn config() -> Criterion {
    let base = Criterion::default();
    // 30 samples in full mode: with 1,024 pending claims one admission
    // takes milliseconds on today's ledger, and criterion's minimum is
    // sample_size * (sample_size + 1) / 2 iterations.
    let base = if quick() {
        base.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10)
            .nresamples(10_000)
    } else {
        base.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(30)
    };
    base.configure_from_args()
}

fn main() {
    if std::env::var_os(ENV_CHILD).is_none() {
        parent();
    }
    let shim = load_shim(&env_path(ENV_SHIM));
    let ab = Ab::open(&shim, 1);
    ab.set_reservoir(RESERVOIR_BYTES);
    check_clean(&ab, "setup");
    let n = rounds();
    let (mut results, mut all_counts) = (Vec::new(), Vec::new());
    for r in 1..=n {
        if n > 1 {
            println!("\n######## round {r} of {n}\n");
        }
        let since = now_floor();
        let mut c = config();
        let mut counts = LaunchCounts::new();
        public_path(&mut c, &ab);
        launchers_16(&mut c, &ab, &mut counts);
        in_memory_kernel(&mut c);
        c.final_summary();
        if measuring() {
            results.push(read_round(since, &counts));
            all_counts.push(counts);
        }
    }
    if measuring() {
        print_ratios(&results, &all_counts);
    }
}
