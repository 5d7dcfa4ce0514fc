//! Opening a hostile admission ledger file (`LedgerFile::open_or_create`,
//! layout version 2) and running the cross-process ledger protocol on
//! whatever opens, with the file's own World (the kernel's record locks):
//! `claims`, a `claim`, its `release`, the release of an arbitrary slot, an
//! ARC reservation (`arc::reserve`) and its release, and `reconcile`.
//!
//! The file is written fresh for every input (its anchor removed too),
//! into one temporary directory per process (under /dev/shm when it
//! exists), mode 0600 unless the input picks another mode. Six ways to
//! build it (first input byte):
//!
//! 0. the raw remaining bytes, at their own length;
//! 1. the raw bytes padded (or cut) to FILE_SIZE;
//! 2. a valid header with fuzzed byte edits in its 80 bytes (check
//!    recomputed or not);
//! 3. a valid header, then raw words for the three totals and the spill
//!    count, then raw slot bytes placed at a chosen slot;
//! 4. a valid header and structured slots and totals: any state code, the
//!    spill bit, any pid and generation, any page count and pool, a right
//!    or wrong check word; totals consistent with the slots or off by some
//!    pages, naming no slot, a slot of the image (as its last apply or
//!    release) or any 13-bit value;
//! 5. special paths: no file at all (the library creates one), a
//!    directory, a FIFO, a symlink to a valid ledger, a valid ledger that
//!    others can write.
//!
//! Nobody holds a record lock on a fresh file, so every claim in it is a
//! dead holder's. Invariants (an independent oracle reads the image):
//! - never a panic; `open_or_create` succeeds for a regular, non-symlink,
//!   not group/other-writable file of FILE_SIZE bytes with a valid v2
//!   header for the VMM reservoir, and otherwise fails (a version-1 file
//!   with nothing in it may be replaced by a fresh one);
//! - `claims` fails (LEDGER_CORRUPT) exactly when some slot is invalid
//!   (state code, a free slot with a pid or spill bit, check word, page
//!   count, pool), else lists exactly the oracle's claims;
//! - never an admission on corruption: no claim succeeds against a total
//!   word that does not decode; a claim that succeeds fits the capacity
//!   reading it was checked against, leaves the total at others + pages
//!   and reads back as this process's CLAIMED slot, holding its lock; a
//!   refusal is truthful; errors are the documented ones and leave no
//!   slot of ours behind;
//! - releasing that claim gives back exactly its pages and the total
//!   returns to `others`; releasing any other slot always fails (this
//!   process holds no lock on it): NOT_HOLDER, NOT_FOUND, LEDGER_CORRUPT or
//!   INVALID_ARGUMENT, and changes nothing;
//! - an ARC reservation is never made in a file whose ARC total does not
//!   decode, never passes the OS-8005 guard, and a failed one holds
//!   nothing;
//! - a reconcile succeeds only on a file with no invalid slot and decoding
//!   totals, and then leaves no claim (all holders are dead) and every
//!   total 0.

#![no_main]

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmmresv::ledger::file::{
    anchor_for, FileHeader, FileWorld, LedgerFile, PoolId, FILE_SIZE, HEADER_SIZE, SLOT_SIZE,
};
use vmmresv::ledger::{
    ClaimOutcome, Ledger, Pool, SlotState, World, MAX_PAGES, MAX_PID, NSLOTS,
};
use vmmresv::arc::guard::{ArcLimits, Ceiling};
use vmmresv::arc::reserve::{self, ArcPolicy, Reservation};
use vmmresv::pages::{btop, btopr, PageSize};
use vmmresv::Status;
use vmmresv_fuzz::Input;
use zerocopy::IntoBytes;

// The file layout (admission/file.rs module documentation).
const TOTAL_OFFSETS: [usize; 3] = [128, 256, 320]; // Reservoir, Transient, Arc
const SPILLED_OFFSET: usize = 192;
const HEADER_LEN: usize = 80;
const UUID_A: [u8; 16] = [0xAA; 16];
/// Bytes of the input that parameterise the operations.
const OPS_LEN: usize = 64;

// The words (admission/ledger.rs module documentation).
const GEN_MASK: u64 = (1 << 37) - 1;
const LAST_MASK: u64 = (1 << 13) - 1;
const CLAIMED_MASK: u64 = (1 << 35) - 1;

struct Env {
    dir: PathBuf,
    pid: u32,
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
            pid: std::process::id(),
        }
    })
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

/// A v2 header this library opens for the VMM reservoir.
fn header_valid(img: &[u8]) -> bool {
    let u32at = |o: usize| u32::from_le_bytes(img[o..o + 4].try_into().unwrap());
    img.len() >= HEADER_LEN
        && &img[0..8] == b"VMMRLDG\0"
        && u32at(8) == 2
        && u32at(12) == 4096
        && u32at(16) == 64
        && u32at(20) == NSLOTS as u32
        && u32at(24) == 4096
        && u32at(28) == 1
        && get64(img, 32) == 4096
        && u32at(40) == u32::MAX // node -1
        && u32at(44) == 0
        && get64(img, 48) == FILE_SIZE as u64
        && get64(img, 72) == fnv1a(&img[..72])
}

fn valid_header_image() -> Vec<u8> {
    let mut img = vec![0u8; FILE_SIZE];
    let h = FileHeader::new(1_700_000_000, 0x1234_5678, PoolId::default());
    img[..HEADER_LEN].copy_from_slice(h.as_bytes());
    debug_assert!(header_valid(&img));
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

fn slot_word(state: u64, spill: bool, pid: u32, gen: u64) -> u64 {
    state | (u64::from(spill) << 3) | (u64::from(pid & MAX_PID) << 4) | ((gen & GEN_MASK) << 27)
}

/// A slot as the oracle reads it.
#[derive(Clone, Copy, Debug)]
struct OSlot {
    slot: usize,
    pid: u32,
    pages: u64,
    pool: u64,
    uuid: [u8; 16],
}

/// What the oracle concludes from an image with a valid header.
struct Oracle {
    /// Some slot is invalid (`claims` must fail, and `reconcile` unless
    /// each is a slot a total names, which is helped on unread).
    slots_corrupt: bool,
    /// The invalid slots.
    invalid: Vec<usize>,
    /// The slots the totals name as their last operation's.
    named: Vec<usize>,
    /// Per pool: its total word does not decode (last slot beyond NSLOTS).
    total_corrupt: [bool; 3],
    /// Reserving/claimed/releasing slots, in slot order.
    listed: Vec<OSlot>,
}

fn oracle(img: &[u8]) -> Oracle {
    let mut o = Oracle {
        slots_corrupt: false,
        invalid: Vec::new(),
        named: Vec::new(),
        total_corrupt: [false; 3],
        listed: Vec::new(),
    };
    for (p, off) in TOTAL_OFFSETS.iter().enumerate() {
        let last = (get64(img, *off) >> 35) & LAST_MASK;
        o.total_corrupt[p] = last > NSLOTS as u64;
        if (1..=NSLOTS as u64).contains(&last) {
            o.named.push(last as usize - 1);
        }
    }
    for i in 0..NSLOTS {
        let b = slot_off(i);
        let w = get64(img, b);
        let state = w & 7;
        let spill = w & 8 != 0;
        let pid = ((w >> 4) & u64::from(MAX_PID)) as u32;
        let gen = (w >> 27) & GEN_MASK;
        if state > 4 || (state == 0 && (pid != 0 || spill)) {
            o.slots_corrupt = true;
            o.invalid.push(i);
            continue;
        }
        if state < 2 {
            continue;
        }
        // origin, pages, hi, lo, since, pool at 8..48 and 56; check at 48.
        let f = [1, 2, 3, 4, 5, 7].map(|k| get64(img, b + 8 * k));
        let [_origin, pages, hi, lo, _since, pool] = f;
        if get64(img, b + 48) != check_of(u64::from(pid), gen, f)
            || pages == 0
            || pages > MAX_PAGES
            || pool > 2
        {
            o.slots_corrupt = true;
            o.invalid.push(i);
            continue;
        }
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&hi.to_be_bytes());
        uuid[8..].copy_from_slice(&lo.to_be_bytes());
        o.listed.push(OSlot {
            slot: i,
            pid,
            pages,
            pool,
            uuid,
        });
    }
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

fn structured(inp: &mut Input<'_>) -> Vec<u8> {
    let mut img = valid_header_image();
    let total_tags: [(u8, u16, u16, u16); 3] =
        [0; 3].map(|_: u8| (inp.u8(), inp.u16(), inp.u16(), inp.u16()));
    let n = usize::from(inp.u8() % 33);
    let mut sums = [0u64; 3];
    let mut taken = Vec::new();
    for _ in 0..n {
        let idx = usize::from(inp.u16()) % NSLOTS;
        let state = u64::from(inp.u8() % 8);
        let flags = inp.u8();
        let spill = flags & 1 == 1;
        let pid = match flags >> 1 & 3 {
            0 => 0,
            1 => env().pid,
            2 => MAX_PID,
            _ => inp.u32() & MAX_PID,
        };
        let gen = u64::from(inp.u16());
        let pages = inp.size();
        let u = inp.u8();
        let uuid = if u == 0 { UUID_A } else { [u; 16] };
        let since = u64::from(inp.u32());
        let origin = u64::from(inp.u8());
        let pool = match inp.u8() {
            p @ 0..=250 => u64::from(p % 3),
            p => u64::from(p),
        };
        let check_sel = inp.u8();
        let hi = u64::from_be_bytes(uuid[..8].try_into().unwrap());
        let lo = u64::from_be_bytes(uuid[8..].try_into().unwrap());
        let f = [origin, pages, hi, lo, since, pool];
        let check = match check_sel % 8 {
            6 => check_of(u64::from(pid), gen, f) ^ 1,
            7 => inp.u64(),
            _ => check_of(u64::from(pid), gen, f),
        };
        let b = slot_off(idx);
        put64(&mut img, b, slot_word(state, spill, pid, gen));
        for (k, v) in [1, 2, 3, 4, 5, 7].iter().zip(f) {
            put64(&mut img, b + 8 * k, v);
        }
        put64(&mut img, b + 48, check);
        if (2..=4).contains(&state) && pool < 3 && pages <= MAX_PAGES {
            sums[pool as usize] += pages;
        }
        taken.push(idx);
    }
    for (p, (tag, delta, epoch, last)) in total_tags.into_iter().enumerate() {
        let sum = sums[p].min(CLAIMED_MASK);
        let claimed = match tag % 4 {
            0 => sum,
            1 => sum.saturating_sub(u64::from(delta)),
            2 => (sum + u64::from(delta)).min(CLAIMED_MASK),
            _ => u64::from(delta) << 20 | u64::from(epoch),
        };
        // Naming no slot, a slot of the image (apply or release), or any
        // 13-bit value (beyond NSLOTS: a total that does not decode).
        let (last, op) = match (tag >> 2) % 4 {
            0 => (0, 0),
            1 | 2 if !taken.is_empty() => {
                let i = taken[usize::from(last) % taken.len()];
                (i as u64 + 1, u64::from((tag >> 2) % 4 == 2))
            }
            _ => (u64::from(last) & LAST_MASK, u64::from(tag >> 7)),
        };
        let word = claimed | (last << 35) | (op << 48) | ((u64::from(epoch) & 0x7fff) << 49);
        put64(&mut img, TOTAL_OFFSETS[p], word);
    }
    img
}

fn build(inp: &mut Input<'_>, mode_byte: u8, perm_byte: u8) -> Built {
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
                let off = usize::from(inp.u8()) % HEADER_LEN;
                img[off] ^= inp.u8();
            }
            if inp.u8() & 1 == 1 {
                let c = fnv1a(&img[..72]);
                put64(&mut img, 72, c);
            }
            img
        }
        3 => {
            let mut img = valid_header_image();
            for off in TOTAL_OFFSETS.iter().chain([&SPILLED_OFFSET]) {
                put64(&mut img, *off, inp.u64());
            }
            let first = usize::from(inp.u16()) % NSLOTS;
            let r = inp.rest();
            let at = slot_off(first);
            let n = r.len().min(FILE_SIZE - at);
            img[at..at + n].copy_from_slice(&r[..n]);
            img
        }
        4 => structured(inp),
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

/// A second, read-only mapping of the ledger file: the raw words, to see
/// exactly what an operation changed.
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

    fn totals(&self) -> [u64; 3] {
        TOTAL_OFFSETS.map(|o| self.word(o))
    }
}

impl Drop for RawView {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new().
        unsafe { libc::munmap(self.base as *mut libc::c_void, FILE_SIZE) };
    }
}

/// Slots in use that record this process's pid.
fn ours(words: &[u64], pid: u32) -> Vec<usize> {
    (0..NSLOTS)
        .filter(|i| words[*i] & 7 != 0 && ((words[*i] >> 4) & u64::from(MAX_PID)) as u32 == pid)
        .collect()
}

/// `arc::reserve::reserve` and `release`: the ARC path of admission.
fn arc_reserve(l: &Ledger<'_>, world: &FileWorld<'_>, o: &Oracle, a: &ArcOp) {
    // A slack in the last page below 2^64 rounds up to 2^52 pages, whose
    // byte count `arc::guard::target` cannot represent: OVERFLOW, and
    // (since the fix of fuzz/README.md's first finding) nothing held.
    let slack_overflows = a.policy.slack > u64::MAX - 4095;
    let before = l.claimed(Pool::Arc);
    let req = btopr(a.bytes, PageSize::Base4K);
    let lim = a.policy.limits;
    let c_min = btopr(lim.arc_c_min, PageSize::Base4K);
    let ceiling = btop(a.policy.ceiling.bytes(&lim), PageSize::Base4K);
    match reserve::reserve(l, world, &a.uuid, a.bytes, &a.policy) {
        Ok(Reservation::Reserved(r)) => {
            assert!(lim.arc_c_min <= lim.arc_c_max);
            if r.already {
                assert!(
                    o.listed
                        .iter()
                        .any(|c| c.uuid == a.uuid && c.pool == Pool::Arc as u64),
                    "'already reserved' without a reservation"
                );
                return;
            }
            assert!(
                !o.total_corrupt[2],
                "ARC reservation against a corrupt total"
            );
            let after = l.claimed(Pool::Arc);
            assert_eq!(r.bytes, req * 4096);
            assert!(
                u128::from(c_min) + u128::from(after) <= u128::from(ceiling),
                "ARC reservation past the guard: c_min {c_min} + reserved {after} > ceiling {ceiling}"
            );
            // Ours is the one slot whose lock this process holds. A hostile
            // file may already hold a dead holder's ARC claim for the same
            // UUID off the probe chain (a spill bit where none belongs):
            // `reserve` rightly does not count it, so it cannot tell us
            // which slot is ours. (Fuzz finding: crash input
            // corpus/ledger_file/repro-dead-arc-twin.)
            let held: Vec<usize> = (0..NSLOTS).filter(|&i| world.mine(i)).collect();
            assert_eq!(held.len(), 1, "a new ARC reservation holds slots {held:?}");
            let slot = held[0];
            let c = l
                .read(slot)
                .expect("our reservation reads back")
                .expect("our reservation is a claim");
            assert_eq!(c.state, SlotState::Claimed);
            assert_eq!((c.pool, c.uuid, c.pages), (Pool::Arc, a.uuid, req));
            assert_eq!(
                reserve::release(l, world, &a.uuid),
                Ok(req * 4096),
                "ARC release"
            );
            assert!(!world.mine(slot), "the lock outlived the reservation");
        }
        Ok(Reservation::Refused(_)) => {
            assert!(
                u128::from(c_min) + u128::from(l.claimed(Pool::Arc)) + u128::from(req)
                    > u128::from(ceiling),
                "ARC refusal of a reservation the guard admits"
            );
        }
        Err(e) => {
            let s = e.status();
            assert!(
                l.claimed(Pool::Arc) <= before,
                "a failed ARC reserve ({s:?}) kept its claim"
            );
            match s {
                Status::InvalidArgument
                | Status::LedgerFull
                | Status::Busy
                | Status::LedgerCorrupt => {}
                Status::Overflow => assert!(
                    slack_overflows,
                    "ARC reserve: Overflow with slack {}",
                    a.policy.slack
                ),
                _ => panic!("ARC reserve failed with {s:?}"),
            }
        }
    }
}

fn run(l: &Ledger<'_>, world: &FileWorld<'_>, raw: &RawView, o: &Oracle, ops: &Ops, e: &Env) {
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
                assert_eq!((c.slot, c.pid, c.pages), (x.slot, x.pid, x.pages));
                assert_eq!(c.pool as u64, x.pool);
                assert_eq!(c.uuid, x.uuid);
            }
        }
    }

    // claim
    let words_before = raw.slot_words();
    let ours_before = ours(&words_before, e.pid);
    let mut asked = 0usize;
    let mut last_cap = None;
    let mut cap = || {
        let r = ops.caps[asked.min(3)];
        asked += 1;
        last_cap = Some(r);
        r.map_err(vmmresv::Error::new)
    };
    let pi = ops.pool as usize;
    let outcome = l.claim(world, UUID_A, ops.pool, ops.pages, ops.hint, &mut cap);
    if ops.pages == 0 || ops.pages > MAX_PAGES {
        assert_eq!(
            outcome.map_err(|e| e.status()),
            Err(Status::InvalidArgument)
        );
    }
    let mine = match outcome {
        Ok(ClaimOutcome::Claimed { slot, others }) => {
            assert!(!o.total_corrupt[pi], "admitted against a corrupt total");
            let Some(Ok(cap)) = last_cap else {
                panic!("claimed without a capacity reading")
            };
            assert!(others + ops.pages <= cap, "claim beyond the capacity");
            assert!(others + ops.pages <= MAX_PAGES);
            assert_eq!(
                l.claimed(ops.pool),
                others + ops.pages,
                "total != others + pages"
            );
            let c = l
                .read(slot)
                .expect("own slot")
                .expect("own slot is a claim");
            assert_eq!(
                (c.state, c.pid, c.pool, c.pages, c.uuid),
                (SlotState::Claimed, e.pid, ops.pool, ops.pages, UUID_A)
            );
            assert!(world.mine(slot), "claimed without holding the slot's lock");
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
            assert_eq!(l.claimed(ops.pool), r.claimed, "the refusal's total moved");
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
            None
        }
    };
    if mine.is_none() {
        // Nothing of ours left behind: no slot taken (a take bumps the
        // generation) with our pid, no lock. A slot of the file that
        // records our pid may have been helped on or reclaimed.
        let after = raw.slot_words();
        for i in ours(&after, e.pid) {
            assert!(
                ours_before.contains(&i) && after[i] >> 27 == words_before[i] >> 27,
                "an unsuccessful claim left slot {i} taken: {:#x} -> {:#x}",
                words_before[i],
                after[i]
            );
        }
        for i in 0..NSLOTS {
            assert!(!world.mine(i), "an unsuccessful claim kept slot {i}'s lock");
        }
    }

    // release our claim
    if let Some((slot, others)) = mine {
        assert_eq!(
            l.release(world, slot),
            Ok(ops.pages),
            "release of own claim"
        );
        assert_eq!(
            l.claimed(ops.pool),
            others,
            "release did not restore the total"
        );
        assert!(
            l.read(slot).expect("slot").is_none(),
            "released slot not free"
        );
        assert!(!world.mine(slot), "the lock outlived the claim");
    }

    // release an arbitrary slot: this process holds no lock in the file
    let before = l.read(ops.release_slot);
    let words = raw.slot_words();
    let totals = raw.totals();
    match l.release(world, ops.release_slot) {
        Ok(pages) => panic!(
            "released slot {} ({pages} pages) that this process does not hold: {before:?}",
            ops.release_slot
        ),
        Err(err) => {
            let s = err.status();
            match before {
                _ if ops.release_slot >= NSLOTS => assert_eq!(s, Status::InvalidArgument),
                Err(_) => assert_eq!(s, Status::LedgerCorrupt),
                Ok(None) => assert_eq!(s, Status::NotFound),
                Ok(Some(c)) if c.state == SlotState::Claimed => assert_eq!(s, Status::NotHolder),
                Ok(Some(_)) => assert_eq!(s, Status::NotFound),
            }
        }
    }
    assert_eq!(raw.slot_words(), words, "a refused release changed a slot");
    assert_eq!(raw.totals(), totals, "a refused release changed a total");

    // an ARC reservation (arc::reserve), and its release
    if let Some(a) = &ops.arc {
        arc_reserve(l, world, o, a);
    }

    // reconcile
    if !ops.reconcile {
        return;
    }
    match l.reconcile(world) {
        Ok(rep) => {
            // A RELEASING slot a total names as its last release is freed
            // by whoever helps, unread: only such a slot may be invalid.
            assert!(
                o.invalid.iter().all(|i| o.named.contains(i)),
                "reconciled a file with invalid slots {:?} (named {:?})",
                o.invalid,
                o.named
            );
            assert!(
                !o.total_corrupt.iter().any(|c| *c),
                "reconciled a file with a total that does not decode"
            );
            // Every holder is dead (this process holds nothing now).
            let claims = l.claims().expect("claims after a reconcile");
            assert!(
                claims.is_empty(),
                "dead claims survive a reconcile: {claims:?}"
            );
            for p in Pool::ALL {
                assert_eq!(l.claimed(p), 0, "{p:?} total after a reconcile");
                assert_eq!(rep.claimed_after[p as usize], 0);
            }
            assert_eq!(rep.live_claims, 0);
            assert!(
                raw.slot_words().iter().all(|w| w & 7 == 0),
                "a slot stayed in use after a reconcile"
            );
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
    let b = build(&mut inp, mode_byte, perm_byte);

    let path = e.dir.join("admission.ledger");
    let anchor = anchor_for(&path);
    let target = e.dir.join("target.ledger");
    let target_anchor = anchor_for(&target);
    for p in [&path, &anchor, &target, &target_anchor] {
        remove(p);
    }
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

    // Ok(true): must open; Ok(false): may open (a version-1 file with
    // nothing in it is replaced by a fresh ledger); Err: must not.
    let v1 = b.img.len() >= 12 && &b.img[..8] == b"VMMRLDG\0" && b.img[8..12] == [1, 0, 0, 0];
    let expect: Result<bool, ()> = match b.kind {
        Kind::Missing => Ok(true),
        Kind::Symlink | Kind::Fifo | Kind::Dir => Err(()),
        Kind::File if b.mode & 0o022 != 0 => Err(()),
        // SAFETY: geteuid cannot fail.
        Kind::File if b.mode & 0o200 == 0 && unsafe { libc::geteuid() } != 0 => Err(()),
        Kind::File if v1 => Ok(false),
        Kind::File if b.img.len() != FILE_SIZE || !header_valid(&b.img) => Err(()),
        Kind::File => Ok(true),
    };
    let opened = LedgerFile::open_or_create(&path);
    match (&opened, expect) {
        (Ok(_), Ok(_)) | (Err(_), Ok(false)) => {}
        (Err(got), Err(())) => assert!(
            matches!(
                got.status(),
                Status::LedgerUnsafe
                    | Status::LedgerCorrupt
                    | Status::LedgerVersion
                    | Status::LedgerReplaced
                    | Status::InvalidArgument
                    | Status::Permission
                    | Status::Io
            ),
            "open: {got}"
        ),
        (got, want) => panic!("open: want {want:?}, got {got:?}"),
    }
    if let Ok(file) = opened {
        let img = if b.kind == Kind::Missing || v1 {
            std::fs::read(&path).expect("read the ledger")
        } else {
            b.img
        };
        let o = oracle(&img);
        let raw = RawView::new(&path);
        run(&file.ledger(), &file.world(), &raw, &o, &ops, e);
        drop(file);
    }
    for p in [&path, &anchor, &target, &target_anchor] {
        remove(p);
    }
});
