//! The Linux hugetlb pool as a reservoir: memory an operator sets aside
//! for VMs, sized by writing a page count, that VMs then take whole
//! (QEMU's `-mem-path /dev/hugepages`, a `memory-backend-memfd` with
//! `hugetlb=on`, libvirt's `<hugepages/>`). It has the VMM reservoir's
//! shape, and its race: two launchers that read "free" at the same moment
//! both start, and the second VM's allocation fails.
//!
//! The kernel's interface (Documentation/admin-guide/mm/hugetlbpage.rst,
//! `mm/hugetlb.c`), per page size, for the whole pool under
//! `/sys/kernel/mm/hugepages/hugepages-<kB>kB/` or one NUMA node's under
//! `/sys/devices/system/node/node<N>/hugepages/hugepages-<kB>kB/`:
//!
//! - `nr_hugepages`: every huge page the pool has, surplus included. A
//!   write asks for that many *persistent* pages: growing allocates what
//!   the kernel can find and may stop short **without an error** (the count
//!   read back is the truth, and a signal can cut it short too); shrinking
//!   below the pages in use frees the free ones and turns the excess into
//!   surplus, freed as its users let go.
//! - `free_hugepages`, `surplus_hugepages`: pages no mapping holds, and
//!   pages beyond the persistent count.
//! - `resv_hugepages` (whole pool only): pages promised to mappings that
//!   have not touched them yet (a mapping of a hugetlbfs file or memfd,
//!   shared or private, reserves at `mmap` unless `MAP_NORESERVE`). Free −
//!   reserved is what a new VM can take (exactly, while
//!   `nr_overcommit_hugepages` is 0; with overcommit a mapping may take
//!   surplus pages beyond it, and admission is conservative).
//!
//! Seen on Linux 6.18 (the test below checks it on the kernel it runs on):
//! with 6 of 10 pages in use, writing 2 reads back 6 in `nr_hugepages`
//! (surplus 4) while `/proc/sys/vm/nr_hugepages` reads the target, 2.
//! Persistent = nr_hugepages − surplus is what a resize reaches.
//!
//! A pool of one node has no reservation count of its own: the whole
//! pool's is used, which can only understate what the node has free.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Progress, ProgressFn, ReservoirQuery, ResizeError};
use crate::errno::status_of_sysfs_errno;
use crate::ledger::file::{Backend, PoolId};
use crate::status::{Error, Status};

type Result<T> = core::result::Result<T, Error>;

/// The page sizes a pool can be opened for: 2 MiB (the default) and
/// 1 GiB (where the CPU has them), the two x86-64 has.
pub const HUGETLB_PAGE_SIZES: [u64; 2] = [2 << 20, 1 << 30];

/// Where sysfs is mounted on every Linux system.
const SYSFS: &str = "/sys";

/// The counters of one pool, in pages of `page_size` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HugetlbQuery {
    /// Bytes per huge page.
    pub page_size: u64,
    /// Every page the pool has, surplus included (`nr_hugepages`).
    pub total_pages: u64,
    /// Pages no mapping holds (`free_hugepages`).
    pub free_pages: u64,
    /// Free pages promised to mappings that have not touched them yet
    /// (`resv_hugepages`; the whole pool's for a node's pool).
    pub reserved_pages: u64,
    /// Pages beyond the persistent count (`surplus_hugepages`).
    pub surplus_pages: u64,
}

impl HugetlbQuery {
    /// The pool's persistent size in pages: what a resize sets and reaches.
    pub fn persistent_pages(&self) -> u64 {
        self.total_pages.saturating_sub(self.surplus_pages)
    }

    /// Pages a new VM can take now: free − reserved.
    pub fn available_pages(&self) -> u64 {
        self.free_pages.saturating_sub(self.reserved_pages)
    }

    /// Pages some mapping holds: total − free.
    pub fn in_use_pages(&self) -> u64 {
        self.total_pages.saturating_sub(self.free_pages)
    }

    /// `pages` in bytes (saturating: no pool is 2^64 bytes).
    pub fn bytes(&self, pages: u64) -> u64 {
        pages.saturating_mul(self.page_size)
    }
}

/// The counter files of one pool. A trait so the resize logic can be
/// tested against a model of the kernel's rules as well as the kernel.
pub trait PoolFiles {
    /// Read one counter (`nr_hugepages`, `free_hugepages`, ...).
    fn read(&self, name: &str) -> Result<u64>;
    /// Write `nr_hugepages`.
    fn write_nr(&self, pages: u64) -> Result<()>;
}

/// A pool in sysfs.
#[derive(Clone, Debug)]
pub struct SysfsPool {
    /// The pool's directory (the whole pool's or one node's).
    dir: PathBuf,
    /// The whole pool's directory, for `resv_hugepages`.
    global: PathBuf,
}

/// A counter file holds a decimal number and a newline.
const MAX_COUNTER_BYTES: u64 = 64;

fn os_error(e: &std::io::Error) -> Error {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    Error::with_errno(status_of_sysfs_errno(errno), errno)
}

impl PoolFiles for SysfsPool {
    fn read(&self, name: &str) -> Result<u64> {
        let dir = if name == "resv_hugepages" {
            &self.global
        } else {
            &self.dir
        };
        let mut text = String::new();
        std::fs::File::open(dir.join(name))
            .map_err(|e| os_error(&e))?
            .take(MAX_COUNTER_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| os_error(&e))?;
        text.trim()
            .parse::<u64>()
            .map_err(|_| Error::with_errno(Status::Io, libc::EINVAL))
    }

    fn write_nr(&self, pages: u64) -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .open(self.dir.join("nr_hugepages"))
            .map_err(|e| os_error(&e))?;
        f.write_all(pages.to_string().as_bytes())
            .map_err(|e| os_error(&e))
    }
}

/// One hugetlb pool: a page size, and the whole machine or one NUMA node.
#[derive(Clone, Debug)]
pub struct HugetlbPool<F: PoolFiles = SysfsPool> {
    files: F,
    page_size: u64,
    node: Option<u32>,
}

/// The directory name of a page size: `hugepages-2048kB`.
fn size_dir(page_size: u64) -> String {
    format!("hugepages-{}kB", page_size >> 10)
}

impl HugetlbPool<SysfsPool> {
    /// Open the pool of `page_size` bytes (0: 2 MiB), of NUMA node `node`
    /// or of the whole machine (None).
    ///
    /// Errors: INVALID_ARGUMENT (not a huge page size), NO_DEVICE (no
    /// hugetlb support, no pool of that size, or no such node), IO.
    pub fn open(page_size: u64, node: Option<u32>) -> Result<Self> {
        Self::open_at(Path::new(SYSFS), page_size, node)
    }

    /// [`open`](Self::open) with sysfs mounted at `sys_root` (tests).
    pub fn open_at(sys_root: &Path, page_size: u64, node: Option<u32>) -> Result<Self> {
        let page_size = if page_size == 0 {
            HUGETLB_PAGE_SIZES[0]
        } else {
            page_size
        };
        if !HUGETLB_PAGE_SIZES.contains(&page_size) {
            return Err(Error::new(Status::InvalidArgument));
        }
        let global = sys_root
            .join("kernel/mm/hugepages")
            .join(size_dir(page_size));
        let dir = match node {
            None => global.clone(),
            Some(n) => sys_root
                .join(format!("devices/system/node/node{n}/hugepages"))
                .join(size_dir(page_size)),
        };
        for d in [&global, &dir] {
            match std::fs::metadata(d) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::with_errno(Status::NoDevice, libc::ENOTDIR)),
                Err(e) => return Err(os_error(&e)),
            }
        }
        Ok(HugetlbPool {
            files: SysfsPool { dir, global },
            page_size,
            node,
        })
    }
}

impl HugetlbPool<SysfsPool> {
    /// [`reservoir_query_with`](Self::reservoir_query_with) this host's
    /// available memory, read after the pool (`/proc/meminfo`).
    pub fn reservoir_query(&self) -> Result<ReservoirQuery> {
        let q = self.reservoir_query_with(0)?;
        let host = crate::host::read_now()?;
        Ok(ReservoirQuery {
            limit: q.limit.saturating_add(host.free_bytes),
            ..q
        })
    }
}

impl<F: PoolFiles> HugetlbPool<F> {
    /// A pool over other counter files (a model of the kernel, in tests).
    pub fn with_files(files: F, page_size: u64, node: Option<u32>) -> Self {
        HugetlbPool {
            files,
            page_size,
            node,
        }
    }

    /// Bytes per huge page.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The NUMA node, or None for the whole machine.
    pub fn node(&self) -> Option<u32> {
        self.node
    }

    /// What the ledger's header names: backend and page size. One ledger
    /// serves every pool of a page size, the whole machine's and each
    /// node's: their pages are the same pages, so their claims must be
    /// counted together (a node's admissions then also count the others'
    /// pending claims against that node: conservative, never over).
    pub fn pool_id(&self) -> PoolId {
        PoolId {
            backend: Backend::LinuxHugetlb,
            page_size: self.page_size,
            node: -1,
        }
    }

    /// The admission ledger's file name in the run directory: one ledger
    /// per page size, `hugetlb-2048kB.ledger` (see [`pool_id`](Self::pool_id)).
    pub fn ledger_name(&self) -> String {
        format!(
            "{}.ledger",
            size_dir(self.page_size).replace("hugepages", "hugetlb")
        )
    }

    /// The resize lock's name in the run directory: one per page size, so
    /// a node's resize and the whole machine's exclude each other.
    pub fn lock_name(&self) -> String {
        self.ledger_name().replace(".ledger", ".lock")
    }

    /// The pool in the reservoir's terms, as admission and resizes read
    /// it: `free` is free − reserved (what a new VM can take now), `alloc`
    /// the rest of the persistent pool (so free + alloc, the reservoir's
    /// size, is the persistent size a resize sets, surplus excluded), no
    /// transient memory, and a limit that leaves `host_available` bytes of
    /// transient room: a VM that starts without huge pages takes ordinary
    /// memory (MemAvailable, which the pool is not part of).
    pub fn reservoir_query_with(&self, host_available: u64) -> Result<ReservoirQuery> {
        let q = self.query()?;
        let persistent = q.bytes(q.persistent_pages());
        let free = q.bytes(q.available_pages());
        Ok(ReservoirQuery {
            free,
            alloc: persistent.saturating_sub(free),
            alloc_transient: 0,
            limit: persistent.max(free).saturating_add(host_available),
        })
    }

    /// Read the pool's counters. Not atomic across files: each is the
    /// kernel's at its read (free is read last, so a VM that took pages
    /// meanwhile is seen gone rather than still free).
    pub fn query(&self) -> Result<HugetlbQuery> {
        let total_pages = self.files.read("nr_hugepages")?;
        let surplus_pages = self.files.read("surplus_hugepages")?;
        let reserved_pages = self.files.read("resv_hugepages")?;
        let free_pages = self.files.read("free_hugepages")?;
        Ok(HugetlbQuery {
            page_size: self.page_size,
            total_pages,
            free_pages,
            reserved_pages,
            surplus_pages,
        })
    }

    /// Resize the pool to `target` bytes of persistent pages, `chunk`
    /// bytes per write (0: one write), calling `progress` with (reached,
    /// target) in bytes after every write but the last; Cancel stops there.
    /// Returns the persistent size reached, in bytes.
    ///
    /// Errors (with the size reached where one was read): UNALIGNED
    /// (target or chunk not a multiple of the page size), OUT_OF_MEMORY
    /// (the kernel stopped short of a growth step and a second write found
    /// no more pages: it reports no error, the count read back is the
    /// truth; a signal cuts the kernel's loop short too, which is why it
    /// writes once more), INTERRUPTED (the callback cancelled), PERMISSION
    /// (EPERM, EACCES: writing needs root), UNSUPPORTED (EINVAL: a page
    /// size the kernel cannot resize at run time), IO (a shrink that did
    /// not move).
    pub fn resize(
        &self,
        target: u64,
        chunk: u64,
        mut progress: Option<ProgressFn<'_>>,
    ) -> core::result::Result<u64, ResizeError> {
        let ps = self.page_size;
        let first = self.query().map_err(|e| resize_error(e, None))?;
        let mut reached = first.persistent_pages();
        let reached_bytes = |p: u64| p.saturating_mul(ps);
        // (A page size of 0, from a model in a test, is unaligned too.)
        let (Some(0), Some(0), Some(goal), Some(step)) = (
            target.checked_rem(ps),
            chunk.checked_rem(ps),
            target.checked_div(ps),
            chunk.checked_div(ps),
        ) else {
            return Err(resize_error(
                Error::new(Status::Unaligned),
                Some(reached_bytes(reached)),
            ));
        };
        let step = if step == 0 { u64::MAX } else { step };
        while reached != goal {
            let next = if goal > reached {
                reached.saturating_add(step).min(goal)
            } else {
                reached.saturating_sub(step).max(goal)
            };
            let mut now = self.write_and_read(next, reached)?;
            if goal > reached && now < next {
                // Short: out of pages, or a signal cut the kernel's loop.
                // One more write tells them apart.
                let again = self.write_and_read(next, now)?;
                if again <= now {
                    return Err(resize_error(
                        Error::new(Status::OutOfMemory),
                        Some(reached_bytes(again)),
                    ));
                }
                now = again;
            }
            if goal < reached && now >= reached {
                // A shrink always reaches its step (pages in use become
                // surplus): a kernel that did not is not one this library
                // knows, and writing again would loop.
                return Err(resize_error(
                    Error::new(Status::Io),
                    Some(reached_bytes(now)),
                ));
            }
            reached = now;
            if reached != goal {
                if let Some(p) = progress.as_mut() {
                    if p(reached_bytes(reached), target) == Progress::Cancel {
                        return Err(resize_error(
                            Error::new(Status::Interrupted),
                            Some(reached_bytes(reached)),
                        ));
                    }
                }
            }
        }
        Ok(reached_bytes(reached))
    }

    /// Write `pages` and read back the persistent count; `before` is the
    /// count to report if even the read fails.
    fn write_and_read(&self, pages: u64, before: u64) -> core::result::Result<u64, ResizeError> {
        let ps = self.page_size;
        self.files
            .write_nr(pages)
            .map_err(|e| resize_error(e, Some(before.saturating_mul(ps))))?;
        self.query()
            .map(|q| q.persistent_pages())
            .map_err(|e| resize_error(e, Some(before.saturating_mul(ps))))
    }
}

fn resize_error(error: Error, reached: Option<u64>) -> ResizeError {
    ResizeError { error, reached }
}

#[cfg(test)]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// The kernel's rules as seen on Linux 6.18 (module comment): growth
    /// stops at `max_pages`; a shrink turns in-use pages beyond the target
    /// into surplus.
    struct Model {
        persistent: Cell<u64>,
        in_use: Cell<u64>,
        max_pages: u64,
        /// Writes to fail with this errno (permission tests).
        fail_errno: Option<i32>,
        writes: Cell<u32>,
    }

    impl Model {
        fn new(persistent: u64, in_use: u64, max_pages: u64) -> Model {
            Model {
                persistent: Cell::new(persistent),
                in_use: Cell::new(in_use),
                max_pages,
                fail_errno: None,
                writes: Cell::new(0),
            }
        }
        fn total(&self) -> u64 {
            self.persistent.get().max(self.in_use.get())
        }
    }

    impl PoolFiles for Model {
        fn read(&self, name: &str) -> Result<u64> {
            Ok(match name {
                "nr_hugepages" => self.total(),
                "free_hugepages" => self.total() - self.in_use.get(),
                "surplus_hugepages" => self.total() - self.persistent.get(),
                "resv_hugepages" => 0,
                _ => unreachable!("{name}"),
            })
        }
        fn write_nr(&self, pages: u64) -> Result<()> {
            if let Some(e) = self.fail_errno {
                return Err(Error::with_errno(status_of_sysfs_errno(e), e));
            }
            self.writes.set(self.writes.get() + 1);
            self.persistent.set(pages.min(self.max_pages));
            Ok(())
        }
    }

    const MB2: u64 = 2 << 20;

    #[test]
    fn grows_in_chunks_with_progress() {
        let pool = HugetlbPool::with_files(Model::new(0, 0, 1000), MB2, None);
        let mut seen = Vec::new();
        let mut cb = |r: u64, t: u64| {
            seen.push((r / MB2, t / MB2));
            Progress::Continue
        };
        assert_eq!(pool.resize(10 * MB2, 4 * MB2, Some(&mut cb)), Ok(10 * MB2));
        assert_eq!(seen, vec![(4, 10), (8, 10)]);
        let q = pool.query().unwrap();
        assert_eq!(
            (q.total_pages, q.free_pages, q.persistent_pages()),
            (10, 10, 10)
        );
        assert_eq!(q.available_pages(), 10);
    }

    #[test]
    fn stopping_short_is_not_success() {
        let pool = HugetlbPool::with_files(Model::new(2, 0, 7), MB2, None);
        let e = pool.resize(10 * MB2, 0, None).unwrap_err();
        assert_eq!(e.error.status(), Status::OutOfMemory);
        assert_eq!(e.reached, Some(7 * MB2));
        // Two writes: the short one and the one that found nothing more.
        assert_eq!(pool.files.writes.get(), 2);
    }

    #[test]
    fn shrinking_below_in_use_leaves_surplus() {
        let pool = HugetlbPool::with_files(Model::new(10, 6, 1000), MB2, None);
        assert_eq!(pool.resize(2 * MB2, 0, None), Ok(2 * MB2));
        let q = pool.query().unwrap();
        assert_eq!(
            (
                q.total_pages,
                q.surplus_pages,
                q.persistent_pages(),
                q.free_pages
            ),
            (6, 4, 2, 0)
        );
    }

    #[test]
    fn cancel_and_alignment_and_permission() {
        let pool = HugetlbPool::with_files(Model::new(0, 0, 1000), MB2, None);
        let mut cancel = |_: u64, _: u64| Progress::Cancel;
        let e = pool.resize(8 * MB2, MB2, Some(&mut cancel)).unwrap_err();
        assert_eq!(
            (e.error.status(), e.reached),
            (Status::Interrupted, Some(MB2))
        );
        let e = pool.resize(MB2 + 4096, 0, None).unwrap_err();
        assert_eq!(
            (e.error.status(), e.reached),
            (Status::Unaligned, Some(MB2))
        );
        let e = pool.resize(4 * MB2, 4096, None).unwrap_err();
        assert_eq!(e.error.status(), Status::Unaligned);

        let mut m = Model::new(0, 0, 1000);
        m.fail_errno = Some(libc::EACCES);
        let pool = HugetlbPool::with_files(m, MB2, None);
        let e = pool.resize(4 * MB2, 0, None).unwrap_err();
        assert_eq!(
            (e.error.status(), e.error.errno()),
            (Status::Permission, Some(libc::EACCES))
        );
        assert_eq!(e.reached, Some(0));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "makes a directory tree of sysfs files, refused by Miri's isolation"
    )]
    fn open_checks_size_and_directories() {
        let root = std::env::temp_dir().join(format!("vmmresv-hugetlb-{}", std::process::id()));
        let g = root.join("kernel/mm/hugepages/hugepages-2048kB");
        std::fs::create_dir_all(&g).unwrap();
        for (n, v) in [
            ("nr_hugepages", "12\n"),
            ("free_hugepages", "9\n"),
            ("resv_hugepages", "3\n"),
            ("surplus_hugepages", "1\n"),
        ] {
            std::fs::write(g.join(n), v).unwrap();
        }
        let e = HugetlbPool::open_at(&root, 4096, None).unwrap_err();
        assert_eq!(e.status(), Status::InvalidArgument);
        let e = HugetlbPool::open_at(&root, 1 << 30, None).unwrap_err();
        assert_eq!(
            (e.status(), e.errno()),
            (Status::NoDevice, Some(libc::ENOENT))
        );
        let e = HugetlbPool::open_at(&root, 0, Some(0)).unwrap_err();
        assert_eq!(e.status(), Status::NoDevice);
        let pool = HugetlbPool::open_at(&root, 0, None).unwrap();
        assert_eq!(pool.page_size(), MB2);
        let q = pool.query().unwrap();
        assert_eq!(
            (
                q.total_pages,
                q.free_pages,
                q.reserved_pages,
                q.surplus_pages
            ),
            (12, 9, 3, 1)
        );
        assert_eq!(
            (q.persistent_pages(), q.available_pages(), q.in_use_pages()),
            (11, 6, 3)
        );
        std::fs::write(g.join("free_hugepages"), "lots\n").unwrap();
        assert_eq!(pool.query().unwrap_err().status(), Status::Io);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
