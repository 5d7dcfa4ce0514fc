//! The ZFS ARC beside bhyve's memory: readings, reservations, applying
//! and waiting for the target (vmmresv_arc(3VMMRESV); OS-8005).

use core::ffi::{c_char, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use super::boundary::{
    c_str, checked, export, opt_out, opt_path, opt_read, out, read_in, uuid_arg, vmmresv_admission,
    vmmresv_arc_host, vmmresv_progress_fn,
};
use crate::arc::guard::{guard, GuardInputs, Refusal};
use crate::arc::memstat::read_memstat_file;
use crate::arc::reserve::Reservation;
use crate::arc::snapshot::HostSnapshot;
use crate::arc::wait::{wait_for_reader, Flow, WaitOptions, WaitOutcome};
use crate::arc::{ArcReader, TargetReport};
use crate::pages::{btopr, PageSize};
use crate::status::{Error, Status};

/// An ARC reservation's outcome.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_arc_reservation {
    /// 1 if the VM holds a reservation now, 0 if it was refused.
    pub reserved: u32,
    /// 1 if it already held one (nothing charged twice).
    pub already: u32,
    /// Bytes the VM holds (its request rounded up to 4 KiB pages).
    pub bytes: u64,
    /// When refused: how much arc_c_min + reservations + request exceed
    /// the ceiling by.
    pub shortfall_bytes: u64,
    /// The ARC target that follows from the ledger now.
    pub target_bytes: u64,
    /// All VMs' ARC reservations (OS-8005's arc_virt_machine_reserved).
    pub total_reserved_bytes: u64,
}

impl vmmresv_arc_reservation {
    /// The C view of a reservation's outcome; for a refusal, `now` gives
    /// the target and all reservations (0, 0 if they cannot be read).
    pub(in crate::ffi) fn of(
        r: Reservation,
        now: impl FnOnce() -> Result<TargetReport, Error>,
    ) -> vmmresv_arc_reservation {
        match r {
            Reservation::Reserved(r) => vmmresv_arc_reservation {
                reserved: 1,
                already: u32::from(r.already),
                bytes: r.bytes,
                shortfall_bytes: 0,
                target_bytes: r.target.target_bytes,
                total_reserved_bytes: r.target.reserved_bytes,
            },
            Reservation::Refused(refusal) => {
                let shortfall = match refusal {
                    Refusal::Shortfall {
                        shortfall_bytes, ..
                    } => shortfall_bytes,
                    Refusal::Overflow => u64::MAX,
                };
                let (target, total) = now()
                    .map(|t| (t.target_bytes, t.reserved_bytes))
                    .unwrap_or((0, 0));
                vmmresv_arc_reservation {
                    reserved: 0,
                    already: 0,
                    bytes: 0,
                    shortfall_bytes: shortfall,
                    target_bytes: target,
                    total_reserved_bytes: total,
                }
            }
        }
    }
}

/// Where an illumos host's pages are, from `mdb -k ::memstat` (bytes, 4
/// KiB pages). Rows mdb prints only when nonzero are 0 when absent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_memstat {
    /// `Total` (`physmem`).
    pub physmem_bytes: u64,
    /// `Physical` (`total_pages`; Total when mdb omits it).
    pub physical_bytes: u64,
    /// `Kernel` (ARC metadata included).
    pub kernel_bytes: u64,
    /// `Boot pages`.
    pub boot_pages_bytes: u64,
    /// `ZFS File Data` (ARC data buffers).
    pub zfs_file_data_bytes: u64,
    /// `VMM Memory` (bhyve guests).
    pub vmm_bytes: u64,
    /// `Anon`.
    pub anon_bytes: u64,
    /// `Exec and libs`.
    pub exec_and_libs_bytes: u64,
    /// `Page cache`.
    pub page_cache_bytes: u64,
    /// `Free (cachelist)`.
    pub free_cachelist_bytes: u64,
    /// `Free (freelist)`.
    pub free_freelist_bytes: u64,
    /// `Balloon` (Xen).
    pub balloon_bytes: u64,
    /// Free memory: cachelist + freelist (the kernel's `freemem`).
    pub free_bytes: u64,
    /// What VMs and the ARC can share: free + ZFS file data + VMM memory,
    /// a `ceiling_bytes` for vmmresv_arc_host.
    pub vm_and_arc_budget_bytes: u64,
}

impl vmmresv_memstat {
    fn from_snapshot(s: &HostSnapshot) -> Result<vmmresv_memstat, Error> {
        let z = |v: Option<u64>| v.unwrap_or(0);
        Ok(vmmresv_memstat {
            physmem_bytes: z(s.physmem),
            physical_bytes: z(s.physical),
            kernel_bytes: z(s.kernel),
            boot_pages_bytes: z(s.boot_pages),
            zfs_file_data_bytes: z(s.zfs_file_data),
            vmm_bytes: z(s.vmm),
            anon_bytes: z(s.anon),
            exec_and_libs_bytes: z(s.exec_and_libs),
            page_cache_bytes: z(s.page_cache),
            free_cachelist_bytes: z(s.free_cachelist),
            free_freelist_bytes: z(s.free_freelist),
            balloon_bytes: z(s.balloon),
            free_bytes: z(s.free),
            vm_and_arc_budget_bytes: s.vm_and_arc_budget()?.unwrap_or(0),
        })
    }
}

/// The arc_c_min guard's verdict on one request (no ledger involved).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_arc_guard {
    /// 1 if `arc_c_min + reserved + request <= ceiling`, else 0.
    pub admitted: u32,
    /// Always 0 (alignment; room for later flags).
    pub reserved0: u32,
    /// All reservations with the request, if admitted (bytes, 4 KiB pages).
    pub reserved_after_bytes: u64,
    /// Room left under the ceiling after it, if admitted.
    pub headroom_bytes: u64,
    /// If refused: by how much the ceiling is passed.
    pub shortfall_bytes: u64,
    /// `arc_c_min + reserved + request` (rounded up to pages).
    pub need_bytes: u64,
    /// The ceiling (rounded down to pages).
    pub ceiling_bytes: u64,
}

/// Read a file of `mdb -k ::memstat` output (aligned, or with the spaces
/// squeezed) into `*out` (the library does not run mdb). MALFORMED_INPUT
/// if it is not a ::memstat table, or its rows do not add up to Total;
/// IO if it cannot be read.
#[no_mangle]
pub extern "C" fn vmmresv_arc_read_memstat(
    path: *const c_char,
    out: *mut vmmresv_memstat,
) -> Status {
    export(|| {
        let Some(p) = opt_path!(path) else {
            return Err(Error::new(Status::NullArgument));
        };
        let r = read_memstat_file(p)
            .map_err(Error::from)
            .and_then(|m| vmmresv_memstat::from_snapshot(&m.snapshot()));
        out!(out)?.set(r?);
        Ok(())
    })
}

/// The arc_c_min guard alone, with no ledger: would `request_bytes` fit
/// when all VMs already hold `reserved_bytes`, given `host`'s arc_c_min
/// and ceiling? Compared in 4 KiB pages, rounding demands up and the
/// ceiling down. OK with `admitted` 0 and the shortfall for a refusal;
/// INVALID_ARGUMENT for a request of 0 or arc_c_min above arc_c_max;
/// OVERFLOW for sums beyond 64 bits. Nothing is recorded.
#[no_mangle]
pub extern "C" fn vmmresv_arc_guard_check(
    host: *const vmmresv_arc_host,
    reserved_bytes: u64,
    request_bytes: u64,
    out: *mut vmmresv_arc_guard,
) -> Status {
    export(|| {
        let out = out!(out)?;
        let policy = read_in!(host)?.policy()?;
        let inputs = GuardInputs::new(
            &policy.limits,
            policy.ceiling,
            btopr(reserved_bytes, PageSize::Base4K),
            request_bytes,
        );
        if inputs.request == 0 {
            return Err(Error::new(Status::InvalidArgument));
        }
        let b = |p: u64| crate::pages::ptob(p, PageSize::Base4K).unwrap_or(u64::MAX);
        let mut g = vmmresv_arc_guard {
            ceiling_bytes: b(inputs.ceiling),
            ..vmmresv_arc_guard::default()
        };
        match guard(&inputs) {
            Ok(a) => {
                g.admitted = 1;
                g.reserved_after_bytes = b(a.arc_virt_machine_reserved);
                g.headroom_bytes = b(a.headroom);
                g.need_bytes = b(a.arc_virt_machine_reserved.saturating_add(inputs.arc_c_min));
            }
            Err(Refusal::Shortfall {
                shortfall_bytes,
                need,
                ..
            }) => {
                g.shortfall_bytes = shortfall_bytes;
                g.need_bytes = b(need);
            }
            Err(r @ Refusal::Overflow) => return Err(r.into()),
        }
        out.set(g);
        Ok(())
    })
}

/// Read Linux OpenZFS's `<root>/proc/spl/kstat/zfs/arcstats` (`root` NULL
/// for "/") into `*out`. MALFORMED_INPUT if the file is not arcstats or
/// lacks `c_min`, `c_max` or `size`; IO if it cannot be read.
#[no_mangle]
pub extern "C" fn vmmresv_arc_read_linux(
    root: *const c_char,
    out: *mut vmmresv_arc_host,
) -> Status {
    export(|| {
        let root = opt_path!(root).unwrap_or(Path::new("/"));
        let r = ArcReader::linux(root)
            .snapshot()
            .map_err(Error::from)
            .and_then(|s| vmmresv_arc_host::from_snapshot(&s));
        out!(out)?.set(r?);
        Ok(())
    })
}

/// Read a file of illumos `kstat -p zfs:0:arcstats` output into `*out`
/// (the library does not run kstat). `physmem_bytes` and `slack_bytes`
/// are 0: illumos arcstats has no memory total.
#[no_mangle]
pub extern "C" fn vmmresv_arc_read_kstat(
    path: *const c_char,
    out: *mut vmmresv_arc_host,
) -> Status {
    export(|| {
        let Some(p) = opt_path!(path) else {
            return Err(Error::new(Status::NullArgument));
        };
        let r = ArcReader::kstat_p_file(p)
            .snapshot()
            .map_err(Error::from)
            .and_then(|s| vmmresv_arc_host::from_snapshot(&s));
        out!(out)?.set(r?);
        Ok(())
    })
}

/// Use `host` for this handle's NO_RESERVOIR decisions (NULL: stop): each
/// then also reserves the VM's memory in the ARC ledger, is refused with
/// VMMRESV_REASON_ARC_GUARD if the ARC would have to go below arc_c_min,
/// and reports the ARC target and expected wait in its decision. Call it
/// again with a fresh reading to update the ARC's size.
#[no_mangle]
pub extern "C" fn vmmresv_admission_set_arc(
    admission_handle: *const vmmresv_admission,
    host: *const vmmresv_arc_host,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let setting = match opt_read!(host) {
            Some(h) => Some(h.arc_host()?),
            None => None,
        };
        a.inner.set_arc(setting);
        Ok(())
    })
}

/// Reserve `bytes` of ARC room for VM `vm_uuid` (OS-8005's per-VM
/// reservation), held by this process until vmmresv_arc_release() or its
/// exit. Idempotent per VM. Refused (`reserved` 0, with the shortfall)
/// when arc_c_min + all reservations + `bytes` would pass the ceiling —
/// compared in pages, one unit, unlike the original kernel code.
#[no_mangle]
pub extern "C" fn vmmresv_arc_reserve(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    bytes: u64,
    host: *const vmmresv_arc_host,
    out: *mut vmmresv_arc_reservation,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let out = out!(out)?;
        let uuid = uuid_arg!(vm_uuid)?;
        let policy = read_in!(host)?.policy()?;
        let r = a.inner.arc_reserve(&uuid, bytes, &policy)?;
        out.set(vmmresv_arc_reservation::of(r, || {
            a.inner.arc_target(&policy)
        }));
        Ok(())
    })
}

/// Release VM `vm_uuid`'s ARC reservation (on destroy). Idempotent: a VM
/// without one releases 0 bytes. `*released_bytes` may be NULL. NOT_FOUND
/// if another live process holds it.
#[no_mangle]
pub extern "C" fn vmmresv_arc_release(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let released = a.inner.arc_release(&uuid_arg!(vm_uuid)?)?;
        opt_out!(released_bytes).set(released);
        Ok(())
    })
}

/// Make Linux OpenZFS follow the ARC ledger: write the target to
/// `<root>/sys/module/zfs/parameters/zfs_arc_max` (`root` NULL for "/")
/// while any VM holds a reservation, remembering the original in the run
/// directory, and write the original back once none does. `*written_bytes`
/// (may be NULL) receives the value written, or 0 if nothing was. REFUSED
/// for a target OpenZFS would ignore (below 64 MiB, not above arc_c_min,
/// not below all memory); UNSUPPORTED when the original was 0 (the module
/// default cannot be written back on a running system).
#[no_mangle]
pub extern "C" fn vmmresv_arc_apply_linux(
    admission_handle: *mut vmmresv_admission,
    root: *const c_char,
    host: *const vmmresv_arc_host,
    written_bytes: *mut u64,
) -> Status {
    export(|| {
        let written_bytes = opt_out!(written_bytes);
        written_bytes.set(0);
        let a = checked(admission_handle)?;
        let h = read_in!(host)?;
        let root = opt_path!(root).unwrap_or(Path::new("/"));
        let applied = a
            .inner
            .arc_apply_linux(&h.policy()?, &h.linux_facts(), root)?;
        written_bytes.set(h.written(applied)?);
        Ok(())
    })
}

/// illumos: apply VM `vm_name`'s ARC reservation of `bytes` with OS-8005's
/// per-VM ioctl (VM_ARC_RESV on /dev/vmm/`vm_name`), where the kernel has
/// it (illumos-joyent, in either of its two encodings: by value, or a
/// pointer to a size_t, chosen by the kernel's interface version or else
/// by trying each). UNSUPPORTED on every other kernel (the ioctl answers
/// ENOTTY): illumos has no run-time zfs_arc_max, and the
/// library reports that rather than pretend. NO_DEVICE if the VM does not
/// exist; OUT_OF_MEMORY if that kernel's own guard refuses.
#[no_mangle]
pub extern "C" fn vmmresv_arc_apply_illumos(vm_name: *const c_char, bytes: u64) -> Status {
    export(|| {
        let name = c_str!(vm_name)?.to_bytes();
        if name.is_empty() || name.contains(&b'/') || name.len() >= crate::sys::VM_MAX_NAMELEN {
            return Err(Error::new(Status::InvalidArgument));
        }
        let dev = Path::new("/dev/vmm").join(std::ffi::OsStr::from_bytes(name));
        crate::arc::reserve::apply_illumos(&dev, bytes)?;
        Ok(())
    })
}

/// Wait until Linux OpenZFS's ARC (`<root>/proc/spl/kstat/zfs/arcstats`,
/// `root` NULL for "/") is at or below `goal_bytes` (a target plus its
/// slack), sampling every 250 ms, for at most `deadline_ms`. `progress`
/// (may be NULL) is called after each sample with the ARC's size and the
/// goal, and may cancel (nonzero). `*arc_size_bytes` (may be NULL)
/// receives the last size seen. OK when reached; TIMEOUT at the deadline;
/// INTERRUPTED when cancelled.
#[no_mangle]
pub extern "C" fn vmmresv_arc_wait_linux(
    root: *const c_char,
    goal_bytes: u64,
    deadline_ms: u32,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    arc_size_bytes: *mut u64,
) -> Status {
    export(|| {
        let root = opt_path!(root).unwrap_or(Path::new("/"));
        let reader = ArcReader::linux(root);
        let opts = WaitOptions::new(goal_bytes, Duration::from_millis(u64::from(deadline_ms)));
        let res = wait_for_reader(&reader, &opts, |p| match progress {
            // SAFETY: the caller's callback, called as documented.
            Some(f) if unsafe { f(p.arc_size, p.goal, arg) } != 0 => Flow::Cancel,
            _ => Flow::Continue,
        });
        let outcome = res.map_err(Error::from)?;
        opt_out!(arc_size_bytes).set(outcome.progress().arc_size);
        match outcome {
            WaitOutcome::Reached(_) => Ok(()),
            WaitOutcome::Deadline(_) => Err(Error::new(Status::Timeout)),
            WaitOutcome::Cancelled(_) => Err(Error::new(Status::Interrupted)),
        }
    })
}
