//! The VMM reservoir behind `/dev/vmmctl`: open, query, resize.
//!
//! What the kernel gives (illumos-gate `usr/src/uts/intel/io/vmm/
//! vmm_reservoir.c`: `vmmr_ioctl`, `vmmr_set_target`, `vmmr_add`): a query
//! of four counters and an absolute `SET_TARGET` that grows or shrinks in
//! chunks and refuses a second concurrent resize (EALREADY). A pending
//! signal stops it with EINTR and the size reached: `vmmr_set_target`
//! checks `issig()` at the top of every pass — so before the first chunk
//! too, with no progress at all, even for chunk 0 — and `vmmr_add` can be
//! interrupted while it waits for pages (`page_xresv`), rolling that chunk
//! back. What is done stays done. What it does not give:
//! a relative add or remove. rsrvrctl builds those as query-then-set, and two
//! concurrent `rsrvrctl -a` lose an addition (illumos-omnios#1306).
//!
//! Here every resize holds an exclusive `flock(2)` on a lock file in the run
//! directory from its query to its last `SET_TARGET`. `flock` locks belong
//! to the open file description, so each operation opens the file afresh:
//! two threads of one process exclude each other exactly like two
//! processes, and the kernel drops the lock when its holder dies, so a
//! crashed resizer cannot wedge the next one (no pid file to go stale).
//! Resizers that do not use this library (an old rsrvrctl) are not covered;
//! if one is running, the kernel answers EALREADY and we report it.
//!
//! A [`Reservoir`] can also be a Linux hugetlb pool ([`hugetlb`],
//! docs/hugetlb.md): the same shape (memory set aside for VMs, sized by an
//! operator, taken whole at a VM's start), the same lock, ledger hold and
//! admission; only the kernel interface differs.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zerocopy::IntoBytes;

use crate::errno;
use crate::files;
use crate::pages::{self, PAGESIZE};
use crate::policy::headroom;
use crate::rundir::{run_dir_setting, RunDirOrigin};
use crate::status::{Error, Status};
use crate::sys::{self, QueryBuf};

pub mod hugetlb;

use crate::ledger::file::{PoolId, LEDGER_FILE_NAME};
use hugetlb::HugetlbPool;

/// Result of the reservoir's calls.
pub type Result<T> = core::result::Result<T, Error>;

/// Name of the resize lock file inside the run directory.
pub const LOCK_FILE_NAME: &str = "reservoir.lock";

/// The reservoir's counters, in bytes (`struct vmm_resv_query`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReservoirQuery {
    /// Reservoir memory no VM holds.
    pub free: u64,
    /// Reservoir memory held by VMs created with the reservoir flag.
    pub alloc: u64,
    /// Memory of VMs running without the reservoir ("transient").
    pub alloc_transient: u64,
    /// The most free + alloc + transient can ever reach.
    pub limit: u64,
}

impl ReservoirQuery {
    /// Room the kernel's limit leaves for transient memory (VMs created
    /// without the reservoir): limit − (free + alloc + transient), as
    /// `vmmr_add` checks it.
    pub fn transient_room(&self) -> u64 {
        let used = self
            .free
            .saturating_add(self.alloc)
            .saturating_add(self.alloc_transient);
        self.limit.saturating_sub(used)
    }

    /// The reservoir's size as `SET_TARGET` counts it: free + alloc
    /// (transient excluded). Saturates rather than wrap on a kernel answer
    /// that could not be real.
    pub fn size(&self) -> u64 {
        self.free.saturating_add(self.alloc)
    }
}

impl From<sys::vmm_resv_query> for ReservoirQuery {
    fn from(q: sys::vmm_resv_query) -> Self {
        ReservoirQuery {
            free: q.vrq_free_sz,
            alloc: q.vrq_alloc_sz,
            alloc_transient: q.vrq_alloc_transient_sz,
            limit: q.vrq_limit,
        }
    }
}

/// What a progress callback answers after an interrupted step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Resume the resize from where the kernel stopped.
    Continue,
    /// Stop here; the call returns `Status::Interrupted` with the size
    /// reached.
    Cancel,
}

/// What a resize does when the kernel stops it for a signal (EINTR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnSignal {
    /// Resume from the size the kernel reached (after asking the progress
    /// callback, if any, which may cancel). The long-standing behaviour,
    /// and what rsrvrctl -s does.
    #[default]
    Resume,
    /// Stop at the first EINTR: the call returns `Status::Interrupted`
    /// with the size reached (after reporting it to the progress callback,
    /// if any, whatever it answers). What rsrvrctl -a and -r do.
    Stop,
}

/// Which resize: to an absolute size, or relative to the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeOp {
    /// To this size (free + alloc), as `SET_TARGET` itself.
    Target(u64),
    /// Grow by this many bytes (rsrvrctl -a).
    Add(u64),
    /// Shrink by this many bytes, clamped to the size (rsrvrctl -r).
    Remove(u64),
}

/// A resize that did not reach its target: why, and where the reservoir
/// stands. `reached` is `None` only when the kernel could not even be
/// queried afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeError {
    /// Why the resize stopped.
    pub error: Error,
    /// The reservoir size (free + alloc) when it stopped.
    pub reached: Option<u64>,
}

impl ResizeError {
    fn new(error: Error, reached: Option<u64>) -> ResizeError {
        ResizeError { error, reached }
    }
}

impl core::fmt::Display for ResizeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.reached {
            Some(r) => write!(f, "{} (reservoir now {} bytes)", self.error, r),
            None => write!(f, "{} (reservoir size unknown)", self.error),
        }
    }
}

impl std::error::Error for ResizeError {}

/// The callback a resize reports to after each interrupted step, with the
/// size reached and the target.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64, u64) -> Progress;

/// A reservoir: an open `/dev/vmmctl` (or another vmm control device
/// path), or a Linux hugetlb pool.
#[derive(Debug)]
pub struct Reservoir {
    backend: Backend,
    lock_path: PathBuf,
    run_dir_origin: RunDirOrigin,
}

/// What a [`Reservoir`] is made of.
#[derive(Debug)]
enum Backend {
    /// The vmm control device and its interface version.
    Vmm { fd: OwnedFd, version: u32 },
    /// A hugetlb pool of one page size (and node).
    Hugetlb(HugetlbPool),
}

impl Reservoir {
    /// Open `/dev/vmmctl` with the default run directory.
    pub fn open() -> Result<Reservoir> {
        Reservoir::open_at(Path::new(sys::VMM_CTL_DEV), None)
    }

    /// Open the vmm control device at `device`, keeping the resize lock in
    /// `run_dir` (default: [`crate::rundir::run_dir_setting`]).
    ///
    /// The device is opened `O_RDWR | O_EXCL | O_CLOEXEC`: the driver
    /// refuses a ctl open without O_EXCL (EINVAL), although O_EXCL
    /// serializes nothing. The interface version is read here, once.
    pub fn open_at(device: &Path, run_dir_path: Option<&Path>) -> Result<Reservoir> {
        // std's open always adds O_CLOEXEC.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL)
            .open(device)
            .map_err(|e| errno::device_io_error(&e))?;
        let fd: OwnedFd = file.into();
        let version = Self::read_version(&fd)?;
        let (dir, run_dir_origin) = match run_dir_path {
            Some(p) => (p.to_path_buf(), RunDirOrigin::Argument),
            None => run_dir_setting()?,
        };
        Ok(Reservoir {
            backend: Backend::Vmm { fd, version },
            lock_path: dir.join(LOCK_FILE_NAME),
            run_dir_origin,
        })
    }

    /// A reservoir on the Linux hugetlb pool of `page_size` bytes (0: 2
    /// MiB) of NUMA node `node` (None: the whole machine), its resize lock
    /// and ledger in `run_dir` (default: [`run_dir_setting`]).
    ///
    /// Errors: as [`HugetlbPool::open`].
    pub fn open_hugetlb(
        page_size: u64,
        node: Option<u32>,
        run_dir_path: Option<&Path>,
    ) -> Result<Reservoir> {
        Self::on_hugetlb(HugetlbPool::open(page_size, node)?, run_dir_path)
    }

    /// [`open_hugetlb`](Self::open_hugetlb) on a pool already opened.
    pub fn on_hugetlb(pool: HugetlbPool, run_dir_path: Option<&Path>) -> Result<Reservoir> {
        let (dir, run_dir_origin) = match run_dir_path {
            Some(p) => (p.to_path_buf(), RunDirOrigin::Argument),
            None => run_dir_setting()?,
        };
        Ok(Reservoir {
            lock_path: dir.join(pool.lock_name()),
            backend: Backend::Hugetlb(pool),
            run_dir_origin,
        })
    }

    /// The hugetlb pool, for a reservoir that is one.
    pub fn hugetlb(&self) -> Option<&HugetlbPool> {
        match &self.backend {
            Backend::Hugetlb(p) => Some(p),
            Backend::Vmm { .. } => None,
        }
    }

    /// The page the reservoir hands out: the base page of the vmm
    /// reservoir, a hugetlb pool's huge page. Sizes it is given are
    /// multiples of it.
    pub fn page_size(&self) -> u64 {
        match &self.backend {
            Backend::Vmm { .. } => PAGESIZE,
            Backend::Hugetlb(p) => p.page_size(),
        }
    }

    /// `chunk` as a resize or target of this reservoir needs it: unchanged
    /// for the vmm reservoir; for a hugetlb pool, rounded up to the huge
    /// page (0 becomes one page), since the pool moves in whole pages.
    pub fn align_chunk(&self, chunk: u64) -> Result<u64> {
        match &self.backend {
            Backend::Vmm { .. } => Ok(chunk),
            Backend::Hugetlb(p) if chunk == 0 => Ok(p.page_size()),
            Backend::Hugetlb(p) => pages::round_up(chunk, p.page_size()),
        }
    }

    /// The backend and pool, as the ledger's header names them.
    pub fn pool_id(&self) -> PoolId {
        match &self.backend {
            Backend::Vmm { .. } => PoolId::default(),
            Backend::Hugetlb(p) => p.pool_id(),
        }
    }

    /// The admission ledger's name in the run directory: one per pool.
    pub fn ledger_name(&self) -> String {
        match &self.backend {
            Backend::Vmm { .. } => LEDGER_FILE_NAME.to_string(),
            Backend::Hugetlb(p) => p.ledger_name(),
        }
    }

    fn read_version(fd: &OwnedFd) -> Result<u32> {
        loop {
            // SAFETY: VMM_INTERFACE_VERSION takes no argument; a null
            // pointer is what the kernel expects to ignore.
            #[allow(unsafe_code)]
            let rv = unsafe {
                sys::ioctl(
                    fd.as_fd(),
                    sys::VMM_INTERFACE_VERSION,
                    core::ptr::null_mut(),
                )
            };
            return match rv {
                Ok(v) => match u32::try_from(v) {
                    Ok(v) if v > 0 => Ok(v),
                    // A driver that answers 0 is not vmm: vmm versions
                    // start at 1.
                    _ => Err(Error::new(Status::NotVmmDevice)),
                },
                Err(libc::EINTR) => continue,
                Err(e) => Err(Error::with_errno(errno::status_of_version_errno(e), e)),
            };
        }
    }

    /// A second handle on the same device (a dup of the descriptor), for
    /// an owner that must outlive this one.
    pub fn try_clone(&self) -> Result<Reservoir> {
        Ok(Reservoir {
            backend: match &self.backend {
                Backend::Vmm { fd, version } => Backend::Vmm {
                    fd: fd.try_clone().map_err(|e| errno::device_io_error(&e))?,
                    version: *version,
                },
                Backend::Hugetlb(p) => Backend::Hugetlb(p.clone()),
            },
            lock_path: self.lock_path.clone(),
            run_dir_origin: self.run_dir_origin,
        })
    }

    /// The kernel's vmm interface version, as read when the device was
    /// opened; 0 for a hugetlb pool (no vmm interface).
    pub fn interface_version(&self) -> u32 {
        match &self.backend {
            Backend::Vmm { version, .. } => *version,
            Backend::Hugetlb(_) => 0,
        }
    }

    /// Whether this kernel has `VMM_RESV_SET_TARGET` (version >= 9); a
    /// hugetlb pool can always be resized (by root).
    pub fn can_resize(&self) -> bool {
        match &self.backend {
            Backend::Vmm { version, .. } => *version >= sys::VMM_RESV_SET_TARGET_MIN_VERSION,
            Backend::Hugetlb(_) => true,
        }
    }

    /// The lock file resizes serialize on.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Where this handle's run directory came from.
    pub fn run_dir_origin(&self) -> RunDirOrigin {
        self.run_dir_origin
    }

    /// The run directory (where the resize lock and, by default, the
    /// admission ledger live).
    pub fn run_dir(&self) -> &Path {
        self.lock_path.parent().unwrap_or(Path::new("/"))
    }

    /// Read the reservoir's counters. Needs no privilege. For a hugetlb
    /// pool, in the reservoir's terms ([`HugetlbPool::reservoir_query`]).
    pub fn query(&self) -> Result<ReservoirQuery> {
        match &self.backend {
            Backend::Vmm { .. } => query_with(self),
            Backend::Hugetlb(p) => p.reservoir_query(),
        }
    }

    /// Resize the reservoir to `target` bytes in steps of `chunk` (0 = one
    /// step). Returns the size reached, which is `target` on success.
    ///
    /// When the kernel is interrupted (EINTR) the resize resumes from the
    /// size it reports, after asking `progress` (if given), which may
    /// cancel. On any failure the error carries the size the reservoir
    /// stands at, queried afresh where the kernel does not report it.
    pub fn set_target(
        &self,
        target: u64,
        chunk: u64,
        progress: Option<ProgressFn<'_>>,
    ) -> core::result::Result<u64, ResizeError> {
        self.resize(ResizeOp::Target(target), chunk, OnSignal::Resume, progress)
    }

    /// Grow the reservoir by `bytes` (rsrvrctl -a): target = current +
    /// bytes, chunk = min(chunk, bytes). Atomic with respect to every other
    /// resize made through this library, in any thread or process.
    pub fn add(
        &self,
        bytes: u64,
        chunk: u64,
        progress: Option<ProgressFn<'_>>,
    ) -> core::result::Result<u64, ResizeError> {
        self.resize(ResizeOp::Add(bytes), chunk, OnSignal::Resume, progress)
    }

    /// Shrink the reservoir by `bytes` (rsrvrctl -r), clamped to its
    /// current size; an empty reservoir is left alone. Only free memory can
    /// leave: asking for more gives `Status::NoSpace` after removing what
    /// whole chunks allow. With an admission ledger in the run directory,
    /// a shrink that would take free memory pending reservoir claims were
    /// admitted against (or a grow that would take the room pending
    /// transient claims were) is `Status::Refused` before anything moves,
    /// and an unusable ledger is its error.
    pub fn remove(
        &self,
        bytes: u64,
        chunk: u64,
        progress: Option<ProgressFn<'_>>,
    ) -> core::result::Result<u64, ResizeError> {
        self.resize(ResizeOp::Remove(bytes), chunk, OnSignal::Resume, progress)
    }

    /// Any of the three resizes, choosing what a signal does: with
    /// [`OnSignal::Stop`] the first EINTR ends the call with
    /// `Status::Interrupted` and the size reached (no callback needed);
    /// with [`OnSignal::Resume`] it is [`set_target`](Self::set_target),
    /// [`add`](Self::add) or [`remove`](Self::remove).
    pub fn resize(
        &self,
        op: ResizeOp,
        chunk: u64,
        on_signal: OnSignal,
        progress: Option<ProgressFn<'_>>,
    ) -> core::result::Result<u64, ResizeError> {
        match op {
            ResizeOp::Target(target) => {
                self.resize_planned(|_| Ok(Some((target, chunk))), on_signal, progress)
            }
            ResizeOp::Add(bytes) => self.resize_planned(
                |q| {
                    let target = q
                        .size()
                        .checked_add(bytes)
                        .ok_or(Error::new(Status::Overflow))?;
                    Ok(Some((target, chunk.min(bytes))))
                },
                on_signal,
                progress,
            ),
            ResizeOp::Remove(bytes) => self.resize_planned(
                |q| {
                    let cur = q.size();
                    if cur == 0 {
                        return Ok(None);
                    }
                    // Clamped to the size: cannot go below 0.
                    Ok(Some((cur.saturating_sub(bytes), chunk.min(bytes))))
                },
                on_signal,
                progress,
            ),
        }
    }

    /// RFD 185's default target for this host: 75% of the kernel's limit,
    /// rounded down to `chunk` (0 = the page). For a hugetlb pool the limit
    /// is what the pool could hold (its persistent pages and the host's
    /// available memory) and the chunk at least the huge page.
    pub fn default_target(&self, chunk: u64) -> Result<u64> {
        headroom::default_target_for(self.query()?.limit, self.align_chunk(chunk)?)
    }

    /// The size now, for error reports; `None` if even a query fails.
    fn reached_now(&self) -> Option<u64> {
        self.query().ok().map(|q| q.size())
    }

    /// The common resize path: gate on the interface version, take the
    /// resize lock, let `plan` turn a fresh query into (target, chunk) —
    /// or nothing to do — then drive SET_TARGET to completion.
    fn resize_planned(
        &self,
        plan: impl FnOnce(&ReservoirQuery) -> Result<Option<(u64, u64)>>,
        on_signal: OnSignal,
        progress: Option<ProgressFn<'_>>,
    ) -> core::result::Result<u64, ResizeError> {
        if !self.can_resize() {
            // Never send 0x564D11 to a pre-V9 kernel: it is VMM_RESV_ADD
            // there, reading our pointer as a size (a VERIFY panic).
            return Err(ResizeError::new(
                Error::new(Status::InterfaceTooOld),
                self.reached_now(),
            ));
        }
        let _lock = self
            .lock()
            .map_err(|e| ResizeError::new(e, self.reached_now()))?;
        // Pending admission claims were checked against the room a resize
        // changes: hold the change in the ledger first, like a claim.
        let mut hold = ResizeHold::open(&self.run_dir().join(self.ledger_name()), self.pool_id())
            .map_err(|e| ResizeError::new(e, self.reached_now()))?;
        let planned = |q: &ReservoirQuery| -> Result<Option<(u64, u64)>> {
            let p = plan(q)?;
            if let Some((target, _)) = p {
                hold.take(self, q.size(), target)?;
            }
            Ok(p)
        };
        match &self.backend {
            Backend::Vmm { .. } => resize_on_signal(self, planned, on_signal, progress),
            // The pool's own resize: no EINTR to resume (the kernel's loop
            // stops short for a signal, which the pool tells apart).
            Backend::Hugetlb(pool) => {
                let q = self.query().map_err(|e| ResizeError::new(e, None))?;
                match planned(&q) {
                    Ok(Some((target, chunk))) => pool.resize(target, chunk, progress),
                    Ok(None) => Ok(q.size()),
                    Err(e) => Err(ResizeError::new(e, Some(q.size()))),
                }
            }
        }
    }

    /// Take the resize lock: a fresh open file description with an
    /// exclusive flock, released when the returned file is dropped or the
    /// process dies.
    fn lock(&self) -> Result<File> {
        files::lock_file(&self.lock_path).map_err(Error::from)
    }
}

/// A resize's hold on the admission ledger of its run directory (if one
/// exists): a grow takes room under the limit that pending transient
/// claims were admitted against, a shrink takes free memory that pending
/// reservoir claims were admitted against — so the change is claimed first,
/// in the same pool and by the same protocol as a VM's claim, and refused
/// (`Status::Refused`) when it would take what a pending claim holds.
/// Released when dropped, after the resize: by then the kernel accounts
/// the change.
struct ResizeHold {
    file: Option<crate::ledger::file::LedgerFile>,
    slot: Option<usize>,
}

/// The UUID a resize's hold is recorded under (no VM has it: version 4
/// UUIDs have 0x4 in byte 6).
const RESIZE_HOLD_UUID: [u8; 16] = *b"vmmresv:resize\0\0";

impl ResizeHold {
    /// The hold on the ledger at `path` (of pool `pool`), if there is one.
    fn open(path: &Path, pool: PoolId) -> Result<ResizeHold> {
        use crate::ledger::file::LedgerFile;
        // No ledger: no admission ever claimed here, nothing to respect.
        // Any other answer (EACCES, EMFILE…) is an error, not "no ledger".
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ResizeHold {
                    file: None,
                    slot: None,
                })
            }
            Err(e) => return Err(errno::device_io_error(&e)),
            Ok(_) => {}
        }
        Ok(ResizeHold {
            file: Some(LedgerFile::open_or_create_for(path, pool)?),
            slot: None,
        })
    }

    fn take(&mut self, r: &Reservoir, size: u64, target: u64) -> Result<()> {
        use crate::ledger::{ClaimOutcome, Pool};
        let Some(f) = &self.file else { return Ok(()) };
        if self.slot.is_some() || target == size {
            return Ok(());
        }
        let pool = if target > size {
            Pool::Transient
        } else {
            Pool::Reservoir
        };
        let mut delta = target.abs_diff(size);
        if pool == Pool::Reservoir && r.hugetlb().is_some() {
            // A pool's shrink takes only its free pages; pages in use
            // become surplus. Only those free pages are what pending
            // claims may have counted on.
            delta = delta.min(r.query()?.free);
        }
        let pages = pages::btopr(delta, pages::PageSize::Base4K);
        if pages == 0 {
            return Ok(());
        }
        let mut capacity = || -> Result<u64> {
            let q = r.query()?;
            let room = match pool {
                Pool::Transient => q.transient_room(),
                _ => q.free,
            };
            Ok(pages::btop(room, pages::PageSize::Base4K))
        };
        match f
            .ledger()
            .claim(&f.world(), RESIZE_HOLD_UUID, pool, pages, 0, &mut capacity)?
        {
            ClaimOutcome::Claimed { slot, .. } => {
                self.slot = Some(slot);
                Ok(())
            }
            // Nothing pending in the way: the change does not fit the
            // kernel's room at all, and the kernel's own answer (NO_SPACE)
            // says why better than REFUSED would.
            ClaimOutcome::Refused(r) if r.claimed == 0 => Ok(()),
            ClaimOutcome::Refused(_) => Err(Error::new(Status::Refused)),
        }
    }
}

impl Drop for ResizeHold {
    fn drop(&mut self) {
        if let (Some(f), Some(slot)) = (&self.file, self.slot) {
            // If this fails the hold dies with this process (its lock).
            let _ = f.ledger().release(&f.world(), slot);
        }
    }
}

/// What the resize logic needs of the kernel: its two reservoir ioctls.
/// [`Reservoir`] is the real one; tests and the fuzzer substitute scripted
/// answers, so the logic below meets every answer a kernel could give.
pub trait Kernel {
    /// `VMM_RESV_QUERY`: the counters, or the errno.
    fn resv_query(&self) -> core::result::Result<sys::vmm_resv_query, i32>;
    /// `VMM_RESV_SET_TARGET`: `req` is read and (on success or EINTR only)
    /// written back, as the kernel does; or the errno.
    fn resv_set_target(&self, req: &mut sys::vmm_resv_target) -> core::result::Result<(), i32>;
}

impl Reservoir {
    /// The vmm control device; ENOTTY for a hugetlb pool (never asked:
    /// its queries and resizes go to the pool).
    fn vmm_fd(&self) -> core::result::Result<&OwnedFd, i32> {
        match &self.backend {
            Backend::Vmm { fd, .. } => Ok(fd),
            Backend::Hugetlb(_) => Err(libc::ENOTTY),
        }
    }
}

// The two ioctls themselves.
#[allow(unsafe_code)]
impl Kernel for Reservoir {
    fn resv_query(&self) -> core::result::Result<sys::vmm_resv_query, i32> {
        let fd = self.vmm_fd()?;
        let mut buf = QueryBuf::new();
        // SAFETY: `buf` is 256 zeroed, writable bytes owned by this frame;
        // the kernel writes at most 48 (32 upstream) — see QueryBuf.
        unsafe {
            sys::ioctl(
                fd.as_fd(),
                sys::VMM_RESV_QUERY,
                buf.as_mut_bytes().as_mut_ptr().cast(),
            )
        }?;
        Ok(buf.query())
    }

    fn resv_set_target(&self, req: &mut sys::vmm_resv_target) -> core::result::Result<(), i32> {
        let fd = self.vmm_fd()?;
        // SAFETY: `req` is a live, writable vmm_resv_target (24 bytes,
        // layout pinned in sys) that the kernel reads and writes back.
        unsafe {
            sys::ioctl(
                fd.as_fd(),
                sys::VMM_RESV_SET_TARGET,
                req.as_mut_bytes().as_mut_ptr().cast(),
            )
        }
        .map(|_| ())
    }
}

/// Query through `k`, retrying an interrupted call.
pub fn query_with(k: &dyn Kernel) -> Result<ReservoirQuery> {
    loop {
        match k.resv_query() {
            Ok(q) => return Ok(q.into()),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(errno::device_error(e)),
        }
    }
}

/// The resize itself, on any kernel (the caller holds the resize lock and
/// has checked the interface version): a fresh query, `plan` turns it into
/// (target, chunk) or nothing to do, then SET_TARGET until done, resuming
/// after EINTR from the size the kernel reports (asking `progress`, which
/// may cancel) and re-querying after errors that report nothing.
pub fn resize_with(
    k: &dyn Kernel,
    plan: impl FnOnce(&ReservoirQuery) -> Result<Option<(u64, u64)>>,
    progress: Option<ProgressFn<'_>>,
) -> core::result::Result<u64, ResizeError> {
    resize_on_signal(k, plan, OnSignal::Resume, progress)
}

/// [`resize_with`], choosing what an EINTR does: [`OnSignal::Resume`]
/// resumes (the callback may cancel), [`OnSignal::Stop`] stops there. An
/// EINTR may come with no progress at all (the kernel checks for a signal
/// before the first chunk, and rolls back a chunk interrupted while it
/// waited for pages): the size reached is then where the call began.
pub fn resize_on_signal(
    k: &dyn Kernel,
    plan: impl FnOnce(&ReservoirQuery) -> Result<Option<(u64, u64)>>,
    on_signal: OnSignal,
    mut progress: Option<ProgressFn<'_>>,
) -> core::result::Result<u64, ResizeError> {
    let reached_now = || query_with(k).ok().map(|q| q.size());
    let q = query_with(k).map_err(|e| ResizeError::new(e, None))?;
    let (target, chunk) = match plan(&q) {
        Ok(Some(tc)) => tc,
        Ok(None) => return Ok(q.size()),
        Err(e) => return Err(ResizeError::new(e, Some(q.size()))),
    };
    // The kernel checks these too (EINVAL); checking first keeps a bad
    // request from ever reaching it.
    if !pages::is_aligned(target, PAGESIZE)
        || (chunk != 0 && !pages::is_aligned(chunk, PAGESIZE))
        || target == u64::MAX
    {
        return Err(ResizeError::new(
            Error::new(Status::Unaligned),
            Some(q.size()),
        ));
    }
    loop {
        let mut req = sys::vmm_resv_target {
            vrt_target_sz: target,
            vrt_chunk_sz: chunk,
            vrt_result_sz: 0,
        };
        match k.resv_set_target(&mut req) {
            Ok(()) => return Ok(req.vrt_result_sz),
            // The kernel copies the size reached out on EINTR; chunks done
            // so far stay, so resuming with the same target continues from
            // there.
            Err(libc::EINTR) => {
                let reached = req.vrt_result_sz;
                let answer = match progress.as_mut() {
                    Some(cb) => cb(reached, target),
                    None => Progress::Continue,
                };
                if answer == Progress::Cancel || on_signal == OnSignal::Stop {
                    return Err(ResizeError::new(
                        Error::with_errno(Status::Interrupted, libc::EINTR),
                        Some(reached),
                    ));
                }
            }
            // ENOSPC, ENOMEM, EALREADY, ...: the kernel does not copy the
            // result out, and completed chunks stay; ask where it stands.
            Err(e) => return Err(ResizeError::new(errno::device_error(e), reached_now())),
        }
    }
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

    /// A kernel that answers from a script: each SET_TARGET pops
    /// (errno or 0, reached); queries report `size` as free.
    struct Script {
        answers: std::cell::RefCell<Vec<(i32, u64)>>,
        size: std::cell::Cell<u64>,
    }

    impl Kernel for Script {
        fn resv_query(&self) -> core::result::Result<sys::vmm_resv_query, i32> {
            Ok(sys::vmm_resv_query {
                vrq_free_sz: self.size.get(),
                vrq_limit: 1 << 40,
                ..Default::default()
            })
        }
        fn resv_set_target(&self, req: &mut sys::vmm_resv_target) -> core::result::Result<(), i32> {
            let (errno, reached) = self.answers.borrow_mut().remove(0);
            self.size.set(reached);
            if errno == 0 || errno == libc::EINTR {
                req.vrt_result_sz = reached;
            }
            if errno == 0 {
                Ok(())
            } else {
                Err(errno)
            }
        }
    }

    #[test]
    fn resize_resumes_after_eintr_and_requeries_after_enomem() {
        let gib = 1u64 << 30;
        let k = Script {
            answers: vec![(libc::EINTR, gib), (libc::EINTR, 2 * gib), (0, 4 * gib)].into(),
            size: 0.into(),
        };
        let mut seen = Vec::new();
        let mut cb = |r: u64, t: u64| {
            seen.push((r, t));
            Progress::Continue
        };
        let got = resize_with(&k, |_| Ok(Some((4 * gib, gib))), Some(&mut cb));
        assert_eq!(got, Ok(4 * gib));
        assert_eq!(seen, [(gib, 4 * gib), (2 * gib, 4 * gib)]);
        // ENOMEM after partial progress: the kernel reports nothing; the
        // library asks and reports where the reservoir stands.
        let k = Script {
            answers: vec![(libc::ENOMEM, 3 * gib)].into(),
            size: 0.into(),
        };
        let e = resize_with(&k, |_| Ok(Some((8 * gib, gib))), None).unwrap_err();
        assert_eq!(
            (e.error.status(), e.reached),
            (Status::OutOfMemory, Some(3 * gib))
        );
        // Nothing to do: no SET_TARGET at all (the script is empty).
        let k = Script {
            answers: Vec::new().into(),
            size: 0.into(),
        };
        assert_eq!(resize_with(&k, |_| Ok(None), None), Ok(0));
    }

    /// The kernel checks for a signal before the first chunk, so EINTR can
    /// come with nothing done (even with chunk 0), and a chunk interrupted
    /// in page_xresv is rolled back: the size reached is where the call
    /// began. Resume retries from there; Stop reports it.
    #[test]
    fn eintr_with_no_progress_resumes_or_stops() {
        let gib = 1u64 << 30;
        let k = Script {
            answers: vec![(libc::EINTR, 2 * gib), (libc::EINTR, 2 * gib), (0, 4 * gib)].into(),
            size: (2 * gib).into(),
        };
        let mut seen = Vec::new();
        let mut cb = |r: u64, t: u64| {
            seen.push((r, t));
            Progress::Continue
        };
        let got = resize_with(&k, |_| Ok(Some((4 * gib, 0))), Some(&mut cb));
        assert_eq!(got, Ok(4 * gib));
        assert_eq!(seen, [(2 * gib, 4 * gib), (2 * gib, 4 * gib)]);
        // Stop, without a callback: the first EINTR ends the call where it
        // began; the second answer is never asked for.
        let k = Script {
            answers: vec![(libc::EINTR, 2 * gib), (0, 4 * gib)].into(),
            size: (2 * gib).into(),
        };
        let e = resize_on_signal(&k, |_| Ok(Some((4 * gib, 0))), OnSignal::Stop, None).unwrap_err();
        assert_eq!(
            (e.error.status(), e.error.errno(), e.reached),
            (Status::Interrupted, Some(libc::EINTR), Some(2 * gib))
        );
        assert_eq!(k.answers.borrow().len(), 1);
        // Stop with a callback that says continue: still stops, after
        // reporting.
        let k = Script {
            answers: vec![(libc::EINTR, 3 * gib), (0, 4 * gib)].into(),
            size: (2 * gib).into(),
        };
        let mut n = 0;
        let mut cb = |_: u64, _: u64| {
            n += 1;
            Progress::Continue
        };
        let e = resize_on_signal(
            &k,
            |_| Ok(Some((4 * gib, gib))),
            OnSignal::Stop,
            Some(&mut cb),
        )
        .unwrap_err();
        assert_eq!(
            (e.error.status(), e.reached),
            (Status::Interrupted, Some(3 * gib))
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn query_size_saturates() {
        let q = ReservoirQuery {
            free: u64::MAX,
            alloc: 1,
            ..Default::default()
        };
        assert_eq!(q.size(), u64::MAX);
    }
}
