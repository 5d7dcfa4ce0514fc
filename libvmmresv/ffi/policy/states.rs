//! Memory states (vmmresv_policy(3VMMRESV), "Memory states").

use core::ffi::c_char;

use super::super::boundary::{boundary, c_values, export, out};
use crate::policy::states::{self, MemState, MinFreeScale, Thresholds};
use crate::status::Status;

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

c_values!(MemState {
    High = VMMRESV_MEMSTATE_HIGH,
    Soft = VMMRESV_MEMSTATE_SOFT,
    Hard = VMMRESV_MEMSTATE_HARD,
    Low = VMMRESV_MEMSTATE_LOW,
    Exhausted = VMMRESV_MEMSTATE_EXHAUSTED,
});

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

/// The minFree and state thresholds of a host with `physmem_bytes` of
/// memory (VMware's sliding scale: a 100 GiB host keeps 1.6 GiB free).
#[no_mangle]
pub extern "C" fn vmmresv_memory_thresholds(
    physmem_bytes: u64,
    out: *mut vmmresv_thresholds,
) -> Status {
    export(|| {
        out!(out)?.set(states::thresholds(&MinFreeScale::default(), physmem_bytes).into());
        Ok(())
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
    export(|| {
        let state = out!(state)?;
        let t = states::thresholds(&MinFreeScale::default(), physmem_bytes);
        state.set(states::state(&t, free_bytes).to_u32());
        Ok(())
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
