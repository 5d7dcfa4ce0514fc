//! The boundary and the VMMRESV_1.0 areas through the C ABI.

#![allow(
    clippy::as_conversions,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use core::ffi::{c_char, CStr};

use super::boundary::boundary;
use super::*;
use crate::status::Status;

/// An export-shaped function that panics, run through the same
/// boundary as every real export.
extern "C" fn panicking_export() -> Status {
    boundary(|| -> Status { panic!("deliberate panic to test the C boundary") })
}

#[test]
fn panic_becomes_a_status() {
    assert_eq!(panicking_export(), Status::Panic);
    // And the boundary's other fallbacks are well-formed.
    let p: *const c_char = boundary(|| -> *const c_char { panic!("x") });
    // SAFETY: the fallback is a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    assert!(s.to_str().unwrap().contains("panic"));
}

#[test]
fn null_arguments_are_refused() {
    assert_eq!(
        vmmresv_reservoir_open(core::ptr::null(), core::ptr::null(), core::ptr::null_mut()),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_reservoir_query(core::ptr::null(), core::ptr::null_mut()),
        Status::NullArgument
    );
    let mut reached = 0u64;
    assert_eq!(
        vmmresv_reservoir_add(
            core::ptr::null(),
            4096,
            0,
            None,
            core::ptr::null_mut(),
            &mut reached
        ),
        Status::NullArgument
    );
    assert_eq!(reached, VMMRESV_SIZE_UNKNOWN);
    assert_eq!(
        vmmresv_btop(4096, 4096, core::ptr::null_mut()),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_size_parse(core::ptr::null(), 0, &mut reached),
        Status::NullArgument
    );
    vmmresv_reservoir_close(core::ptr::null_mut());
}

#[test]
fn local_ledger_through_the_c_abi() {
    let mut l: *mut vmmresv_ledger = core::ptr::null_mut();
    assert_eq!(vmmresv_ledger_new(10, &mut l), Status::Ok);
    let mut short = u64::MAX;
    assert_eq!(vmmresv_ledger_claim(l, 7, &mut short), Status::Ok);
    assert_eq!(short, 0);
    assert_eq!(vmmresv_ledger_claim(l, 5, &mut short), Status::Refused);
    assert_eq!(short, 2);
    let (mut c, mut cap) = (0u64, 0u64);
    assert_eq!(vmmresv_ledger_usage(l, &mut c, &mut cap), Status::Ok);
    assert_eq!((c, cap), (7, 10));
    let mut old = 0u64;
    assert_eq!(vmmresv_ledger_set_capacity(l, 6, &mut old), Status::NoSpace);
    assert_eq!(vmmresv_ledger_release(l, 7), Status::Ok);
    assert_eq!(vmmresv_ledger_set_capacity(l, 6, &mut old), Status::Ok);
    assert_eq!(old, 10);
    vmmresv_ledger_free(l);
    assert_eq!(
        vmmresv_ledger_new(u64::MAX, &mut l),
        Status::InvalidArgument
    );
    assert!(l.is_null());
    vmmresv_ledger_free(l);
    assert_eq!(
        vmmresv_ledger_claim(core::ptr::null(), 1, &mut short),
        Status::NullArgument
    );
}

#[test]
fn foreign_handle_is_refused() {
    // Readable memory that is not a handle: no table has it (and the
    // library never reads through it).
    let fake = [0u8; 64];
    let mut q = vmmresv_query::default();
    assert_eq!(
        vmmresv_reservoir_query(fake.as_ptr().cast(), &mut q),
        Status::InvalidArgument
    );
    vmmresv_reservoir_close(fake.as_ptr().cast_mut().cast());
}

#[test]
fn freed_ledger_is_refused_and_free_twice_is_a_no_op() {
    let mut l: *mut vmmresv_ledger = core::ptr::null_mut();
    assert_eq!(vmmresv_ledger_new(10, &mut l), Status::Ok);
    vmmresv_ledger_free(l);
    let mut short = u64::MAX;
    assert_eq!(
        vmmresv_ledger_claim(l, 1, &mut short),
        Status::InvalidArgument
    );
    assert_eq!(vmmresv_ledger_release(l, 1), Status::InvalidArgument);
    vmmresv_ledger_free(l);
    // A ledger created after it is not reached through it.
    let mut l2: *mut vmmresv_ledger = core::ptr::null_mut();
    assert_eq!(vmmresv_ledger_new(3, &mut l2), Status::Ok);
    assert_eq!(
        vmmresv_ledger_claim(l, 1, &mut short),
        Status::InvalidArgument
    );
    vmmresv_ledger_free(l);
    let (mut c, mut cap) = (u64::MAX, 0u64);
    assert_eq!(vmmresv_ledger_usage(l2, &mut c, &mut cap), Status::Ok);
    assert_eq!((c, cap), (0, 3));
    // Nor is a ledger taken for an admission handle.
    assert_eq!(
        vmmresv_admission_pending(l2.cast(), &mut c, &mut cap),
        Status::InvalidArgument
    );
    vmmresv_ledger_free(l2);
}

#[test]
fn strerror_never_null() {
    for v in [0u32, 1, 7001, 7019, 9999, u32::MAX] {
        let p = vmmresv_strerror(v);
        assert!(!p.is_null());
        // SAFETY: static NUL-terminated strings.
        assert!(!unsafe { CStr::from_ptr(p) }.to_bytes().is_empty());
    }
}

#[test]
fn size_format_needed_size_protocol() {
    let mut needed = 0usize;
    assert_eq!(
        vmmresv_size_format(64 << 30, core::ptr::null_mut(), 0, &mut needed),
        Status::BufferTooSmall
    );
    assert_eq!(needed, 4); // "64G" + NUL
    let mut buf = [0x55 as c_char; 4];
    assert_eq!(
        vmmresv_size_format(64 << 30, buf.as_mut_ptr(), buf.len(), &mut needed),
        Status::Ok
    );
    // SAFETY: NUL-terminated by the call above.
    assert_eq!(
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(),
        "64G"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "opens the vmm control device (open(2) with O_EXCL), refused by Miri's isolation"
)]
fn missing_device_sets_errno() {
    let mut h: *mut vmmresv_reservoir = core::ptr::null_mut();
    let st = vmmresv_reservoir_open(c"/nonexistent/vmmctl".as_ptr(), core::ptr::null(), &mut h);
    assert_eq!(st, Status::NoDevice);
    assert!(h.is_null());
    assert_eq!(vmmresv_last_errno(), libc::ENOENT);
}

/// The errno slot is per thread and a success clears it, whatever other
/// threads hold: the fast path that skips the thread-local while no
/// thread holds an errno must not skip a thread whose own slot is set.
#[test]
#[cfg_attr(
    miri,
    ignore = "opens the vmm control device (open(2) with O_EXCL), refused by Miri's isolation"
)]
fn last_errno_is_per_thread_and_cleared_by_success() {
    use std::sync::{Arc, Barrier};

    fn fail_with_enoent() {
        let mut h: *mut vmmresv_reservoir = core::ptr::null_mut();
        let st = vmmresv_reservoir_open(c"/nonexistent/vmmctl".as_ptr(), core::ptr::null(), &mut h);
        assert_eq!(st, Status::NoDevice);
    }
    fn succeed(l: *const vmmresv_ledger) {
        assert_eq!(
            vmmresv_ledger_claim(l, 1, core::ptr::null_mut()),
            Status::Ok
        );
        assert_eq!(vmmresv_ledger_release(l, 1), Status::Ok);
    }

    let mut l: *mut vmmresv_ledger = core::ptr::null_mut();
    assert_eq!(vmmresv_ledger_new(16, &mut l), Status::Ok);
    let l = l as usize;
    for _ in 0..50 {
        let failed = Arc::new(Barrier::new(2));
        let checked = Arc::new(Barrier::new(2));
        let (f, c) = (failed.clone(), checked.clone());
        // Holds ENOENT while the other thread succeeds, then succeeds.
        let holder = std::thread::spawn(move || {
            fail_with_enoent();
            f.wait();
            c.wait();
            assert_eq!(
                vmmresv_last_errno(),
                libc::ENOENT,
                "another thread's success cleared it"
            );
            succeed(l as *const vmmresv_ledger);
            assert_eq!(vmmresv_last_errno(), 0, "a success left the errno");
            fail_with_enoent(); // and exits holding one
        });
        failed.wait();
        fail_with_enoent();
        assert_eq!(vmmresv_last_errno(), libc::ENOENT);
        succeed(l as *const vmmresv_ledger);
        assert_eq!(vmmresv_last_errno(), 0, "a success left the errno");
        checked.wait();
        holder.join().unwrap();
        succeed(l as *const vmmresv_ledger);
        assert_eq!(vmmresv_last_errno(), 0);
    }
    vmmresv_ledger_free(l as *mut vmmresv_ledger);
}

/// The ARC handle (ABI 1.2) at the boundary: its pointers and arguments
/// refused with statuses, nothing held after a refusal, a durable hold
/// listed through the needed-size protocol, and every call after the free
/// refused.
#[test]
#[cfg_attr(miri, ignore = "opens a ledger file, refused by Miri's isolation")]
fn the_arc_handle_refuses_bad_arguments() {
    const GIB: u64 = 1 << 30;
    let dir = std::env::temp_dir().join(format!("vmmresv-ffi-arc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ledger = std::ffi::CString::new(dir.join("arc.ledger").to_str().unwrap()).unwrap();
    let vm = dir.join("vm.pid");
    let mut h: *mut vmmresv_arc = core::ptr::null_mut();
    assert_eq!(
        vmmresv_arc_open(ledger.as_ptr(), core::ptr::null_mut()),
        Status::NullArgument
    );
    assert_eq!(vmmresv_arc_open(ledger.as_ptr(), &mut h), Status::Ok);
    std::fs::write(&vm, "1\n").unwrap();
    let check = std::ffi::CString::new(vm.to_str().unwrap()).unwrap();
    let uuid = c"0badc0de-1111-4222-8333-444455556666";
    let host = vmmresv_arc_host {
        arc_c_min_bytes: GIB,
        arc_c_max_bytes: 8 * GIB,
        ..vmmresv_arc_host::default()
    };
    let mut out = vmmresv_arc_reservation::default();
    let hold = |u: *const c_char, c: *const c_char, bytes: u64, host: &vmmresv_arc_host| {
        let mut o = vmmresv_arc_reservation::default();
        vmmresv_arc_hold(h, u, c, bytes, host, &mut o)
    };
    assert_eq!(
        hold(core::ptr::null(), check.as_ptr(), GIB, &host),
        Status::NullArgument
    );
    assert_eq!(
        hold(uuid.as_ptr(), core::ptr::null(), GIB, &host),
        Status::NullArgument
    );
    assert_eq!(
        hold(c"not-a-uuid".as_ptr(), check.as_ptr(), GIB, &host),
        Status::InvalidArgument
    );
    assert_eq!(
        hold(uuid.as_ptr(), c"relative/vm.pid".as_ptr(), GIB, &host),
        Status::InvalidArgument
    );
    assert_eq!(
        hold(uuid.as_ptr(), check.as_ptr(), 0, &host),
        Status::InvalidArgument
    );
    let upside_down = vmmresv_arc_host {
        arc_c_min_bytes: 9 * GIB,
        ..host
    };
    assert_eq!(
        hold(uuid.as_ptr(), check.as_ptr(), GIB, &upside_down),
        Status::InvalidArgument
    );
    assert_eq!(
        vmmresv_arc_hold(
            h,
            uuid.as_ptr(),
            check.as_ptr(),
            GIB,
            core::ptr::null(),
            &mut out
        ),
        Status::NullArgument
    );
    // Nothing was held by any of those.
    let mut count = 99usize;
    assert_eq!(
        vmmresv_arc_list(h, core::ptr::null_mut(), 0, &mut count),
        Status::Ok
    );
    assert_eq!(count, 0);
    // 1 GiB floor + 8 GiB > 8 GiB: refused, an answer.
    assert_eq!(
        vmmresv_arc_hold(h, uuid.as_ptr(), check.as_ptr(), 8 * GIB, &host, &mut out),
        Status::Ok
    );
    assert_eq!((out.reserved, out.shortfall_bytes), (0, GIB));
    assert_eq!(
        vmmresv_arc_hold(h, uuid.as_ptr(), check.as_ptr(), 2 * GIB, &host, &mut out),
        Status::Ok
    );
    assert_eq!(
        (out.reserved, out.bytes, out.total_reserved_bytes),
        (1, 2 * GIB, 2 * GIB)
    );
    assert_eq!(
        vmmresv_arc_list(h, core::ptr::null_mut(), 1, &mut count),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_arc_list(h, core::ptr::null_mut(), 0, core::ptr::null_mut()),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_arc_list(h, core::ptr::null_mut(), 0, &mut count),
        Status::BufferTooSmall
    );
    assert_eq!(count, 1);
    let mut infos = [vmmresv_arc_hold_info::default(); 2];
    assert_eq!(
        vmmresv_arc_list(h, infos.as_mut_ptr(), 2, &mut count),
        Status::Ok
    );
    let i = &infos[0];
    // SAFETY: the library NUL-terminates both strings.
    let text = |p: &[c_char]| {
        unsafe { CStr::from_ptr(p.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(text(&i.vm_uuid), uuid.to_str().unwrap());
    assert_eq!(text(&i.vm_check_path), vm.to_str().unwrap());
    assert_eq!(
        (i.durable, i.vm_state, i.bytes),
        (1, VMMRESV_ARC_VM_PRESENT, 2 * GIB)
    );
    let (mut target, mut reserved) = (0u64, 0u64);
    assert_eq!(
        vmmresv_arc_target(h, &host, core::ptr::null_mut(), &mut reserved),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_arc_target(h, &host, &mut target, &mut reserved),
        Status::Ok
    );
    assert_eq!((target, reserved), (6 * GIB, 2 * GIB));
    let mut released = 0u64;
    assert_eq!(
        vmmresv_arc_drop(h, uuid.as_ptr(), &mut released),
        Status::Ok
    );
    assert_eq!(released, 2 * GIB);
    assert_eq!(
        vmmresv_arc_drop(h, core::ptr::null(), &mut released),
        Status::NullArgument
    );
    vmmresv_arc_free(h);
    vmmresv_arc_free(h);
    assert_eq!(
        vmmresv_arc_list(h, core::ptr::null_mut(), 0, &mut count),
        Status::InvalidArgument
    );
    assert_eq!(
        vmmresv_arc_reconcile(h, 0, core::ptr::null_mut()),
        Status::InvalidArgument
    );
    assert_eq!(
        vmmresv_arc_list(core::ptr::null(), core::ptr::null_mut(), 0, &mut count),
        Status::NullArgument
    );
    let _ = std::fs::remove_dir_all(&dir);
}
