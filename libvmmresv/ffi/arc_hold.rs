//! ARC reservations without a reservoir (vmmresv_arc_open(3VMMRESV), ABI
//! 1.2): a handle on a claim ledger's ARC pool, and durable per-VM
//! reservations that outlive the program that made them.

use core::ffi::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::boundary::{
    c_str, checked, export, free_handle, new_handle, opt_out, opt_path, out, read_in, uuid_arg,
    uuid_canonical, vmmresv_arc, vmmresv_arc_host, vmmresv_arc_reservation, write_array,
};
use crate::arc::durable::VmState;
use crate::arc::reservations::{ArcHolding, ArcReservations};
use crate::ledger::file::LEDGER_FILE_NAME;
use crate::pages;
use crate::status::{Error, Status};

/// `vm_state` of vmmresv_arc_hold_info: a process holds the reservation
/// (vmmresv_arc_reserve(), or vmmresv_admit() with an ARC host); it lasts
/// as long as that process.
pub const VMMRESV_ARC_VM_PROCESS: u32 = 0;
/// `vm_state`: durable; the VM's existence check exists now.
pub const VMMRESV_ARC_VM_PRESENT: u32 = 1;
/// `vm_state`: durable; the existence check is gone (ENOENT or ENOTDIR):
/// vmmresv_arc_reconcile() frees the reservation once it is older than
/// the grace.
pub const VMMRESV_ARC_VM_GONE: u32 = 2;
/// `vm_state`: durable; the check cannot tell (no usable record, or
/// another error): kept, never freed by reconcile.
pub const VMMRESV_ARC_VM_UNKNOWN: u32 = 3;

/// Longest VM existence-check path vmmresv_arc_hold() accepts (bytes,
/// without the NUL).
pub const VMMRESV_ARC_CHECK_PATH_MAX: u32 = 1024;

/// Default grace for vmmresv_arc_reconcile() (seconds): how long a
/// reservation may wait for its VM to appear.
pub const VMMRESV_ARC_GRACE_DEFAULT: u32 = 300;

/// One ARC reservation (vmmresv_arc_list(), ABI 1.2).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct vmmresv_arc_hold_info {
    /// The VM's UUID, canonical lower-case text, NUL-terminated.
    pub vm_uuid: [c_char; 37],
    /// 1 if durable (vmmresv_arc_hold()), 0 if a process holds it.
    pub durable: u8,
    /// Always 0.
    pub pad: [u8; 2],
    /// VMMRESV_ARC_VM_*: what the VM's existence check says now.
    pub vm_state: u32,
    /// The pid of the process that made it, in its own zone or PID
    /// namespace (for people; a durable reservation's maker has usually
    /// exited).
    pub taker_pid: u32,
    /// Bytes reserved (4 KiB pages).
    pub bytes: u64,
    /// When it was made: seconds since the Unix epoch, by its maker's
    /// clock.
    pub reserved_at: u64,
    /// Where its maker ran: its zone id on illumos, 0 elsewhere.
    pub zone_id: u64,
    /// A durable reservation's existence check as recorded, NUL-terminated
    /// (empty if none is recorded, or for a process's reservation).
    pub vm_check_path: [c_char; 1032],
}

impl Default for vmmresv_arc_hold_info {
    fn default() -> Self {
        vmmresv_arc_hold_info {
            vm_uuid: [0; 37],
            durable: 0,
            pad: [0; 2],
            vm_state: VMMRESV_ARC_VM_PROCESS,
            taker_pid: 0,
            bytes: 0,
            reserved_at: 0,
            zone_id: 0,
            vm_check_path: [0; 1032],
        }
    }
}

fn copy_text(out: &mut [c_char], bytes: &[u8]) {
    // The last byte stays NUL; records are at most 1024 bytes (checked
    // when read), the buffer 1032.
    let room = out.len().saturating_sub(1);
    for (o, b) in out.iter_mut().take(room).zip(bytes) {
        *o = c_char::from_ne_bytes([*b]);
    }
}

impl From<&ArcHolding> for vmmresv_arc_hold_info {
    fn from(h: &ArcHolding) -> Self {
        let mut out = vmmresv_arc_hold_info::default();
        copy_text(&mut out.vm_uuid, uuid_canonical(&h.claim.uuid).as_bytes());
        out.durable = u8::from(h.claim.durable);
        out.vm_state = match h.vm {
            None => VMMRESV_ARC_VM_PROCESS,
            Some(VmState::Present) => VMMRESV_ARC_VM_PRESENT,
            Some(VmState::Gone) => VMMRESV_ARC_VM_GONE,
            Some(VmState::Unknown) => VMMRESV_ARC_VM_UNKNOWN,
        };
        out.taker_pid = h.claim.pid;
        out.bytes = h.claim.pages.saturating_mul(pages::PAGESIZE);
        out.reserved_at = h.claim.since;
        out.zone_id = h.claim.origin;
        if let Some(p) = &h.check {
            copy_text(&mut out.vm_check_path, p.as_os_str().as_bytes());
        }
        out
    }
}

/// What vmmresv_arc_reconcile() did (ABI 1.2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_arc_reconcile_report {
    /// Durable reservations kept: their VM exists, or they are within the
    /// grace.
    pub kept: u64,
    /// Durable reservations kept because their check cannot tell.
    pub unknown: u64,
    /// Durable reservations freed: their VM is gone, past the grace.
    pub freed: u64,
    /// Bytes those freed.
    pub freed_bytes: u64,
    /// Claims of dead processes (any pool of the ledger) reclaimed after.
    pub reclaimed_claims: u64,
    /// Bytes those held.
    pub reclaimed_bytes: u64,
    /// All ARC reservations after (OS-8005's arc_virt_machine_reserved).
    pub reserved_after_bytes: u64,
}

/// Open the ARC pool of the claim ledger at `ledger_path` (NULL:
/// `admission.ledger` in the run directory, `$VMMRESV_RUNDIR` if set,
/// else the configured one, else /var/run/vmmresv), creating it if
/// missing, with no reservoir: nothing opens /dev/vmmctl. That file holds
/// every ARC reservation of the host, those of admissions on a hugetlb
/// pool too; a hugetlb pool's own ledger is INVALID_ARGUMENT. Its
/// directory keeps the reservations' existence checks. The same ownership and safety checks as
/// vmmresv_admission_open() (LEDGER_UNSAFE, LEDGER_CORRUPT). `*out`
/// receives a handle to free with vmmresv_arc_free(), or NULL on failure.
#[no_mangle]
pub extern "C" fn vmmresv_arc_open(
    ledger_path: *const c_char,
    out: *mut *mut vmmresv_arc,
) -> Status {
    export(|| {
        let out = out!(out)?;
        out.set(core::ptr::null_mut());
        let path: PathBuf = match opt_path!(ledger_path) {
            Some(p) => p.to_path_buf(),
            None => crate::rundir::run_dir_setting()?.0.join(LEDGER_FILE_NAME),
        };
        let inner = ArcReservations::open(&path)?;
        out.set(new_handle(vmmresv_arc { inner })?);
        Ok(())
    })
}

/// Free an ARC handle; NULL or a handle already freed is a no-op, and
/// every later call with it returns INVALID_ARGUMENT. Durable
/// reservations stay in the ledger: they belong to their VMs, not to the
/// handle or the process.
#[no_mangle]
pub extern "C" fn vmmresv_arc_free(arc_handle: *mut vmmresv_arc) {
    // SAFETY: this export holds no reference to the object; one another
    // thread still holds is the C caller's bug (documented).
    super::boundary::boundary(|| unsafe { free_handle(arc_handle) })
}

/// Reserve `bytes` of ARC room for VM `vm_uuid`, durably: the reservation
/// outlives this process and lasts until vmmresv_arc_drop(), or until
/// vmmresv_arc_reconcile() finds the file `vm_check_path` gone (ENOENT or
/// ENOTDIR) and the reservation older than the grace. `vm_check_path`:
/// an absolute path (at most VMMRESV_ARC_CHECK_PATH_MAX bytes, no
/// newline) that exists while the VM does — `/dev/vmm/<name>` on illumos,
/// a QEMU pidfile or libvirt's `/run/libvirt/qemu/<name>.xml` elsewhere;
/// the VM need not exist yet. Checked by the same arc_c_min guard as
/// vmmresv_arc_reserve(), against every reservation of the ledger
/// (durable or a process's). Idempotent per VM (`already` 1), except that
/// a durable reservation whose VM is gone now (a VM stopped without its
/// drop, starting again) is made afresh, so its grace starts again.
/// A reservation being made by another process for the same VM is BUSY
/// (retry); one being released is replaced by a fresh one. Refused: OK
/// with `reserved` 0 and the shortfall. An error leaves no new
/// reservation behind (a stale one released on the way stays released).
#[no_mangle]
pub extern "C" fn vmmresv_arc_hold(
    arc_handle: *const vmmresv_arc,
    vm_uuid: *const c_char,
    vm_check_path: *const c_char,
    bytes: u64,
    host: *const vmmresv_arc_host,
    out: *mut vmmresv_arc_reservation,
) -> Status {
    export(|| {
        let a = checked(arc_handle)?;
        let out = out!(out)?;
        let uuid = uuid_arg!(vm_uuid)?;
        let check = Path::new(std::ffi::OsStr::from_bytes(
            c_str!(vm_check_path)?.to_bytes(),
        ));
        let policy = read_in!(host)?.policy()?;
        let r = a.inner.hold(&uuid, bytes, &policy, check)?;
        out.set(vmmresv_arc_reservation::of(r, || a.inner.target(&policy)));
        Ok(())
    })
}

/// Release VM `vm_uuid`'s durable reservation (any process that may write
/// the ledger may). Idempotent: a VM without one releases 0 bytes.
/// `*released_bytes` may be NULL. NOT_FOUND if the VM's reservation is a
/// process's (vmmresv_arc_reserve()): that one is released with
/// vmmresv_arc_release() by its process.
#[no_mangle]
pub extern "C" fn vmmresv_arc_drop(
    arc_handle: *const vmmresv_arc,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    export(|| {
        let a = checked(arc_handle)?;
        let released = a.inner.drop_hold(&uuid_arg!(vm_uuid)?)?;
        opt_out!(released_bytes).set(released);
        Ok(())
    })
}

/// Free every durable reservation whose VM's existence check is gone and
/// which is at least `grace_s` seconds old (VMMRESV_ARC_GRACE_DEFAULT is
/// the usual value; a clock behind a reservation's time is within any
/// grace); keep every other, and keep any whose check cannot tell. Then
/// reconcile the whole ledger as vmmresv_reconcile() does (claims of dead
/// processes reclaimed, totals checked). `*out` may be NULL. A VM that
/// appears between the check and the release can lose its reservation:
/// the check is made twice, the second time just before the release, and
/// its next vmmresv_arc_hold() makes it again.
#[no_mangle]
pub extern "C" fn vmmresv_arc_reconcile(
    arc_handle: *const vmmresv_arc,
    grace_s: u32,
    out: *mut vmmresv_arc_reconcile_report,
) -> Status {
    export(|| {
        let a = checked(arc_handle)?;
        let r = a.inner.reconcile(u64::from(grace_s))?;
        opt_out!(out).set(vmmresv_arc_reconcile_report {
            kept: r.durable.kept,
            unknown: r.durable.unknown,
            freed: r.durable.freed,
            freed_bytes: r.durable.freed_bytes,
            reclaimed_claims: r.ledger.reclaimed_slots,
            reclaimed_bytes: r.ledger.reclaimed_pages.saturating_mul(pages::PAGESIZE),
            reserved_after_bytes: a.inner.reserved_bytes(),
        });
        Ok(())
    })
}

/// The ARC reservations in the ledger, durable and processes', with what
/// each durable one's existence check says now. Read-only. Needed-size
/// protocol as vmmresv_claims_list(): `*count` (not NULL) receives the
/// number; the first min(`n`, that number) are written to `holds` (NULL
/// only if `n` is 0); BUFFER_TOO_SMALL when `n` was smaller.
#[no_mangle]
pub extern "C" fn vmmresv_arc_list(
    arc_handle: *const vmmresv_arc,
    holds: *mut vmmresv_arc_hold_info,
    n: usize,
    count: *mut usize,
) -> Status {
    export(|| {
        let a = checked(arc_handle)?;
        let count = out!(count)?;
        if holds.is_null() && n != 0 {
            return Err(Error::new(Status::NullArgument));
        }
        let list = a.inner.list()?;
        count.set(list.len());
        let infos: Vec<vmmresv_arc_hold_info> = list.iter().take(n).map(Into::into).collect();
        write_array!(holds, &infos)?;
        if n < list.len() {
            return Err(Error::new(Status::BufferTooSmall));
        }
        Ok(())
    })
}

/// The ARC target the ledger's reservations imply now for `host`
/// (ceiling − reservations − slack, clamped to [arc_c_min, arc_c_max]),
/// and all reservations (`*reserved_bytes`, may be NULL).
#[no_mangle]
pub extern "C" fn vmmresv_arc_target(
    arc_handle: *const vmmresv_arc,
    host: *const vmmresv_arc_host,
    target_bytes: *mut u64,
    reserved_bytes: *mut u64,
) -> Status {
    export(|| {
        let a = checked(arc_handle)?;
        let target_bytes = out!(target_bytes)?;
        let policy = read_in!(host)?.policy()?;
        let t = a.inner.target(&policy)?;
        target_bytes.set(t.target_bytes);
        opt_out!(reserved_bytes).set(t.reserved_bytes);
        Ok(())
    })
}

/// As vmmresv_arc_apply_linux() on this handle's ledger: write the target
/// to `<root>/sys/module/zfs/parameters/zfs_arc_max` (`root` NULL for "/")
/// while any VM holds an ARC reservation, remembering the original in the
/// ledger's directory, and write the original back once none does.
/// Linux OpenZFS only: illumos has no run-time zfs_arc_max (use
/// vmmresv_arc_apply_illumos() per VM). Wait for the shrink with
/// vmmresv_arc_wait_linux().
#[no_mangle]
pub extern "C" fn vmmresv_arc_apply(
    arc_handle: *const vmmresv_arc,
    root: *const c_char,
    host: *const vmmresv_arc_host,
    written_bytes: *mut u64,
) -> Status {
    export(|| {
        let written_bytes = opt_out!(written_bytes);
        written_bytes.set(0);
        let a = checked(arc_handle)?;
        let h = read_in!(host)?;
        let root = opt_path!(root).unwrap_or(Path::new("/"));
        let applied = a.inner.apply_linux(&h.policy()?, &h.linux_facts(), root)?;
        written_bytes.set(h.written(applied)?);
        Ok(())
    })
}
