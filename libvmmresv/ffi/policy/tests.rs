//! The policy page's functions through the C ABI.

#![allow(clippy::unwrap_used)]

use core::ffi::c_char;
use core::ptr::{null, null_mut};

use crate::ffi::*;
use crate::policy::headroom::Profile;
use crate::policy::overhead::OverheadKind;
use crate::policy::states::MemState;
use crate::status::Status;

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

/// ABI 1.2: a profile's share as an exact fraction, and the kernel's limit
/// from physmem and pages_pp_maximum.
#[test]
fn sizing_fraction_and_limit_through_the_c_abi() {
    let mut pi = vmmresv_profile_inputs::default();
    assert_eq!(vmmresv_profile_inputs_default(&mut pi), Status::Ok);
    pi.physmem_bytes = 1 << 40;
    pi.omicron_earmark_bytes = 45056 * MIB;
    pi.kernel_limit_bytes = 100 * GIB;
    let mut out = 0u64;
    // omicron's 86.3% in basis points on a 1 TiB Gimlet.
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_OMICRON, &pi, 8630, 10000, &mut out),
        Status::Ok
    );
    assert_eq!(out, 880_306_814_976);
    // 91/100 is the default percentage's figure.
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_OMICRON, &pi, 91, 100, &mut out),
        Status::Ok
    );
    assert_eq!(out, 864 * GIB + 512 * MIB);
    // The inputs' percentages are not read: 3/4 even with rfd185_pct 10.
    let ten = vmmresv_profile_inputs {
        rfd185_pct: 10,
        ..pi
    };
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_RFD185, &ten, 3, 4, &mut out),
        Status::Ok
    );
    assert_eq!(out, 75 * GIB);
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_CNAPI, &pi, 0, 1, &mut out),
        Status::Ok
    );
    assert_eq!(out, 0);
    for (n, d) in [(1, 0), (0, 0), (10001, 10000), (u64::MAX, 1)] {
        out = 7;
        assert_eq!(
            vmmresv_sizing_fraction(VMMRESV_PROFILE_OMICRON, &pi, n, d, &mut out),
            Status::InvalidArgument,
            "{n}/{d}"
        );
        assert_eq!(out, 7, "nothing written on error");
    }
    assert_eq!(
        vmmresv_sizing_fraction(0, &pi, 1, 2, &mut out),
        Status::InvalidArgument
    );
    let res = vmmresv_profile_inputs { reserved: 1, ..pi };
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_OMICRON, &res, 1, 2, &mut out),
        Status::InvalidArgument
    );
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_OMICRON, null(), 1, 2, &mut out),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_sizing_fraction(VMMRESV_PROFILE_OMICRON, &pi, 1, 2, null_mut()),
        Status::NullArgument
    );

    let mut limit = 0u64;
    assert_eq!(
        vmmresv_limit_from_unlockable(100, 10, &mut limit),
        Status::Ok
    );
    assert_eq!(limit, 88);
    let mut u = 0u64;
    assert_eq!(
        vmmresv_unlockable_from_limit(100, limit, &mut u),
        Status::Ok
    );
    assert_eq!(u, 10);
    assert_eq!(
        vmmresv_limit_from_unlockable(100, 84, &mut limit),
        Status::Ok
    );
    assert_eq!(limit, 0);
    assert_eq!(
        vmmresv_limit_from_unlockable(1, 0, null_mut()),
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
