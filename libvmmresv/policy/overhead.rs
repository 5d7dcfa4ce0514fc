//! VM memory overhead: what a VM costs beyond its guest RAM (the VMM's
//! heap, page tables, device buffers, binaries).
//!
//! Nobody can predict it exactly (EVE-OS: "we do not have a reliable way to
//! predict how much memory QEMU will require"), so each peer ships a model
//! (sources and quotes: docs/sources.md, "VM overhead models"):
//!
//! | kind | overhead | source |
//! |---|---|---|
//! | [`Fixed`](OverheadKind::Fixed) | 600 MiB for every VM | EVE-OS proposal "Proportional QEMU memory overhead allocation": "found experimentally" |
//! | [`Proportional`](OverheadKind::Proportional) | 30% of guest RAM | the same EVE-OS proposal |
//! | [`Pooled`](OverheadKind::Pooled) | 25% of host memory spread over the VMs by guest RAM | Roman Shaposhnik's alternative, in the same proposal |
//! | [`Vmadm`](OverheadKind::Vmadm) | 1280 MiB, or cap − guest but at least 256 MiB | smartos-live `proptable.js` `BHYVE_MEM_OVERHEAD`, `BHYVE_MIN_MEM_OVERHEAD` |
//! | [`EvePillar`](OverheadKind::EvePillar) | 350 MiB + 2.5% RAM + 20 MiB + 3 MiB/vCPU + 1% MMIO | lf-edge/eve `pkg/pillar/hypervisor/vmm_overhead.go` |
//!
//! The pooled model changes every VM's limit when one starts, and a limit
//! cannot go below what the VM already uses (cgroups: EBUSY; the EVE-OS
//! proposal's `qemu_a` with 500 MiB in use and a new limit of 400 MiB).
//! [`recalculate`] therefore never lowers a limit below usage and lists
//! such VMs as [`Stuck`], so the caller can refuse the new VM rather than
//! kill an old one.

use super::{bp_ceil, bp_floor, sat_u64, BP_ONE};
use crate::status::{Error, Status};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

fn invalid() -> Error {
    Error::new(Status::InvalidArgument)
}

fn overflow() -> Error {
    Error::new(Status::Overflow)
}

/// Which overhead model (values are part of the C ABI).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverheadKind {
    /// The same overhead for every VM (EVE-OS's 600 MiB).
    Fixed = 1,
    /// A share of the VM's guest RAM (EVE-OS proposal: 30%).
    Proportional = 2,
    /// A share of host memory, spread over the running VMs in proportion to
    /// their guest RAM (EVE-OS alternative: 25%).
    Pooled = 3,
    /// SmartOS vmadm: a fixed 1280 MiB, or what an explicit cap leaves
    /// above the guest but never under 256 MiB.
    Vmadm = 4,
    /// EVE pillar's estimate from RAM, vCPUs and passthrough MMIO.
    EvePillar = 5,
}

crate::status::c_enum!(OverheadKind, names: c_name -> &'static core::ffi::CStr {
    Fixed => c"fixed",
    Proportional => c"proportional",
    Pooled => c"pooled",
    Vmadm => c"smartos-vmadm",
    EvePillar => c"eve-pillar",
});

impl OverheadKind {
    /// A short stable name.
    pub fn name(self) -> &'static str {
        // One table for Rust and C: the C string without its NUL.
        self.c_name().to_str().unwrap_or_default()
    }
}

/// The numbers of every model. `Default` is the documents' values; each
/// model reads only its own fields, but every basis-point field must be at
/// most 10000 (100%) whatever the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverheadParams {
    /// [`Fixed`](OverheadKind::Fixed): bytes per VM (EVE-OS: 600 MiB).
    pub fixed_bytes: u64,
    /// [`Proportional`](OverheadKind::Proportional): basis points of guest
    /// RAM (EVE-OS: 3000 = 30%).
    pub proportional_bp: u32,
    /// [`Pooled`](OverheadKind::Pooled): basis points of host memory in the
    /// pool (EVE-OS: 2500 = 25%).
    pub pool_bp: u32,
    /// [`Vmadm`](OverheadKind::Vmadm): overhead without a cap
    /// (`BHYVE_MEM_OVERHEAD` = 1024 + 256 MiB).
    pub vmadm_bytes: u64,
    /// [`Vmadm`](OverheadKind::Vmadm): the least overhead a cap may leave
    /// (`BHYVE_MIN_MEM_OVERHEAD` = 256 MiB).
    pub vmadm_min_bytes: u64,
    /// [`EvePillar`](OverheadKind::EvePillar): base (350 MiB, "undefined").
    pub eve_base_bytes: u64,
    /// EVE pillar: basis points of guest RAM for page tables (250 = 2.5%:
    /// QEMU issue 1003's 0.224% best case, times ten).
    pub eve_ram_bp: u32,
    /// EVE pillar: the QEMU binaries (20 MiB).
    pub eve_extra_bytes: u64,
    /// EVE pillar: per vCPU (3 MiB).
    pub eve_per_vcpu_bytes: u64,
    /// EVE pillar: basis points of passthrough MMIO BAR sizes (100 = 1%).
    pub eve_mmio_bp: u32,
}

impl Default for OverheadParams {
    fn default() -> Self {
        OverheadParams {
            fixed_bytes: 600 * MIB,
            proportional_bp: 3000,
            pool_bp: 2500,
            vmadm_bytes: 1280 * MIB,
            vmadm_min_bytes: 256 * MIB,
            eve_base_bytes: 350 * MIB,
            eve_ram_bp: 250,
            eve_extra_bytes: 20 * MIB,
            eve_per_vcpu_bytes: 3 * MIB,
            eve_mmio_bp: 100,
        }
    }
}

impl OverheadParams {
    /// `InvalidArgument` if a basis-point field is above 100%: a share of
    /// RAM or host memory larger than the whole is a caller's mistake.
    pub fn validate(&self) -> Result<(), Error> {
        let bps = [
            self.proportional_bp,
            self.pool_bp,
            self.eve_ram_bp,
            self.eve_mmio_bp,
        ];
        if bps.iter().any(|bp| *bp > BP_ONE) {
            return Err(invalid());
        }
        Ok(())
    }
}

/// A model and its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverheadModel {
    /// Which formula.
    pub kind: OverheadKind,
    /// Its numbers.
    pub params: OverheadParams,
}

/// What SmartOS ships for bhyve: vmadm's 1280 MiB.
impl Default for OverheadModel {
    fn default() -> Self {
        OverheadModel {
            kind: OverheadKind::Vmadm,
            params: OverheadParams::default(),
        }
    }
}

/// One VM as the models see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmSpec {
    /// Guest RAM (vmadm `ram`).
    pub guest_bytes: u64,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Total MMIO BAR size of passthrough devices.
    pub mmio_bytes: u64,
    /// Explicit cap on guest + overhead (vmadm `max_physical_memory`); 0 =
    /// none. Only the vmadm model reads it.
    pub cap_bytes: u64,
}

/// What the pooled model spreads: host memory and the guest RAM of every VM sharing the pool (this one included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolShare {
    /// Host memory; the pool is `pool_bp` of it.
    pub host_bytes: u64,
    /// Σ guest RAM of the VMs sharing the pool, this one included.
    pub total_guest_bytes: u64,
}

impl OverheadModel {
    /// The overhead of `vm` under this model.
    ///
    /// `InvalidArgument` for bad parameters (a basis-point field above
    /// 10000), for a pool whose total guest RAM is less than this VM's
    /// (it must include it), and for a vmadm cap below the guest RAM (vmadm:
    /// "max_physical_memory cannot be lower than vm.ram"). `Overflow` if the
    /// sum does not fit in 64 bits.
    ///
    /// Rounding: shares of a VM's own RAM round up (a byte short of a limit
    /// is the side that OOM-kills); the pooled share rounds down, so the
    /// shares of all VMs never add up to more than the pool.
    pub fn overhead(&self, vm: &VmSpec, pool: &PoolShare) -> Result<u64, Error> {
        self.params.validate()?;
        let p = &self.params;
        match self.kind {
            OverheadKind::Fixed => Ok(p.fixed_bytes),
            OverheadKind::Proportional => {
                u64::try_from(bp_ceil(vm.guest_bytes, p.proportional_bp)).map_err(|_| overflow())
            }
            OverheadKind::Pooled => pooled_share(p.pool_bp, vm.guest_bytes, pool),
            OverheadKind::Vmadm => vmadm(p, vm),
            OverheadKind::EvePillar => eve_pillar(p, vm),
        }
    }
}

/// The pool (`pool_bp` of host memory) × guest / Σ guest, rounded down.
fn pooled_share(pool_bp: u32, guest: u64, pool: &PoolShare) -> Result<u64, Error> {
    if pool.total_guest_bytes < guest {
        return Err(invalid());
    }
    if pool.total_guest_bytes == 0 {
        // No VM has RAM: nothing to spread over (and no division by zero).
        return Ok(0);
    }
    let pool_bytes = bp_floor(pool.host_bytes, pool_bp);
    // pool_bytes < 2^64 and guest < 2^64: the product fits u128.
    let share = pool_bytes
        .saturating_mul(u128::from(guest))
        .checked_div(u128::from(pool.total_guest_bytes))
        .unwrap_or(0);
    // share <= pool_bytes < 2^64 since guest <= total.
    Ok(sat_u64(share))
}

/// smartos-live `fixPayloadMemory()`: without a cap the overhead is
/// `BHYVE_MEM_OVERHEAD`; with one, whatever the cap leaves above the guest,
/// but vmadm raises a cap below guest + `BHYVE_MIN_MEM_OVERHEAD` to it.
fn vmadm(p: &OverheadParams, vm: &VmSpec) -> Result<u64, Error> {
    if vm.cap_bytes == 0 {
        return Ok(p.vmadm_bytes);
    }
    let room = vm
        .cap_bytes
        .checked_sub(vm.guest_bytes)
        .ok_or_else(invalid)?;
    Ok(room.max(p.vmadm_min_bytes))
}

/// lf-edge/eve `estimatedVMMOverhead`: base + page tables + binaries +
/// per-vCPU + passthrough MMIO.
fn eve_pillar(p: &OverheadParams, vm: &VmSpec) -> Result<u64, Error> {
    let vcpus = u128::from(p.eve_per_vcpu_bytes).saturating_mul(u128::from(vm.vcpus));
    let sum = u128::from(p.eve_base_bytes)
        .saturating_add(bp_ceil(vm.guest_bytes, p.eve_ram_bp))
        .saturating_add(u128::from(p.eve_extra_bytes))
        .saturating_add(vcpus)
        .saturating_add(bp_ceil(vm.mmio_bytes, p.eve_mmio_bp));
    // Five terms each below 2^96: the u128 sum is exact.
    u64::try_from(sum).map_err(|_| overflow())
}

/// A VM already running: its spec, its current overhead limit and the
/// overhead memory it uses now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunningVm {
    /// The VM.
    pub spec: VmSpec,
    /// Its current overhead limit.
    pub limit_bytes: u64,
    /// Overhead memory it uses now.
    pub usage_bytes: u64,
}

/// A running VM whose recalculated overhead is below what it already uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// Its index in `running`.
    pub index: usize,
    /// What the model now gives it.
    pub wanted_bytes: u64,
    /// What it uses.
    pub usage_bytes: u64,
    /// `usage - wanted`: the memory the new limits would have to take back.
    pub excess_bytes: u64,
}

/// The outcome of [`recalculate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recalculation {
    /// The model used.
    pub model: OverheadKind,
    /// The new limit of each running VM (same order), never below usage.
    pub limits: Vec<u64>,
    /// The overhead of the VM about to start (0 if none).
    pub new_vm_overhead: u64,
    /// The VMs whose wanted limit is below their usage, by index.
    pub stuck: Vec<Stuck>,
    /// Σ excess of the stuck VMs.
    pub stuck_bytes: u64,
}

/// Recompute every running VM's overhead limit (e.g. pooled: the pool is re-spread when a VM joins). A limit is never set below the VM's current usage: such VMs are listed in `stuck` with how much they exceed, so the caller can refuse the new VM instead of killing an old one (EVE proposal). `new_vm`: the VM about to start (counts in the pool), or None.
///
/// A stuck VM's limit becomes its usage: the tightest limit the kernel
/// accepts (cgroups refuse a limit under usage with EBUSY). The previous
/// `limit_bytes` is not consulted: the model decides, usage only bounds it.
/// Errors as [`OverheadModel::overhead`]; `Overflow` if Σ guest RAM does not
/// fit in 64 bits.
pub fn recalculate(
    model: &OverheadModel,
    host_bytes: u64,
    running: &[RunningVm],
    new_vm: Option<&VmSpec>,
) -> Result<Recalculation, Error> {
    let mut total_guest: u64 = new_vm.map_or(0, |v| v.guest_bytes);
    for vm in running {
        total_guest = total_guest
            .checked_add(vm.spec.guest_bytes)
            .ok_or_else(overflow)?;
    }
    let pool = PoolShare {
        host_bytes,
        total_guest_bytes: total_guest,
    };
    let new_vm_overhead = match new_vm {
        Some(v) => model.overhead(v, &pool)?,
        None => {
            // Still refuse bad parameters with no VM to compute.
            model.params.validate()?;
            0
        }
    };
    let mut limits = Vec::with_capacity(running.len());
    let mut stuck = Vec::new();
    let mut stuck_bytes: u64 = 0;
    for (index, vm) in running.iter().enumerate() {
        let wanted = model.overhead(&vm.spec, &pool)?;
        match vm.usage_bytes.checked_sub(wanted) {
            Some(excess) if excess > 0 => {
                stuck_bytes = stuck_bytes.checked_add(excess).ok_or_else(overflow)?;
                stuck.push(Stuck {
                    index,
                    wanted_bytes: wanted,
                    usage_bytes: vm.usage_bytes,
                    excess_bytes: excess,
                });
                limits.push(vm.usage_bytes);
            }
            _ => limits.push(wanted),
        }
    }
    Ok(Recalculation {
        model: model.kind,
        limits,
        new_vm_overhead,
        stuck,
        stuck_bytes,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn model(kind: OverheadKind) -> OverheadModel {
        OverheadModel {
            kind,
            params: OverheadParams::default(),
        }
    }

    fn vm(guest: u64, vcpus: u32) -> VmSpec {
        VmSpec {
            guest_bytes: guest,
            vcpus,
            ..VmSpec::default()
        }
    }

    const NO_POOL: PoolShare = PoolShare {
        host_bytes: 0,
        total_guest_bytes: 0,
    };

    #[test]
    fn kinds_round_trip_with_names() {
        for k in OverheadKind::ALL {
            assert_eq!(OverheadKind::from_u32(k as u32), Some(k));
            assert_eq!(k.to_u32(), k as u32);
        }
        assert_eq!(OverheadKind::from_u32(0), None);
        assert_eq!(OverheadKind::from_u32(6), None);
        assert_eq!(OverheadKind::Vmadm.name(), "smartos-vmadm");
        assert_eq!(OverheadKind::EvePillar.name(), "eve-pillar");
        assert_eq!(OverheadModel::default().kind, OverheadKind::Vmadm);
    }

    /// EVE pillar for a 4 GiB, 2 vCPU VM without passthrough:
    /// 350 + 102.4 + 20 + 6 MiB = 478.4 MiB.
    #[test]
    fn eve_pillar_4g_2vcpu() {
        let o = model(OverheadKind::EvePillar)
            .overhead(&vm(4 * GIB, 2), &NO_POOL)
            .unwrap();
        // 2.5% of 4 GiB = 107374182.4 bytes, rounded up.
        assert_eq!(o, 376 * MIB + 107_374_183);
        assert_eq!(o / MIB, 478);
        // A 256 MiB GPU BAR adds 1% of it.
        let mut gpu = vm(4 * GIB, 2);
        gpu.mmio_bytes = 256 * MIB;
        let g = model(OverheadKind::EvePillar)
            .overhead(&gpu, &NO_POOL)
            .unwrap();
        assert_eq!(g - o, 2_684_355); // ceil(268435456 / 100)
    }

    #[test]
    fn vmadm_1280_and_256_minimum() {
        let m = model(OverheadKind::Vmadm);
        assert_eq!(m.overhead(&vm(8 * GIB, 4), &NO_POOL).unwrap(), 1280 * MIB);
        let mut capped = vm(8 * GIB, 4);
        capped.cap_bytes = 8 * GIB + 2 * GIB;
        assert_eq!(m.overhead(&capped, &NO_POOL).unwrap(), 2 * GIB);
        // A cap leaving 100 MiB is raised to the 256 MiB minimum.
        capped.cap_bytes = 8 * GIB + 100 * MIB;
        assert_eq!(m.overhead(&capped, &NO_POOL).unwrap(), 256 * MIB);
        // Below the guest: vmadm rejects the payload.
        capped.cap_bytes = 8 * GIB - 1;
        assert_eq!(
            m.overhead(&capped, &NO_POOL).unwrap_err().status(),
            Status::InvalidArgument
        );
    }

    #[test]
    fn fixed_and_proportional() {
        assert_eq!(
            model(OverheadKind::Fixed)
                .overhead(&vm(512 * MIB, 1), &NO_POOL)
                .unwrap(),
            600 * MIB
        );
        // 30% of 1 GiB, rounded up.
        assert_eq!(
            model(OverheadKind::Proportional)
                .overhead(&vm(GIB, 1), &NO_POOL)
                .unwrap(),
            322_122_548
        );
    }

    #[test]
    fn pooled_spreads_a_quarter_of_the_host() {
        let m = model(OverheadKind::Pooled);
        let pool = PoolShare {
            host_bytes: 64 * GIB,
            total_guest_bytes: 48 * GIB,
        };
        // 16 GiB pool; a 12 GiB VM of 48 GiB gets a quarter: 4 GiB.
        assert_eq!(m.overhead(&vm(12 * GIB, 2), &pool).unwrap(), 4 * GIB);
        // The pool must include the VM.
        assert_eq!(
            m.overhead(&vm(49 * GIB, 2), &pool).unwrap_err().status(),
            Status::InvalidArgument
        );
        assert_eq!(m.overhead(&vm(0, 1), &NO_POOL).unwrap(), 0);
    }

    #[test]
    fn bad_params_and_overflow() {
        let mut m = model(OverheadKind::Fixed);
        m.params.eve_mmio_bp = 10_001;
        assert_eq!(
            m.overhead(&vm(GIB, 1), &NO_POOL).unwrap_err().status(),
            Status::InvalidArgument
        );
        let mut e = model(OverheadKind::EvePillar);
        e.params.eve_base_bytes = u64::MAX;
        assert_eq!(
            e.overhead(&vm(GIB, 1), &NO_POOL).unwrap_err().status(),
            Status::Overflow
        );
        // 100% of u64::MAX still fits.
        let mut p = model(OverheadKind::Proportional);
        p.params.proportional_bp = BP_ONE;
        assert_eq!(p.overhead(&vm(u64::MAX, 1), &NO_POOL).unwrap(), u64::MAX);
    }

    /// The EVE-OS proposal's example: A's limit is 600 MiB and it uses
    /// 500 MiB; B arrives and the pool would give A 400 MiB.
    #[test]
    fn recalculation_keeps_a_busy_vm_and_reports_it() {
        let mut m = model(OverheadKind::Pooled);
        // A 1600 MiB pool (host 6400 MiB at 25%), A and B with 4 GiB each.
        let host = 6400 * MIB;
        let a = RunningVm {
            spec: vm(4 * GIB, 2),
            limit_bytes: 600 * MIB,
            usage_bytes: 500 * MIB,
        };
        // Alone, A gets the whole pool.
        let alone = recalculate(&m, host, &[a], None).unwrap();
        assert_eq!(alone.limits, vec![1600 * MIB]);
        assert!(alone.stuck.is_empty());
        // With B, halves: 800 MiB each, A fits.
        let b = vm(4 * GIB, 2);
        let r = recalculate(&m, host, &[a], Some(&b)).unwrap();
        assert_eq!((r.limits[0], r.new_vm_overhead), (800 * MIB, 800 * MIB));
        // A smaller pool (12.5%): 400 MiB each, below A's 500 MiB.
        m.params.pool_bp = 1250;
        let r = recalculate(&m, host, &[a], Some(&b)).unwrap();
        assert_eq!(r.limits, vec![500 * MIB]);
        assert_eq!(r.new_vm_overhead, 400 * MIB);
        assert_eq!(
            r.stuck,
            vec![Stuck {
                index: 0,
                wanted_bytes: 400 * MIB,
                usage_bytes: 500 * MIB,
                excess_bytes: 100 * MIB
            }]
        );
        assert_eq!(r.stuck_bytes, 100 * MIB);
        assert_eq!(r.model, OverheadKind::Pooled);
    }

    #[test]
    fn recalculation_errors() {
        let big = RunningVm {
            spec: vm(u64::MAX, 1),
            limit_bytes: 0,
            usage_bytes: 0,
        };
        let m = model(OverheadKind::Pooled);
        assert_eq!(
            recalculate(&m, GIB, &[big, big], None)
                .unwrap_err()
                .status(),
            Status::Overflow
        );
        let mut bad = model(OverheadKind::Fixed);
        bad.params.pool_bp = 20_000;
        assert_eq!(
            recalculate(&bad, GIB, &[], None).unwrap_err().status(),
            Status::InvalidArgument
        );
        let empty = recalculate(&m, GIB, &[], None).unwrap();
        assert!(empty.limits.is_empty() && empty.stuck.is_empty());
        assert_eq!(empty.new_vm_overhead, 0);
    }
}
