//! Opening a hostile admission ledger file (`LedgerFile::open_or_create`)
//! and running the cross-process ledger protocol on whatever opens:
//! `survey`, `claims`, a `claim`, its `release`, the release of an
//! arbitrary slot, and `reconcile`.
//!
//! The file is written fresh for every input, into one temporary directory
//! per process (under /dev/shm when it exists), mode 0600 unless the input
//! picks another mode. Six ways to build it (first input byte):
//!
//! 0. the raw remaining bytes, at their own length;
//! 1. the raw bytes padded (or cut) to FILE_SIZE;
//! 2. a valid header with fuzzed byte edits (check recomputed or not);
//! 3. a valid header, then raw words for the totals and the reconciler
//!    stamp, then raw slot bytes placed at a chosen slot;
//! 4. a valid header and structured slots and totals: any state code, an
//!    owner that is this process, pid 1, a pid that cannot exist, or pid 0,
//!    a right or wrong start time, any page count and pool, a right or
//!    wrong check word; totals consistent with the slots or off by some
//!    pages, frozen or not, and a live, stale or dead reconciler stamp;
//! 5. special paths: no file at all (the library creates one), a directory,
//!    a FIFO, a symlink to a valid ledger, a valid ledger that others can
//!    write.
//!
//! Invariants checked (an independent oracle reads the image written):
//! - never a panic; `open_or_create` succeeds exactly when the file is a
//!   regular, non-symlink file, not group/other-writable, FILE_SIZE long,
//!   with a valid header — else LEDGER_UNSAFE / LEDGER_CORRUPT (IO for a
//!   directory);
//! - `survey` reports LEDGER_CORRUPT exactly when some slot is invalid
//!   (state code, pid vs state, check word, page count, pool) or an
//!   unfrozen total holds more pages than the slots list; otherwise its
//!   dead-owner flag and found claim are right;
//! - `claims` fails exactly when some slot is invalid;
//! - a claim that succeeds fits the capacity it was checked against,
//!   leaves the pool's total at exactly others + pages, reads back as this
//!   process's CLAIMED slot in a slot that was free, and touches no other
//!   slot or total; a refusal is truthful and leaves everything as it was
//!   (its slot back to FREE); errors are only the documented ones;
//! - releasing that claim gives back exactly its pages and the total
//!   returns to `others`; releasing an arbitrary slot succeeds only for a
//!   CLAIMED slot of this process, and takes exactly its pages off;
//! - a file with an invalid slot never reconciles successfully; a reconcile
//!   that succeeds leaves every total unfrozen and equal to the pages of
//!   the live CLAIMED/RELEASING slots, after which a survey is clean (no
//!   corruption, no dead owner, nothing stalled).
//!
//! The world is the real host (`/proc` for liveness) with one change: its
//! clock jumps 100 ms at every `pause`, so the protocol's waits (5 s for a
//! frozen total, 2 s for a live owner mid-operation) end after a few dozen
//! iterations instead of stalling the fuzzer. Owners are only pids whose
//! liveness cannot change during a run (this process, pid 1, pids above
//! Linux's largest pid_max), so the oracle is deterministic.

#![no_main]

use std::cell::Cell;
use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmmresv::admission::file::{FileHeader, LedgerFile, FILE_SIZE, HEADER_SIZE, SLOT_SIZE};
use vmmresv::admission::ledger::{
    ClaimOutcome, Host, Ledger, Pool, SlotState, World, MAX_PAGES, NSLOTS,
};
use vmmresv::admission::owner::{self, Owner, MAX_PID};
use vmmresv::arc::guard::{ArcLimits, Ceiling};
use vmmresv::arc::reserve::{self, ArcPolicy, Reservation};
use vmmresv::pages::{btop, btopr, PageSize};
use vmmresv::Status;
use vmmresv_fuzz::Input;
use zerocopy::IntoBytes;

// The file layout (admission/file.rs module documentation).
const TOTAL_OFFSETS: [usize; 3] = [128, 256, 320]; // Reservoir, Transient, Arc
const RECONCILER_OFFSET: usize = 192;
const UUID_A: [u8; 16] = [0xAA; 16];
/// Bytes of the input that parameterise the operations.
const OPS_LEN: usize = 64;
/// Linux's pid_max is at most 2^22: pids above it never exist.
const NO_PID_LO: u32 = (1 << 22) + 1;

struct Env {
    dir: PathBuf,
    me: Owner,
    init_start: Option<u64>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // Directories left by runs that crashed (an abort skips the atexit
        // cleanup): those of processes that no longer exist.
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("vmmresv-fuzz-ledger-"))
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                if !Path::new("/proc").join(pid.to_string()).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("vmmresv-fuzz-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        extern "C" fn cleanup() {
            if let Some(e) = ENV_FOR_CLEANUP.get() {
                let _ = std::fs::remove_dir_all(e);
            }
        }
        static ENV_FOR_CLEANUP: OnceLock<PathBuf> = OnceLock::new();
        let _ = ENV_FOR_CLEANUP.set(dir.clone());
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(cleanup) };
        Env {
            dir,
            me: Owner::current().expect("own start time"),
            init_start: owner::start_time(1),
        }
    })
}

/// The host, with a clock that jumps at every pause.
struct FastHost {
    skew: Cell<u64>,
}

impl World for FastHost {
    fn alive(&self, o: Owner) -> bool {
        Host.alive(o)
    }
    fn pid_exists(&self, pid: u32) -> bool {
        Host.pid_exists(pid)
    }
    fn now_ms(&self) -> u64 {
        Host.now_ms() + self.skew.get()
    }
    fn now_secs(&self) -> u64 {
        Host.now_secs()
    }
    fn pause(&self) {
        self.skew.set(self.skew.get() + 100);
    }
}

// ------------------------------------------------------------- the image

fn get64(img: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(img[off..off + 8].try_into().unwrap())
}

fn put64(img: &mut [u8], off: usize, v: u64) {
    img[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn header_valid(img: &[u8]) -> bool {
    let u32at = |o: usize| u32::from_le_bytes(img[o..o + 4].try_into().unwrap());
    &img[0..8] == b"VMMRLDG\0"
        && u32at(8) == 1
        && u32at(12) == 4096
        && u32at(16) == 64
        && u32at(20) == 8192
        && u32at(24) == 4096
        && u32at(28) == 0
        && get64(img, 32) == FILE_SIZE as u64
        && get64(img, 48) == fnv1a(&img[..48])
}

fn valid_header_image() -> Vec<u8> {
    let mut img = vec![0u8; FILE_SIZE];
    let h = FileHeader::new(1_700_000_000);
    img[..56].copy_from_slice(h.as_bytes());
    img
}

/// The slot check word (admission/ledger.rs `check_of`).
fn check_of(pid: u64, gen: u64, f: [u64; 6]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in [pid, gen, f[0], f[1], f[2], f[3], f[4], f[5]] {
        h ^= v;
        h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    h
}

fn slot_off(i: usize) -> usize {
    HEADER_SIZE + i * SLOT_SIZE
}

/// A slot as the oracle reads it.
#[derive(Clone, Copy, Debug)]
struct OSlot {
    state: u64,
    pid: u32,
    start: u64,
    pages: u64,
    pool: u64,
    uuid: [u8; 16],
}

/// What the oracle concludes from an image with a valid header.
struct Oracle {
    /// Some slot is invalid (`claims`, `survey` and `reconcile` must fail).
    slots_corrupt: bool,
    /// `survey` must report LedgerCorrupt.
    survey_corrupt: bool,
    /// Some owner is dead (meaningful when not corrupt).
    dead_owners: bool,
    /// Reserving/claimed/releasing slots, in slot order, up to the first
    /// invalid slot.
    listed: Vec<OSlot>,
}

fn oracle(img: &[u8], world: &dyn World) -> Oracle {
    let mut o = Oracle {
        slots_corrupt: false,
        survey_corrupt: false,
        dead_owners: false,
        listed: Vec::new(),
    };
    let mut sums = [0u64; 3];
    for i in 0..NSLOTS {
        let b = slot_off(i);
        let w = get64(img, b);
        let state = w & 7;
        let pid = ((w >> 3) & u64::from(MAX_PID)) as u32;
        let gen = (w >> 26) & ((1 << 38) - 1);
        if state > 4 || (state == 0) != (pid == 0) {
            o.slots_corrupt = true;
            break;
        }
        match state {
            0 => {}
            1 => o.dead_owners |= !world.pid_exists(pid),
            _ => {
                let f = [1, 2, 3, 4, 5, 7].map(|k| get64(img, b + 8 * k));
                let [start, pages, hi, lo, _since, pool] = f;
                let check = get64(img, b + 48);
                if check != check_of(u64::from(pid), gen, f)
                    || pages == 0
                    || pages > MAX_PAGES
                    || pool > 2
                {
                    o.slots_corrupt = true;
                    break;
                }
                let mut uuid = [0u8; 16];
                uuid[..8].copy_from_slice(&hi.to_be_bytes());
                uuid[8..].copy_from_slice(&lo.to_be_bytes());
                sums[pool as usize] = sums[pool as usize].saturating_add(pages);
                o.dead_owners |= !world.alive(Owner { pid, start });
                o.listed.push(OSlot {
                    state,
                    pid,
                    start,
                    pages,
                    pool,
                    uuid,
                });
            }
        }
    }
    o.survey_corrupt = o.slots_corrupt
        || TOTAL_OFFSETS.iter().zip(sums).any(|(off, listed)| {
            let t = get64(img, *off);
            t >> 63 == 0 && (t & MAX_PAGES) > listed
        });
    o
}

// ------------------------------------------------------------- building

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    File,
    Missing,
    Dir,
    Fifo,
    Symlink,
}

struct Built {
    kind: Kind,
    img: Vec<u8>,
    mode: u32,
}

const MODES: [u32; 16] = [
    0o600, 0o600, 0o600, 0o600, 0o600, 0o600, 0o600, 0o600, 0o640, 0o644, 0o400, 0o700, 0o620,
    0o602, 0o660, 0o666,
];

fn structured(inp: &mut Input<'_>, e: &Env) -> Vec<u8> {
    let mut img = valid_header_image();
    let total_tags: [(u8, u16, u16); 3] = [0; 3].map(|_: u8| (inp.u8(), inp.u16(), inp.u16()));
    let stamp_tag = inp.u8();
    let stamp_arg = inp.u64();
    let n = usize::from(inp.u8() % 33);
    let mut sums = [0u64; 3];
    for _ in 0..n {
        let idx = usize::from(inp.u16()) % NSLOTS;
        let state = u64::from(inp.u8() % 8);
        let (pid, true_start) = match inp.u8() % 6 {
            0 | 1 => (e.me.pid, Some(e.me.start)),
            2 => (1, e.init_start),
            3 => (MAX_PID, None),
            4 => (0, None),
            _ => (NO_PID_LO + inp.u32() % (MAX_PID - NO_PID_LO), None),
        };
        let start = match inp.u8() % 4 {
            0 | 1 => true_start.unwrap_or(1),
            2 => true_start.unwrap_or(1) + 1,
            _ => inp.u64(),
        };
        let pages = inp.size();
        let u = inp.u8();
        let uuid = if u == 0 { UUID_A } else { [u; 16] };
        let since = u64::from(inp.u32());
        let pool = match inp.u8() {
            p @ 0..=250 => u64::from(p % 3),
            p => u64::from(p),
        };
        let gen = u64::from(inp.u16());
        let check_sel = inp.u8();
        let hi = u64::from_be_bytes(uuid[..8].try_into().unwrap());
        let lo = u64::from_be_bytes(uuid[8..].try_into().unwrap());
        let f = [start, pages, hi, lo, since, pool];
        let check = match check_sel % 8 {
            6 => check_of(u64::from(pid), gen, f) ^ 1,
            7 => inp.u64(),
            _ => check_of(u64::from(pid), gen, f),
        };
        let word = state | (u64::from(pid) << 3) | (gen << 26);
        let b = slot_off(idx);
        put64(&mut img, b, word);
        for (k, v) in [1, 2, 3, 4, 5, 7].iter().zip(f) {
            put64(&mut img, b + 8 * k, v);
        }
        put64(&mut img, b + 48, check);
        if (2..=4).contains(&state) && pool < 3 && pages <= MAX_PAGES {
            sums[pool as usize] += pages;
        }
    }
    for (p, (tag, delta, epoch)) in total_tags.into_iter().enumerate() {
        let sum = sums[p].min(MAX_PAGES);
        let claimed = match tag % 4 {
            0 => sum,
            1 => sum.saturating_sub(u64::from(delta)),
            2 => (sum + u64::from(delta)).min(MAX_PAGES),
            _ => u64::from(delta) << 20 | u64::from(epoch),
        };
        let frozen = if tag & 4 != 0 { 1u64 << 63 } else { 0 };
        let word = frozen | ((u64::from(epoch) & ((1 << 27) - 1)) << 36) | claimed;
        put64(&mut img, TOTAL_OFFSETS[p], word);
    }
    let now = Host.now_ms();
    let stamp = |pid: u32, ms: u64| u64::from(pid) | ((ms & ((1 << 41) - 1)) << 23);
    let stamp_word = match stamp_tag % 6 {
        0 | 1 => 0,
        2 => stamp(e.me.pid, now.saturating_sub(stamp_arg % 20_000)),
        3 => stamp(1, now.saturating_sub(stamp_arg % 20_000)),
        4 => stamp(MAX_PID, now),
        _ => stamp_arg,
    };
    put64(&mut img, RECONCILER_OFFSET, stamp_word);
    img
}

fn build(inp: &mut Input<'_>, mode_byte: u8, perm_byte: u8, e: &Env) -> Built {
    let mut mode = MODES[usize::from(perm_byte) % MODES.len()];
    let mut kind = Kind::File;
    let img = match mode_byte % 6 {
        0 => inp.rest().to_vec(),
        1 => {
            let mut img = vec![0u8; FILE_SIZE];
            let r = inp.rest();
            let n = r.len().min(FILE_SIZE);
            img[..n].copy_from_slice(&r[..n]);
            img
        }
        2 => {
            let mut img = valid_header_image();
            let edits = inp.u8() % 8;
            for _ in 0..edits {
                let off = usize::from(inp.u8()) % 56;
                img[off] ^= inp.u8();
            }
            if inp.u8() & 1 == 1 {
                let c = fnv1a(&img[..48]);
                put64(&mut img, 48, c);
            }
            img
        }
        3 => {
            let mut img = valid_header_image();
            for off in TOTAL_OFFSETS.iter().chain([&RECONCILER_OFFSET]) {
                put64(&mut img, *off, inp.u64());
            }
            let first = usize::from(inp.u16()) % NSLOTS;
            let r = inp.rest();
            let at = slot_off(first);
            let n = r.len().min(FILE_SIZE - at);
            img[at..at + n].copy_from_slice(&r[..n]);
            img
        }
        4 => structured(inp, e),
        _ => {
            match inp.u8() % 5 {
                0 => kind = Kind::Missing,
                1 => kind = Kind::Dir,
                2 => kind = Kind::Fifo,
                3 => kind = Kind::Symlink,
                _ => mode = [0o620, 0o602, 0o622, 0o666][usize::from(perm_byte) % 4],
            }
            valid_header_image()
        }
    };
    Built { kind, img, mode }
}

fn write_file(path: &Path, img: &[u8], mode: u32) {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create ledger file");
    std::io::Write::write_all(&mut f, img).expect("write ledger file");
    f.set_permissions(Permissions::from_mode(mode))
        .expect("chmod");
}

fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

// ------------------------------------------------------------- the run

struct Ops {
    pool: Pool,
    pages: u64,
    hint: usize,
    caps: [Result<u64, Status>; 4],
    release_slot: usize,
    reconcile: bool,
    arc: Option<ArcOp>,
}

struct ArcOp {
    uuid: [u8; 16],
    policy: ArcPolicy,
    bytes: u64,
}

fn ops(block: &[u8]) -> Ops {
    let mut o = Input::new(block);
    let pool = Pool::ALL[usize::from(o.u8() % 3)];
    let pages = o.size();
    // Any usize: a hint near usize::MAX once overflowed (fuzz/README.md,
    // "Findings").
    let hint = match o.u8() {
        0..=191 => usize::from(o.u16()) % NSLOTS,
        _ => o.u64() as usize,
    };
    let caps = [0; 4].map(|_: u8| match o.u8() % 4 {
        0 => Ok(u64::MAX),
        1 => Ok(o.size()),
        2 => Err(Status::Io),
        _ => Ok(u64::from(o.u16())),
    });
    let release_slot = match o.u8() {
        0..=200 => usize::from(o.u16()) % NSLOTS,
        _ => usize::from(o.u16()),
    };
    let reconcile = o.u8() & 1 == 0;
    let arc = (o.u8() & 1 == 0).then(|| {
        let uuid = match o.u8() {
            0 => UUID_A,
            u => [u; 16],
        };
        let limits = ArcLimits {
            arc_c_min: o.size(),
            arc_c_max: o.size(),
        };
        let ceiling = match o.u8() % 3 {
            0 => Ceiling::ArcCMax,
            1 => Ceiling::Physmem(o.size()),
            _ => Ceiling::Budget(o.size()),
        };
        ArcOp {
            uuid,
            policy: ArcPolicy {
                limits,
                ceiling,
                slack: o.size(),
            },
            bytes: o.size(),
        }
    });
    Ops {
        pool,
        pages,
        hint,
        caps,
        release_slot,
        reconcile,
        arc,
    }
}

/// A second, read-only mapping of the ledger file: the raw slot words,
/// to see exactly which slots an operation changed.
struct RawView {
    base: *const u8,
}

impl RawView {
    fn new(path: &Path) -> RawView {
        let f = std::fs::File::open(path).expect("open for the raw view");
        // SAFETY: a read-only shared mapping of a file of FILE_SIZE bytes
        // (the library checked the size); the result is checked.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                FILE_SIZE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap");
        RawView { base: base.cast() }
    }

    fn word(&self, off: usize) -> u64 {
        assert!(off + 8 <= FILE_SIZE && off.is_multiple_of(8));
        // SAFETY: inside the mapping and 8-aligned; single-threaded, so
        // the library is not writing it concurrently.
        unsafe { core::ptr::read_volatile(self.base.add(off).cast::<u64>()) }
    }

    fn slot_words(&self) -> Vec<u64> {
        (0..NSLOTS).map(|i| self.word(slot_off(i))).collect()
    }
}

impl Drop for RawView {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new().
        unsafe { libc::munmap(self.base as *mut libc::c_void, FILE_SIZE) };
    }
}

/// A FREE slot word: state 0, pid 0 (any generation).
fn is_free(w: u64) -> bool {
    w & ((1 << 26) - 1) == 0
}

/// A claim that did not succeed may have taken one free slot; it must
/// have given it back (FREE again, generation bumped) and touched nothing
/// else.
fn assert_taken_and_freed(changed: &[usize], before: &[u64], after: &[u64]) {
    assert!(
        changed.len() <= 1,
        "an unsuccessful claim changed slots {changed:?}"
    );
    for i in changed {
        assert!(
            is_free(before[*i]),
            "an unsuccessful claim changed a used slot"
        );
        assert!(
            is_free(after[*i]),
            "an unsuccessful claim left slot {i} taken"
        );
    }
}

/// `arc::reserve::reserve`: the ARC path of admission, which checks every
/// slot (`find`) before it claims. Never an admission from a file with an
/// invalid slot; an admission respects the OS-8005 guard on the total it
/// leaves; a refusal is the guard's.
fn arc_reserve(l: &Ledger<'_>, world: &FastHost, o: &Oracle, a: &ArcOp, me: Owner) {
    // A slack in the last page below 2^64 rounds up to 2^52 pages, whose
    // byte count `arc::guard::target` cannot represent: OVERFLOW, and
    // (since the fix of fuzz/README.md's first finding) nothing held.
    let slack_overflows = a.policy.slack > u64::MAX - 4095;
    let before = l.total(Pool::Arc);
    let req = btopr(a.bytes, PageSize::Base4K);
    let lim = a.policy.limits;
    let c_min = btopr(lim.arc_c_min, PageSize::Base4K);
    let ceiling = btop(a.policy.ceiling.bytes(&lim), PageSize::Base4K);
    let existing = o
        .listed
        .iter()
        .any(|c| c.uuid == a.uuid && c.pool == Pool::Arc as u64);
    match reserve::reserve(l, world, me, &a.uuid, a.bytes, &a.policy) {
        Ok(Reservation::Reserved(r)) => {
            assert!(lim.arc_c_min <= lim.arc_c_max);
            if r.already {
                // `find` stops at the first claim of the UUID, so an
                // existing reservation is reported even when a later slot
                // is invalid; `existing` looks, as `find` does, only
                // before the first invalid slot.
                assert!(
                    existing,
                    "'already reserved' without a reservation before any invalid slot"
                );
                assert_eq!(
                    l.total(Pool::Arc),
                    before,
                    "an existing reservation moved the total"
                );
                return;
            }
            assert!(
                !o.slots_corrupt,
                "ARC reservation made in a file with an invalid slot"
            );
            let after = l.total(Pool::Arc);
            assert!(!after.frozen);
            assert_eq!(
                after.claimed,
                before.claimed + req,
                "ARC total != before + request"
            );
            assert_eq!(r.bytes, req * 4096);
            assert!(
                u128::from(c_min) + u128::from(after.claimed) <= u128::from(ceiling),
                "ARC reservation past the guard: c_min {c_min} + reserved {} > ceiling {ceiling}",
                after.claimed
            );
            let c = l
                .find(&a.uuid, &[Pool::Arc])
                .expect("find after reserve")
                .expect("own reservation not found");
            if !existing {
                assert_eq!((c.owner, c.pages, c.state), (me, req, SlotState::Claimed));
            }
            let freed = reserve::release(l, world, me, &a.uuid);
            if c.owner == me {
                assert_eq!(freed, Ok(c.pages * 4096), "ARC release");
            }
        }
        Ok(Reservation::Refused(_)) => {
            assert_eq!(l.total(Pool::Arc), before, "an ARC refusal moved the total");
            assert!(
                u128::from(c_min) + u128::from(before.claimed) + u128::from(req)
                    > u128::from(ceiling),
                "ARC refusal of a reservation the guard admits"
            );
        }
        Err(e) => {
            let s = e.status();
            let after = l.total(Pool::Arc);
            assert_eq!(
                after.claimed, before.claimed,
                "a failed ARC reserve ({s:?}) kept its claim"
            );
            if o.slots_corrupt {
                return;
            }
            if !existing {
                assert_eq!(
                    l.find(&a.uuid, &[Pool::Arc]),
                    Ok(None),
                    "a failed ARC reserve ({s:?}) left a reservation behind"
                );
            }
            match s {
                Status::InvalidArgument | Status::LedgerFull | Status::Busy => {}
                // A slack so large the target's bytes overflow.
                Status::Overflow => assert!(
                    slack_overflows,
                    "ARC reserve: Overflow with slack {}",
                    a.policy.slack
                ),
                // The ledger's 36-bit total refused what the guard admits:
                // reported as corrupt ("a bug, never an admission").
                Status::LedgerCorrupt => assert!(
                    before.claimed + req > MAX_PAGES,
                    "ARC reserve: LedgerCorrupt on a valid file ({before:?}, {req} pages)"
                ),
                _ => panic!("ARC reserve failed with {s:?}"),
            }
        }
    }
}

fn run(l: &Ledger<'_>, raw: &RawView, world: &FastHost, o: &Oracle, ops: &Ops, e: &Env) {
    let me = e.me;

    // survey
    match l.survey(world, Some(&UUID_A)) {
        Err(err) => {
            assert_eq!(err.status(), Status::LedgerCorrupt);
            assert!(o.survey_corrupt, "survey says corrupt, the oracle does not");
        }
        Ok(s) => {
            assert!(!o.survey_corrupt, "survey missed a corrupt file");
            assert_eq!(s.dead_owners, o.dead_owners, "survey dead_owners");
            if let Some(c) = s.found {
                assert_eq!(c.uuid, UUID_A);
                assert_ne!(c.pool, Pool::Arc);
                assert!(matches!(c.state, SlotState::Claimed | SlotState::Reserving));
                assert!(world.alive(c.owner));
            } else {
                assert!(!o.listed.iter().any(|c| c.uuid == UUID_A
                    && c.pool != 2
                    && (c.state == 2 || c.state == 3)
                    && world.alive(Owner {
                        pid: c.pid,
                        start: c.start
                    })));
            }
        }
    }

    // claims
    match l.claims() {
        Err(err) => {
            assert_eq!(err.status(), Status::LedgerCorrupt);
            assert!(o.slots_corrupt, "claims failed on valid slots");
        }
        Ok(v) => {
            assert!(!o.slots_corrupt, "claims missed an invalid slot");
            assert_eq!(v.len(), o.listed.len());
            for (c, x) in v.iter().zip(&o.listed) {
                assert_eq!(
                    (c.owner.pid, c.owner.start, c.pages),
                    (x.pid, x.start, x.pages)
                );
                assert_eq!(c.pool as u64, x.pool);
                assert_eq!(c.uuid, x.uuid);
            }
        }
    }

    // claim
    let totals_before = Pool::ALL.map(|p| l.total(p));
    let words_before = raw.slot_words();
    let mut asked = 0usize;
    let mut last_cap = None;
    let mut cap = || {
        let r = ops.caps[asked.min(3)];
        asked += 1;
        last_cap = Some(r);
        r.map_err(vmmresv::Error::new)
    };
    let outcome = l.claim(world, me, UUID_A, ops.pool, ops.pages, ops.hint, &mut cap);
    let words_after = raw.slot_words();
    let changed: Vec<usize> = (0..NSLOTS)
        .filter(|i| words_before[*i] != words_after[*i])
        .collect();
    let pi = ops.pool as usize;
    let others_unchanged = || {
        for p in Pool::ALL {
            if p != ops.pool {
                assert_eq!(
                    l.total(p),
                    totals_before[p as usize],
                    "another pool's total moved"
                );
            }
        }
    };
    if ops.pages == 0 || ops.pages > MAX_PAGES {
        assert_eq!(
            outcome.map_err(|e| e.status()),
            Err(Status::InvalidArgument)
        );
    }
    let mine = match outcome {
        Ok(ClaimOutcome::Claimed { slot, others }) => {
            let Some(Ok(cap)) = last_cap else {
                panic!("claimed without a capacity reading")
            };
            assert!(others + ops.pages <= cap, "claim beyond the capacity");
            assert!(others + ops.pages <= MAX_PAGES);
            let t = l.total(ops.pool);
            assert!(!t.frozen);
            assert_eq!(t.claimed, others + ops.pages, "total != others + pages");
            let c = l
                .read(slot)
                .expect("own slot")
                .expect("own slot is a claim");
            assert_eq!(
                (c.state, c.owner, c.pool, c.pages, c.uuid),
                (SlotState::Claimed, me, ops.pool, ops.pages, UUID_A)
            );
            assert!(
                is_free(words_before[slot]),
                "claimed a slot that was not free"
            );
            // The first free slot from the hint on (cyclically).
            let from = ops.hint % NSLOTS;
            let dist = (slot + NSLOTS - from) % NSLOTS;
            assert!(
                (0..dist).all(|k| !is_free(words_before[(from + k) % NSLOTS])),
                "claimed slot {slot}, but a slot between the hint {} and it was free",
                ops.hint
            );
            assert_eq!(changed, vec![slot], "a claim touched other slots");
            others_unchanged();
            Some((slot, others))
        }
        Ok(ClaimOutcome::Refused(r)) => {
            let Some(Ok(cap)) = last_cap else {
                panic!("refused without a capacity reading")
            };
            assert_eq!((r.requested, r.capacity), (ops.pages, cap));
            let want = r.claimed + ops.pages;
            assert!(want > cap || want > MAX_PAGES, "refused a claim that fits");
            assert_eq!(r.shortfall, want.saturating_sub(cap).max(1));
            assert_eq!(
                l.total(ops.pool),
                totals_before[pi],
                "a refusal moved the total"
            );
            assert_taken_and_freed(&changed, &words_before, &words_after);
            others_unchanged();
            None
        }
        Err(err) => {
            let s = err.status();
            let from_cap = matches!(last_cap, Some(Err(c)) if c == s);
            assert!(
                from_cap
                    || matches!(
                        s,
                        Status::InvalidArgument
                            | Status::LedgerFull
                            | Status::LedgerCorrupt
                            | Status::Busy
                    ),
                "claim failed with {s:?}"
            );
            assert_taken_and_freed(&changed, &words_before, &words_after);
            others_unchanged();
            None
        }
    };

    // release our claim
    if let Some((slot, others)) = mine {
        assert_eq!(
            l.release(world, me, slot),
            Ok(ops.pages),
            "release of own claim"
        );
        let t = l.total(ops.pool);
        assert_eq!(t.claimed, others, "release did not restore the total");
        assert!(
            l.read(slot).expect("slot").is_none(),
            "released slot not free"
        );
    }

    // release an arbitrary slot
    let before = l.read(ops.release_slot);
    let totals_before = Pool::ALL.map(|p| l.total(p));
    match l.release(world, me, ops.release_slot) {
        Ok(pages) => {
            let Ok(Some(c)) = before else {
                panic!("released slot {} that held no claim", ops.release_slot)
            };
            assert_eq!((c.owner, c.state, c.pages), (me, SlotState::Claimed, pages));
            let t0 = totals_before[c.pool as usize];
            let t1 = l.total(c.pool);
            assert_eq!(
                t1.claimed,
                t0.claimed - pages,
                "release took off other pages"
            );
        }
        Err(err) => {
            let s = err.status();
            match before {
                _ if ops.release_slot >= NSLOTS => assert_eq!(s, Status::InvalidArgument),
                Err(_) => assert_eq!(s, Status::LedgerCorrupt),
                Ok(None) => assert_eq!(s, Status::NotFound),
                Ok(Some(c)) if c.owner != me || c.state != SlotState::Claimed => {
                    assert_eq!(s, Status::NotFound)
                }
                Ok(Some(_)) => assert!(
                    matches!(s, Status::Busy | Status::LedgerCorrupt),
                    "own claim not released: {s:?}"
                ),
            }
        }
    }

    // an ARC reservation (arc::reserve), and its release
    if let Some(a) = &ops.arc {
        arc_reserve(l, world, o, a, me);
    }

    // reconcile
    if !ops.reconcile {
        return;
    }
    match l.reconcile(world, me) {
        Ok(rep) => {
            assert!(!o.slots_corrupt, "reconciled a file with an invalid slot");
            let claims = l.claims().expect("claims after a reconcile");
            let mut sums = [0u64; 3];
            for c in &claims {
                if matches!(c.state, SlotState::Claimed | SlotState::Releasing)
                    && world.alive(c.owner)
                {
                    sums[c.pool as usize] += c.pages;
                }
            }
            for p in Pool::ALL {
                let t = l.total(p);
                assert!(!t.frozen, "reconcile left {p:?} frozen");
                assert_eq!(t.claimed, rep.claimed_after[p as usize]);
                assert_eq!(t.claimed, sums[p as usize], "{p:?} total != live claims");
            }
            let s = l.survey(world, None).expect("survey after a reconcile");
            assert!(!s.dead_owners, "dead owners survive a reconcile");
            assert!(!s.stalled, "stalled after a reconcile");
        }
        Err(err) => {
            assert!(
                matches!(err.status(), Status::Busy | Status::LedgerCorrupt),
                "reconcile failed with {:?}",
                err.status()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    let mut inp = Input::new(data);
    let mode_byte = inp.u8();
    let perm_byte = inp.u8();
    let ops = ops(inp.bytes(OPS_LEN));
    let b = build(&mut inp, mode_byte, perm_byte, e);

    let path = e.dir.join("admission.ledger");
    let target = e.dir.join("target.ledger");
    remove(&path);
    remove(&target);
    match b.kind {
        Kind::File => write_file(&path, &b.img, b.mode),
        Kind::Missing => {}
        Kind::Dir => std::fs::create_dir(&path).expect("mkdir"),
        Kind::Fifo => {
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        Kind::Symlink => {
            write_file(&target, &b.img, 0o600);
            std::os::unix::fs::symlink(&target, &path).expect("symlink");
        }
    }

    let expect: Result<(), Status> = match b.kind {
        Kind::Missing => Ok(()),
        Kind::Symlink | Kind::Fifo => Err(Status::LedgerUnsafe),
        Kind::Dir => Err(Status::Io),
        Kind::File if b.mode & 0o022 != 0 => Err(Status::LedgerUnsafe),
        // SAFETY: geteuid cannot fail.
        Kind::File if b.mode & 0o200 == 0 && unsafe { libc::geteuid() } != 0 => {
            Err(Status::Permission)
        }
        Kind::File if b.img.len() != FILE_SIZE || !header_valid(&b.img) => {
            Err(Status::LedgerCorrupt)
        }
        Kind::File => Ok(()),
    };
    let opened = LedgerFile::open_or_create(&path);
    match (&opened, expect) {
        (Ok(_), Ok(())) => {}
        (Err(got), Err(want)) => assert_eq!(got.status(), want, "open: {got}"),
        (got, want) => panic!("open: want {want:?}, got {got:?}"),
    }
    if let Ok(file) = opened {
        let world = FastHost { skew: Cell::new(0) };
        let img = if b.kind == Kind::Missing {
            std::fs::read(&path).expect("read created ledger")
        } else {
            b.img
        };
        let o = oracle(&img, &world);
        let raw = RawView::new(&path);
        run(&file.ledger(), &raw, &world, &o, &ops, e);
        drop(file);
    }
    remove(&path);
    remove(&target);
});
