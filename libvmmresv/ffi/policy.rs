//! C ABI: policy (overhead models, memory states, headroom, sizing
//! profiles, reclaim planner). Every function is pure: no I/O, no state, no
//! allocation visible to the caller; outputs are written only on success.

use core::ffi::c_char;

use super::{boundary, fail, ok, put};
use crate::policy::headroom::{self, HeadroomInputs, Profile, ProfileInputs};
use crate::policy::overhead::{
    self, OverheadKind, OverheadModel, OverheadParams, PoolShare, RunningVm, VmSpec,
};
use crate::policy::planner::{self, Consumer};
use crate::policy::states::{self, MemState, MinFreeScale, Thresholds};
use crate::status::{Error, Status};

/// Overhead model: the same overhead for every VM (EVE-OS, 600 MiB).
pub const VMMRESV_OVERHEAD_FIXED: u32 = 1;
/// Overhead model: a share of the VM's guest RAM (EVE-OS proposal, 30%).
pub const VMMRESV_OVERHEAD_PROPORTIONAL: u32 = 2;
/// Overhead model: a share of host memory (25%) spread over the VMs in
/// proportion to their guest RAM.
pub const VMMRESV_OVERHEAD_POOLED: u32 = 3;
/// Overhead model: SmartOS vmadm, 1280 MiB, or cap - guest but at least
/// 256 MiB. What SmartOS ships for bhyve.
pub const VMMRESV_OVERHEAD_VMADM: u32 = 4;
/// Overhead model: EVE pillar's estimate, 350 MiB + 2.5% of guest RAM +
/// 20 MiB + 3 MiB per vCPU + 1% of passthrough MMIO.
pub const VMMRESV_OVERHEAD_EVE_PILLAR: u32 = 5;

/// Memory state: free memory at or above minFree.
pub const VMMRESV_MEMSTATE_HIGH: u32 = 1;
/// Memory state: at or above 64% of minFree (VMware balloons).
pub const VMMRESV_MEMSTATE_SOFT: u32 = 2;
/// Memory state: at or above 32% of minFree (VMware swaps).
pub const VMMRESV_MEMSTATE_HARD: u32 = 3;
/// Memory state: at or above 16% of minFree (VMware swaps repeatedly).
pub const VMMRESV_MEMSTATE_LOW: u32 = 4;
/// Memory state: below 16% of minFree (VMware blocks allocations).
pub const VMMRESV_MEMSTATE_EXHAUSTED: u32 = 5;

/// Sizing profile: RFD 185, a percentage (75) of the kernel's reservoir limit.
pub const VMMRESV_PROFILE_RFD185: u32 = 1;
/// Sizing profile: Oxide omicron, 91% of (RAM - page_t - earmark), 2 MiB aligned.
pub const VMMRESV_PROFILE_OMICRON: u32 = 2;
/// Sizing profile: Triton CNAPI, 85% of RAM - the VMs' caps.
pub const VMMRESV_PROFILE_CNAPI: u32 = 3;

static_assertions::const_assert_eq!(VMMRESV_OVERHEAD_FIXED, OverheadKind::Fixed.to_u32());
static_assertions::const_assert_eq!(
    VMMRESV_OVERHEAD_PROPORTIONAL,
    OverheadKind::Proportional.to_u32()
);
static_assertions::const_assert_eq!(VMMRESV_OVERHEAD_POOLED, OverheadKind::Pooled.to_u32());
static_assertions::const_assert_eq!(VMMRESV_OVERHEAD_VMADM, OverheadKind::Vmadm.to_u32());
static_assertions::const_assert_eq!(
    VMMRESV_OVERHEAD_EVE_PILLAR,
    OverheadKind::EvePillar.to_u32()
);
static_assertions::const_assert_eq!(VMMRESV_MEMSTATE_HIGH, MemState::High.to_u32());
static_assertions::const_assert_eq!(VMMRESV_MEMSTATE_SOFT, MemState::Soft.to_u32());
static_assertions::const_assert_eq!(VMMRESV_MEMSTATE_HARD, MemState::Hard.to_u32());
static_assertions::const_assert_eq!(VMMRESV_MEMSTATE_LOW, MemState::Low.to_u32());
static_assertions::const_assert_eq!(VMMRESV_MEMSTATE_EXHAUSTED, MemState::Exhausted.to_u32());
static_assertions::const_assert_eq!(VMMRESV_PROFILE_RFD185, Profile::Rfd185.to_u32());
static_assertions::const_assert_eq!(VMMRESV_PROFILE_OMICRON, Profile::Omicron.to_u32());
static_assertions::const_assert_eq!(VMMRESV_PROFILE_CNAPI, Profile::Cnapi.to_u32());

/// The numbers of every overhead model. Fill it with
/// vmmresv_overhead_params_default() and change what differs. Fields
/// ending in `_bp` are basis points (10000 = 100%) and must be at most
/// 10000, whatever the model.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_overhead_params {
    /// FIXED: bytes per VM (600 MiB).
    pub fixed_bytes: u64,
    /// VMADM: overhead without a cap (BHYVE_MEM_OVERHEAD, 1280 MiB).
    pub vmadm_bytes: u64,
    /// VMADM: the least overhead a cap may leave (BHYVE_MIN_MEM_OVERHEAD,
    /// 256 MiB).
    pub vmadm_min_bytes: u64,
    /// EVE_PILLAR: base (350 MiB).
    pub eve_base_bytes: u64,
    /// EVE_PILLAR: the QEMU binaries (20 MiB).
    pub eve_extra_bytes: u64,
    /// EVE_PILLAR: per vCPU (3 MiB).
    pub eve_per_vcpu_bytes: u64,
    /// PROPORTIONAL: basis points of guest RAM (3000 = 30%).
    pub proportional_bp: u32,
    /// POOLED: basis points of host memory in the pool (2500 = 25%).
    pub pool_bp: u32,
    /// EVE_PILLAR: basis points of guest RAM for page tables (250 = 2.5%).
    pub eve_ram_bp: u32,
    /// EVE_PILLAR: basis points of passthrough MMIO (100 = 1%).
    pub eve_mmio_bp: u32,
}

static_assertions::assert_eq_size!(vmmresv_overhead_params, [u64; 8]);

impl From<OverheadParams> for vmmresv_overhead_params {
    fn from(p: OverheadParams) -> Self {
        vmmresv_overhead_params {
            fixed_bytes: p.fixed_bytes,
            vmadm_bytes: p.vmadm_bytes,
            vmadm_min_bytes: p.vmadm_min_bytes,
            eve_base_bytes: p.eve_base_bytes,
            eve_extra_bytes: p.eve_extra_bytes,
            eve_per_vcpu_bytes: p.eve_per_vcpu_bytes,
            proportional_bp: p.proportional_bp,
            pool_bp: p.pool_bp,
            eve_ram_bp: p.eve_ram_bp,
            eve_mmio_bp: p.eve_mmio_bp,
        }
    }
}

impl From<vmmresv_overhead_params> for OverheadParams {
    fn from(p: vmmresv_overhead_params) -> Self {
        OverheadParams {
            fixed_bytes: p.fixed_bytes,
            proportional_bp: p.proportional_bp,
            pool_bp: p.pool_bp,
            vmadm_bytes: p.vmadm_bytes,
            vmadm_min_bytes: p.vmadm_min_bytes,
            eve_base_bytes: p.eve_base_bytes,
            eve_ram_bp: p.eve_ram_bp,
            eve_extra_bytes: p.eve_extra_bytes,
            eve_per_vcpu_bytes: p.eve_per_vcpu_bytes,
            eve_mmio_bp: p.eve_mmio_bp,
        }
    }
}

/// One VM as the overhead models see it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_vm {
    /// Guest RAM.
    pub guest_bytes: u64,
    /// Total MMIO BAR size of passthrough devices (EVE_PILLAR).
    pub mmio_bytes: u64,
    /// Cap on guest + overhead (vmadm max_physical_memory); 0 = none.
    /// Only VMADM reads it; it must not be below `guest_bytes`.
    pub cap_bytes: u64,
    /// Virtual CPUs (EVE_PILLAR).
    pub vcpus: u32,
    /// Must be 0 (room for later versions).
    pub reserved: u32,
}

static_assertions::assert_eq_size!(vmmresv_vm, [u64; 4]);

impl vmmresv_vm {
    pub(super) fn spec(&self) -> Result<VmSpec, Status> {
        if self.reserved != 0 {
            return Err(Status::InvalidArgument);
        }
        Ok(VmSpec {
            guest_bytes: self.guest_bytes,
            vcpus: self.vcpus,
            mmio_bytes: self.mmio_bytes,
            cap_bytes: self.cap_bytes,
        })
    }
}

/// A VM already running, for vmmresv_overhead_recalculate().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_running_vm {
    /// The VM.
    pub vm: vmmresv_vm,
    /// Its current overhead limit.
    pub limit_bytes: u64,
    /// The overhead memory it uses now.
    pub usage_bytes: u64,
}

static_assertions::assert_eq_size!(vmmresv_running_vm, [u64; 6]);

/// What vmmresv_overhead_recalculate() found besides the limits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_recalculation {
    /// The overhead of the VM about to start (0 if none was given).
    pub new_vm_overhead_bytes: u64,
    /// How many running VMs use more than the model now gives them.
    pub stuck_count: u64,
    /// By how much, in total.
    pub stuck_bytes: u64,
    /// VMMRESV_OVERHEAD_*: the model the limits come from.
    pub overhead_model: u32,
    /// Always 0.
    pub reserved: u32,
}

/// The free memory each memory state needs, in bytes (VMware's minFree
/// sliding scale: 6% of the first 4 GiB, 4% up to 12 GiB, 2% up to
/// 28 GiB, 1% of the rest).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_thresholds {
    /// minFree.
    pub min_free_bytes: u64,
    /// HIGH: 100% of minFree.
    pub high_bytes: u64,
    /// SOFT: 64%, rounded up.
    pub soft_bytes: u64,
    /// HARD: 32%, rounded up.
    pub hard_bytes: u64,
    /// LOW: 16%, rounded up; below it the state is EXHAUSTED.
    pub low_bytes: u64,
}

impl From<Thresholds> for vmmresv_thresholds {
    fn from(t: Thresholds) -> Self {
        vmmresv_thresholds {
            min_free_bytes: t.min_free_bytes,
            high_bytes: t.high_bytes,
            soft_bytes: t.soft_bytes,
            hard_bytes: t.hard_bytes,
            low_bytes: t.low_bytes,
        }
    }
}

/// Memory that is not the reservoir's to take, in bytes (RFD 185's other
/// consumers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_headroom_inputs {
    /// Physical memory.
    pub physmem_bytes: u64,
    /// pages_pp_maximum in bytes; the kernel withholds 120% of it
    /// (vmmresv_unlockable_from_limit() recovers it from the limit).
    pub unlockable_bytes: u64,
    /// The ZFS ARC's floor (arc_c_min).
    pub arc_floor_bytes: u64,
    /// Memory drivers preallocate for DMA.
    pub driver_dma_bytes: u64,
    /// Σ memory caps of zones that are not VMs.
    pub zone_caps_bytes: u64,
    /// Memory kept for the operating system.
    pub os_reserve_bytes: u64,
    /// Memory kept free so VMs can grow at once.
    pub overcommit_buffer_bytes: u64,
}

impl From<vmmresv_headroom_inputs> for HeadroomInputs {
    fn from(i: vmmresv_headroom_inputs) -> Self {
        HeadroomInputs {
            physmem_bytes: i.physmem_bytes,
            unlockable_bytes: i.unlockable_bytes,
            arc_floor_bytes: i.arc_floor_bytes,
            driver_dma_bytes: i.driver_dma_bytes,
            zone_caps_bytes: i.zone_caps_bytes,
            os_reserve_bytes: i.os_reserve_bytes,
            overcommit_buffer_bytes: i.overcommit_buffer_bytes,
        }
    }
}

/// The safe reservoir maximum and how it was reached, in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_headroom_result {
    /// 120% of unlockable_bytes, rounded up.
    pub unlockable_120_bytes: u64,
    /// Σ of every deduction (saturating at UINT64_MAX).
    pub deductions_bytes: u64,
    /// physmem - deductions, rounded down to VMMRESV_PAGESIZE; 0 if the
    /// deductions exceed physmem.
    pub safe_max_bytes: u64,
    /// By how much the deductions exceed physmem, else 0.
    pub short_bytes: u64,
}

/// What the sizing profiles read. Fill it with
/// vmmresv_profile_inputs_default() (which sets the percentages) and set
/// the sizes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_profile_inputs {
    /// Physical memory.
    pub physmem_bytes: u64,
    /// The reservoir limit the kernel reports (vmmresv_query.limit_bytes).
    pub kernel_limit_bytes: u64,
    /// OMICRON: the control-plane earmark (0 by default; Oxide Gimlets
    /// ship 45056 MiB).
    pub omicron_earmark_bytes: u64,
    /// CNAPI: Σ max_physical_memory of the VMs on the host.
    pub vm_caps_bytes: u64,
    /// RFD185: percent of the kernel limit (75), at most 100.
    pub rfd185_pct: u32,
    /// OMICRON: percent of the eligible memory (91), at most 100.
    pub omicron_pct: u32,
    /// CNAPI: percent of physical memory (85), at most 100.
    pub cnapi_pct: u32,
    /// Must be 0 (room for later versions).
    pub reserved: u32,
}

static_assertions::assert_eq_size!(vmmresv_profile_inputs, [u64; 6]);

/// A consumer memory can be reclaimed from, for vmmresv_plan_reclaim().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_consumer {
    /// What it holds now.
    pub size_bytes: u64,
    /// What it must keep.
    pub floor_bytes: u64,
    /// Below 0: greedy, has unused memory (more negative = greedier);
    /// above 0: needy. Greedier consumers give first.
    pub score: i32,
    /// Must be 0 (room for later versions).
    pub reserved: u32,
}

static_assertions::assert_eq_size!(vmmresv_consumer, [u64; 3]);

/// Read one input struct from C (NULL: NullArgument).
fn read_in<T: Copy>(p: *const T) -> Result<T, Status> {
    if p.is_null() {
        return Err(Status::NullArgument);
    }
    // SAFETY: non-null; the C contract is that `p` points to a readable,
    // initialized T. read_unaligned: no alignment is assumed of the caller.
    Ok(unsafe { p.read_unaligned() })
}

/// An array of `n` T from C, copied (so no Rust reference ever aliases
/// caller memory the outputs may share). NULL is accepted only for n == 0.
fn read_array<T: Copy>(p: *const T, n: usize) -> Result<Vec<T>, Status> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Status::NullArgument);
    }
    check_array_len::<T>(n)?;
    Ok((0..n)
        // SAFETY: non-null, and the caller says `p` holds `n` readable T;
        // i < n, and n T fit in isize (checked), so the offset is in bounds.
        .map(|i| unsafe { p.add(i).read_unaligned() })
        .collect())
}

/// Write `vals` to the caller's array of `vals.len()` T (NULL only if empty).
fn write_array<T: Copy>(p: *mut T, vals: &[T]) {
    for (i, v) in vals.iter().enumerate() {
        // SAFETY: checked non-null by the caller when vals is not empty;
        // the caller says `p` holds vals.len() writable T, whose byte size
        // fits isize (checked with check_array_len).
        unsafe { p.add(i).write_unaligned(*v) }
    }
}

/// An array of n T must fit in the address space (pointer offsets are
/// bounded by isize::MAX bytes).
fn check_array_len<T>(n: usize) -> Result<(), Status> {
    match n.checked_mul(core::mem::size_of::<T>()) {
        Some(b) if b <= isize::MAX.unsigned_abs() => Ok(()),
        _ => Err(Status::InvalidArgument),
    }
}

fn overhead_kind(kind: u32) -> Result<OverheadKind, Status> {
    OverheadKind::from_u32(kind).ok_or(Status::InvalidArgument)
}

fn model(kind: u32, params: *const vmmresv_overhead_params) -> Result<OverheadModel, Status> {
    let kind = overhead_kind(kind)?;
    let params = read_in(params)?;
    Ok(OverheadModel {
        kind,
        params: params.into(),
    })
}

/// Fill `*out` with the documents' numbers: fixed 600 MiB, proportional
/// 30%, pooled 25%, vmadm 1280 MiB (256 MiB minimum), EVE pillar 350 MiB +
/// 2.5% + 20 MiB + 3 MiB per vCPU + 1% of MMIO.
#[no_mangle]
pub extern "C" fn vmmresv_overhead_params_default(out: *mut vmmresv_overhead_params) -> Status {
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(out, OverheadParams::default().into());
        ok()
    })
}

/// The overhead of `vm` under the model `kind` (a VMMRESV_OVERHEAD_*
/// value) with `params`. `host_bytes` and `total_guest_bytes` (the guest
/// RAM of every VM sharing the pool, this one included) are read by the
/// POOLED model only. INVALID_ARGUMENT for an unknown kind, a `_bp` field
/// above 10000, a nonzero `reserved`, a pool total below the VM's guest
/// RAM, or a vmadm cap below it; OVERFLOW if the overhead does not fit in
/// 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_overhead(
    kind: u32,
    params: *const vmmresv_overhead_params,
    vm: *const vmmresv_vm,
    host_bytes: u64,
    total_guest_bytes: u64,
    out: *mut u64,
) -> Status {
    boundary(|| {
        let args = model(kind, params).and_then(|m| Ok((m, read_in(vm)?.spec()?)));
        let (m, spec) = match args {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let pool = PoolShare {
            host_bytes,
            total_guest_bytes,
        };
        match m.overhead(&spec, &pool) {
            Ok(v) => {
                put(out, v);
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

/// Recompute the overhead limit of the `n` VMs of `running` under the model
/// `kind`, with `new_vm` about to start (NULL: none); under POOLED the pool
/// (a share of `host_bytes`) is spread over all of them. Writes each VM's
/// new limit to `limits[i]` (`n` entries). A limit is never set below the
/// VM's `usage_bytes`: such a VM is "stuck", its limit is its usage, and
/// `excess[i]` (`n` entries; may be NULL) receives usage - the model's
/// overhead, 0 for a VM that is not stuck. `*out` receives the new VM's
/// overhead and the stuck totals, so the caller can refuse the new VM
/// rather than kill a running one. `running`, `limits` and `excess` may be
/// NULL when `n` is 0. Nothing is written on error. Errors as
/// vmmresv_overhead(), and OVERFLOW if the guests' RAM adds up past
/// 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_overhead_recalculate(
    kind: u32,
    params: *const vmmresv_overhead_params,
    host_bytes: u64,
    running: *const vmmresv_running_vm,
    n: usize,
    new_vm: *const vmmresv_vm,
    limits: *mut u64,
    excess: *mut u64,
    out: *mut vmmresv_recalculation,
) -> Status {
    boundary(|| {
        let m = match model(kind, params) {
            Ok(m) => m,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() || (n > 0 && limits.is_null()) {
            return fail(Error::new(Status::NullArgument));
        }
        let vms = match read_array(running, n).and_then(|v| {
            v.iter()
                .map(|r| {
                    Ok(RunningVm {
                        spec: r.vm.spec()?,
                        limit_bytes: r.limit_bytes,
                        usage_bytes: r.usage_bytes,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()
        }) {
            Ok(v) => v,
            Err(s) => return fail(Error::new(s)),
        };
        let new_spec = if new_vm.is_null() {
            None
        } else {
            match read_in(new_vm).and_then(|v| v.spec()) {
                Ok(s) => Some(s),
                Err(s) => return fail(Error::new(s)),
            }
        };
        let r = match overhead::recalculate(&m, host_bytes, &vms, new_spec.as_ref()) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        write_array(limits, &r.limits);
        if !excess.is_null() {
            let mut ex = vec![0u64; n];
            for s in &r.stuck {
                if let Some(e) = ex.get_mut(s.index) {
                    *e = s.excess_bytes;
                }
            }
            write_array(excess, &ex);
        }
        put(
            out,
            vmmresv_recalculation {
                new_vm_overhead_bytes: r.new_vm_overhead,
                stuck_count: u64::try_from(r.stuck.len()).unwrap_or(u64::MAX),
                stuck_bytes: r.stuck_bytes,
                overhead_model: r.model.to_u32(),
                reserved: 0,
            },
        );
        ok()
    })
}

/// A static, NUL-terminated name of the overhead model `kind`: "fixed",
/// "proportional", "pooled", "smartos-vmadm", "eve-pillar", or "unknown".
/// Never NULL; must not be freed.
#[no_mangle]
pub extern "C" fn vmmresv_overhead_model_name(kind: u32) -> *const c_char {
    boundary(|| match OverheadKind::from_u32(kind) {
        Some(k) => k.c_name().as_ptr(),
        None => c"unknown".as_ptr(),
    })
}

/// The minFree and state thresholds of a host with `physmem_bytes` of
/// memory (VMware's sliding scale: a 100 GiB host keeps 1.6 GiB free).
#[no_mangle]
pub extern "C" fn vmmresv_memory_thresholds(
    physmem_bytes: u64,
    out: *mut vmmresv_thresholds,
) -> Status {
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(
            out,
            states::thresholds(&MinFreeScale::default(), physmem_bytes).into(),
        );
        ok()
    })
}

/// The memory state (a VMMRESV_MEMSTATE_* value) of a host with
/// `physmem_bytes` of memory of which `free_bytes` are free: the best state
/// whose threshold the free memory meets.
#[no_mangle]
pub extern "C" fn vmmresv_memory_state(
    physmem_bytes: u64,
    free_bytes: u64,
    state: *mut u32,
) -> Status {
    boundary(|| {
        if state.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let t = states::thresholds(&MinFreeScale::default(), physmem_bytes);
        put(state, states::state(&t, free_bytes).to_u32());
        ok()
    })
}

/// A static, NUL-terminated name of the memory state `state`: "high",
/// "soft", "hard", "low", "exhausted", or "unknown". Never NULL; must not
/// be freed.
#[no_mangle]
pub extern "C" fn vmmresv_memory_state_name(state: u32) -> *const c_char {
    boundary(|| match MemState::from_u32(state) {
        Some(s) => s.c_name().as_ptr(),
        None => c"unknown".as_ptr(),
    })
}

/// The safe reservoir maximum: physical memory minus 120% of the
/// unlockable memory and every other consumer in `inputs`, rounded down to
/// the page, with the deductions that explain it.
#[no_mangle]
pub extern "C" fn vmmresv_headroom(
    inputs: *const vmmresv_headroom_inputs,
    out: *mut vmmresv_headroom_result,
) -> Status {
    boundary(|| {
        let i = match read_in(inputs) {
            Ok(i) => i,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let h = headroom::headroom(&i.into());
        put(
            out,
            vmmresv_headroom_result {
                unlockable_120_bytes: h.unlockable_120_bytes,
                deductions_bytes: h.deductions_bytes,
                safe_max_bytes: h.safe_max_bytes,
                short_bytes: h.short_bytes,
            },
        );
        ok()
    })
}

/// The unlockable memory (pages_pp_maximum, in bytes) behind the kernel's
/// reservoir limit, which is physmem - 1.2 x pages_pp_maximum: exact for
/// the kernel's own limit; 0 if `limit_bytes` is not below `physmem_bytes`.
#[no_mangle]
pub extern "C" fn vmmresv_unlockable_from_limit(
    physmem_bytes: u64,
    limit_bytes: u64,
    out: *mut u64,
) -> Status {
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(
            out,
            headroom::unlockable_from_limit(physmem_bytes, limit_bytes),
        );
        ok()
    })
}

/// Fill `*out` with the profiles' percentages (RFD 185 75, omicron 91,
/// CNAPI 85) and every size 0.
#[no_mangle]
pub extern "C" fn vmmresv_profile_inputs_default(out: *mut vmmresv_profile_inputs) -> Status {
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let d = ProfileInputs::default();
        put(
            out,
            vmmresv_profile_inputs {
                physmem_bytes: d.physmem_bytes,
                kernel_limit_bytes: d.kernel_limit_bytes,
                omicron_earmark_bytes: d.omicron_earmark_bytes,
                vm_caps_bytes: d.vm_caps_bytes,
                rfd185_pct: d.rfd185_pct,
                omicron_pct: d.omicron_pct,
                cnapi_pct: d.cnapi_pct,
                reserved: 0,
            },
        );
        ok()
    })
}

/// The reservoir size the sizing profile `profile` (a VMMRESV_PROFILE_*
/// value) gives: RFD185, rfd185_pct of the kernel limit rounded down to the
/// page (with 75, what vmmresv_default_target_for() gives with chunk 0);
/// OMICRON, omicron_pct of (physmem - 120 bytes per 4 KiB page - earmark),
/// rounded down to 2 MiB; CNAPI, cnapi_pct of physmem - vm_caps_bytes.
/// Each is 0 rather than negative. INVALID_ARGUMENT for an unknown
/// profile, a percentage above 100 or a nonzero `reserved`.
#[no_mangle]
pub extern "C" fn vmmresv_sizing(
    profile: u32,
    inputs: *const vmmresv_profile_inputs,
    out: *mut u64,
) -> Status {
    boundary(|| {
        let p = match Profile::from_u32(profile).ok_or(Status::InvalidArgument) {
            Ok(p) => p,
            Err(s) => return fail(Error::new(s)),
        };
        let i = match read_in(inputs) {
            Ok(i) if i.reserved != 0 => return fail(Error::new(Status::InvalidArgument)),
            Ok(i) => i,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let pi = ProfileInputs {
            physmem_bytes: i.physmem_bytes,
            kernel_limit_bytes: i.kernel_limit_bytes,
            rfd185_pct: i.rfd185_pct,
            omicron_pct: i.omicron_pct,
            omicron_earmark_bytes: i.omicron_earmark_bytes,
            cnapi_pct: i.cnapi_pct,
            vm_caps_bytes: i.vm_caps_bytes,
        };
        match headroom::sizing(p, &pi) {
            Ok(v) => {
                put(out, v);
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

/// A static, NUL-terminated name of the sizing profile `profile`:
/// "rfd185", "omicron", "triton-cnapi", or "unknown". Never NULL; must not
/// be freed.
#[no_mangle]
pub extern "C" fn vmmresv_profile_name(profile: u32) -> *const c_char {
    boundary(|| match Profile::from_u32(profile) {
        Some(p) => p.c_name().as_ptr(),
        None => c"unknown".as_ptr(),
    })
}

/// How much each of the `n` `consumers` gives to meet `demand_bytes`:
/// greediest score first, each score's consumers drained completely before
/// the next score is asked; within the score that covers the rest, each
/// gives in proportion to size - floor (rounded so the bytes add up
/// exactly); no one below its floor. Writes `gives[i]` (`n` entries) and
/// `*total_bytes` = min(demand, Σ (size - floor)); the demand not met is
/// demand - total. `consumers` and `gives` may be NULL when `n` is 0.
#[no_mangle]
pub extern "C" fn vmmresv_plan_reclaim(
    consumers: *const vmmresv_consumer,
    n: usize,
    demand_bytes: u64,
    gives: *mut u64,
    total_bytes: *mut u64,
) -> Status {
    boundary(|| {
        if total_bytes.is_null() || (n > 0 && gives.is_null()) {
            return fail(Error::new(Status::NullArgument));
        }
        let cs = read_array(consumers, n).and_then(|v| {
            v.iter()
                .map(|c| {
                    if c.reserved != 0 {
                        return Err(Status::InvalidArgument);
                    }
                    Ok(Consumer {
                        size_bytes: c.size_bytes,
                        floor_bytes: c.floor_bytes,
                        score: c.score,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()
        });
        let cs = match cs {
            Ok(c) => c,
            Err(s) => return fail(Error::new(s)),
        };
        let p = planner::plan(&cs, demand_bytes);
        write_array(gives, &p.gives);
        put(total_bytes, p.total_bytes);
        ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::{null, null_mut};

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn params() -> vmmresv_overhead_params {
        let mut p = vmmresv_overhead_params::default();
        assert_eq!(vmmresv_overhead_params_default(&mut p), Status::Ok);
        p
    }

    fn name(p: *const c_char) -> &'static str {
        // SAFETY: the library returns static NUL-terminated strings.
        unsafe { core::ffi::CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn overhead_through_the_c_abi() {
        let p = params();
        assert_eq!(p.vmadm_bytes, 1280 * MIB);
        let vm = vmmresv_vm {
            guest_bytes: 4 * GIB,
            vcpus: 2,
            ..vmmresv_vm::default()
        };
        let mut out = 0u64;
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_EVE_PILLAR, &p, &vm, 0, 0, &mut out),
            Status::Ok
        );
        assert_eq!(out, 376 * MIB + 107_374_183);
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_VMADM, &p, &vm, 0, 0, &mut out),
            Status::Ok
        );
        assert_eq!(out, 1280 * MIB);
        // NULLs and bad values.
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_VMADM, null(), &vm, 0, 0, &mut out),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_VMADM, &p, null(), 0, 0, &mut out),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_VMADM, &p, &vm, 0, 0, null_mut()),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_overhead(0, &p, &vm, 0, 0, &mut out),
            Status::InvalidArgument
        );
        assert_eq!(
            vmmresv_overhead(6, &p, &vm, 0, 0, &mut out),
            Status::InvalidArgument
        );
        let odd = vmmresv_vm { reserved: 1, ..vm };
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_FIXED, &p, &odd, 0, 0, &mut out),
            Status::InvalidArgument
        );
        let bad = vmmresv_overhead_params {
            pool_bp: 10_001,
            ..p
        };
        assert_eq!(
            vmmresv_overhead(VMMRESV_OVERHEAD_FIXED, &bad, &vm, 0, 0, &mut out),
            Status::InvalidArgument
        );
        assert_eq!(
            vmmresv_overhead_params_default(null_mut()),
            Status::NullArgument
        );
        assert_eq!(out, 1280 * MIB, "untouched on error");
    }

    #[test]
    fn recalculate_through_the_c_abi() {
        let p = vmmresv_overhead_params {
            pool_bp: 1250,
            ..params()
        };
        let vm = vmmresv_vm {
            guest_bytes: 4 * GIB,
            vcpus: 2,
            ..vmmresv_vm::default()
        };
        let running = [
            vmmresv_running_vm {
                vm,
                limit_bytes: 600 * MIB,
                usage_bytes: 500 * MIB,
            },
            vmmresv_running_vm {
                vm,
                limit_bytes: 600 * MIB,
                usage_bytes: 100 * MIB,
            },
        ];
        let (mut limits, mut excess) = ([0u64; 2], [u64::MAX; 2]);
        let mut r = vmmresv_recalculation::default();
        // A 9600 MiB host at 12.5%: a 1200 MiB pool over three 4 GiB VMs.
        assert_eq!(
            vmmresv_overhead_recalculate(
                VMMRESV_OVERHEAD_POOLED,
                &p,
                9600 * MIB,
                running.as_ptr(),
                2,
                &vm,
                limits.as_mut_ptr(),
                excess.as_mut_ptr(),
                &mut r
            ),
            Status::Ok
        );
        assert_eq!(limits, [500 * MIB, 400 * MIB]);
        assert_eq!(excess, [100 * MIB, 0]);
        assert_eq!(
            r,
            vmmresv_recalculation {
                new_vm_overhead_bytes: 400 * MIB,
                stuck_count: 1,
                stuck_bytes: 100 * MIB,
                overhead_model: VMMRESV_OVERHEAD_POOLED,
                reserved: 0,
            }
        );
        // No running VMs, no arrays.
        assert_eq!(
            vmmresv_overhead_recalculate(
                VMMRESV_OVERHEAD_FIXED,
                &p,
                0,
                null(),
                0,
                null(),
                null_mut(),
                null_mut(),
                &mut r
            ),
            Status::Ok
        );
        assert_eq!(
            r,
            vmmresv_recalculation {
                overhead_model: VMMRESV_OVERHEAD_FIXED,
                ..vmmresv_recalculation::default()
            }
        );
        // NULL arrays with n > 0, a bad kind, a NULL result.
        let rec = |kind, running: *const vmmresv_running_vm, limits: *mut u64, out| {
            vmmresv_overhead_recalculate(kind, &p, 0, running, 2, null(), limits, null_mut(), out)
        };
        let mut l = [0u64; 2];
        assert_eq!(rec(3, null(), l.as_mut_ptr(), &mut r), Status::NullArgument);
        assert_eq!(
            rec(3, running.as_ptr(), null_mut(), &mut r),
            Status::NullArgument
        );
        assert_eq!(
            rec(3, running.as_ptr(), l.as_mut_ptr(), null_mut()),
            Status::NullArgument
        );
        assert_eq!(
            rec(99, running.as_ptr(), l.as_mut_ptr(), &mut r),
            Status::InvalidArgument
        );
        assert_eq!(l, [0, 0], "nothing written on error");
    }

    #[test]
    fn names_match_the_rust_api() {
        for k in OverheadKind::ALL {
            assert_eq!(name(vmmresv_overhead_model_name(k.to_u32())), k.name());
        }
        for s in MemState::ALL {
            assert_eq!(name(vmmresv_memory_state_name(s.to_u32())), s.name());
        }
        for p in Profile::ALL {
            assert_eq!(name(vmmresv_profile_name(p.to_u32())), p.name());
        }
        assert_eq!(name(vmmresv_overhead_model_name(0)), "unknown");
        assert_eq!(name(vmmresv_memory_state_name(6)), "unknown");
        assert_eq!(name(vmmresv_profile_name(u32::MAX)), "unknown");
    }

    #[test]
    fn memory_states_through_the_c_abi() {
        let mut t = vmmresv_thresholds::default();
        assert_eq!(vmmresv_memory_thresholds(100 * GIB, &mut t), Status::Ok);
        assert_eq!(t.min_free_bytes, 16 * GIB / 10);
        let mut s = 0u32;
        assert_eq!(
            vmmresv_memory_state(100 * GIB, t.soft_bytes, &mut s),
            Status::Ok
        );
        assert_eq!(s, VMMRESV_MEMSTATE_SOFT);
        assert_eq!(vmmresv_memory_state(100 * GIB, 0, &mut s), Status::Ok);
        assert_eq!(s, VMMRESV_MEMSTATE_EXHAUSTED);
        assert_eq!(
            vmmresv_memory_state(100 * GIB, 0, null_mut()),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_memory_thresholds(0, null_mut()),
            Status::NullArgument
        );
    }

    #[test]
    fn headroom_and_sizing_through_the_c_abi() {
        let i = vmmresv_headroom_inputs {
            physmem_bytes: 256 * GIB,
            unlockable_bytes: 10 * GIB,
            arc_floor_bytes: 4 * GIB,
            ..vmmresv_headroom_inputs::default()
        };
        let mut h = vmmresv_headroom_result::default();
        assert_eq!(vmmresv_headroom(&i, &mut h), Status::Ok);
        assert_eq!(h.safe_max_bytes, 240 * GIB);
        assert_eq!(h.deductions_bytes, 16 * GIB);
        assert_eq!(vmmresv_headroom(null(), &mut h), Status::NullArgument);
        assert_eq!(vmmresv_headroom(&i, null_mut()), Status::NullArgument);
        let mut u = 0u64;
        assert_eq!(vmmresv_unlockable_from_limit(100, 88, &mut u), Status::Ok);
        assert_eq!(u, 10);
        assert_eq!(
            vmmresv_unlockable_from_limit(1, 1, null_mut()),
            Status::NullArgument
        );

        let mut pi = vmmresv_profile_inputs::default();
        assert_eq!(vmmresv_profile_inputs_default(&mut pi), Status::Ok);
        assert_eq!((pi.rfd185_pct, pi.omicron_pct, pi.cnapi_pct), (75, 91, 85));
        pi.physmem_bytes = 1 << 40;
        pi.omicron_earmark_bytes = 45056 * MIB;
        pi.kernel_limit_bytes = 100 * GIB;
        let mut out = 0u64;
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_OMICRON, &pi, &mut out),
            Status::Ok
        );
        assert_eq!(out, 864 * GIB + 512 * MIB);
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_RFD185, &pi, &mut out),
            Status::Ok
        );
        assert_eq!(out, 75 * GIB);
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_CNAPI, &pi, &mut out),
            Status::Ok
        );
        assert_eq!(out, (1u64 << 40) / 100 * 85 + (1u64 << 40) % 100 * 85 / 100);
        assert_eq!(vmmresv_sizing(0, &pi, &mut out), Status::InvalidArgument);
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_CNAPI, null(), &mut out),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_CNAPI, &pi, null_mut()),
            Status::NullArgument
        );
        let bad = vmmresv_profile_inputs {
            cnapi_pct: 150,
            ..pi
        };
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_CNAPI, &bad, &mut out),
            Status::InvalidArgument
        );
        let res = vmmresv_profile_inputs { reserved: 7, ..pi };
        assert_eq!(
            vmmresv_sizing(VMMRESV_PROFILE_CNAPI, &res, &mut out),
            Status::InvalidArgument
        );
        assert_eq!(
            vmmresv_profile_inputs_default(null_mut()),
            Status::NullArgument
        );
    }

    #[test]
    fn plan_reclaim_through_the_c_abi() {
        let cs = [
            vmmresv_consumer {
                size_bytes: 8 * GIB,
                floor_bytes: 4 * GIB,
                score: 5,
                reserved: 0,
            },
            vmmresv_consumer {
                size_bytes: 6 * GIB,
                floor_bytes: 2 * GIB,
                score: -10,
                reserved: 0,
            },
        ];
        let mut gives = [u64::MAX; 2];
        let mut total = 0u64;
        assert_eq!(
            vmmresv_plan_reclaim(cs.as_ptr(), 2, 6 * GIB, gives.as_mut_ptr(), &mut total),
            Status::Ok
        );
        assert_eq!(gives, [2 * GIB, 4 * GIB]);
        assert_eq!(total, 6 * GIB);
        assert_eq!(
            vmmresv_plan_reclaim(null(), 0, 5, null_mut(), &mut total),
            Status::Ok
        );
        assert_eq!(total, 0);
        assert_eq!(
            vmmresv_plan_reclaim(null(), 2, 5, gives.as_mut_ptr(), &mut total),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_plan_reclaim(cs.as_ptr(), 2, 5, null_mut(), &mut total),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_plan_reclaim(cs.as_ptr(), 2, 5, gives.as_mut_ptr(), null_mut()),
            Status::NullArgument
        );
        let odd = [vmmresv_consumer {
            reserved: 1,
            ..cs[0]
        }];
        assert_eq!(
            vmmresv_plan_reclaim(odd.as_ptr(), 1, 5, gives.as_mut_ptr(), &mut total),
            Status::InvalidArgument
        );
        // An array too big for the address space is refused, not walked.
        assert_eq!(
            vmmresv_plan_reclaim(cs.as_ptr(), usize::MAX, 5, gives.as_mut_ptr(), &mut total),
            Status::InvalidArgument
        );
    }
}
