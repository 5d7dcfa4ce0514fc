//! The host capacity report (JSON) for operators and Triton CNAPI/VMAPI.
//!
//! RFD 185: CNAPI and VMAPI can overprovision a compute node because they
//! see neither the reservoir nor the other consumers of memory (the ARC,
//! driver DMA preallocation, zones). One call puts everything the library
//! knows about the host's memory into one document: the reservoir's
//! figures and the claims pending in the ledger, the ARC, the headroom
//! breakdown (why the safe reservoir maximum is what it is), the memory
//! state, the largest VM admissible with and without the reservoir, the
//! default reservoir target and what the peers' sizing rules would give.
//!
//! [`build`] is pure (every input is a parameter); [`Report::to_json`]
//! serialises it with serde_json. The field set is versioned by
//! `"schema"`; `docs/report.schema.json` describes it (installed in `$(PREFIX)/share/vmmresv`).

use serde_json::{json, Value};

use crate::admission::vm::{charge, AdmissionPolicy};
use crate::admission::{Admission, ArcHost};
use crate::arc::guard::{target, TargetInputs, TargetReport};
use crate::host::HostMemory;
use crate::ledger::Pool;
use crate::pages::{self, PageSize, PAGESIZE};
use crate::policy::headroom::{
    self, Headroom, HeadroomInputs, Profile, ProfileFractions, ProfileInputs,
};
use crate::policy::overhead::VmSpec;
use crate::policy::states::{self, MemState, Thresholds};
use crate::reservoir::ReservoirQuery;
use crate::status::{Error, Status};

/// The value of the report's `"schema"` field.
pub const SCHEMA: &str = "vmmresv-report/2";

/// What the report needs besides the reservoir, the ledger and the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportInputs {
    /// The host's memory (`crate::host` readers).
    pub host: HostMemory,
    /// The ARC, if the host has one.
    pub arc: Option<ArcHost>,
    /// Driver DMA preallocation (RFD 185: i40e with many VNICs).
    pub driver_dma_bytes: u64,
    /// The sum of zones' memory caps.
    pub zone_caps_bytes: u64,
    /// Memory kept for the OS itself.
    pub os_reserve_bytes: u64,
    /// Memory kept unused so a VM can grow at once (KVM Forum).
    pub overcommit_buffer_bytes: u64,
    /// omicron's control-plane earmark (for the omicron profile).
    pub omicron_earmark_bytes: u64,
    /// The sum of VM memory caps (for the Triton CNAPI profile).
    pub vm_caps_bytes: u64,
    /// Chunk the default target is rounded down to (0: 4 KiB pages).
    pub chunk_bytes: u64,
    /// The vCPUs of the VM shape "largest VM" is computed for (overhead
    /// models that count vCPUs); its guest size is what is searched.
    pub reference_vcpus: u32,
    /// The share each sizing profile takes (e.g. omicron's 86.3% as
    /// 8630/10000). None: [`build`] applies the default percentages,
    /// [`Admission::report`] the fractions set with
    /// [`Admission::set_profile_fraction`].
    pub profile_fractions: Option<ProfileFractions>,
}

/// Pending claims in the ledger, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Reservoir claims not yet committed.
    pub reservoir: u64,
    /// No-reservoir claims not yet committed.
    pub transient: u64,
    /// ARC reservations (OS-8005's arc_virt_machine_reserved).
    pub arc_reserved: u64,
    /// Host memory claimed by starts admitted under a policy (the host
    /// ledger), not yet committed.
    pub host: u64,
}

/// Host memory as a start under the policy sees it: the reading, the floor
/// the state rule keeps, and what other starts hold.
#[derive(Clone, Copy, Debug)]
struct HostRoom {
    free: u64,
    floor: u64,
    pending: u64,
}

impl HostRoom {
    /// Whether a start taking `cost` bytes of host memory, with `give`
    /// bytes coming back from the ARC, passes the rule exactly as
    /// `Admission::admit_vm` applies it: its claim (cost rounded up to
    /// pages) plus the pending claims fit the reading plus the give-back
    /// less the floor, rounded down to pages.
    fn fits(&self, cost: u64, give: u64) -> bool {
        let room = self.free.saturating_add(give).saturating_sub(self.floor);
        let claim = pages::round_up(cost, PAGESIZE).unwrap_or(u64::MAX);
        // round_down fails only for a zero alignment.
        let room = pages::round_down(room, PAGESIZE).unwrap_or(0);
        claim.saturating_add(self.pending) <= room
    }
}

/// What bounded a largest-VM figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Reservoir free memory less pending claims.
    ReservoirFree,
    /// The kernel's limit on reservoir plus transient memory.
    TransientLimit,
    /// OS-8005's guard: arc_c_min + reservations + request ≤ ceiling.
    ArcGuard,
    /// Free memory must stay at the configured memory state.
    MemoryState,
}

impl Limit {
    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ReservoirFree => "reservoir_free",
            Limit::TransientLimit => "transient_limit",
            Limit::ArcGuard => "arc_guard",
            Limit::MemoryState => "memory_state",
        }
    }
}

/// The largest VM one of the two paths admits now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Largest {
    /// Guest memory (a 4 KiB multiple; 0 if no VM fits).
    pub guest_bytes: u64,
    /// Its page_t and overhead.
    pub page_t_bytes: u64,
    /// The overhead model's estimate for it.
    pub overhead_bytes: u64,
    /// What stopped it from being larger.
    pub limited_by: Limit,
}

/// The ARC part of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcFigures {
    /// arcstats `size`.
    pub size_bytes: u64,
    /// The target the reservations imply, with its inputs.
    pub target: TargetReport,
}

/// Everything the report says, before serialisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The inputs it was computed from.
    pub inputs: ReportInputs,
    /// The policy admission applies.
    pub policy: AdmissionPolicy,
    /// The reservoir query.
    pub reservoir: ReservoirQuery,
    /// Pending claims.
    pub pending: Pending,
    /// RFD 185's default target (75% of the limit, rounded to the chunk).
    pub default_target_bytes: u64,
    /// The ARC, when the host has one.
    pub arc: Option<ArcFigures>,
    /// Headroom breakdown.
    pub headroom: Headroom,
    /// The peers' sizing rules.
    pub profiles: [(Profile, u64); 3],
    /// The share each profile took.
    pub profile_fractions: ProfileFractions,
    /// minFree and the state thresholds.
    pub thresholds: Thresholds,
    /// The state free memory puts the host in now.
    pub state: MemState,
    /// Largest VM with the reservoir.
    pub with_reservoir: Largest,
    /// Largest VM without it.
    pub without_reservoir: Largest,
    /// The admission ledger the figures come from (None for a report
    /// built from figures alone).
    pub ledger: Option<LedgerFigures>,
}

/// Which admission ledger a report read: one host has one ledger, so an
/// override shows here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerFigures {
    /// Its path.
    pub path: String,
    /// Where the path came from (`default`, `config`, `environment`,
    /// `argument`).
    pub origin: &'static str,
    /// Whether that is the host-wide setting (not an override).
    pub host_wide: bool,
    /// The kernel pool its header names (`vmm-reservoir`, `linux-hugetlb`).
    pub backend: &'static str,
    /// The header's random instance (tells two ledgers apart).
    pub instance: u64,
}

/// The largest page count `p ≤ max` with `fits(p)`, for `fits` true up to
/// some point and false after it (every cost here grows with the guest).
fn largest_fitting(max: u64, fits: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0u64, max);
    if fits(hi) {
        return hi;
    }
    // Invariant: fits(lo) or lo == 0; !fits(hi).
    // lo < hi throughout: neither step can wrap.
    while hi.saturating_sub(lo) > 1 {
        let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo == 0 || fits(lo) {
        lo
    } else {
        0
    }
}

/// The host-side cost (page_t + overhead) of a guest of `p` pages, or None
/// if it cannot be computed (overflow, bad model parameters).
fn side_cost(
    policy: &AdmissionPolicy,
    vm: &VmSpec,
    physmem: u64,
    running: u64,
) -> Option<(u64, u64)> {
    let c = charge(&policy.overhead, vm, physmem, running).ok()?;
    Some((c.page_t_bytes, c.overhead_bytes))
}

/// The largest guest within `bounds` whose host-side cost fits `room`
/// with `give(guest)` coming back from the ARC (it grows by at most the
/// guest's own growth, so the cost less the give still only grows and the
/// search stays valid).
fn largest(
    policy: &AdmissionPolicy,
    inputs: &ReportInputs,
    running: u64,
    bounds: &[(u64, Limit)],
    room: HostRoom,
    guest_is_host: bool,
    give: impl Fn(u64) -> u64,
) -> Largest {
    // The tightest byte bound and what it is.
    let (cap, cap_limit) = bounds
        .iter()
        .copied()
        .min_by_key(|(b, _)| *b)
        .unwrap_or((0, Limit::MemoryState));
    let max_pages = pages::btop(cap, PageSize::Base4K);
    let spec = |p: u64| VmSpec {
        guest_bytes: p.saturating_mul(PAGESIZE),
        vcpus: inputs.reference_vcpus,
        ..VmSpec::default()
    };
    let fits = |p: u64| {
        if p == 0 {
            return true;
        }
        let vm = spec(p);
        match side_cost(policy, &vm, inputs.host.physmem_bytes, running) {
            Some((pt, oh)) => {
                let guest = if guest_is_host { vm.guest_bytes } else { 0 };
                room.fits(
                    pt.saturating_add(oh).saturating_add(guest),
                    give(vm.guest_bytes),
                )
            }
            None => false,
        }
    };
    let p = largest_fitting(max_pages, fits);
    let (pt, oh) = if p == 0 {
        (0, 0)
    } else {
        side_cost(policy, &spec(p), inputs.host.physmem_bytes, running).unwrap_or((0, 0))
    };
    Largest {
        guest_bytes: p.saturating_mul(PAGESIZE),
        page_t_bytes: pt,
        overhead_bytes: oh,
        // The guest reached the tightest byte bound (possibly 0 pages):
        // that bound limits it; else host memory did.
        limited_by: if p == max_pages {
            cap_limit
        } else {
            Limit::MemoryState
        },
    }
}

/// Compute the report from its inputs (pure).
pub fn build(
    q: &ReservoirQuery,
    pending: &Pending,
    policy: &AdmissionPolicy,
    inputs: &ReportInputs,
) -> Result<Report, Error> {
    let host = inputs.host;
    if host.free_bytes > host.physmem_bytes {
        return Err(Error::new(Status::InvalidArgument));
    }
    let default_target = headroom::default_target_for(q.limit, inputs.chunk_bytes)?;
    let arc = match inputs.arc {
        Some(a) => Some(ArcFigures {
            size_bytes: a.arc_size,
            target: target(&TargetInputs {
                limits: a.policy.limits,
                ceiling: a.policy.ceiling,
                arc_virt_machine_reserved: pages::btop(pending.arc_reserved, PageSize::Base4K),
                slack: a.policy.slack,
            })?,
        }),
        None => None,
    };
    let hr = headroom::headroom(&HeadroomInputs {
        physmem_bytes: host.physmem_bytes,
        unlockable_bytes: headroom::unlockable_from_limit(host.physmem_bytes, q.limit),
        arc_floor_bytes: arc.map(|a| a.target.arc_c_min).unwrap_or(0),
        driver_dma_bytes: inputs.driver_dma_bytes,
        zone_caps_bytes: inputs.zone_caps_bytes,
        os_reserve_bytes: inputs.os_reserve_bytes,
        overcommit_buffer_bytes: inputs.overcommit_buffer_bytes,
    });
    let pin = ProfileInputs {
        physmem_bytes: host.physmem_bytes,
        kernel_limit_bytes: q.limit,
        omicron_earmark_bytes: inputs.omicron_earmark_bytes,
        vm_caps_bytes: inputs.vm_caps_bytes,
        ..ProfileInputs::default()
    };
    let fractions = inputs.profile_fractions.unwrap_or_default();
    let mut profiles = [(Profile::Rfd185, 0u64); 3];
    for (slot, p) in profiles.iter_mut().zip(Profile::ALL) {
        *slot = (p, headroom::sizing_fraction(p, &pin, fractions.get(p))?);
    }
    let thresholds = states::thresholds(&policy.scale, host.physmem_bytes);
    let floor_bytes = thresholds.bytes_for(policy.floor);
    let running = q.alloc.saturating_add(q.alloc_transient);

    // With the reservoir: guest from reservoir free less pending claims;
    // page_t + overhead from host memory, which must stay at the floor.
    let host_room = HostRoom {
        free: host.free_bytes,
        floor: floor_bytes,
        pending: pending.host,
    };
    let with_reservoir = largest(
        policy,
        inputs,
        running,
        &[(
            q.free.saturating_sub(pending.reservoir),
            Limit::ReservoirFree,
        )],
        host_room,
        false,
        |_| 0,
    );

    // Without it: the kernel's transient room, the ARC guard, and the
    // whole VM from host memory: free, plus what the ARC gives back once
    // this VM's reservation lowers its target (its size above the new
    // target, as Admission::admit_vm counts it).
    let used = q
        .free
        .saturating_add(q.alloc)
        .saturating_add(q.alloc_transient)
        .saturating_add(pending.transient);
    let mut bounds = vec![(q.limit.saturating_sub(used), Limit::TransientLimit)];
    if let Some(a) = arc {
        let t = &a.target;
        bounds.push((
            t.ceiling_bytes
                .saturating_sub(t.arc_c_min)
                .saturating_sub(t.reserved_bytes),
            Limit::ArcGuard,
        ));
    }
    let reserved_pages = pages::btop(pending.arc_reserved, PageSize::Base4K);
    let arc_give = |guest: u64| -> u64 {
        let Some(a) = inputs.arc else { return 0 };
        let reserved = reserved_pages.saturating_add(pages::btopr(guest, PageSize::Base4K));
        match target(&TargetInputs {
            limits: a.policy.limits,
            ceiling: a.policy.ceiling,
            arc_virt_machine_reserved: reserved,
            slack: a.policy.slack,
        }) {
            Ok(t) => a.arc_size.saturating_sub(t.target_bytes),
            Err(_) => 0,
        }
    };
    let without_reservoir = largest(policy, inputs, running, &bounds, host_room, true, arc_give);

    Ok(Report {
        inputs: *inputs,
        policy: *policy,
        reservoir: *q,
        pending: *pending,
        default_target_bytes: default_target,
        arc,
        headroom: hr,
        profiles,
        profile_fractions: fractions,
        thresholds,
        state: states::state(&thresholds, host.free_bytes),
        with_reservoir,
        without_reservoir,
        ledger: None,
    })
}

fn largest_json(l: &Largest) -> Value {
    json!({
        "guest_bytes": l.guest_bytes,
        "page_t_bytes": l.page_t_bytes,
        "overhead_bytes": l.overhead_bytes,
        "limited_by": l.limited_by.name(),
    })
}

impl Report {
    /// The report as a JSON value.
    pub fn to_value(&self) -> Value {
        let q = &self.reservoir;
        let h = &self.headroom;
        let t = &self.thresholds;
        let o = &self.policy.overhead;
        let arc = match &self.arc {
            Some(a) => json!({
                "size_bytes": a.size_bytes,
                "c_min_bytes": a.target.arc_c_min,
                "c_max_bytes": a.target.arc_c_max,
                "ceiling_bytes": a.target.ceiling_bytes,
                "reserved_bytes": a.target.reserved_bytes,
                "slack_bytes": a.target.slack_bytes,
                "target_bytes": a.target.target_bytes,
            }),
            None => Value::Null,
        };
        let profiles: Vec<Value> = self
            .profiles
            .iter()
            .map(|(p, b)| {
                let f = self.profile_fractions.get(*p);
                json!({
                    "name": p.name(),
                    "target_bytes": b,
                    "numerator": f.numerator(),
                    "denominator": f.denominator(),
                })
            })
            .collect();
        json!({
            "schema": SCHEMA,
            "library_version": env!("CARGO_PKG_VERSION"),
            "host": {
                "physmem_bytes": self.inputs.host.physmem_bytes,
                "free_bytes": self.inputs.host.free_bytes,
                "pending_claims_bytes": self.pending.host,
            },
            "reservoir": {
                "free_bytes": q.free,
                "allocated_bytes": q.alloc,
                "transient_allocated_bytes": q.alloc_transient,
                "limit_bytes": q.limit,
                "size_bytes": q.size(),
                "pending_claims_bytes": self.pending.reservoir,
                "pending_transient_claims_bytes": self.pending.transient,
                "default_target_bytes": self.default_target_bytes,
                "default_target_rule": "rfd185: 75% of the limit, rounded down to the chunk",
                "recommended_target_bytes": self.default_target_bytes.min(h.safe_max_bytes),
            },
            "arc": arc,
            "headroom": {
                "physmem_bytes": h.inputs.physmem_bytes,
                "unlockable_bytes": h.inputs.unlockable_bytes,
                "unlockable_120_bytes": h.unlockable_120_bytes,
                "arc_floor_bytes": h.inputs.arc_floor_bytes,
                "driver_dma_bytes": h.inputs.driver_dma_bytes,
                "zone_caps_bytes": h.inputs.zone_caps_bytes,
                "os_reserve_bytes": h.inputs.os_reserve_bytes,
                "overcommit_buffer_bytes": h.inputs.overcommit_buffer_bytes,
                "deductions_bytes": h.deductions_bytes,
                "safe_reservoir_max_bytes": h.safe_max_bytes,
                "short_bytes": h.short_bytes,
                "reservoir_above_safe_max_bytes": q.size().saturating_sub(h.safe_max_bytes),
            },
            "profiles": profiles,
            "memory_state": {
                "state": self.state.name(),
                "free_bytes": self.inputs.host.free_bytes,
                "min_free_bytes": t.min_free_bytes,
                "thresholds": {
                    "high_bytes": t.high_bytes,
                    "soft_bytes": t.soft_bytes,
                    "hard_bytes": t.hard_bytes,
                    "low_bytes": t.low_bytes,
                },
                "admission_floor": self.policy.floor.name(),
                "admission_floor_bytes": t.bytes_for(self.policy.floor),
            },
            "overhead_model": {
                "name": o.kind.name(),
                "reference_vcpus": self.inputs.reference_vcpus,
            },
            "largest_vm": {
                "with_reservoir": largest_json(&self.with_reservoir),
                "without_reservoir": largest_json(&self.without_reservoir),
            },
            "ledger": self.ledger.as_ref().map(|l| json!({
                "path": l.path,
                "origin": l.origin,
                "host_wide": l.host_wide,
                "backend": l.backend,
                "instance": format!("{:016x}", l.instance),
            })),
        })
    }

    /// The report as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

impl Admission {
    /// The capacity report of this admission point's host: queries the
    /// reservoir, reads the ledger's pending claims, applies this handle's
    /// policy. `inputs.arc` None: the ARC host set with
    /// [`Admission::set_arc`], if any.
    pub fn report(&self, inputs: &ReportInputs) -> Result<Report, Error> {
        let q = self.query()?;
        let pending = Pending {
            reservoir: self.pending_bytes(Pool::Reservoir),
            transient: self.pending_bytes(Pool::Transient),
            arc_reserved: self.arc_pending_bytes()?,
            host: self.host_pending()?,
        };
        let mut inputs = *inputs;
        if inputs.arc.is_none() {
            inputs.arc = self.arc_host();
        }
        if inputs.profile_fractions.is_none() {
            inputs.profile_fractions = Some(self.profile_fractions());
        }
        let mut r = build(&q, &pending, &self.policy(), &inputs)?;
        let h = self.ledger_header();
        r.ledger = Some(LedgerFigures {
            path: self.ledger_path().display().to_string(),
            origin: self.ledger_origin().name(),
            host_wide: self.ledger_origin().host_wide(),
            backend: h
                .pool()
                .map_or(crate::ledger::file::Backend::VmmReservoir, |p| p.backend)
                .name(),
            instance: h.instance,
        });
        Ok(r)
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
    use crate::policy::overhead::{OverheadKind, OverheadModel, OverheadParams, MIB};

    const GIB: u64 = 1 << 30;

    fn fixed() -> AdmissionPolicy {
        AdmissionPolicy {
            overhead: OverheadModel {
                kind: OverheadKind::Fixed,
                params: OverheadParams::default(),
            },
            ..AdmissionPolicy::default()
        }
    }

    #[test]
    fn largest_fitting_finds_the_edge() {
        assert_eq!(largest_fitting(100, |p| p <= 37), 37);
        assert_eq!(largest_fitting(100, |_| true), 100);
        assert_eq!(largest_fitting(100, |p| p == 0), 0);
        assert_eq!(largest_fitting(0, |_| true), 0);
        assert_eq!(largest_fitting(u64::MAX, |p| p <= 1 << 40), 1 << 40);
    }

    #[test]
    fn reservoir_bounds_the_reservoir_path() {
        let q = ReservoirQuery {
            free: 10 * GIB,
            alloc: 0,
            alloc_transient: 0,
            limit: 60 * GIB,
        };
        let inputs = ReportInputs {
            host: HostMemory {
                physmem_bytes: 64 * GIB,
                free_bytes: 40 * GIB,
            },
            reference_vcpus: 2,
            ..ReportInputs::default()
        };
        let pending = Pending {
            reservoir: 2 * GIB,
            ..Pending::default()
        };
        let r = build(&q, &pending, &fixed(), &inputs).unwrap();
        assert_eq!(r.with_reservoir.guest_bytes, 8 * GIB);
        assert_eq!(r.with_reservoir.limited_by, Limit::ReservoirFree);
        assert_eq!(r.with_reservoir.overhead_bytes, 600 * MIB);
        // Without: limit 60 − 10 in the reservoir = 50 GiB of transient
        // room, but host memory (40 GiB free less minFree) is tighter.
        assert_eq!(r.without_reservoir.limited_by, Limit::MemoryState);
        let w = r.without_reservoir;
        // The rule is applied in whole pages, as admit_vm claims them: the
        // cost rounded up within the room rounded down.
        let used = w.guest_bytes + w.page_t_bytes + w.overhead_bytes;
        let room = (40 * GIB - r.thresholds.high_bytes) / 4096 * 4096;
        assert!(used.div_ceil(4096) * 4096 <= room, "{used} > {room}");
        // One more page would not fit.
        assert!((used + 4096 + 120).div_ceil(4096) * 4096 > room);
        assert_eq!(r.default_target_bytes, 45 * GIB);
    }

    #[test]
    fn a_bound_below_one_page_is_what_limits() {
        let q = ReservoirQuery {
            free: 100,
            alloc: 0,
            alloc_transient: 0,
            limit: 60 * GIB,
        };
        let inputs = ReportInputs {
            host: HostMemory {
                physmem_bytes: 64 * GIB,
                free_bytes: 40 * GIB,
            },
            ..ReportInputs::default()
        };
        let r = build(&q, &Pending::default(), &fixed(), &inputs).unwrap();
        assert_eq!(r.with_reservoir.guest_bytes, 0);
        assert_eq!(r.with_reservoir.limited_by, Limit::ReservoirFree);
    }

    #[test]
    fn json_has_the_sections() {
        let q = ReservoirQuery {
            free: GIB,
            alloc: GIB,
            alloc_transient: 0,
            limit: 15 * GIB,
        };
        let inputs = ReportInputs {
            host: HostMemory {
                physmem_bytes: 16 * GIB,
                free_bytes: 8 * GIB,
            },
            ..ReportInputs::default()
        };
        let r = build(
            &q,
            &Pending::default(),
            &AdmissionPolicy::default(),
            &inputs,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["reservoir"]["size_bytes"], 2 * GIB);
        assert_eq!(v["arc"], Value::Null);
        assert_eq!(v["profiles"].as_array().unwrap().len(), 3);
        assert_eq!(v["overhead_model"]["name"], "smartos-vmadm");
        assert!(v["largest_vm"]["with_reservoir"]["guest_bytes"].is_u64());
    }

    /// The profiles apply the fractions given (omicron's 86.3% in basis
    /// points on a 1 TiB host with the Gimlet earmark) and show them.
    #[test]
    fn profiles_apply_and_show_their_fractions() {
        use crate::policy::headroom::{Fraction, GIMLET_EARMARK_BYTES};
        const TIB: u64 = 1 << 40;
        let q = ReservoirQuery {
            free: 0,
            alloc: 0,
            alloc_transient: 0,
            limit: 1000 * GIB,
        };
        let mut inputs = ReportInputs {
            host: HostMemory {
                physmem_bytes: TIB,
                free_bytes: 512 * GIB,
            },
            omicron_earmark_bytes: GIMLET_EARMARK_BYTES,
            ..ReportInputs::default()
        };
        let p = AdmissionPolicy::default();
        let d = build(&q, &Pending::default(), &p, &inputs).unwrap();
        assert_eq!(d.profiles[1], (Profile::Omicron, 864 * GIB + 512 * MIB));
        assert_eq!(d.profiles[0], (Profile::Rfd185, 750 * GIB));
        let v = d.to_value();
        for (i, (n, den)) in [(75, 100), (91, 100), (85, 100)].iter().enumerate() {
            assert_eq!(v["profiles"][i]["numerator"], *n);
            assert_eq!(v["profiles"][i]["denominator"], *den);
        }
        let mut f = ProfileFractions::default();
        f.set(Profile::Omicron, Fraction::basis_points(8630).unwrap());
        f.set(Profile::Rfd185, Fraction::new(2, 3).unwrap());
        inputs.profile_fractions = Some(f);
        let r = build(&q, &Pending::default(), &p, &inputs).unwrap();
        assert_eq!(r.profiles[1], (Profile::Omicron, 880_306_814_976));
        // 2/3 of 1000 GiB, down to the page.
        assert_eq!(r.profiles[0].1, 2000 * GIB / 3 / 4096 * 4096);
        assert_eq!(r.profiles[2], d.profiles[2]);
        let v = r.to_value();
        assert_eq!(v["profiles"][1]["target_bytes"], 880_306_814_976u64);
        assert_eq!(v["profiles"][1]["numerator"], 8630);
        assert_eq!(v["profiles"][1]["denominator"], 10000);
        assert_eq!(v["profiles"][0]["numerator"], 2);
        assert_eq!(v["profiles"][0]["denominator"], 3);
        assert_eq!(v["profiles"][2]["numerator"], 85);
    }

    #[test]
    fn free_above_physmem_is_refused() {
        let inputs = ReportInputs {
            host: HostMemory {
                physmem_bytes: 1,
                free_bytes: 2,
            },
            ..ReportInputs::default()
        };
        let q = ReservoirQuery {
            free: 0,
            alloc: 0,
            alloc_transient: 0,
            limit: 0,
        };
        assert_eq!(
            build(
                &q,
                &Pending::default(),
                &AdmissionPolicy::default(),
                &inputs
            )
            .unwrap_err()
            .status(),
            Status::InvalidArgument
        );
    }
}
