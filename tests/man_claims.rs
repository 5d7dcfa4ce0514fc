//! What the man pages say the shipped functions do, where a page states a
//! number or an edge the other tests do not pin (issue 14): each test names
//! the page and the sentence it holds to. The functions are called through
//! the C ABI, as the pages document them; the report, which needs an
//! admission handle there, through the pure builder vmmresv_report_json
//! calls.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic is on values they chose.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::ffi::CStr;

use vmmresv::admission::vm::AdmissionPolicy;
use vmmresv::ffi::{
    vmmresv_memory_state, vmmresv_memory_thresholds, vmmresv_size_parse, vmmresv_thresholds,
    VMMRESV_MEMSTATE_HARD, VMMRESV_MEMSTATE_HIGH, VMMRESV_MEMSTATE_SOFT,
};
use vmmresv::host::HostMemory;
use vmmresv::report::{build, Pending, ReportInputs};
use vmmresv::{ReservoirQuery, Status};

const GIB: u64 = 1 << 30;

/// vmmresv_size_parse(text, 0, &out): the status and, on success, out.
fn parse(text: &CStr) -> (Status, Option<u64>) {
    let mut out = u64::MAX;
    let st = vmmresv_size_parse(text.as_ptr(), 0, &mut out);
    (st, (st == Status::Ok).then_some(out))
}

/// vmmresv_pages(3VMMRESV): "A fraction ... needs a unit or '%': on a
/// number of bytes it is refused ("1.5", "0.5", "1.5B"). With a unit the
/// value may fall between two bytes, and is then rounded down: "0.1K" is
/// 102 bytes (102.4), "1.1K" is 1126 and "0.0001K" is 0."
#[test]
fn size_parse_fractions_as_vmmresv_pages_says() {
    assert_eq!(parse(c"0.1K"), (Status::Ok, Some(102)));
    assert_eq!(parse(c"1.1K"), (Status::Ok, Some(1126)));
    assert_eq!(parse(c"0.0001K"), (Status::Ok, Some(0)));
    assert_eq!(parse(c"0.5K"), (Status::Ok, Some(512)));
    for refused in [c"1.5", c"0.5", c"1.5B", c"0.1"] {
        assert_eq!(
            parse(refused),
            (Status::ParseSize, None),
            "{:?} is a fraction with no unit",
            refused
        );
    }
    // "at most 18 digits" after the point.
    assert_eq!(
        parse(c"0.000000000000000001E"),
        (Status::Ok, Some(1)),
        "18 digits: 2^60 / 10^18 = 1.15 bytes"
    );
    assert_eq!(parse(c"0.0000000000000000001E"), (Status::ParseSize, None));
}

/// vmmresv_policy(3VMMRESV): "minFree is the sliding scale summed exactly
/// and rounded down to the byte: a 100 GiB host keeps 1717986918 bytes, 1.6
/// GiB being 1717986918.4. Each threshold is its share of that minFree
/// rounded up to the byte ...: high_bytes equals min_free_bytes, and on
/// that host soft_bytes is 1099511628, 64% of minFree being 1099511627.52."
#[test]
fn thresholds_round_as_vmmresv_policy_says() {
    let mut t = vmmresv_thresholds::default();
    assert_eq!(vmmresv_memory_thresholds(100 * GIB, &mut t), Status::Ok);
    // 1.6 GiB is 1717986918.4 bytes: rounded down, not up.
    assert_eq!(16 * GIB % 10, 4);
    assert_eq!(t.min_free_bytes, 1_717_986_918);
    assert_eq!(t.high_bytes, t.min_free_bytes);
    // 64%, 32%, 16% of 1717986918: 1099511627.52, 549755813.76,
    // 274877906.88, each rounded up.
    assert_eq!(t.soft_bytes, 1_099_511_628);
    assert_eq!(t.hard_bytes, 549_755_814);
    assert_eq!(t.low_bytes, 274_877_907);
    // "free memory meets a threshold exactly when it is at least that share
    // of minFree": one byte less is the next state down.
    let state = |free: u64| {
        let mut s = 0u32;
        assert_eq!(vmmresv_memory_state(100 * GIB, free, &mut s), Status::Ok);
        s
    };
    assert_eq!(state(t.soft_bytes), VMMRESV_MEMSTATE_SOFT);
    assert_eq!(state(t.soft_bytes - 1), VMMRESV_MEMSTATE_HARD);
    assert_eq!(state(t.min_free_bytes), VMMRESV_MEMSTATE_HIGH);
    assert_eq!(state(t.min_free_bytes - 1), VMMRESV_MEMSTATE_SOFT);
}

/// vmmresv_policy(3VMMRESV): "It does not compare the two sizes: free_bytes
/// above physmem_bytes is accepted, and is VMMRESV_MEMSTATE_HIGH (it is
/// above minFree), whereas vmmresv_admit_vm(3VMMRESV) and
/// vmmresv_report_json(3VMMRESV) refuse such a reading of the host with
/// VMMRESV_STATUS_INVALID_ARGUMENT." (vmmresv_admit_vm's refusal needs an
/// emulated reservoir: tests/admission_policy.rs, role "bad_input".)
#[test]
fn memory_state_accepts_free_above_physmem_where_the_report_refuses() {
    for (physmem, free) in [(16 * GIB, 32 * GIB), (GIB, GIB + 1), (0, 1), (0, u64::MAX)] {
        let mut s = 0u32;
        assert_eq!(
            vmmresv_memory_state(physmem, free, &mut s),
            Status::Ok,
            "physmem {} free {}",
            physmem,
            free
        );
        assert_eq!(
            s, VMMRESV_MEMSTATE_HIGH,
            "physmem {} free {}",
            physmem, free
        );

        // The report, from the same reading: refused.
        let inputs = ReportInputs {
            host: HostMemory {
                physmem_bytes: physmem,
                free_bytes: free,
            },
            ..ReportInputs::default()
        };
        let q = ReservoirQuery {
            free: 0,
            alloc: 0,
            alloc_transient: 0,
            limit: 0,
        };
        let r = build(
            &q,
            &Pending::default(),
            &AdmissionPolicy::default(),
            &inputs,
        );
        assert_eq!(
            r.err().map(|e| e.status()),
            Some(Status::InvalidArgument),
            "the report of physmem {} free {}",
            physmem,
            free
        );
    }
}
