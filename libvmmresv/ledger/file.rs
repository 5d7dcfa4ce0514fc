//! The ledger's shared file: create, check, map — and the kernel's record
//! locks that say which claims are alive ([`FileWorld`]).
//!
//! Layout (version 2), little-endian on the only hosts that exist (x86_64):
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 80 | [`FileHeader`]: magic, version, sizes, backend and pool, creation, instance, check |
//! | 128 | 8 | the reservoir pool's total word (its own cache line) |
//! | 192 | 8 | the count of spilled slots ([`super::PROBE`]) |
//! | 256 | 8 | the transient pool's total word |
//! | 320 | 8 | the ARC pool's total word |
//! | 4096 | 4096 × 64 | the slots |
//! | [`LOCK_BASE`] + 2i, + 2i + 1 | 1 each | slot i's holder and adopter lock bytes (never written: record locks only) |
//!
//! Creation: the whole file is *written* (header and zeros) under a short
//! temporary name, then linked into place under its name and an anchor
//! (`<name>.anchor`). Written, not sized with `ftruncate`: a sparse file on
//! a full file system would raise SIGBUS at the first touch of a hole, in
//! every process that maps it; written blocks cannot (on tmpfs, which is
//! where the run directory belongs — illumos's `/var/run` is tmpfs — and on
//! ordinary file systems; a compressing or copy-on-write one may still need
//! new blocks for later writes). `posix_fallocate` is not used: illumos
//! tmpfs and ZFS refuse it (EINVAL).
//!
//! Identity: the path must name the file this process holds, and the anchor
//! the same file. A ledger whose name was unlinked is restored from its
//! anchor (the claims in it stay visible); a name renamed over (or an
//! anchor that names another file) is [`Status::LedgerReplaced`]: nobody
//! admits against a view that may be missing pending claims.
//!
//! Open: a regular file (O_NOFOLLOW: not a symlink) owned by the effective
//! uid and writable by nobody else, exactly the expected size, with the
//! expected magic, version, sizes and header check. The header is read
//! with `pread` before mapping, and the mapped words are only ever touched
//! as atomics. A version-1 file (the pid-liveness layout) with no claim in
//! it is replaced; with claims, [`Status::LedgerVersion`].
//!
//! One descriptor per file per process: POSIX record locks belong to the
//! process and are *all* dropped when it closes any descriptor of the file,
//! so every handle on one file shares one descriptor and one mapping
//! (looked up by device and inode from `stat`, before anything is opened),
//! kept while any handle or any lock needs it.

// The file is mapped and shared with other processes, and liveness is the
// kernel's record locks: this layer is made of C calls.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{AtomicU64, Ledger, Role, Slot, World, NSLOTS};
use crate::errno;
use crate::status::{Error, Status};

/// Result of the file layer.
pub type Result<T> = core::result::Result<T, Error>;

/// Name of the ledger file in the run directory.
pub const LEDGER_FILE_NAME: &str = "admission.ledger";
/// Appended to a ledger's name for its anchor (a second link to it).
pub const ANCHOR_SUFFIX: &str = ".anchor";
/// The longest ledger file name a caller may choose: room for `.host` (the
/// host-memory ledger beside it) and the anchor suffix within the 255
/// bytes a file name may have.
pub const MAX_NAME: usize = 255 - ".host".len() - ANCHOR_SUFFIX.len();
/// The longest name the file layer takes (its anchor must fit).
const MAX_FILE_NAME: usize = 255 - ANCHOR_SUFFIX.len();
/// "VMMRLDG" and a NUL.
pub const MAGIC: [u8; 8] = *b"VMMRLDG\0";
/// Layout version of this file.
pub const VERSION: u32 = 2;
/// Bytes before the first slot.
pub const HEADER_SIZE: usize = 4096;
/// Bytes per slot.
pub const SLOT_SIZE: usize = 64;
/// The whole file.
pub const FILE_SIZE: usize = HEADER_SIZE + NSLOTS * SLOT_SIZE;
/// First lock byte: just past the data (record locks may lie beyond the
/// end of a file, and these bytes are never read or written).
#[allow(clippy::as_conversions)] // const context: no From there
pub const LOCK_BASE: u64 = FILE_SIZE as u64;
const TOTAL_OFFSET: usize = 128;
const SPILLED_OFFSET: usize = 192;
const TRANSIENT_TOTAL_OFFSET: usize = 256;
const ARC_TOTAL_OFFSET: usize = 320;

/// Which kernel pool a ledger's claims are against.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The illumos VMM reservoir (`/dev/vmmctl`).
    VmmReservoir = 1,
    /// A Linux hugetlb pool of one page size (and optionally one node).
    LinuxHugetlb = 2,
}

// `name`: the name reports use.
crate::status::c_enum!(Backend, names: name -> &'static str {
    VmmReservoir => "vmm-reservoir",
    LinuxHugetlb => "linux-hugetlb",
});

/// The backend and pool a ledger file is for, named in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolId {
    /// The kernel pool.
    pub backend: Backend,
    /// The pool's page size in bytes (4096 for the VMM reservoir).
    pub page_size: u64,
    /// The NUMA node, or -1 for the whole pool.
    pub node: i32,
}

impl Default for PoolId {
    fn default() -> PoolId {
        PoolId {
            backend: Backend::VmmReservoir,
            page_size: crate::pages::PAGESIZE,
            node: -1,
        }
    }
}

/// The fixed part of the header, never written after creation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct FileHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// [`SLOT_SIZE`].
    pub slot_size: u32,
    /// Number of slots.
    pub nslots: u32,
    /// Page size the claims count in (4096).
    pub page_size: u32,
    /// [`Backend`] as a number.
    pub backend: u32,
    /// The pool's page size in bytes.
    pub pool_page_size: u64,
    /// The pool's NUMA node, -1 for none.
    pub node: i32,
    /// Zero.
    pub reserved: u32,
    /// [`FILE_SIZE`].
    pub file_size: u64,
    /// Unix seconds at creation.
    pub created: u64,
    /// Random at creation: tells two ledgers apart in reports.
    pub instance: u64,
    /// FNV-1a of the 72 bytes before it.
    pub check: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<FileHeader>(), 80);
static_assertions::const_assert_eq!(core::mem::size_of::<Slot>(), SLOT_SIZE);

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl FileHeader {
    /// The header of a new file.
    #[allow(clippy::as_conversions)] // compile-time sizes, all far below 2^32
    pub fn new(created: u64, instance: u64, pool: PoolId) -> FileHeader {
        let mut h = FileHeader {
            magic: MAGIC,
            version: VERSION,
            header_size: HEADER_SIZE as u32,
            slot_size: SLOT_SIZE as u32,
            nslots: NSLOTS as u32,
            page_size: crate::pages::PAGESIZE as u32,
            backend: pool.backend as u32,
            pool_page_size: pool.page_size,
            node: pool.node,
            reserved: 0,
            file_size: FILE_SIZE as u64,
            created,
            instance,
            check: 0,
        };
        h.check = h.compute_check();
        h
    }

    fn compute_check(&self) -> u64 {
        // The bytes before the check word (the header is 80 bytes long).
        fnv1a(self.as_bytes().get(..72).unwrap_or_default())
    }

    /// The pool the header names, if it names a known one.
    pub fn pool(&self) -> Option<PoolId> {
        let backend = match self.backend {
            1 => Backend::VmmReservoir,
            2 => Backend::LinuxHugetlb,
            _ => return None,
        };
        Some(PoolId {
            backend,
            page_size: self.pool_page_size,
            node: self.node,
        })
    }

    /// Whether this is a header this library wrote for this layout.
    pub fn validate(&self) -> Result<()> {
        if self.magic == MAGIC && self.version != VERSION {
            return Err(Error::new(Status::LedgerVersion));
        }
        let ok = self.magic == MAGIC
            && usize::try_from(self.header_size) == Ok(HEADER_SIZE)
            && usize::try_from(self.slot_size) == Ok(SLOT_SIZE)
            && usize::try_from(self.nslots) == Ok(NSLOTS)
            && u64::from(self.page_size) == crate::pages::PAGESIZE
            && self.pool().is_some()
            && self.pool_page_size.is_power_of_two()
            && self.node >= -1
            && self.reserved == 0
            && u64::try_from(FILE_SIZE) == Ok(self.file_size)
            && self.check == self.compute_check();
        if ok {
            Ok(())
        } else {
            Err(Error::new(Status::LedgerCorrupt))
        }
    }
}

fn last_os_error() -> Error {
    errno::ledger_error(&std::io::Error::last_os_error())
}

/// This process's pid, cached: a claim takes and drops a few locks, each
/// asking whose map it is. A forked child clears the cache
/// (`pthread_atfork`), so it never answers with its parent's pid.
fn pid() -> u32 {
    static PID: AtomicU32 = AtomicU32::new(0);
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn forked() {
        PID.store(0, Ordering::Relaxed);
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic (async-
        // signal-safe); it cannot fail in a way that matters here (without
        // it, the cache is simply never cleared — so on failure, never use
        // the cache).
        if unsafe { libc::pthread_atfork(None, None, Some(forked)) } != 0 {
            PID.store(u32::MAX, Ordering::Relaxed);
        }
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = std::process::id();
            PID.store(p, Ordering::Relaxed);
            p
        }
        u32::MAX => std::process::id(),
        p => p,
    }
}

/// One ledger file as this process holds it: the one descriptor, the one
/// mapping, and which slots' lock bytes this process holds (the kernel's
/// `F_GETLK` never reports a process's own locks).
struct Shared {
    file: File,
    base: *mut u8,
    dev: u64,
    ino: u64,
    /// The process the `held` map belongs to: a forked child holds none of
    /// its parent's locks, and finds out by comparing.
    owner: AtomicU32,
    /// Per slot: bit 0 holder byte, bit 1 adopter byte.
    held: Box<[AtomicU8]>,
    /// Slots whose claims this process handed over: its locks on them
    /// outlive the claim if the adopter ends it, and are dropped once the
    /// slot is free (no other thread of this process can take such a slot
    /// while its bit is set, so this never drops a lock being taken).
    handed: Mutex<Vec<usize>>,
    /// The path it was first opened by.
    path: PathBuf,
    /// Its header, as validated at that open (never written after
    /// creation).
    header: FileHeader,
    /// Descriptors of this file inherited across an exec (a hand-off):
    /// they carry nothing, but closing one would drop every lock this
    /// process holds on the file, so they stay open.
    inherited: Mutex<Vec<File>>,
}

// SAFETY: the mapping is shared memory that this code accesses only through
// atomics (the totals, the spill count and the slots); the pointer is valid
// until Drop, which needs the last Arc.
unsafe impl Send for Shared {}
// SAFETY: as above: every access through &Shared is atomic.
unsafe impl Sync for Shared {}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: base/FILE_SIZE is the mapping made in Shared::map, and no
        // reference into it outlives the last Arc (Ledger borrows a
        // LedgerFile, which holds one).
        unsafe {
            libc::munmap(self.base.cast(), FILE_SIZE);
        }
    }
}

impl Shared {
    fn map(file: File, dev: u64, ino: u64, path: &Path, header: FileHeader) -> Result<Shared> {
        // SAFETY: mapping FILE_SIZE bytes of a file checked to be exactly
        // that long, shared and read-write; the result is checked.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                FILE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(last_os_error());
        }
        Ok(Shared {
            file,
            base: base.cast(),
            dev,
            ino,
            owner: AtomicU32::new(pid()),
            held: (0..NSLOTS).map(|_| AtomicU8::new(0)).collect(),
            handed: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
            header,
            inherited: Mutex::new(Vec::new()),
        })
    }

    /// The `held` map, emptied first in a forked child (it holds none of
    /// its parent's locks).
    fn held(&self) -> &[AtomicU8] {
        let me = pid();
        if self.owner.load(Ordering::Acquire) != me {
            for h in self.held.iter() {
                h.store(0, Ordering::Relaxed);
            }
            self.owner.store(me, Ordering::Release);
        }
        &self.held
    }

    fn holds_any(&self) -> bool {
        self.held().iter().any(|h| h.load(Ordering::Relaxed) != 0)
    }
}

/// Files this process has open, one entry per (device, inode).
static OPEN: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());

/// A mapped ledger file.
pub struct LedgerFile {
    shared: Arc<Shared>,
    path: PathBuf,
    header: FileHeader,
}

impl std::fmt::Debug for LedgerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerFile")
            .field("path", &self.path)
            .field("dev", &self.shared.dev)
            .field("ino", &self.shared.ino)
            .finish()
    }
}

/// `<path>.anchor`.
pub fn anchor_for(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ANCHOR_SUFFIX);
    PathBuf::from(p)
}

fn stat_id(path: &Path) -> Result<Option<(u64, u64)>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(Error::with_errno(Status::LedgerUnsafe, libc::ELOOP))
        }
        Ok(m) if m.is_dir() => Err(Error::with_errno(Status::Io, libc::EISDIR)),
        Ok(m) if !m.is_file() => Err(Error::new(Status::LedgerUnsafe)),
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(errno::ledger_error(&e)),
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // Tells ledgers apart in reports only: time and pid serve.
        return now_secs().rotate_left(20) ^ u64::from(pid());
    }
    u64::from_ne_bytes(b)
}

impl LedgerFile {
    /// Open the ledger at `path` for the VMM reservoir, creating it (and
    /// its directory) if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<LedgerFile> {
        Self::open_or_create_for(path, PoolId::default())
    }

    /// Open the ledger at `path`, creating it for `pool` if it does not
    /// exist. An existing ledger for another pool is INVALID_ARGUMENT.
    pub fn open_or_create_for(path: &Path, pool: PoolId) -> Result<LedgerFile> {
        let name_len = path.file_name().map(|n| n.len()).unwrap_or(0);
        if name_len == 0 || name_len > MAX_FILE_NAME {
            return Err(Error::new(Status::InvalidArgument));
        }
        let anchor = anchor_for(path);
        for _ in 0..8 {
            let here = stat_id(path)?;
            let anchored = stat_id(&anchor)?;
            match (here, anchored) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::new(Status::LedgerReplaced));
                }
                (Some(_), Some(_)) => {}
                (Some(id), None) => {
                    // A version-1 ledger, or an anchor someone removed. A
                    // file this process has open is ours (version 2), and
                    // must not be opened and closed again: that would drop
                    // every record lock this process holds on it.
                    if !Self::is_open(id) && Self::retire_v1(path, pool)? {
                        continue;
                    }
                    match std::fs::hard_link(path, &anchor) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => continue,
                        Err(e) => return Err(errno::ledger_error(&e)),
                    }
                    continue;
                }
                (None, Some(_)) => {
                    // The name was unlinked while the anchor kept the file
                    // (and its claims): restore the name.
                    match std::fs::hard_link(&anchor, path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(errno::ledger_error(&e)),
                    }
                    continue;
                }
                (None, None) => {
                    Self::create(path, &anchor, pool)?;
                    continue;
                }
            }
            let f = Self::open_existing(path)?;
            let want = f.header.pool();
            if want != Some(pool) {
                return Err(Error::new(Status::InvalidArgument));
            }
            return Ok(f);
        }
        // Names appearing and vanishing under us without end.
        Err(Error::new(Status::LedgerReplaced))
    }

    /// Create the file under a temporary name, write all of it, and link
    /// it into place as the anchor and then the name; losing the race to
    /// another creator is fine.
    fn create(path: &Path, anchor: &Path, pool: PoolId) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
                .map_err(|e| errno::ledger_error(&e))?;
        }
        let tmp = Self::write_new(&dir, pool)?;
        let result = match std::fs::hard_link(&tmp, anchor) {
            Ok(()) => match std::fs::hard_link(anchor, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(errno::ledger_error(&e)),
            },
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(errno::ledger_error(&e)),
        };
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// A complete new ledger file under a short temporary name in `dir`
    /// (it fits whatever the ledger's name is): written to the last byte,
    /// so a full file system is an error here and never a SIGBUS later.
    fn write_new(dir: &Path, pool: PoolId) -> Result<PathBuf> {
        let tmp = dir.join(format!(
            ".vmmresv.{}.{:x}.tmp",
            pid(),
            random_u64() & 0xffff_ffff
        ));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| errno::ledger_error(&e))?;
        let result = (|| {
            let mut block = vec![0u8; HEADER_SIZE];
            let header = FileHeader::new(now_secs(), random_u64(), pool);
            if let Some(head) = block.get_mut(..core::mem::size_of::<FileHeader>()) {
                head.copy_from_slice(header.as_bytes());
            }
            f.write_all_at(&block, 0)
                .map_err(|e| errno::ledger_error(&e))?;
            let zeros = vec![0u8; 64 * 1024];
            for off in (HEADER_SIZE..FILE_SIZE).step_by(zeros.len()) {
                let n = zeros.len().min(FILE_SIZE.saturating_sub(off));
                let at = u64::try_from(off).map_err(|_| Error::new(Status::Overflow))?;
                f.write_all_at(zeros.get(..n).unwrap_or_default(), at)
                    .map_err(|e| errno::ledger_error(&e))?;
            }
            f.sync_data().map_err(|e| errno::ledger_error(&e))
        })();
        match result {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// A version-1 ledger at `path`: replaced (true) if no claim is in it,
    /// else LEDGER_VERSION. False if `path` is not a version-1 ledger.
    fn retire_v1(path: &Path, pool: PoolId) -> Result<bool> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(errno::ledger_error(&e)),
        };
        let mut head = [0u8; 12];
        if file.read_exact_at(&mut head, 0).is_err()
            || head[..8] != MAGIC
            || u32::from_le_bytes([head[8], head[9], head[10], head[11]]) != 1
        {
            return Ok(false);
        }
        // Version 1: 8192 slots; totals (claimed: low 36 bits) at 128,
        // 256, 320; slot state words (state: low 3 bits) every 64 bytes
        // from 4096. Any claim in it, live or not, keeps it: its liveness
        // was the pid's, which this library no longer reads.
        const V1_NSLOTS: usize = 8192;
        let mut all = vec![0u8; HEADER_SIZE + V1_NSLOTS * SLOT_SIZE];
        file.read_exact_at(&mut all, 0)
            .map_err(|e| match e.kind() {
                // Shorter than a version-1 ledger: not one.
                ErrorKind::UnexpectedEof => Error::new(Status::LedgerCorrupt),
                _ => errno::ledger_error(&e),
            })?;
        // Every offset read is inside `all`.
        let word = |off: usize| {
            all.get(off..off.saturating_add(8))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let in_use = [TOTAL_OFFSET, TRANSIENT_TOTAL_OFFSET, ARC_TOTAL_OFFSET]
            .iter()
            .any(|&o| word(o) & ((1 << 36) - 1) != 0)
            || (0..V1_NSLOTS)
                .any(|i| word(SLOT_SIZE.saturating_mul(i).saturating_add(HEADER_SIZE)) & 7 != 0);
        if in_use {
            return Err(Error::new(Status::LedgerVersion));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = Self::write_new(&dir, pool)?;
        let anchor = anchor_for(path);
        let r = match std::fs::hard_link(&tmp, &anchor) {
            Ok(()) => std::fs::rename(&tmp, path).map_err(|e| errno::ledger_error(&e)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(errno::ledger_error(&e)),
        };
        let _ = std::fs::remove_file(&tmp);
        r.map(|()| true)
    }

    /// Whether this process has the file with this (device, inode) open.
    fn is_open(id: (u64, u64)) -> bool {
        OPEN.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|s| (s.dev, s.ino) == id)
    }

    fn open_existing(path: &Path) -> Result<LedgerFile> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        // Files no handle and no lock needs any more are let go (closing
        // their descriptor drops nothing: this process holds no lock there).
        open.retain(|s| Arc::strong_count(s) > 1 || s.holds_any());
        let id = stat_id(path)?.ok_or(Error::new(Status::LedgerReplaced))?;
        if let Some(s) = open.iter().find(|s| (s.dev, s.ino) == id) {
            return Ok(LedgerFile {
                shared: s.clone(),
                path: path.to_path_buf(),
                header: s.header,
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| errno::ledger_error(&e))?;
        let meta = file.metadata().map_err(|e| errno::ledger_error(&e))?;
        if (meta.dev(), meta.ino()) != id {
            return Err(Error::new(Status::LedgerReplaced));
        }
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if !meta.file_type().is_file() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
            return Err(Error::new(Status::LedgerUnsafe));
        }
        let mut hb = [0u8; core::mem::size_of::<FileHeader>()];
        if u64::try_from(hb.len()).map_or(true, |n| meta.len() < n) {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        file.read_exact_at(&mut hb, 0)
            .map_err(|e| errno::ledger_error(&e))?;
        let header =
            FileHeader::read_from_bytes(&hb).map_err(|_| Error::new(Status::LedgerCorrupt))?;
        header.validate()?;
        // The size only: a file this library wrote has every block, but a
        // compressing file system (ZFS) may store its zeros as holes, so
        // the block count proves nothing. The run directory belongs on
        // tmpfs (illumos's /var/run), where written is allocated.
        if u64::try_from(FILE_SIZE) != Ok(meta.len()) {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        let shared = Arc::new(Shared::map(file, id.0, id.1, path, header)?);
        open.push(shared.clone());
        Ok(LedgerFile {
            shared,
            path: path.to_path_buf(),
            header,
        })
    }

    /// The ledger at `path` if this process has it open already (no system
    /// call): a process can hold claims only in a file it opened.
    pub fn already_open(path: &Path) -> Option<LedgerFile> {
        let open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        let s = open.iter().find(|s| s.path == path)?.clone();
        Some(LedgerFile {
            header: s.header,
            shared: s,
            path: path.to_path_buf(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header it was opened with.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The path (and its anchor) still name this file: else
    /// LEDGER_REPLACED. One `stat` on each admission.
    pub fn check_identity(&self) -> Result<()> {
        let mine = (self.shared.dev, self.shared.ino);
        match stat_id(&self.path)? {
            Some(id) if id == mine => Ok(()),
            Some(_) => Err(Error::new(Status::LedgerReplaced)),
            None => {
                // The name was unlinked; if the anchor is still this file,
                // put the name back (as an open would) and go on.
                let anchor = anchor_for(&self.path);
                if stat_id(&anchor)? != Some(mine) {
                    return Err(Error::new(Status::LedgerReplaced));
                }
                match std::fs::hard_link(&anchor, &self.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(errno::ledger_error(&e)),
                }
                match stat_id(&self.path)? {
                    Some(id) if id == mine => Ok(()),
                    _ => Err(Error::new(Status::LedgerReplaced)),
                }
            }
        }
    }

    /// The descriptor every handle of this process shares.
    pub fn raw_fd(&self) -> RawFd {
        self.shared.file.as_raw_fd()
    }

    /// The kernel side of the protocol for this file, for this process.
    pub fn world(&self) -> FileWorld<'_> {
        FileWorld {
            shared: &self.shared,
        }
    }

    /// The descriptor every handle of this process shares, made to survive
    /// an exec (for a hand-off); returns its number.
    pub fn keep_across_exec(&self) -> Result<RawFd> {
        let fd = self.shared.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this process owns; the result is
        // checked.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(last_os_error());
        }
        Ok(fd)
    }

    /// Take over descriptor `fd`, inherited across an exec, if it is this
    /// file: marked close-on-exec again and kept open (closing it would
    /// drop this process's locks). False if `fd` is not this file.
    pub fn adopt_inherited(&self, fd: RawFd) -> Result<bool> {
        if fd < 0 || fd == self.shared.file.as_raw_fd() {
            return Ok(fd >= 0);
        }
        // SAFETY: fstat into a zeroed stat of our own; F_GETFD first tells
        // whether the number is an open descriptor at all.
        let (open, st) = unsafe {
            let mut st: libc::stat = core::mem::zeroed();
            (
                libc::fcntl(fd, libc::F_GETFD) >= 0 && libc::fstat(fd, &mut st) == 0,
                st,
            )
        };
        // st_dev and st_ino are u64 on Linux and illumos LP64 alike, but
        // libc spells them differently per platform.
        #[allow(clippy::unnecessary_cast, clippy::as_conversions)]
        let id = (st.st_dev as u64, st.st_ino as u64);
        if !open || id != (self.shared.dev, self.shared.ino) {
            return Ok(false);
        }
        // SAFETY: the descriptor is open and is this file; setting its
        // close-on-exec flag is checked.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(last_os_error());
        }
        let mut kept = self
            .shared
            .inherited
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !kept.iter().any(|f| f.as_raw_fd() == fd) {
            // SAFETY: an open descriptor of this file that nothing else in
            // this process claims (it came across the exec); owned from
            // here on and never closed while the process lives.
            kept.push(unsafe { File::from_raw_fd(fd) });
        }
        Ok(true)
    }

    /// The protocol over the mapped words.
    pub fn ledger(&self) -> Ledger<'_> {
        let base = self.shared.base;
        // SAFETY: base is a live, page-aligned MAP_SHARED mapping of
        // FILE_SIZE bytes (while self holds the Arc). The offsets are
        // 8-aligned (the four words) and 64-aligned (the slots, which are
        // repr(C) AtomicU64s, so any bit pattern is a valid value), all
        // inside the mapping; the memory is only accessed through atomics.
        unsafe {
            let word = |off: usize| &*base.add(off).cast::<AtomicU64>();
            let slots = std::slice::from_raw_parts(base.add(HEADER_SIZE).cast::<Slot>(), NSLOTS);
            Ledger::new(
                [
                    word(TOTAL_OFFSET),
                    word(TRANSIENT_TOTAL_OFFSET),
                    word(ARC_TOTAL_OFFSET),
                ],
                word(SPILLED_OFFSET),
                slots,
            )
        }
    }

    /// Remember that this process handed the claims in `slots` over.
    pub fn note_handed(&self, slots: impl IntoIterator<Item = usize>) {
        let mut h = self.shared.handed.lock().unwrap_or_else(|p| p.into_inner());
        for s in slots {
            if !h.contains(&s) {
                h.push(s);
            }
        }
    }

    /// Drop this process's locks on handed-over slots that are free again
    /// (the adopter committed or aborted): they hold nothing and keep the
    /// slot from being taken.
    /// Returns how many handed-over claims are still pending; when none
    /// is, the descriptor is close-on-exec again (a later exec of this
    /// process must not carry claims it never handed over).
    pub fn drop_stale_locks(&self) -> Result<usize> {
        let l = self.ledger();
        let w = self.world();
        let mut h = self.shared.handed.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_empty() {
            return Ok(0);
        }
        let mut keep = Vec::new();
        for &i in h.iter() {
            if l.is_free(i)? {
                w.unlock(i, Role::Holder);
                w.unlock(i, Role::Adopter);
            } else {
                keep.push(i);
            }
        }
        *h = keep;
        if h.is_empty() {
            let fd = self.shared.file.as_raw_fd();
            // SAFETY: fcntl on our own descriptor; the result is checked.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            // SAFETY: as above.
            if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0
            {
                return Err(last_os_error());
            }
        }
        Ok(h.len())
    }
}

/// [`World`] over a ledger file: POSIX record locks on the slots' bytes.
pub struct FileWorld<'a> {
    shared: &'a Shared,
}

/// The first byte and length a role locks: the holder both of the slot's
/// bytes, the adopter the second.
fn lock_range(slot: usize, role: Role) -> (libc::off_t, libc::off_t) {
    // A slot index is below NSLOTS: the offset is a few hundred KiB, far
    // from saturating or leaving off_t.
    let first = FILE_SIZE.saturating_add(slot.saturating_mul(2));
    let first = libc::off_t::try_from(first).unwrap_or(libc::off_t::MAX);
    match role {
        Role::Holder => (first, 2),
        Role::Adopter => (first.saturating_add(1), 1),
    }
}

// The lock types are c_int on Linux and c_short on illumos.
#[allow(clippy::unnecessary_cast, clippy::as_conversions)]
const WRLCK: i32 = libc::F_WRLCK as i32;
#[allow(clippy::unnecessary_cast, clippy::as_conversions)]
const UNLCK: i32 = libc::F_UNLCK as i32;

fn bit(role: Role) -> u8 {
    match role {
        Role::Holder => 1,
        Role::Adopter => 2,
    }
}

impl FileWorld<'_> {
    fn fcntl_lock(
        &self,
        cmd: libc::c_int,
        typ: libc::c_int,
        start: libc::off_t,
        len: libc::off_t,
    ) -> std::io::Result<libc::flock> {
        // SAFETY: a zeroed flock is a valid value; its fields are set below.
        let mut fl: libc::flock = unsafe { core::mem::zeroed() };
        // c_short on every platform; F_* and SEEK_SET fit.
        #[allow(clippy::as_conversions)]
        {
            fl.l_type = typ as _;
            fl.l_whence = libc::SEEK_SET as _;
        }
        fl.l_start = start;
        fl.l_len = len;
        loop {
            // SAFETY: fcntl with a record-lock command on our descriptor
            // and a flock we own; the result is checked.
            let r = unsafe { libc::fcntl(self.shared.file.as_raw_fd(), cmd, &mut fl) };
            if r != -1 {
                return Ok(fl);
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

impl World for FileWorld<'_> {
    fn lock(&self, slot: usize, role: Role) -> super::Result<bool> {
        let held = self.shared.held();
        let cell = held.get(slot).ok_or(Error::new(Status::InvalidArgument))?;
        if cell.fetch_or(bit(role), Ordering::AcqRel) & bit(role) != 0 {
            return Ok(false); // another thread of this process has it
        }
        let (start, len) = lock_range(slot, role);
        match self.fcntl_lock(libc::F_SETLK, WRLCK, start, len) {
            Ok(_) => Ok(true),
            Err(e) => {
                cell.fetch_and(!bit(role), Ordering::AcqRel);
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
                    _ => Err(errno::ledger_error(&e)),
                }
            }
        }
    }

    fn unlock(&self, slot: usize, role: Role) {
        let held = self.shared.held();
        let Some(cell) = held.get(slot) else { return };
        if cell.load(Ordering::Acquire) & bit(role) == 0 {
            return;
        }
        // An unlock cannot fail for a range we locked; if it did, the lock
        // would only keep a free slot from being reused until we exit.
        let (start, len) = lock_range(slot, role);
        let _ = self.fcntl_lock(libc::F_SETLK, UNLCK, start, len);
        cell.fetch_and(!bit(role), Ordering::AcqRel);
    }

    fn share(&self, slot: usize) {
        let held = self.shared.held();
        let Some(cell) = held.get(slot) else { return };
        if cell.load(Ordering::Acquire) & bit(Role::Holder) == 0 {
            return;
        }
        let (start, len) = lock_range(slot, Role::Adopter);
        let _ = self.fcntl_lock(libc::F_SETLK, UNLCK, start, len);
    }

    fn mine(&self, slot: usize) -> bool {
        self.shared
            .held()
            .get(slot)
            .is_some_and(|c| c.load(Ordering::Acquire) != 0)
    }

    fn others_hold(&self, slot: usize) -> super::Result<bool> {
        let fl = self
            .fcntl_lock(libc::F_GETLK, WRLCK, lock_range(slot, Role::Holder).0, 2)
            .map_err(|e| errno::ledger_error(&e))?;
        Ok(i32::from(fl.l_type) != UNLCK)
    }

    fn pid(&self) -> u32 {
        pid()
    }

    fn origin(&self) -> u64 {
        zone_id()
    }

    fn now_secs(&self) -> u64 {
        now_secs()
    }
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
fn zone_id() -> u64 {
    extern "C" {
        fn getzoneid() -> i32;
    }
    // SAFETY: getzoneid(3C) takes nothing and cannot fail.
    u64::try_from(unsafe { getzoneid() }).unwrap_or(0)
}

#[cfg(not(any(target_os = "illumos", target_os = "solaris")))]
fn zone_id() -> u64 {
    0
}

#[cfg(test)]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_tampering() {
        let h = FileHeader::new(1_700_000_000, 7, PoolId::default());
        h.validate().unwrap();
        assert_eq!(h.pool(), Some(PoolId::default()));
        let mut bad = h;
        bad.nslots += 1;
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerCorrupt);
        let mut bad = h;
        bad.magic[0] = b'X';
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerCorrupt);
        let mut bad = h;
        bad.created += 1; // check no longer matches
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerCorrupt);
        let mut bad = h;
        bad.version = 1;
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerVersion);
    }
}
