//! The ledger's shared file: create, check, map.
//!
//! Layout (version 1), little-endian on the only hosts that exist (x86_64):
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 56 | [`FileHeader`]: magic, version, sizes, creation time, check |
//! | 128 | 8 | the reservoir pool's total word (its own cache line) |
//! | 192 | 8 | the reconciler stamp |
//! | 256 | 8 | the transient pool's total word |
//! | 320 | 8 | the ARC pool's total word |
//! | 4096 | 8192 × 64 | the slots |
//!
//! The file is created 0600 under a temporary name, fully initialised, then
//! linked into place, so no process ever maps a half-written header. On
//! open it must be a regular file (O_NOFOLLOW: not a symlink) owned by the
//! effective uid and writable by nobody else, exactly the expected size,
//! with the expected magic, version, sizes and header check. The header is
//! read with `pread` before mapping, and the mapped words are only ever
//! touched as atomics.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::ledger::{AtomicU64, Ledger, Slot, NSLOTS};
use crate::status::{Error, Status};

/// Result of the file layer.
pub type Result<T> = core::result::Result<T, Error>;

/// Name of the ledger file in the run directory.
pub const LEDGER_FILE_NAME: &str = "admission.ledger";
/// "VMMRLDG" and a NUL.
pub const MAGIC: [u8; 8] = *b"VMMRLDG\0";
/// Layout version of this file.
pub const VERSION: u32 = 1;
/// Bytes before the first slot.
pub const HEADER_SIZE: usize = 4096;
/// Bytes per slot.
pub const SLOT_SIZE: usize = 64;
/// The whole file.
pub const FILE_SIZE: usize = HEADER_SIZE + NSLOTS * SLOT_SIZE;
const TOTAL_OFFSET: usize = 128;
const RECONCILER_OFFSET: usize = 192;
const TRANSIENT_TOTAL_OFFSET: usize = 256;
const ARC_TOTAL_OFFSET: usize = 320;

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
    /// Zero.
    pub reserved: u32,
    /// [`FILE_SIZE`].
    pub file_size: u64,
    /// Unix seconds at creation.
    pub created: u64,
    /// FNV-1a of the 48 bytes before it.
    pub check: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<FileHeader>(), 56);
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
    pub fn new(created: u64) -> FileHeader {
        let mut h = FileHeader {
            magic: MAGIC,
            version: VERSION,
            header_size: HEADER_SIZE as u32,
            slot_size: SLOT_SIZE as u32,
            nslots: NSLOTS as u32,
            page_size: crate::pages::PAGESIZE as u32,
            reserved: 0,
            file_size: FILE_SIZE as u64,
            created,
            check: 0,
        };
        h.check = h.compute_check();
        h
    }

    fn compute_check(&self) -> u64 {
        fnv1a(&self.as_bytes()[..48])
    }

    /// Whether this is a header this library wrote for this layout.
    pub fn validate(&self) -> Result<()> {
        let ok = self.magic == MAGIC
            && self.version == VERSION
            && self.header_size as usize == HEADER_SIZE
            && self.slot_size as usize == SLOT_SIZE
            && self.nslots as usize == NSLOTS
            && u64::from(self.page_size) == crate::pages::PAGESIZE
            && self.reserved == 0
            && self.file_size == FILE_SIZE as u64
            && self.check == self.compute_check();
        if ok {
            Ok(())
        } else {
            Err(Error::new(Status::LedgerCorrupt))
        }
    }
}

fn io(e: &std::io::Error) -> Error {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    match errno {
        libc::ELOOP => Error::with_errno(Status::LedgerUnsafe, errno),
        libc::EACCES | libc::EPERM => Error::with_errno(Status::Permission, errno),
        _ => Error::with_errno(Status::Io, errno),
    }
}

/// A mapped ledger file.
#[derive(Debug)]
pub struct LedgerFile {
    base: *mut u8,
    path: PathBuf,
    _file: File,
}

// SAFETY: the mapping is shared memory that this code accesses only through
// atomics (the total, the reconciler stamp and the slots); the pointer is
// valid until Drop, which needs &mut self.
unsafe impl Send for LedgerFile {}
// SAFETY: as above: every access through &LedgerFile is atomic.
unsafe impl Sync for LedgerFile {}

impl LedgerFile {
    /// The default path: `<run dir>/admission.ledger`.
    pub fn default_path() -> PathBuf {
        crate::reservoir::run_dir().join(LEDGER_FILE_NAME)
    }

    /// Open the ledger at `path`, creating it (and its directory) if it
    /// does not exist.
    pub fn open_or_create(path: &Path) -> Result<LedgerFile> {
        for _ in 0..3 {
            match Self::open_existing(path) {
                Err(e) if e.errno() == Some(libc::ENOENT) => {}
                other => return other,
            }
            Self::create(path)?;
        }
        Err(Error::with_errno(Status::Io, libc::ENOENT))
    }

    /// Create the file under a temporary name and link it into place;
    /// losing the race to another creator is fine.
    fn create(path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)
                    .map_err(|e| io(&e))?;
            }
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| io(&e))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let result = (|| {
            f.set_len(FILE_SIZE as u64).map_err(|e| io(&e))?;
            std::os::unix::fs::FileExt::write_all_at(&f, FileHeader::new(now).as_bytes(), 0)
                .map_err(|e| io(&e))?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io(&e)),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }

    fn open_existing(path: &Path) -> Result<LedgerFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io(&e))?;
        let meta = file.metadata().map_err(|e| io(&e))?;
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if !meta.file_type().is_file() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
            return Err(Error::new(Status::LedgerUnsafe));
        }
        if meta.len() != FILE_SIZE as u64 {
            return Err(Error::new(Status::LedgerCorrupt));
        }
        let mut hb = [0u8; core::mem::size_of::<FileHeader>()];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut hb, 0).map_err(|e| io(&e))?;
        let header =
            FileHeader::read_from_bytes(&hb).map_err(|_| Error::new(Status::LedgerCorrupt))?;
        header.validate()?;
        // SAFETY: mapping FILE_SIZE bytes of a file we just checked is
        // exactly that long, shared and read-write; the result is checked.
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
            return Err(io(&std::io::Error::last_os_error()));
        }
        Ok(LedgerFile {
            base: base.cast(),
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The protocol over the mapped words.
    pub fn ledger(&self) -> Ledger<'_> {
        // SAFETY: base is a live, page-aligned MAP_SHARED mapping of
        // FILE_SIZE bytes (until Drop). The offsets are 8-aligned (the four
        // words) and 64-aligned (the slots, which are repr(C) AtomicU64s,
        // so any bit pattern is a valid value), all inside the mapping; the
        // memory is only accessed through these atomics.
        unsafe {
            let word = |off: usize| &*(self.base.add(off) as *const AtomicU64);
            let slots =
                std::slice::from_raw_parts(self.base.add(HEADER_SIZE) as *const Slot, NSLOTS);
            Ledger::new(
                [
                    word(TOTAL_OFFSET),
                    word(TRANSIENT_TOTAL_OFFSET),
                    word(ARC_TOTAL_OFFSET),
                ],
                word(RECONCILER_OFFSET),
                slots,
            )
        }
    }
}

impl Drop for LedgerFile {
    fn drop(&mut self) {
        // SAFETY: base/FILE_SIZE is the mapping made in open_existing, and
        // no reference into it outlives &self.
        unsafe {
            libc::munmap(self.base.cast(), FILE_SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_tampering() {
        let h = FileHeader::new(1_700_000_000);
        h.validate().unwrap();
        let mut bad = h;
        bad.nslots += 1;
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerCorrupt);
        let mut bad = h;
        bad.magic[0] = b'X';
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerCorrupt);
        let mut bad = h;
        bad.created += 1; // check no longer matches
        assert_eq!(bad.validate().unwrap_err().status(), Status::LedgerCorrupt);
    }
}
