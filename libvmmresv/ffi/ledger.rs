//! The in-process claim ledger (vmmresv_ledger(3VMMRESV)).

use super::boundary::{
    boundary, checked, export, fail, free_handle, new_handle, ok, opt_out, out, vmmresv_ledger,
};
use crate::admission::local::LocalLedger;
use crate::status::{Error, Status};

/// Create an in-process ledger of `capacity_pages` pages (at most 2^48 - 1).
/// `*out` receives a handle to free with vmmresv_ledger_free(), or NULL on
/// failure (INVALID_ARGUMENT for a capacity too large).
#[no_mangle]
pub extern "C" fn vmmresv_ledger_new(capacity_pages: u64, out: *mut *mut vmmresv_ledger) -> Status {
    export(|| {
        let out = out!(out)?;
        out.set(core::ptr::null_mut());
        let inner = LocalLedger::new(capacity_pages)?;
        out.set(new_handle(vmmresv_ledger { inner })?);
        Ok(())
    })
}

/// Free a ledger; NULL or a ledger already freed is a no-op, and every
/// later call with it returns INVALID_ARGUMENT. Freeing it while another
/// thread still uses it is the caller's bug.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_free(ledger: *mut vmmresv_ledger) {
    // SAFETY: this export holds no reference to the object; one another
    // thread still holds is the C caller's bug (documented).
    boundary(|| unsafe { free_handle(ledger) })
}

/// Claim `pages` pages. OK, or REFUSED when claimed + `pages` would pass
/// the capacity: nothing is claimed and `*shortfall_pages` (may be NULL)
/// receives by how much it would (otherwise 0). Exact: a claim is refused
/// only if it does not fit at the instant it is decided. 0 pages always
/// succeeds.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_claim(
    ledger: *const vmmresv_ledger,
    pages_count: u64,
    shortfall_pages: *mut u64,
) -> Status {
    boundary(|| {
        opt_out!(shortfall_pages).set(0);
        let l = match checked(ledger) {
            Ok(l) => l,
            Err(s) => return fail(Error::new(s)),
        };
        match l.inner.try_claim(pages_count) {
            Ok(()) => ok(),
            Err(r) => {
                opt_out!(shortfall_pages).set(r.shortfall);
                fail(r.into())
            }
        }
    })
}

/// Release `pages` pages claimed earlier. Releasing more than is claimed is
/// a caller bug: a release build clamps the count at 0 rather than wrap
/// it; a debug build of the library reports it as VMMRESV_STATUS_PANIC.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_release(
    ledger: *const vmmresv_ledger,
    pages_count: u64,
) -> Status {
    boundary(|| match checked(ledger) {
        Ok(l) => {
            l.inner.release(pages_count);
            ok()
        }
        Err(s) => fail(Error::new(s)),
    })
}

/// Change the capacity to `capacity_pages`; `*old_pages` (may be NULL)
/// receives the previous one. Lowering it below what is claimed is refused
/// with NO_SPACE and changes nothing (as Linux memcg refuses a limit under
/// usage); a claim racing the change is checked against exactly one of the
/// two capacities.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_set_capacity(
    ledger: *const vmmresv_ledger,
    capacity_pages: u64,
    old_pages: *mut u64,
) -> Status {
    export(|| {
        let l = checked(ledger)?;
        opt_out!(old_pages).set(l.inner.set_capacity(capacity_pages)?);
        Ok(())
    })
}

/// The claimed pages and the capacity at one instant. Either pointer may be
/// NULL.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_usage(
    ledger: *const vmmresv_ledger,
    claimed_pages: *mut u64,
    capacity_pages: *mut u64,
) -> Status {
    export(|| {
        let u = checked(ledger)?.inner.usage();
        opt_out!(claimed_pages).set(u.claimed);
        opt_out!(capacity_pages).set(u.capacity);
        Ok(())
    })
}
