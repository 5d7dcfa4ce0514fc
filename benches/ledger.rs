//! Benchmarks of the claim ledgers, each group with its baselines measured
//! in the same run, and the goal ratios computed at the end from
//! criterion's own samples. See benches/README.md for the goals, the method
//! and the recorded figures.
//!
//! ```text
//! cargo bench --bench ledger                          # 3 rounds, then the ratios
//! VMMRESV_BENCH_QUICK=1 cargo bench --bench ledger    # CI: 1 short round
//! VMMRESV_BENCH_ROUNDS=5 cargo bench --bench ledger   # more rounds
//! VMMRESV_BENCH_RATIOS_ONLY=1 cargo bench --bench ledger  # ratios of the last samples
//! ```
//!
//! Groups (criterion ids `group/function`):
//! - `uncontended`: one thread, claim+release of 1 page: the bare RMW pair,
//!   the bare CAS-loop claim, a `Mutex<u64>` ledger, [`LocalLedger`], the
//!   shared ledger on its mapped file, one `getppid()` system call, and the
//!   `SystemTime::now()` that a shared-ledger claim reads (for reference).
//! - `contended_2_threads`: two threads, the same fixed number of claim
//!   attempts each against a capacity that binds (3 pages, claims of 1 or 2),
//!   for the bare CAS loop, the `Mutex<u64>` ledger and [`LocalLedger`].
//!   Before timing, each runs once with a check after every admitted claim
//!   that the claimed total is within the capacity, and 0 at the end.
//! - `live_claims`: claim+release on the shared ledger file with 1, 64 and
//!   2048 other live claims (half the ledger's 4096 slots).
//! - `c_abi`: claim+release of [`LocalLedger`] from Rust, the same through
//!   the C ABI from C code through `target/lib/libvmmresv.so.1`, and (for
//!   reference) the `extern "C"` functions called from Rust, linked
//!   statically.
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
use std::ffi::{c_void, CString};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use vmmresv::admission::local::LocalLedger;
use vmmresv::ledger::file::{FileWorld, LedgerFile};
use vmmresv::ledger::{ClaimOutcome, Ledger, Pool, NSLOTS};

/// Pages per claim in the single-threaded groups.
const PAGES: u64 = 1;
/// Capacity of the single-threaded ledgers: every claim fits.
const ROOMY: u64 = 1 << 20;
/// Capacity of the contended ledgers: claims of 1 or 2 pages from two
/// threads, so two claims of 2 pages at once would over-admit.
const TIGHT: u64 = 3;
/// Claim attempts per thread in the over-admission check before timing.
const CHECK_OPS: u64 = 200_000;

// ---------------------------------------------------------------------
// The subjects and the baselines

/// Keeps a baseline's word on its own pair of cache lines, as
/// [`LocalLedger`] is (128-byte aligned).
#[repr(align(128))]
struct Padded<T>(T);

/// Claim and release, the interface every contender implements.
trait Admit: Sync {
    /// Claim `pages` if they fit; whether they were admitted.
    fn try_claim(&self, pages: u64) -> bool;
    /// Give back `pages` admitted earlier.
    fn release(&self, pages: u64);
    /// The claimed total now.
    fn claimed(&self) -> u64;
}

/// The physical floor: one `fetch_add` and one `fetch_sub`, no check at
/// all (it cannot refuse, so it is not a ledger; only the floor).
#[inline]
fn rmw_pair(word: &AtomicU64, pages: u64) {
    word.fetch_add(pages, Ordering::AcqRel);
    word.fetch_sub(pages, Ordering::Release);
}

/// The bare CAS-loop claim: load, check against a constant capacity, CAS;
/// release is a plain `fetch_sub`. The least an exact ledger can do.
struct BareCas {
    word: Padded<AtomicU64>,
    capacity: u64,
}

impl BareCas {
    fn new(capacity: u64) -> BareCas {
        BareCas {
            word: Padded(AtomicU64::new(0)),
            capacity,
        }
    }
}

impl Admit for BareCas {
    #[inline]
    fn try_claim(&self, pages: u64) -> bool {
        let word = &self.word.0;
        let mut cur = word.load(Ordering::Acquire);
        loop {
            if cur + pages > self.capacity {
                return false;
            }
            match word.compare_exchange_weak(cur, cur + pages, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    #[inline]
    fn release(&self, pages: u64) {
        self.word.0.fetch_sub(pages, Ordering::Release);
    }

    fn claimed(&self) -> u64 {
        self.word.0.load(Ordering::Acquire)
    }
}

/// What a simple implementation would do (the kernel's reservoir is
/// guarded by a mutex): a `Mutex<u64>` of claimed pages.
struct MutexLedger {
    claimed: Padded<Mutex<u64>>,
    capacity: u64,
}

impl MutexLedger {
    fn new(capacity: u64) -> MutexLedger {
        MutexLedger {
            claimed: Padded(Mutex::new(0)),
            capacity,
        }
    }
}

impl Admit for MutexLedger {
    #[inline]
    fn try_claim(&self, pages: u64) -> bool {
        let mut claimed = self.claimed.0.lock().unwrap();
        if *claimed + pages > self.capacity {
            return false;
        }
        *claimed += pages;
        true
    }

    #[inline]
    fn release(&self, pages: u64) {
        *self.claimed.0.lock().unwrap() -= pages;
    }

    fn claimed(&self) -> u64 {
        *self.claimed.0.lock().unwrap()
    }
}

impl Admit for LocalLedger {
    #[inline]
    fn try_claim(&self, pages: u64) -> bool {
        LocalLedger::try_claim(self, pages).is_ok()
    }

    #[inline]
    fn release(&self, pages: u64) {
        LocalLedger::release(self, pages);
    }

    fn claimed(&self) -> u64 {
        LocalLedger::claimed(self)
    }
}

/// One claim+release; whether the claim was admitted.
#[inline]
fn claim_release<A: Admit>(a: &A, pages: u64) -> bool {
    if a.try_claim(pages) {
        a.release(pages);
        true
    } else {
        false
    }
}

fn local_ledger(capacity: u64) -> LocalLedger {
    LocalLedger::new(capacity).expect("capacity within MAX_PAGES")
}

// ---------------------------------------------------------------------
// The shared (cross-process) ledger, on its real mapped file

/// A ledger file in a fresh temporary directory, removed on drop.
struct SharedFile {
    file: Option<LedgerFile>,
    dir: PathBuf,
}

impl SharedFile {
    fn new(tag: &str) -> SharedFile {
        let dir =
            std::env::temp_dir().join(format!("vmmresv-bench-{}-{}", tag, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = LedgerFile::open_or_create(&dir.join("admission.ledger"))
            .expect("create the ledger file in the temporary directory");
        SharedFile {
            file: Some(file),
            dir,
        }
    }

    fn ledger(&self) -> Ledger<'_> {
        self.file.as_ref().expect("open until drop").ledger()
    }

    /// This process, as the ledger's record locks see it.
    fn world(&self) -> FileWorld<'_> {
        self.file.as_ref().expect("open until drop").world()
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        self.file = None; // unmap first
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a UUID's claim starts looking for a free slot: the same hash as
/// the library's admission code (`ledger::hint`), so claims
/// spread over the slots as real admissions do.
fn hint(uuid: &[u8; 16]) -> usize {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in uuid {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % NSLOTS as u64) as usize
}

/// A distinct UUID per (`tag`, `n`).
fn uuid(tag: u8, n: u32) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[0] = 0xbe;
    u[1] = tag;
    u[12..].copy_from_slice(&n.to_be_bytes());
    u
}

/// One claim+release on the shared ledger: a slot taken and recorded (pid,
/// UUID, pages, time, check word), the pool's total updated, then both
/// undone. The capacity reading is a constant here; in admission it is the
/// reservoir query, measured apart from the ledger.
#[inline]
fn shared_claim_release(l: &Ledger<'_>, me: &FileWorld<'_>, uuid: [u8; 16], hint: usize) -> bool {
    match l.claim(me, uuid, Pool::Reservoir, PAGES, hint, &mut || Ok(ROOMY)) {
        Ok(ClaimOutcome::Claimed { slot, .. }) => {
            let pages = l.release(me, slot).expect("release our own claim");
            pages == PAGES
        }
        Ok(ClaimOutcome::Refused(r)) => panic!("roomy ledger refused a claim: {r:?}"),
        Err(e) => panic!("shared ledger claim failed: {e:?}"),
    }
}

// ---------------------------------------------------------------------
// Groups

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended");
    g.throughput(Throughput::Elements(1));

    let word = Padded(AtomicU64::new(0));
    g.bench_function("bare_rmw_pair", |b| {
        b.iter(|| rmw_pair(&word.0, black_box(PAGES)))
    });
    assert_eq!(word.0.load(Ordering::Relaxed), 0);

    let cas = BareCas::new(ROOMY);
    g.bench_function("bare_cas_claim", |b| {
        b.iter(|| claim_release(&cas, black_box(PAGES)))
    });
    assert_eq!(cas.claimed(), 0);

    let mutex = MutexLedger::new(ROOMY);
    g.bench_function("mutex_ledger", |b| {
        b.iter(|| claim_release(&mutex, black_box(PAGES)))
    });
    assert_eq!(mutex.claimed(), 0);

    let local = local_ledger(ROOMY);
    g.bench_function("local_ledger", |b| {
        b.iter(|| claim_release(&local, black_box(PAGES)))
    });
    assert_eq!(local.claimed(), 0);

    let shared = SharedFile::new("uncontended");
    let l = shared.ledger();
    let me = shared.world();
    let u = uuid(0, 0);
    let h = hint(&u);
    g.bench_function("shared_ledger", |b| {
        b.iter(|| shared_claim_release(&l, &me, black_box(u), black_box(h)))
    });
    assert_eq!(l.claimed(Pool::Reservoir), 0);
    assert!(l.claims().expect("readable ledger").is_empty());

    g.bench_function("getppid", |b| {
        // SAFETY: getppid has no preconditions and cannot fail.
        b.iter(|| unsafe { libc::getppid() })
    });

    g.bench_function("system_time_now", |b| b.iter(SystemTime::now));
    g.finish();
}

/// What one thread of a contended run saw.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    start: Option<Instant>,
    end: Option<Instant>,
    admitted: u64,
    refused: u64,
    /// The other thread's published progress when this one finished.
    other_at_end: u64,
    /// The largest claimed total read right after an admitted claim (only
    /// when checking).
    max_claimed: u64,
}

/// A contended run, summed over both threads.
#[derive(Clone, Copy, Debug)]
struct Run {
    wall: Duration,
    iters: u64,
    admitted: u64,
    refused: u64,
    /// How far (0 to 1) the slower thread had got when the faster one
    /// finished: near 1, the two really ran side by side; near 0, one ran
    /// mostly alone (a lock handed to the thread that already has it).
    interleaved: f64,
    max_claimed: u64,
}

/// How often a thread publishes its progress (a store to its own line).
const PROGRESS_EVERY: u64 = 256;

/// Two threads, `iters` claim attempts each (1 or 2 pages, releasing each
/// admitted claim at once), started together; the wall time runs from the
/// first start to the last end. With `CHECK`, every admitted claim is
/// followed by a read of the claimed total, which must be within
/// `capacity` (only outside the timed runs: the read is one more access to
/// the contended line, and a lock for the mutex).
fn two_threads<A: Admit, const CHECK: bool>(a: &A, capacity: u64, iters: u64) -> Run {
    let barrier = Barrier::new(2);
    let progress = [Padded(AtomicU64::new(0)), Padded(AtomicU64::new(0))];
    let seen: Vec<Seen> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2usize)
            .map(|t| {
                let (barrier, progress) = (&barrier, &progress);
                s.spawn(move || {
                    let mut me = Seen::default();
                    barrier.wait();
                    me.start = Some(Instant::now());
                    for i in 0..iters {
                        if i % PROGRESS_EVERY == 0 {
                            progress[t].0.store(i, Ordering::Relaxed);
                        }
                        // Thread 0 alternates 1,2,1,2; thread 1 goes
                        // 1,1,2,2: every pair meets, and 2+2 > 3.
                        let pages = 1 + ((i >> t) & 1);
                        if a.try_claim(pages) {
                            me.admitted += 1;
                            if CHECK {
                                let now = a.claimed();
                                assert!(
                                    now <= capacity,
                                    "over-admitted: {now} pages claimed, capacity {capacity}"
                                );
                                me.max_claimed = me.max_claimed.max(now);
                            }
                            a.release(pages);
                        } else {
                            me.refused += 1;
                        }
                    }
                    progress[t].0.store(iters, Ordering::Relaxed);
                    me.end = Some(Instant::now());
                    me.other_at_end = progress[1 - t].0.load(Ordering::Relaxed);
                    me
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect()
    });
    for s in &seen {
        assert_eq!(s.admitted + s.refused, iters);
    }
    assert_eq!(a.claimed(), 0, "claims left after every release");
    let first = seen.iter().filter_map(|s| s.start).min().expect("started");
    let last = seen.iter().filter_map(|s| s.end).max().expect("ended");
    let faster = seen.iter().min_by_key(|s| s.end).expect("two threads");
    Run {
        wall: last - first,
        iters,
        admitted: seen.iter().map(|s| s.admitted).sum(),
        refused: seen.iter().map(|s| s.refused).sum(),
        interleaved: faster.other_at_end as f64 / iters.max(1) as f64,
        max_claimed: seen.iter().map(|s| s.max_claimed).max().unwrap_or(0),
    }
}

/// The over-admission check of one contender, before it is timed.
fn check_no_over_admission<A: Admit>(name: &str, a: &A) {
    let r = two_threads::<A, true>(a, TIGHT, CHECK_OPS);
    println!(
        "contended check {name}: 2 x {CHECK_OPS} attempts in {:.1} ms, {} admitted, {} refused, \
         largest total seen {} <= capacity {TIGHT}, 0 at end: OK",
        r.wall.as_secs_f64() * 1e3,
        r.admitted,
        r.refused,
        r.max_claimed
    );
}

/// How the last timed sample of a contender went.
fn describe(name: &str, r: Option<Run>) {
    if let Some(r) = r {
        println!(
            "contended {name} (last sample, 2 x {} attempts): {:.0}% admitted, {:.0}% refused; \
             when one thread finished the other had done {:.0}% of its attempts",
            r.iters,
            100.0 * r.admitted as f64 / (2 * r.iters) as f64,
            100.0 * r.refused as f64 / (2 * r.iters) as f64,
            100.0 * r.interleaved
        );
    }
}

fn contended(c: &mut Criterion) {
    let cas = BareCas::new(TIGHT);
    let mutex = MutexLedger::new(TIGHT);
    let local = local_ledger(TIGHT);
    check_no_over_admission("bare_cas_loop", &cas);
    check_no_over_admission("mutex_ledger", &mutex);
    check_no_over_admission("local_ledger", &local);

    let mut g = c.benchmark_group("contended_2_threads");
    // One iteration is one attempt on each thread: two operations.
    g.throughput(Throughput::Elements(2));
    let mut last = [None; 3];
    g.bench_function("bare_cas_loop", |b| {
        b.iter_custom(|iters| {
            let r = two_threads::<_, false>(&cas, TIGHT, iters);
            last[0] = Some(r);
            r.wall
        })
    });
    g.bench_function("mutex_ledger", |b| {
        b.iter_custom(|iters| {
            let r = two_threads::<_, false>(&mutex, TIGHT, iters);
            last[1] = Some(r);
            r.wall
        })
    });
    g.bench_function("local_ledger", |b| {
        b.iter_custom(|iters| {
            let r = two_threads::<_, false>(&local, TIGHT, iters);
            last[2] = Some(r);
            r.wall
        })
    });
    g.finish();
    describe("bare_cas_loop", last[0]);
    describe("mutex_ledger", last[1]);
    describe("local_ledger", last[2]);
}

/// Claims measured in rotation in `live_claims`, so the slot search starts
/// at many places (as the hints of real VMs do) rather than at one.
const ROTATION: u32 = 256;

fn live_claims(c: &mut Criterion) {
    let shared = SharedFile::new("live");
    let l = shared.ledger();
    let me = shared.world();
    let probes: Vec<([u8; 16], usize)> = (0..ROTATION)
        .map(|n| {
            let u = uuid(2, n);
            (u, hint(&u))
        })
        .collect();
    let mut g = c.benchmark_group("live_claims");
    g.throughput(Throughput::Elements(1));
    for live in [1u32, 64, 2048] {
        // Fill: `live` claims of distinct VMs, each at its own hint.
        let mut held = Vec::with_capacity(live as usize);
        for n in 0..live {
            let u = uuid(1, n);
            match l.claim(&me, u, Pool::Reservoir, PAGES, hint(&u), &mut || Ok(ROOMY)) {
                Ok(ClaimOutcome::Claimed { slot, .. }) => held.push(slot),
                other => panic!("filling the ledger: {other:?}"),
            }
        }
        assert_eq!(l.claimed(Pool::Reservoir), u64::from(live) * PAGES);
        g.bench_with_input(BenchmarkId::new("shared_ledger", live), &live, |b, _| {
            let mut k = 0usize;
            b.iter(|| {
                let (u, h) = probes[k % probes.len()];
                k = k.wrapping_add(1);
                shared_claim_release(&l, &me, black_box(u), black_box(h))
            })
        });
        for slot in held {
            l.release(&me, slot).expect("release a fill claim");
        }
        assert_eq!(l.claimed(Pool::Reservoir), 0);
    }
    assert!(l.claims().expect("readable ledger").is_empty());
    g.finish();
}

// ---------------------------------------------------------------------
// The C ABI, from C, through the shared object

/// The C helper's entry points (benches/c/abi_bench.c), from a dlopen of
/// the helper, which is linked against target/lib/libvmmresv.so.1.
struct CAbi {
    new: unsafe extern "C" fn(u64) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void),
    run: unsafe extern "C" fn(*const c_void, u64, u64) -> u64,
}

/// target/lib/libvmmresv.so.1, built with `make -s lib` if it is missing or
/// older than the library's sources (make decides; it is a no-op when the
/// .so is fresh).
fn ensure_so() -> PathBuf {
    let root = root();
    let so = root.join("target/lib/libvmmresv.so.1");
    let made = Command::new("make")
        .args(["-s", "lib"])
        .current_dir(&root)
        .status();
    match made {
        Ok(s) if s.success() => {}
        other => {
            assert!(
                so.exists(),
                "`make -s lib` failed ({other:?}) and {} is missing",
                so.display()
            );
            println!(
                "warning: `make -s lib` failed ({other:?}); measuring the existing {}",
                so.display()
            );
        }
    }
    so
}

/// Compile benches/c/abi_bench.c into a shared object linked against the
/// library's .so (as a C consumer links it) and dlopen it.
fn load_c_abi() -> CAbi {
    let root = root();
    let libdir = ensure_so()
        .parent()
        .expect("target/lib")
        .canonicalize()
        .expect("target/lib exists");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-c");
    std::fs::create_dir_all(&dir).expect("create the C helper's directory");
    let out = dir.join(format!("libabi_bench.{}.so", std::process::id()));
    let cc = Command::new("cc")
        .args([
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .args(["-fPIC", "-shared"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg("-o")
        .arg(&out)
        .arg(root.join("benches/c/abi_bench.c"))
        .arg(format!("-L{}", libdir.display()))
        .arg("-lvmmresv")
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .output()
        .expect("run the system C compiler `cc`");
    assert!(
        cc.status.success(),
        "cc failed on benches/c/abi_bench.c:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let c = dlopen(&out);
    let _ = std::fs::remove_file(&out); // stays mapped
    c
}

fn dlopen(path: &Path) -> CAbi {
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
    // SAFETY: the three symbols are the functions of benches/c/abi_bench.c
    // with exactly these C signatures (a ledger handle is passed as an
    // opaque pointer).
    unsafe {
        CAbi {
            new: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(u64) -> *mut c_void>(sym(
                "abi_bench_new",
            )),
            free: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void)>(sym(
                "abi_bench_free",
            )),
            run: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*const c_void, u64, u64) -> u64,
            >(sym("abi_bench_loop")),
        }
    }
}

fn c_abi(c: &mut Criterion, abi: &CAbi) {
    // SAFETY: abi_bench_new takes a capacity and returns a handle or NULL.
    let handle = unsafe { (abi.new)(ROOMY) };
    assert!(
        !handle.is_null(),
        "vmmresv_ledger_new through the .so failed"
    );
    let local = local_ledger(ROOMY);
    let mut statik: *mut vmmresv::ffi::vmmresv_ledger = std::ptr::null_mut();
    assert_eq!(
        vmmresv::ffi::vmmresv_ledger_new(ROOMY, &mut statik),
        vmmresv::Status::Ok
    );

    let mut g = c.benchmark_group("c_abi");
    g.throughput(Throughput::Elements(1));
    // The same loop in all three: `iters` claim+release pairs, counting the
    // admitted ones, timed around the whole loop.
    g.bench_function("rust_local_ledger", |b| {
        b.iter_custom(|iters| {
            let pages = black_box(PAGES);
            let t0 = Instant::now();
            let mut admitted = 0u64;
            for _ in 0..iters {
                if local.try_claim(pages).is_ok() {
                    local.release(pages);
                    admitted += 1;
                }
            }
            let t = t0.elapsed();
            assert_eq!(black_box(admitted), iters);
            t
        })
    });
    g.bench_function("c_through_so", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            // SAFETY: a live handle from abi_bench_new.
            let admitted = unsafe { (abi.run)(handle, iters, black_box(PAGES)) };
            let t = t0.elapsed();
            assert_eq!(admitted, iters);
            t
        })
    });
    g.bench_function("rust_extern_c_static", |b| {
        b.iter_custom(|iters| {
            let pages = black_box(PAGES);
            let mut short = 0u64;
            let t0 = Instant::now();
            let mut admitted = 0u64;
            for _ in 0..iters {
                if vmmresv::ffi::vmmresv_ledger_claim(statik, pages, &mut short)
                    == vmmresv::Status::Ok
                    && vmmresv::ffi::vmmresv_ledger_release(statik, pages) == vmmresv::Status::Ok
                {
                    admitted += 1;
                }
            }
            let t = t0.elapsed();
            assert_eq!(black_box(admitted), iters);
            t
        })
    });
    g.finish();
    assert_eq!(local.claimed(), 0);
    vmmresv::ffi::vmmresv_ledger_free(statik);
    // SAFETY: the handle from abi_bench_new, freed once.
    unsafe { (abi.free)(handle) };
}

// ---------------------------------------------------------------------
// Ratios from criterion's measurements

/// A goal: the ratio of two benchmarks' medians against a bound.
struct Goal {
    what: &'static str,
    num: &'static str,
    den: &'static str,
    /// `true`: the ratio must be at most `bound`; `false`: at least.
    at_most: bool,
    bound: f64,
}

const GOALS: &[Goal] = &[
    Goal {
        what: "in-process claim+release / bare RMW pair",
        num: "uncontended/local_ledger",
        den: "uncontended/bare_rmw_pair",
        at_most: true,
        bound: 1.5,
    },
    Goal {
        what: "2 threads: LocalLedger / bare CAS loop (time per op)",
        num: "contended_2_threads/local_ledger",
        den: "contended_2_threads/bare_cas_loop",
        at_most: true,
        bound: 1.3,
    },
    Goal {
        what: "2 threads: LocalLedger / Mutex<u64> (throughput)",
        // Throughput ratio = the mutex's time over the ledger's.
        num: "contended_2_threads/mutex_ledger",
        den: "contended_2_threads/local_ledger",
        at_most: false,
        bound: 2.5,
    },
    Goal {
        what: "cross-process claim+release / bare RMW pair",
        num: "uncontended/shared_ledger",
        den: "uncontended/bare_rmw_pair",
        at_most: true,
        bound: 8.0,
    },
    Goal {
        what: "cross-process claim+release / getppid()",
        num: "uncontended/shared_ledger",
        den: "uncontended/getppid",
        at_most: true,
        bound: 0.25,
    },
    Goal {
        what: "2048 live claims / 1 live claim",
        num: "live_claims/shared_ledger/2048",
        den: "live_claims/shared_ledger/1",
        at_most: true,
        bound: 1.5,
    },
    Goal {
        what: "C ABI from C through the .so / Rust call",
        num: "c_abi/c_through_so",
        den: "c_abi/rust_local_ledger",
        at_most: true,
        bound: 1.2,
    },
];

/// Every benchmark, in the order printed; contended figures are per
/// iteration (one operation on each of the two threads).
const IDS: &[&str] = &[
    "uncontended/bare_rmw_pair",
    "uncontended/bare_cas_claim",
    "uncontended/mutex_ledger",
    "uncontended/local_ledger",
    "uncontended/shared_ledger",
    "uncontended/getppid",
    "uncontended/system_time_now",
    "contended_2_threads/bare_cas_loop",
    "contended_2_threads/mutex_ledger",
    "contended_2_threads/local_ledger",
    "live_claims/shared_ledger/1",
    "live_claims/shared_ledger/64",
    "live_claims/shared_ledger/2048",
    "c_abi/rust_local_ledger",
    "c_abi/c_through_so",
    "c_abi/rust_extern_c_static",
];

/// Each benchmark's median (ns per iteration, in the order of [`IDS`]) in
/// one round; None where it was not measured.
type Round = Vec<Option<f64>>;

fn read_round(since: SystemTime) -> Round {
    IDS.iter().map(|id| median_ns(id, since)).collect()
}

fn in_round(round: &Round, id: &str) -> Option<f64> {
    let i = IDS.iter().position(|x| *x == id)?;
    round[i]
}

/// The figures of every round, then each goal's ratio: per round, the ratio
/// of the two medians measured in that round; overall, the median of those
/// ratios, with their range as the spread.
fn print_ratios(rounds: &[Round]) {
    println!();
    println!(
        "== median ns per iteration (contended: one op on each of 2 threads), from {}",
        criterion_home().join("<id>/new/sample.json").display()
    );
    let head: Vec<String> = (1..=rounds.len()).map(|r| format!("round {r}")).collect();
    println!("{}  benchmark", fmt_row(&head, 10));
    for (i, id) in IDS.iter().enumerate() {
        let row: Vec<String> = rounds
            .iter()
            .map(|r| r[i].map_or("-".into(), |ns| format!("{ns:.2}")))
            .collect();
        println!("{}  {id}", fmt_row(&row, 10));
    }
    println!();
    if rounds.len() > 1 {
        println!(
            "== goals: the median over {} rounds of the ratio of the two medians [range]; \
             a miss is reported, not failed: timings on a shared machine are noisy",
            rounds.len()
        );
    } else {
        println!(
            "== goals: the ratio of the two medians; a miss is reported, not failed: \
             timings on a shared machine are noisy"
        );
    }
    let (mut met, mut missed, mut unmeasured) = (0, 0, 0);
    for g in GOALS {
        let mut ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|r| Some(in_round(r, g.num)? / in_round(r, g.den)?))
            .collect();
        if ratios.is_empty() {
            unmeasured += 1;
            println!("{:<54} =   n/a (not measured in this run)", g.what);
            continue;
        }
        let ratio = median(&mut ratios);
        let (lo, hi) = (ratios[0], ratios[ratios.len() - 1]);
        let ok = if g.at_most {
            ratio <= g.bound
        } else {
            ratio >= g.bound
        };
        if ok {
            met += 1;
        } else {
            missed += 1;
        }
        let range = if ratios.len() > 1 {
            format!(" [{lo:.2}-{hi:.2}]")
        } else {
            String::new()
        };
        println!(
            "{:<54} = {ratio:>5.2}{range} (goal {} {}) {}",
            g.what,
            if g.at_most { "<=" } else { ">=" },
            g.bound,
            if ok { "OK" } else { "MISSED" }
        );
    }
    println!("goals: {met} met, {missed} missed, {unmeasured} not measured");
}

// ---------------------------------------------------------------------

fn config() -> Criterion {
    let base = Criterion::default();
    let base = if quick() {
        base.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(10)
            .nresamples(10_000)
    } else {
        base.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
    };
    // Command-line options (--measurement-time, a filter, ...) win.
    base.configure_from_args()
}

fn main() {
    if std::env::var_os("VMMRESV_BENCH_RATIOS_ONLY").is_some() {
        print_ratios(&[read_round(SystemTime::UNIX_EPOCH)]);
        return;
    }
    let abi = load_c_abi();
    let n = rounds();
    let mut results = Vec::with_capacity(n);
    for r in 1..=n {
        if n > 1 {
            println!("\n######## round {r} of {n}\n");
        }
        let since = now_floor();
        // A fresh Criterion per round: the same ids again, not renamed.
        let mut c = config();
        uncontended(&mut c);
        contended(&mut c);
        live_claims(&mut c);
        c_abi(&mut c, &abi);
        c.final_summary();
        if measuring() {
            results.push(read_round(since));
        }
    }
    if measuring() {
        print_ratios(&results);
    }
}
