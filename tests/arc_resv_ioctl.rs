//! OS-8005's per-VM `VM_ARC_RESV` in both public encodings, against the
//! emulated kernels (tests/emu, `VMMEMU_ARC_RESV`):
//!
//! - the early illumos-joyent tree: `_IOW('v', 258, uint64_t)` =
//!   0x80087702, the length by value, and no `VMM_INTERFACE_VERSION`;
//! - the later tree: `VMM_IOC_BASE | 0xfe` = 0x766DFE, a pointer to a
//!   `size_t` the kernel copies in; its instance device tells the
//!   interface version (V6 and later) or not (earlier);
//! - neither (upstream illumos): UNSUPPORTED.
//!
//! The emulator counts which number it got and records the pages each VM
//! reserved, so the tests see that a length only reached the kernel that
//! reads one and a pointer only the one that copies in. Seen failing before
//! the library knew the second encoding: the copyin kernel answered ENOTTY
//! and the call reported UNSUPPORTED.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]

mod common;

use std::ffi::CString;
use std::os::fd::AsFd;

use common::child::{self, run};
use common::*;
use vmmresv::arc::reserve::{apply_illumos, ArcResvAbi};
use vmmresv::ffi::{vmmresv_arc_apply_illumos, vmmresv_last_errno};
use vmmresv::Status;
use zerocopy::IntoBytes;

fn create_vm(name: &str) {
    let ctl = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_excl()
        .open("/dev/vmmctl")
        .unwrap();
    let mut req = vmmresv::sys::vm_create_req {
        name: [0; 128],
        flags: 0,
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: a live vm_create_req for the duration of the call.
    let rv = unsafe {
        vmmresv::sys::ioctl(
            ctl.as_fd(),
            vmmresv::sys::VMM_CREATE_VM,
            req.as_mut_bytes().as_mut_ptr().cast(),
        )
    };
    assert_eq!(rv, Ok(0));
}

/// Child: create VM `name`, reserve `bytes` through the Rust API and then
/// the same again through the C ABI; report both outcomes.
fn scenario(role: &str) {
    let parts: Vec<&str> = role.split(':').collect();
    let (name, bytes): (&str, u64) = (parts[0], parts[1].parse().unwrap());
    create_vm(name);
    let dev = std::path::Path::new("/dev/vmm").join(name);
    let rust = match apply_illumos(&dev, bytes) {
        Ok(ArcResvAbi::ByValue) => "byvalue".to_string(),
        Ok(ArcResvAbi::Copyin) => "copyin".to_string(),
        Err(e) => format!("{:?}/{}", e.status(), e.errno().unwrap_or(0)),
    };
    let cname = CString::new(name).unwrap();
    let st = vmmresv_arc_apply_illumos(cname.as_ptr(), bytes);
    println!("RESULT {} {:?}/{}", rust, st, vmmresv_last_errno());
}

fn as_child() -> bool {
    match child::role() {
        Some(role) => {
            scenario(&role);
            true
        }
        None => false,
    }
}

const BYTES: u64 = 3 * MIB + 1; // 769 pages, rounded up

#[test]
fn early_kernel_gets_the_length_by_value() {
    if as_child() {
        return;
    }
    let mut host = EmuHost::new("arc-byvalue", 16 * GIB);
    host.set("VMMEMU_ARC_RESV", "byvalue");
    let r = run(
        &host,
        "early_kernel_gets_the_length_by_value",
        &format!("vm1:{BYTES}"),
    );
    // No version on its instance device: by value first, taken.
    assert_eq!(r, ["byvalue", "Ok/0"]);
    assert_eq!(host.stat("arc_resv_pages"), 2 * 769);
    assert_eq!(host.stat("arc_ioctls_byvalue"), 2);
    assert_eq!(host.stat("arc_ioctls_copyin"), 0);
}

#[test]
fn later_kernel_gets_a_pointer_when_it_tells_its_version() {
    if as_child() {
        return;
    }
    let mut host = EmuHost::new("arc-copyin", 16 * GIB);
    host.set("VMMEMU_ARC_RESV", "copyin");
    let r = run(
        &host,
        "later_kernel_gets_a_pointer_when_it_tells_its_version",
        &format!("vm2:{BYTES}"),
    );
    assert_eq!(r, ["copyin", "Ok/0"]);
    assert_eq!(host.stat("arc_resv_pages"), 2 * 769);
    // It told its version: the by-value number was never sent.
    assert_eq!(host.stat("arc_ioctls_byvalue"), 0);
    assert_eq!(host.stat("arc_ioctls_copyin"), 2);
}

#[test]
fn later_kernel_silent_about_its_version_is_tried_both_ways() {
    if as_child() {
        return;
    }
    let mut host = EmuHost::new("arc-copyin-v5", 16 * GIB);
    host.set("VMMEMU_ARC_RESV", "copyin");
    // Before V6 instance devices do not answer VMM_INTERFACE_VERSION.
    host.set("VMMEMU_VERSION", "5");
    let r = run(
        &host,
        "later_kernel_silent_about_its_version_is_tried_both_ways",
        &format!("vm3:{BYTES}"),
    );
    assert_eq!(r, ["copyin", "Ok/0"]);
    // By value first (ENOTTY there, nothing read), then the pointer; the
    // reservation is exactly the length asked for.
    assert_eq!(host.stat("arc_ioctls_byvalue"), 2);
    assert_eq!(host.stat("arc_ioctls_copyin"), 2);
    assert_eq!(host.stat("arc_resv_pages"), 2 * 769);
}

#[test]
fn neither_kernel_is_unsupported() {
    if as_child() {
        return;
    }
    let host = EmuHost::new("arc-none", 16 * GIB);
    let r = run(
        &host,
        "neither_kernel_is_unsupported",
        &format!("vm4:{BYTES}"),
    );
    let enotty = libc::ENOTTY;
    assert_eq!(
        r,
        [
            format!("Unsupported/{enotty}"),
            format!("{:?}/{enotty}", Status::Unsupported)
        ]
    );
    // Upstream tells its version: only the pointer form was tried.
    assert_eq!(host.stat("arc_ioctls_byvalue"), 0);
    assert_eq!(host.stat("arc_ioctls_copyin"), 2);
    assert_eq!(host.stat("arc_resv_pages"), 0);
}
