//! C ABI: the host's memory readings and the capacity report (ABI 1.1).

use core::ffi::c_char;

use super::boundary::{
    checked, export, opt_path, opt_read, out, read_in, text_buf, vmmresv_admission,
    vmmresv_arc_host, NullBuf,
};
use crate::host::{self, HostMemory};
use crate::report::ReportInputs;
use crate::status::{Error, Status};

/// A host's memory: how much there is and how much is free, in bytes.
/// Fill it with vmmresv_host_read_linux() or vmmresv_host_read_kstat(), or
/// from any other source the caller trusts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_host_memory {
    /// Memory the kernel manages (Linux `MemTotal`, illumos `physmem`).
    pub physmem_bytes: u64,
    /// Memory a new VM can have without reclaiming anything (Linux
    /// `MemAvailable`, illumos `freemem`). At most `physmem_bytes`.
    pub free_bytes: u64,
}

impl From<HostMemory> for vmmresv_host_memory {
    fn from(h: HostMemory) -> Self {
        vmmresv_host_memory {
            physmem_bytes: h.physmem_bytes,
            free_bytes: h.free_bytes,
        }
    }
}

impl vmmresv_host_memory {
    /// A caller's reading, checked (free memory above physmem is
    /// INVALID_ARGUMENT).
    pub(in crate::ffi) fn host(self) -> Result<HostMemory, Error> {
        let h = HostMemory::from(self);
        if h.free_bytes > h.physmem_bytes {
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(h)
    }
}

impl From<vmmresv_host_memory> for HostMemory {
    fn from(h: vmmresv_host_memory) -> Self {
        HostMemory {
            physmem_bytes: h.physmem_bytes,
            free_bytes: h.free_bytes,
        }
    }
}

/// Read Linux's `<root>/proc/meminfo` (`root` NULL for "/"): `MemTotal`
/// and `MemAvailable`. MALFORMED_INPUT if either is missing, repeated, not
/// in kB, or available exceeds total; IO if the file cannot be read.
#[no_mangle]
pub extern "C" fn vmmresv_host_read_linux(
    root: *const c_char,
    out: *mut vmmresv_host_memory,
) -> Status {
    export(|| {
        out!(out)?.set(host::read_linux(opt_path!(root)).map(Into::into)?);
        Ok(())
    })
}

/// Read a file holding illumos `kstat -p unix:0:system_pages` output (the
/// library does not run kstat): `physmem` and `freemem`, in 4 KiB pages.
/// MALFORMED_INPUT for a line of another kstat, a missing or repeated
/// counter, or freemem above physmem; IO if the file cannot be read.
#[no_mangle]
pub extern "C" fn vmmresv_host_read_kstat(
    path: *const c_char,
    out: *mut vmmresv_host_memory,
) -> Status {
    export(|| {
        let Some(p) = opt_path!(path) else {
            return Err(Error::new(Status::NullArgument));
        };
        out!(out)?.set(host::read_kstat(p).map(Into::into)?);
        Ok(())
    })
}

/// The report's inputs besides the host reading, all in bytes; zero for
/// "none". Named so the report can say what each took away.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_report_inputs {
    /// Driver DMA preallocation (RFD 185: i40e with many VNICs).
    pub driver_dma_bytes: u64,
    /// The sum of zones' memory caps.
    pub zone_caps_bytes: u64,
    /// Memory kept for the OS itself.
    pub os_reserve_bytes: u64,
    /// Memory kept unused so a VM can grow at once (KVM Forum's
    /// overcommit buffer).
    pub overcommit_buffer_bytes: u64,
    /// omicron's control-plane earmark, for the omicron sizing profile
    /// (Gimlets ship 45056 MiB).
    pub omicron_earmark_bytes: u64,
    /// The sum of VM memory caps, for the Triton CNAPI sizing profile.
    pub vm_caps_bytes: u64,
    /// Chunk the default reservoir target is rounded down to; 0 for 4 KiB
    /// pages.
    pub chunk_bytes: u64,
    /// vCPUs of the VM shape the "largest VM" figures are computed for.
    pub reference_vcpus: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// The host capacity report, as one JSON object (schema
/// "vmmresv-report/2", described in vmmresv_report(3VMMRESV)): reservoir
/// figures and pending claims, the ARC, the headroom breakdown (physical
/// memory less 120% of unlockable pages, the ARC floor and each named
/// input of `inputs`), the peers' sizing rules, the memory state, the
/// largest VM admissible with and without the reservoir under the
/// handle's policy, and the default reservoir target.
///
/// `host`: a reading of the host's memory. `inputs`: may be NULL (all
/// zero). `arc`: may be NULL for the ARC host set with
/// vmmresv_admission_set_arc(), if any. The text is written NUL-terminated
/// into `buf` of `buf_len` bytes; `*needed` (may be NULL) receives the
/// bytes required including the NUL; if `buf_len` is smaller, nothing is
/// written and BUFFER_TOO_SMALL is returned (`buf` may be NULL when
/// `buf_len` is 0, to ask for the size). The size can change between two
/// calls: ask again on BUFFER_TOO_SMALL.
#[no_mangle]
pub extern "C" fn vmmresv_report_json(
    admission_handle: *const vmmresv_admission,
    host: *const vmmresv_host_memory,
    inputs: *const vmmresv_report_inputs,
    arc: *const vmmresv_arc_host,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let host = read_in!(host)?.host()?;
        let i = opt_read!(inputs).unwrap_or_default();
        if i.reserved != 0 {
            return Err(Error::new(Status::InvalidArgument));
        }
        let arc = match opt_read!(arc) {
            Some(h) => Some(h.arc_host()?),
            None => None,
        };
        let r = a.inner.report(&ReportInputs {
            host,
            arc,
            driver_dma_bytes: i.driver_dma_bytes,
            zone_caps_bytes: i.zone_caps_bytes,
            os_reserve_bytes: i.os_reserve_bytes,
            overcommit_buffer_bytes: i.overcommit_buffer_bytes,
            omicron_earmark_bytes: i.omicron_earmark_bytes,
            vm_caps_bytes: i.vm_caps_bytes,
            chunk_bytes: i.chunk_bytes,
            reference_vcpus: i.reference_vcpus,
            // The handle's (vmmresv_admission_set_profile_fraction()).
            profile_fractions: None,
        })?;
        text_buf!(buf, buf_len, needed, NullBuf::NullFirst).write(r.to_json().as_bytes(), || Ok(()))
    })
}

#[cfg(test)]
// Test code: C-sized literals and unwraps are the point.
#[allow(
    clippy::as_conversions,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "opens a file, refused by Miri's isolation")]
    fn readers_refuse_nulls() {
        assert_eq!(
            vmmresv_host_read_kstat(core::ptr::null(), &mut Default::default()),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_host_read_linux(c"/nonexistent-root".as_ptr(), core::ptr::null_mut()),
            Status::NullArgument
        );
        let mut h = vmmresv_host_memory::default();
        assert_eq!(
            vmmresv_host_read_linux(c"/nonexistent-root".as_ptr(), &mut h),
            Status::Io
        );
    }

    /// The text protocol as vmmresv_report_json() documents it.
    fn put_text(text: &[u8], buf: *mut c_char, buf_len: usize, needed: *mut usize) -> Status {
        use crate::ffi::boundary::IntoStatus;
        text_buf!(buf, buf_len, needed, NullBuf::NullFirst)
            .write(text, || Ok(()))
            .into_status()
    }

    #[test]
    fn text_protocol() {
        let mut need = 0usize;
        assert_eq!(
            put_text(b"abc", core::ptr::null_mut(), 0, &mut need),
            Status::BufferTooSmall
        );
        assert_eq!(need, 4);
        assert_eq!(
            put_text(b"abc", core::ptr::null_mut(), 2, &mut need),
            Status::NullArgument
        );
        let mut buf = [0x55 as c_char; 4];
        assert_eq!(
            put_text(b"abc", buf.as_mut_ptr(), 3, core::ptr::null_mut()),
            Status::BufferTooSmall
        );
        assert_eq!(buf[0], 0x55);
        assert_eq!(put_text(b"abc", buf.as_mut_ptr(), 4, &mut need), Status::Ok);
        assert_eq!(buf, [b'a' as c_char, b'b' as c_char, b'c' as c_char, 0]);
    }

    #[test]
    fn report_refuses_bad_arguments() {
        let h = vmmresv_host_memory {
            physmem_bytes: 1,
            free_bytes: 2,
        };
        assert_eq!(h.host().unwrap_err().status(), Status::InvalidArgument);
        assert_eq!(
            vmmresv_report_json(
                core::ptr::null(),
                &h,
                core::ptr::null(),
                core::ptr::null(),
                core::ptr::null_mut(),
                0,
                core::ptr::null_mut()
            ),
            Status::NullArgument
        );
    }
}
