//! ABI 1.2: handing a VM's claims to the program that allocates its
//! memory (vmmresv_handoff(3VMMRESV)), and where the ledger's path came
//! from.

use core::ffi::c_char;

use super::boundary::{
    c_str, c_values, checked, export, out, text_buf, uuid_arg, vmmresv_admission, NullBuf,
};
use crate::rundir::RunDirOrigin;
use crate::status::{Error, Status};

/// Write the hand-off token for VM `vm_uuid`'s claims (admission claim,
/// ARC reservation, host-memory claim) held by this process into `buf`
/// (`buf_len` bytes, NUL-terminated), and make the ledger descriptors
/// survive an exec. Give the token to the program that will allocate the
/// VM's memory (conventionally in the environment variable
/// VMMRESV_HANDOFF) and have it call vmmresv_adopt(). `*needed` (may be
/// NULL) receives the bytes the token needs including the NUL; if
/// `buf_len` is smaller, nothing is written or changed and BUFFER_TOO_SMALL
/// is returned (`buf` may be NULL when `buf_len` is 0).
/// VMMRESV_HANDOFF_BUFSIZE bytes always suffice. NOT_FOUND if this process
/// holds no claim for the VM, NOT_HOLDER if another process holds it.
#[no_mangle]
pub extern "C" fn vmmresv_handoff(
    admission_handle: *const vmmresv_admission,
    vm_uuid: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let uuid = uuid_arg!(vm_uuid)?;
        let token = a.inner.handoff_token(&uuid)?;
        // Nothing changes unless the token is delivered: the descriptors
        // are made to survive an exec only once the buffer is known to fit.
        text_buf!(buf, buf_len, needed, NullBuf::SizeFirst)
            .write(token.render().as_bytes(), || a.inner.handoff_fds(&token))
    })
}

/// Bytes that always hold a hand-off token and its NUL.
pub const VMMRESV_HANDOFF_BUFSIZE: usize = 512;

/// Make this process a holder of the claims `token` names (made by
/// vmmresv_handoff() in the launcher): after a fork and exec, the launcher
/// and this process both hold them until one commits or aborts, and the
/// claims live while either lives; after an exec in place, this process
/// goes on holding them. Then vmmresv_commit()/vmmresv_abort() work here.
/// NOT_FOUND if a claim is gone or nobody holds it any more (or, after an
/// exec in place, the ledger descriptor did not survive it), BUSY if
/// another process adopted it already, INVALID_ARGUMENT for a malformed
/// token, LEDGER_REPLACED if the ledger is not the one the handle opened.
#[no_mangle]
pub extern "C" fn vmmresv_adopt(
    admission_handle: *mut vmmresv_admission,
    token: *const c_char,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let Ok(text) = c_str!(token)?.to_str() else {
            return Err(Error::new(Status::InvalidArgument));
        };
        a.inner.adopt(text)?;
        Ok(())
    })
}

/// Where the admission handle's ledger path came from: `*origin` receives
/// VMMRESV_LEDGER_ORIGIN_DEFAULT or _CONFIG (the host-wide setting every
/// launcher shares), or _ENVIRONMENT or _ARGUMENT (an override for this
/// process: two ledgers for one host protect nothing).
#[no_mangle]
pub extern "C" fn vmmresv_admission_ledger_origin(
    admission_handle: *const vmmresv_admission,
    origin: *mut u32,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        out!(origin)?.set(a.inner.ledger_origin().to_u32());
        Ok(())
    })
}

/// `origin`: the built-in default run directory.
pub const VMMRESV_LEDGER_ORIGIN_DEFAULT: u32 = 0;
/// `origin`: `run_dir=` in the host's config file.
pub const VMMRESV_LEDGER_ORIGIN_CONFIG: u32 = 1;
/// `origin`: the VMMRESV_RUNDIR environment variable (an override).
pub const VMMRESV_LEDGER_ORIGIN_ENVIRONMENT: u32 = 2;
/// `origin`: a path given to vmmresv_admission_open() (an override).
pub const VMMRESV_LEDGER_ORIGIN_ARGUMENT: u32 = 3;

c_values!(RunDirOrigin {
    Default = VMMRESV_LEDGER_ORIGIN_DEFAULT,
    Config = VMMRESV_LEDGER_ORIGIN_CONFIG,
    Environment = VMMRESV_LEDGER_ORIGIN_ENVIRONMENT,
    Argument = VMMRESV_LEDGER_ORIGIN_ARGUMENT,
});
static_assertions::const_assert!(VMMRESV_HANDOFF_BUFSIZE > 17 + 5 + 8 + 38 + 16 + 16 + 8 * 20 + 8);
