//! Admission: the cross-process claim ledger (vmmresv_admission(3VMMRESV);
//! admission under a policy is in admit_vm.rs, the ledger's origin in
//! handoff.rs).

use core::ffi::c_char;

use super::boundary::{
    boundary, c_values, checked, export, free_handle, new_handle, opt_out, opt_path, out, uuid_arg,
    uuid_canonical, vmmresv_admission, vmmresv_decision, vmmresv_reservoir, write_array,
};
use crate::admission::{Admission, Decision, Preference, Reason};
use crate::ledger::Pool;
use crate::pages;
use crate::status::{Error, Status};

/// `preference` of vmmresv_admit(): use the reservoir or refuse the VM.
pub const VMMRESV_RESERVOIR_REQUIRE: u32 = 1;
/// `preference`: use the reservoir if it has room, else run without it.
pub const VMMRESV_RESERVOIR_PREFER: u32 = 2;
/// `preference`: do not use the reservoir.
pub const VMMRESV_RESERVOIR_NEVER: u32 = 3;

/// `decision`: create the VM with VCF_RESERVOIR_MEM; a claim is held until
/// vmmresv_commit() or vmmresv_abort().
pub const VMMRESV_DECISION_USE_RESERVOIR: u32 = 1;
/// `decision`: create the VM without the reservoir flag; a claim on the
/// room the kernel leaves for transient memory is held until
/// vmmresv_commit() or vmmresv_abort().
pub const VMMRESV_DECISION_NO_RESERVOIR: u32 = 2;
/// `decision`: do not start the VM.
pub const VMMRESV_DECISION_REFUSE: u32 = 3;

/// `reason`: the reservoir has room; the claim is held.
pub const VMMRESV_REASON_OK: u32 = 0;
/// `reason`: this VM already holds a claim (a retried admit); nothing was
/// charged twice.
pub const VMMRESV_REASON_ALREADY_ADMITTED: u32 = 1;
/// `reason`: reservoir free memory less other pending claims is short by
/// `shortfall_bytes`.
pub const VMMRESV_REASON_RESERVOIR_FULL: u32 = 2;
/// `reason`: the caller asked not to use the reservoir.
pub const VMMRESV_REASON_RESERVOIR_NOT_WANTED: u32 = 3;
/// `reason`: without the reservoir the VM would pass the kernel's limit on
/// reservoir plus transient memory, by `shortfall_bytes`.
pub const VMMRESV_REASON_TRANSIENT_LIMIT: u32 = 4;
/// `reason`: without the reservoir the VM's memory would have to come out
/// of the ARC below `arc_c_min` (OS-8005's guard: arc_c_min + VMM
/// reservations + request > ceiling), by `shortfall_bytes`.
pub const VMMRESV_REASON_ARC_GUARD: u32 = 5;
/// `reason` (vmmresv_admit_vm() only, ABI 1.1): the start would leave the
/// host's free memory below the configured memory state, by
/// `shortfall_bytes`.
pub const VMMRESV_REASON_MEMORY_STATE: u32 = 6;
/// `reason` (ABI 1.2): another process holds this VM's claim (it is
/// starting this VM now); nothing was claimed. That process commits or
/// aborts it, or hands it over (vmmresv_handoff()).
pub const VMMRESV_REASON_HELD_ELSEWHERE: u32 = 7;

c_values!(Preference {
    Require = VMMRESV_RESERVOIR_REQUIRE,
    Prefer = VMMRESV_RESERVOIR_PREFER,
    Never = VMMRESV_RESERVOIR_NEVER,
});
c_values!(Decision {
    UseReservoir = VMMRESV_DECISION_USE_RESERVOIR,
    NoReservoir = VMMRESV_DECISION_NO_RESERVOIR,
    Refuse = VMMRESV_DECISION_REFUSE,
});
c_values!(Reason {
    Ok = VMMRESV_REASON_OK,
    AlreadyAdmitted = VMMRESV_REASON_ALREADY_ADMITTED,
    ReservoirFull = VMMRESV_REASON_RESERVOIR_FULL,
    ReservoirNotWanted = VMMRESV_REASON_RESERVOIR_NOT_WANTED,
    TransientLimit = VMMRESV_REASON_TRANSIENT_LIMIT,
    ArcGuard = VMMRESV_REASON_ARC_GUARD,
    MemoryState = VMMRESV_REASON_MEMORY_STATE,
    HeldElsewhere = VMMRESV_REASON_HELD_ELSEWHERE,
});

/// What vmmresv_reconcile() found and repaired.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_reconcile_report {
    /// Pending reservoir claims in the ledger before, in bytes.
    pub reservoir_claimed_before_bytes: u64,
    /// After: the sum of the live reservoir claims.
    pub reservoir_claimed_after_bytes: u64,
    /// Pending transient (no-reservoir) claims before, in bytes.
    pub transient_claimed_before_bytes: u64,
    /// After: the sum of the live transient claims.
    pub transient_claimed_after_bytes: u64,
    /// Live claims counted.
    pub live_claims: u64,
    /// Claims of dead processes removed.
    pub reclaimed_claims: u64,
    /// Bytes those dead claims held.
    pub reclaimed_bytes: u64,
    /// Reservoir free bytes, queried after the repair.
    pub reservoir_free_bytes: u64,
    /// Reservoir size (free + allocated), queried after the repair.
    pub reservoir_size_bytes: u64,
    /// Pending claims beyond what the kernel says is free: memory left the
    /// reservoir outside admission (an operator shrank it, a VM allocated
    /// without a claim, a resize stopped part-way). 0 when they agree.
    pub claims_beyond_free_bytes: u64,
}

/// Open the cross-process claim ledger for admissions against
/// `reservoir`'s device. `ledger_path`: NULL for `admission.ledger` in the
/// run directory `reservoir` was opened with (by default
/// `$VMMRESV_RUNDIR`, else /var/run/vmmresv). The file is created 0600 if
/// missing; an existing one must be a regular file owned by the effective
/// uid, writable by nobody else (else LEDGER_UNSAFE), and a valid ledger
/// (else LEDGER_CORRUPT). The handle keeps its own descriptor of the
/// device: `reservoir` may be closed first. `*out` receives a handle to
/// free with vmmresv_admission_close(), or NULL on failure.
#[no_mangle]
pub extern "C" fn vmmresv_admission_open(
    reservoir: *const vmmresv_reservoir,
    ledger_path: *const c_char,
    out: *mut *mut vmmresv_admission,
) -> Status {
    export(|| {
        let out = out!(out)?;
        out.set(core::ptr::null_mut());
        let r = checked(reservoir)?;
        let inner = Admission::open(r.inner.try_clone()?, opt_path!(ledger_path))?;
        out.set(new_handle(vmmresv_admission { inner })?);
        Ok(())
    })
}

/// Close an admission handle and free it; NULL or a handle already closed
/// is a no-op, and every later call with it returns INVALID_ARGUMENT
/// (closing it while another thread still uses it is the caller's bug).
/// Claims this process holds stay in the ledger (they belong to the
/// process, not the handle) until committed, aborted, or the process exits.
#[no_mangle]
pub extern "C" fn vmmresv_admission_close(admission_handle: *mut vmmresv_admission) {
    // SAFETY: this export holds no reference to the object; one another
    // thread still holds is the C caller's bug (documented).
    boundary(|| unsafe { free_handle(admission_handle) })
}

/// Admit one VM start: `guest_bytes` of memory for the VM whose UUID is
/// `vm_uuid` (canonical 36-character text), with `preference`
/// (VMMRESV_RESERVOIR_*). `*out` receives the decision.
///
/// USE_RESERVOIR and NO_RESERVOIR hold a claim for this process until
/// vmmresv_commit() or vmmresv_abort(), or until the process dies (ABI 1.2:
/// the kernel's record lock says so, in any zone; a claim can be handed to
/// another program with vmmresv_handoff()) — an admission that needs the
/// memory, or a reconcile, then reclaims it. Commit
/// only after bhyve allocated the VM's memory. A reservoir claim is checked
/// against the reservoir's free memory, a no-reservoir claim against the
/// room the kernel leaves for transient memory (limit - free - allocated -
/// transient), each read after every other claim it competes with, so
/// concurrent admissions, in any process, never over-admit. Admitting a
/// UUID whose claim this process holds returns ALREADY_ADMITTED and charges
/// nothing twice; one another process holds is REFUSE with
/// VMMRESV_REASON_HELD_ELSEWHERE (ABI 1.2).
///
/// Errors: INVALID_ARGUMENT (bad UUID, preference or a zero size),
/// LEDGER_CORRUPT, LEDGER_FULL, LEDGER_REPLACED (the path no longer names
/// the ledger this handle opened), BUSY (the ledger's totals changed on
/// every try of a check), and the reservoir query's errors.
#[no_mangle]
pub extern "C" fn vmmresv_admit(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    guest_bytes: u64,
    preference: u32,
    out: *mut vmmresv_decision,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let out = out!(out)?;
        let uuid = uuid_arg!(vm_uuid)?;
        let pref = Preference::from_u32(preference).ok_or(Error::new(Status::InvalidArgument))?;
        let v = a.inner.admit(&uuid, guest_bytes, pref)?;
        out.set(v.into());
        Ok(())
    })
}

fn release(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released: *mut u64,
    commit: bool,
) -> Result<(), Error> {
    let a = checked(admission_handle)?;
    let uuid = uuid_arg!(vm_uuid)?;
    let res = if commit {
        a.inner.commit(&uuid)
    } else {
        a.inner.abort(&uuid)
    };
    opt_out!(released).set(res?);
    Ok(())
}

/// The VM now holds its reservoir memory (bhyve allocated it): drop its
/// claim. `*released_bytes` (may be NULL) receives what the claim held.
/// NOT_FOUND if this process holds no claim for `vm_uuid`.
#[no_mangle]
pub extern "C" fn vmmresv_commit(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    export(|| release(admission_handle, vm_uuid, released_bytes, true))
}

/// The VM will not start, or did not get its memory: drop its claim.
/// `*released_bytes` (may be NULL) receives what the claim held. NOT_FOUND
/// if this process holds no claim for `vm_uuid`.
#[no_mangle]
pub extern "C" fn vmmresv_abort(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    export(|| release(admission_handle, vm_uuid, released_bytes, false))
}

/// Bytes claimed by admissions not yet committed or aborted, by all
/// processes: `*reservoir_bytes` for VMs admitted to the reservoir,
/// `*transient_bytes` for VMs admitted without it. Either may be NULL.
#[no_mangle]
pub extern "C" fn vmmresv_admission_pending(
    admission_handle: *const vmmresv_admission,
    reservoir_bytes: *mut u64,
    transient_bytes: *mut u64,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        opt_out!(reservoir_bytes).set(a.inner.pending_bytes(Pool::Reservoir));
        opt_out!(transient_bytes).set(a.inner.pending_bytes(Pool::Transient));
        Ok(())
    })
}

/// Reclaim the claims of dead processes, check each total against the
/// live claims (repairing one that does not add up) and compare the result
/// with a fresh reservoir query; `*out` receives the findings. Admission
/// does the same by itself when a claim would otherwise be refused; this
/// is for operators and periodic checks. Nothing waits for anyone: BUSY
/// only if a total changed on every one of many tries (claims flowing).
#[no_mangle]
pub extern "C" fn vmmresv_reconcile(
    admission_handle: *mut vmmresv_admission,
    out: *mut vmmresv_reconcile_report,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let out = out!(out)?;
        out.set(report_of(&a.inner.reconcile()?));
        Ok(())
    })
}

/// `pool` of a vmmresv_claim_info (ABI 1.2): a reservoir claim
/// (vmmresv_admit(): USE_RESERVOIR).
pub const VMMRESV_CLAIM_POOL_RESERVOIR: u32 = 0;
/// `pool`: a transient claim (NO_RESERVOIR: room under the kernel's limit).
pub const VMMRESV_CLAIM_POOL_TRANSIENT: u32 = 1;
/// `pool`: an ARC reservation of a VM running without the reservoir
/// (vmmresv_arc_reserve(), or vmmresv_admit() with an ARC host set).
pub const VMMRESV_CLAIM_POOL_ARC: u32 = 2;
/// `pool`: a host-memory claim of vmmresv_admit_vm() (the `<ledger>.host`
/// ledger beside the admission ledger).
pub const VMMRESV_CLAIM_POOL_HOST: u32 = 3;

/// `state` of a vmmresv_claim_info (ABI 1.2): being applied to its pool's
/// total by its taker (not yet counted, unless the total names it).
pub const VMMRESV_CLAIM_RESERVING: u32 = 1;
/// `state`: in its pool's total.
pub const VMMRESV_CLAIM_CLAIMED: u32 = 2;
/// `state`: being taken out of its pool's total (commit, abort, or a
/// reclaim of a dead holder's claim).
pub const VMMRESV_CLAIM_RELEASING: u32 = 3;

/// One claim as the ledger records it (vmmresv_claims_list(), ABI 1.2).
/// The ledger keeps no more than this: no current holder's pid (a claim
/// handed to bhyve keeps its taker's), no command name, nothing from
/// /proc.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct vmmresv_claim_info {
    /// The VM's UUID, canonical lower-case text, NUL-terminated.
    pub vm_uuid: [c_char; 37],
    /// 1 for a durable ARC reservation (vmmresv_arc_hold()): no process
    /// holds it (`held` is 0) and none needs to; it lasts until
    /// vmmresv_arc_drop(), or until vmmresv_arc_reconcile() finds its VM
    /// gone. Never reclaimed for a missing holder. 0 for every other claim.
    pub durable: u8,
    /// Always 0.
    pub pad: [u8; 2],
    /// VMMRESV_CLAIM_POOL_*: the total it counts against.
    pub pool: u32,
    /// VMMRESV_CLAIM_*: the slot's state when read.
    pub state: u32,
    /// 1 if a process holds the claim's record lock now (asked of the
    /// kernel with F_GETLK, in any zone; or held by this process); 0 if its
    /// holder died: the next admission that needs the room, or
    /// vmmresv_reconcile(), reclaims it.
    pub held: u32,
    /// The pid of the process that took the claim, in its own zone or PID
    /// namespace, recorded when it was taken (for people: it may name
    /// nothing, or another process, here; it is not the adopter's after a
    /// hand-off; liveness is `held`).
    pub taker_pid: u32,
    /// Bytes claimed (4 KiB pages).
    pub bytes: u64,
    /// When it was taken: seconds since the Unix epoch, by the taker's
    /// clock.
    pub claimed_at: u64,
    /// Where the taker ran: its zone id on illumos, 0 elsewhere.
    pub zone_id: u64,
}

impl Default for vmmresv_claim_info {
    fn default() -> Self {
        vmmresv_claim_info {
            vm_uuid: [0; 37],
            durable: 0,
            pad: [0; 2],
            pool: 0,
            state: 0,
            held: 0,
            taker_pid: 0,
            bytes: 0,
            claimed_at: 0,
            zone_id: 0,
        }
    }
}

impl From<&crate::admission::ListedClaim> for vmmresv_claim_info {
    fn from(c: &crate::admission::ListedClaim) -> Self {
        use crate::ledger::SlotState;
        let mut out = vmmresv_claim_info::default();
        let text = uuid_canonical(&c.info.uuid);
        for (o, b) in out.vm_uuid.iter_mut().zip(text.bytes()) {
            *o = c_char::from_ne_bytes([b]);
        }
        out.pool = match (c.host, c.info.pool) {
            (true, _) => VMMRESV_CLAIM_POOL_HOST,
            (false, Pool::Reservoir) => VMMRESV_CLAIM_POOL_RESERVOIR,
            (false, Pool::Transient) => VMMRESV_CLAIM_POOL_TRANSIENT,
            (false, Pool::Arc) => VMMRESV_CLAIM_POOL_ARC,
        };
        out.state = match c.info.state {
            SlotState::Reserving => VMMRESV_CLAIM_RESERVING,
            SlotState::Releasing => VMMRESV_CLAIM_RELEASING,
            // Listed slots are never free or busy.
            SlotState::Claimed | SlotState::Free | SlotState::Busy => VMMRESV_CLAIM_CLAIMED,
        };
        out.held = u32::from(c.held);
        out.durable = u8::from(c.info.durable);
        out.taker_pid = c.info.pid;
        out.bytes = c.info.pages.saturating_mul(pages::PAGESIZE);
        out.claimed_at = c.info.since;
        out.zone_id = c.info.origin;
        out
    }
}

/// The claims in the ledger (ABI 1.2): every reservoir, transient and ARC
/// claim of the admission ledger and every host-memory claim of
/// vmmresv_admit_vm(), live or left by a dead holder, as the slots record
/// them (see vmmresv_claim_info). Read-only: nothing is reclaimed or
/// locked. Each claim is read consistently; the list is not one instant of
/// the whole ledger (claims come and go while it is read).
///
/// Needed-size protocol: `*count` (not NULL) receives the number of claims;
/// the first min(`n`, that number) are written to `claims` (NULL only if
/// `n` is 0), and BUFFER_TOO_SMALL is returned when `n` was smaller. Call
/// with `n` 0 to learn the number, then again with room for a few more.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (not a live handle),
/// BUFFER_TOO_SMALL, LEDGER_CORRUPT, and the record-lock query's I/O
/// errors.
#[no_mangle]
pub extern "C" fn vmmresv_claims_list(
    admission_handle: *const vmmresv_admission,
    claims: *mut vmmresv_claim_info,
    n: usize,
    count: *mut usize,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let count = out!(count)?;
        if claims.is_null() && n != 0 {
            return Err(Error::new(Status::NullArgument));
        }
        let list = a.inner.claims_listing()?;
        count.set(list.len());
        let infos: Vec<vmmresv_claim_info> = list.iter().take(n).map(Into::into).collect();
        write_array!(claims, &infos)?;
        if n < list.len() {
            return Err(Error::new(Status::BufferTooSmall));
        }
        Ok(())
    })
}

/// What vmmresv_reconcile() would find and change now, without changing
/// anything (ABI 1.2): `*out` is filled as vmmresv_reconcile() would fill
/// it, with `reclaimed_claims` and `reclaimed_bytes` the claims of dead
/// holders (no process holds their record locks) that it would reclaim,
/// the `*_after_bytes` the totals it would leave, and the reservoir
/// queried now. Nothing is reclaimed, repaired, locked or written: the
/// ledger file is left byte for byte as it was. Read between two identical
/// readings of the totals: BUSY if they changed on every one of many tries.
#[no_mangle]
pub extern "C" fn vmmresv_reconcile_dry_run(
    admission_handle: *const vmmresv_admission,
    out: *mut vmmresv_reconcile_report,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let out = out!(out)?;
        out.set(report_of(&a.inner.reconcile_preview()?));
        Ok(())
    })
}

fn report_of(r: &crate::admission::Reconciliation) -> vmmresv_reconcile_report {
    let b = |p: u64| p.saturating_mul(pages::PAGESIZE);
    vmmresv_reconcile_report {
        reservoir_claimed_before_bytes: b(r.ledger.claimed_before[0]),
        reservoir_claimed_after_bytes: b(r.ledger.claimed_after[0]),
        transient_claimed_before_bytes: b(r.ledger.claimed_before[1]),
        transient_claimed_after_bytes: b(r.ledger.claimed_after[1]),
        live_claims: r.ledger.live_claims,
        reclaimed_claims: r.ledger.reclaimed_slots,
        reclaimed_bytes: b(r.ledger.reclaimed_pages),
        reservoir_free_bytes: r.reservoir.free,
        reservoir_size_bytes: r.reservoir.size(),
        claims_beyond_free_bytes: r.claims_beyond_free_bytes,
    }
}

/// A static, NUL-terminated name of the decision `decision`
/// (VMMRESV_DECISION_*, ABI 1.2): "use_reservoir", "no_reservoir",
/// "refuse", or "unknown". Never NULL; must not be freed.
#[no_mangle]
pub extern "C" fn vmmresv_decision_name(decision: u32) -> *const c_char {
    boundary(|| match Decision::from_u32(decision) {
        Some(Decision::UseReservoir) => c"use_reservoir".as_ptr(),
        Some(Decision::NoReservoir) => c"no_reservoir".as_ptr(),
        Some(Decision::Refuse) => c"refuse".as_ptr(),
        None => c"unknown".as_ptr(),
    })
}

/// A static, NUL-terminated name of the reason `reason`
/// (VMMRESV_REASON_*, ABI 1.2): "ok", "already_admitted",
/// "reservoir_full", "reservoir_not_wanted", "transient_limit",
/// "arc_guard", "memory_state", "held_elsewhere", or "unknown". Never
/// NULL; must not be freed.
#[no_mangle]
pub extern "C" fn vmmresv_reason_name(reason: u32) -> *const c_char {
    boundary(|| match Reason::from_u32(reason) {
        Some(Reason::Ok) => c"ok".as_ptr(),
        Some(Reason::AlreadyAdmitted) => c"already_admitted".as_ptr(),
        Some(Reason::ReservoirFull) => c"reservoir_full".as_ptr(),
        Some(Reason::ReservoirNotWanted) => c"reservoir_not_wanted".as_ptr(),
        Some(Reason::TransientLimit) => c"transient_limit".as_ptr(),
        Some(Reason::ArcGuard) => c"arc_guard".as_ptr(),
        Some(Reason::MemoryState) => c"memory_state".as_ptr(),
        Some(Reason::HeldElsewhere) => c"held_elsewhere".as_ptr(),
        None => c"unknown".as_ptr(),
    })
}
