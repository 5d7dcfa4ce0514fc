//! Sizing profiles (vmmresv_policy(3VMMRESV), "Sizing profiles").

use core::ffi::c_char;

use super::super::boundary::{
    boundary, c_values, checked, export, out, read_in, vmmresv_admission,
};
use crate::policy::headroom::{self, Fraction, Profile, ProfileInputs};
use crate::status::{Error, Status};

/// Sizing profile: RFD 185, a percentage (75) of the kernel's reservoir limit.
pub const VMMRESV_PROFILE_RFD185: u32 = 1;
/// Sizing profile: Oxide omicron, 91% of (RAM - page_t - earmark), 2 MiB aligned.
pub const VMMRESV_PROFILE_OMICRON: u32 = 2;
/// Sizing profile: Triton CNAPI, 85% of RAM - the VMs' caps.
pub const VMMRESV_PROFILE_CNAPI: u32 = 3;

c_values!(Profile {
    Rfd185 = VMMRESV_PROFILE_RFD185,
    Omicron = VMMRESV_PROFILE_OMICRON,
    Cnapi = VMMRESV_PROFILE_CNAPI,
});

/// What the sizing profiles read. Fill it with
/// vmmresv_profile_inputs_default() (which sets the percentages) and set
/// the sizes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vmmresv_profile_inputs {
    /// Physical memory.
    pub physmem_bytes: u64,
    /// The reservoir limit the kernel reports (vmmresv_query.limit_bytes).
    pub kernel_limit_bytes: u64,
    /// OMICRON: the control-plane earmark (0 by default; Oxide Gimlets
    /// ship 45056 MiB).
    pub omicron_earmark_bytes: u64,
    /// CNAPI: Σ max_physical_memory of the VMs on the host.
    pub vm_caps_bytes: u64,
    /// RFD185: percent of the kernel limit (75), at most 100.
    pub rfd185_pct: u32,
    /// OMICRON: percent of the eligible memory (91), at most 100.
    pub omicron_pct: u32,
    /// CNAPI: percent of physical memory (85), at most 100.
    pub cnapi_pct: u32,
    /// Must be 0 (room for later versions).
    pub reserved: u32,
}

static_assertions::assert_eq_size!(vmmresv_profile_inputs, [u64; 6]);

impl From<vmmresv_profile_inputs> for ProfileInputs {
    fn from(i: vmmresv_profile_inputs) -> Self {
        ProfileInputs {
            physmem_bytes: i.physmem_bytes,
            kernel_limit_bytes: i.kernel_limit_bytes,
            rfd185_pct: i.rfd185_pct,
            omicron_pct: i.omicron_pct,
            omicron_earmark_bytes: i.omicron_earmark_bytes,
            cnapi_pct: i.cnapi_pct,
            vm_caps_bytes: i.vm_caps_bytes,
        }
    }
}

/// Fill `*out` with the profiles' percentages (RFD 185 75, omicron 91,
/// CNAPI 85) and every size 0.
#[no_mangle]
pub extern "C" fn vmmresv_profile_inputs_default(out: *mut vmmresv_profile_inputs) -> Status {
    export(|| {
        let out = out!(out)?;
        let d = ProfileInputs::default();
        out.set(vmmresv_profile_inputs {
            physmem_bytes: d.physmem_bytes,
            kernel_limit_bytes: d.kernel_limit_bytes,
            omicron_earmark_bytes: d.omicron_earmark_bytes,
            vm_caps_bytes: d.vm_caps_bytes,
            rfd185_pct: d.rfd185_pct,
            omicron_pct: d.omicron_pct,
            cnapi_pct: d.cnapi_pct,
            reserved: 0,
        });
        Ok(())
    })
}

/// The reservoir size the sizing profile `profile` (a VMMRESV_PROFILE_*
/// value) gives: RFD185, rfd185_pct of the kernel limit rounded down to the
/// page (with 75, what vmmresv_default_target_for() gives with chunk 0);
/// OMICRON, omicron_pct of (physmem - 120 bytes per 4 KiB page - earmark),
/// rounded down to 2 MiB; CNAPI, cnapi_pct of physmem - vm_caps_bytes.
/// Each is 0 rather than negative. INVALID_ARGUMENT for an unknown
/// profile, a percentage above 100 or a nonzero `reserved`.
#[no_mangle]
pub extern "C" fn vmmresv_sizing(
    profile: u32,
    inputs: *const vmmresv_profile_inputs,
    out: *mut u64,
) -> Status {
    export(|| {
        let p = Profile::from_u32(profile).ok_or(Status::InvalidArgument)?;
        let i = read_in!(inputs)?;
        if i.reserved != 0 {
            return Err(Error::new(Status::InvalidArgument));
        }
        let out = out!(out)?;
        out.set(headroom::sizing(p, &i.into())?);
        Ok(())
    })
}

/// What vmmresv_sizing() gives with the exact fraction `numerator` /
/// `denominator` of the profile's share in place of its percentage (the
/// percentages of `inputs` are not read): omicron's 86.3% is 8630 / 10000
/// (basis points) or 863 / 1000. A whole percentage as pct / 100 gives what
/// vmmresv_sizing() gives with it. INVALID_ARGUMENT for an unknown profile,
/// a zero `denominator`, a fraction above 1 or a nonzero `reserved`
/// (ABI 1.2).
#[no_mangle]
pub extern "C" fn vmmresv_sizing_fraction(
    profile: u32,
    inputs: *const vmmresv_profile_inputs,
    numerator: u64,
    denominator: u64,
    out: *mut u64,
) -> Status {
    export(|| {
        let p = Profile::from_u32(profile).ok_or(Status::InvalidArgument)?;
        let i = read_in!(inputs)?;
        if i.reserved != 0 {
            return Err(Error::new(Status::InvalidArgument));
        }
        let f = Fraction::new(numerator, denominator)?;
        let out = out!(out)?;
        out.set(headroom::sizing_fraction(p, &i.into(), f)?);
        Ok(())
    })
}

/// The share of the sizing profile `profile` that the capacity reports of
/// `admission_handle` apply (vmmresv_report_json()'s "profiles"), as the
/// exact fraction `numerator` / `denominator`, in place of its default
/// percentage (RFD 185 75/100, omicron 91/100, CNAPI 85/100).
/// INVALID_ARGUMENT for an unknown profile, a zero `denominator` or a
/// fraction above 1 (ABI 1.2).
#[no_mangle]
pub extern "C" fn vmmresv_admission_set_profile_fraction(
    admission_handle: *const vmmresv_admission,
    profile: u32,
    numerator: u64,
    denominator: u64,
) -> Status {
    export(|| {
        let a = checked(admission_handle)?;
        let p = Profile::from_u32(profile).ok_or(Status::InvalidArgument)?;
        a.inner
            .set_profile_fraction(p, Fraction::new(numerator, denominator)?);
        Ok(())
    })
}

/// A static, NUL-terminated name of the sizing profile `profile`:
/// "rfd185", "omicron", "triton-cnapi", or "unknown". Never NULL; must not
/// be freed.
#[no_mangle]
pub extern "C" fn vmmresv_profile_name(profile: u32) -> *const c_char {
    boundary(|| match Profile::from_u32(profile) {
        Some(p) => p.c_name().as_ptr(),
        None => c"unknown".as_ptr(),
    })
}
