//! C ABI: boot — the boot-time reservoir setting of RFD 185 (`crate::boot`).
//!
//! A setting is passed as text ("75%", "12G", "default"), as it comes from
//! an SMF property or a config file, so C callers never re-implement the
//! grammar; NULL means the default (75%).

use core::ffi::{c_char, CStr};

use super::boundary::{c_str, checked, export, out, vmmresv_reservoir};
use crate::boot::{self, BootSetting, BootTarget};
use crate::status::{Error, Status};

/// `kind` of a vmmresv_boot_setting: a percentage of the kernel's limit.
pub const VMMRESV_BOOT_PERCENT: u32 = 1;
/// `kind` of a vmmresv_boot_setting: a size in bytes.
pub const VMMRESV_BOOT_SIZE: u32 = 2;
/// The default boot setting (RFD 185): this percentage of the limit.
pub const VMMRESV_BOOT_DEFAULT_PERCENT: u32 = 75;

// A widening cast in a compile-time check.
#[allow(clippy::as_conversions)]
const _: () = assert!(VMMRESV_BOOT_DEFAULT_PERCENT as u64 == crate::policy::DEFAULT_TARGET_PERCENT);

/// A parsed boot-time reservoir setting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_boot_setting {
    /// VMMRESV_BOOT_PERCENT or VMMRESV_BOOT_SIZE.
    pub kind: u32,
    /// The percentage (0 to 100) when `kind` is VMMRESV_BOOT_PERCENT, else 0.
    pub percent: u32,
    /// The size in bytes when `kind` is VMMRESV_BOOT_SIZE, else 0.
    pub size_bytes: u64,
}

impl From<BootSetting> for vmmresv_boot_setting {
    fn from(s: BootSetting) -> Self {
        match s {
            BootSetting::Percent(p) => vmmresv_boot_setting {
                kind: VMMRESV_BOOT_PERCENT,
                percent: p,
                size_bytes: 0,
            },
            BootSetting::Size(b) => vmmresv_boot_setting {
                kind: VMMRESV_BOOT_SIZE,
                percent: 0,
                size_bytes: b,
            },
        }
    }
}

/// What a boot setting means on one host (filled by vmmresv_boot_target()
/// and vmmresv_boot_target_for()): the size to set and how it was
/// reached.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_boot_plan {
    /// The setting, parsed.
    pub setting: vmmresv_boot_setting,
    /// The setting in bytes, before clamping and rounding.
    pub requested_bytes: u64,
    /// The kernel's reservoir limit it was computed against.
    pub limit_bytes: u64,
    /// The size to set: requested, clamped to the limit, rounded down to
    /// the chunk (or the page). Pass it to vmmresv_reservoir_set_target()
    /// with the same chunk.
    pub target_bytes: u64,
    /// 1 if the setting asked for more than the limit and was cut to it,
    /// else 0.
    pub clamped: u32,
}

impl From<BootTarget> for vmmresv_boot_plan {
    fn from(t: BootTarget) -> Self {
        vmmresv_boot_plan {
            setting: t.setting.into(),
            requested_bytes: t.requested_bytes,
            limit_bytes: t.limit_bytes,
            target_bytes: t.target_bytes,
            clamped: u32::from(t.clamped),
        }
    }
}

/// A setting argument: NULL is the default, anything else must parse.
/// A setting's text; none (a NULL argument) is the default setting.
fn setting_arg(text: Option<&CStr>) -> Result<BootSetting, Error> {
    let Some(c) = text else {
        return Ok(BootSetting::default());
    };
    match c.to_str() {
        Ok(s) => BootSetting::parse(s),
        Err(_) => Err(Error::new(Status::ParseSize)),
    }
}

/// Parse a boot-time reservoir setting: a whole percentage of the kernel's
/// limit ("75%", "0%", "100%"), a size with a unit ("12G", "12288M",
/// "1.5T", "4096B"; binary units K M G T P E), or "default" (75%). Blanks
/// around it are ignored. A plain number ("12288") is refused, since
/// rsrvrctl reads it as MiB and vmmresv_size_parse() as bytes.
///
/// Errors: NULL_ARGUMENT (`text` or `out` NULL), PARSE_SIZE (anything
/// else, including a fractional or above-100 percentage), OVERFLOW (a size
/// beyond 64 bits).
#[no_mangle]
pub extern "C" fn vmmresv_boot_setting_parse(
    text: *const c_char,
    out: *mut vmmresv_boot_setting,
) -> Status {
    export(|| {
        let text = c_str!(text)?;
        out!(out)?.set(setting_arg(Some(text))?.into());
        Ok(())
    })
}

/// The reservoir size the boot setting `setting` (text as for
/// vmmresv_boot_setting_parse(); NULL = the default, 75%) means for a
/// kernel limit of `limit_bytes`: a percentage of the limit, or a size
/// clamped to the limit (`clamped` set), rounded down to `chunk_bytes` (a
/// multiple of VMMRESV_PAGESIZE; 0 = the page). 75% gives exactly
/// vmmresv_default_target_for(). Pure: no device is touched.
///
/// Errors: NULL_ARGUMENT (`out` NULL), PARSE_SIZE, OVERFLOW, UNALIGNED
/// (`chunk_bytes` not a multiple of the page).
#[no_mangle]
pub extern "C" fn vmmresv_boot_target_for(
    setting: *const c_char,
    limit_bytes: u64,
    chunk_bytes: u64,
    out: *mut vmmresv_boot_plan,
) -> Status {
    export(|| {
        let out = out!(out)?;
        let t = setting_arg(c_str!(setting).ok())
            .and_then(|s| boot::boot_target(s, limit_bytes, chunk_bytes))?;
        out.set(t.into());
        Ok(())
    })
}

/// As vmmresv_boot_target_for(), with the limit the kernel reports for
/// `reservoir` (a query; no privilege needed). The caller then resizes to
/// `out->target_bytes` with vmmresv_reservoir_set_target() and the same
/// chunk, which is a no-op when the reservoir already has that size: a boot
/// method built on these two calls is idempotent.
///
/// Errors: as vmmresv_boot_target_for(), plus those of
/// vmmresv_reservoir_query() and INVALID_ARGUMENT for a foreign handle.
#[no_mangle]
pub extern "C" fn vmmresv_boot_target(
    reservoir: *const vmmresv_reservoir,
    setting: *const c_char,
    chunk_bytes: u64,
    out: *mut vmmresv_boot_plan,
) -> Status {
    export(|| {
        let r = checked(reservoir)?;
        let out = out!(out)?;
        // Parse before querying: a bad setting is the caller's error
        // whatever the device says.
        let s = setting_arg(c_str!(setting).ok())?;
        let chunk = r.inner.align_chunk(chunk_bytes)?;
        let t = r
            .inner
            .query()
            .and_then(|q| boot::boot_target(s, q.limit, chunk))?;
        out.set(t.into());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn parse_through_the_abi() {
        let mut s = vmmresv_boot_setting::default();
        assert_eq!(
            vmmresv_boot_setting_parse(c" 60% ".as_ptr(), &mut s),
            Status::Ok
        );
        assert_eq!(
            (s.kind, s.percent, s.size_bytes),
            (VMMRESV_BOOT_PERCENT, 60, 0)
        );
        assert_eq!(
            vmmresv_boot_setting_parse(c"4G".as_ptr(), &mut s),
            Status::Ok
        );
        assert_eq!(
            (s.kind, s.percent, s.size_bytes),
            (VMMRESV_BOOT_SIZE, 0, 4 * GIB)
        );
        assert_eq!(
            vmmresv_boot_setting_parse(c"default".as_ptr(), &mut s),
            Status::Ok
        );
        assert_eq!((s.kind, s.percent), (VMMRESV_BOOT_PERCENT, 75));
        assert_eq!(
            vmmresv_boot_setting_parse(c"12288".as_ptr(), &mut s),
            Status::ParseSize
        );
        assert_eq!(
            vmmresv_boot_setting_parse(c"\xff%".as_ptr(), &mut s),
            Status::ParseSize
        );
        assert_eq!(
            vmmresv_boot_setting_parse(core::ptr::null(), &mut s),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_boot_setting_parse(c"75%".as_ptr(), core::ptr::null_mut()),
            Status::NullArgument
        );
    }

    #[test]
    fn target_for_through_the_abi() {
        let limit = 16_350_203_084;
        let mut t = vmmresv_boot_plan::default();
        // NULL = the default, RFD 185's 75% (what vmmresv_default_target_for()
        // gives).
        assert_eq!(
            vmmresv_boot_target_for(core::ptr::null(), limit, GIB, &mut t),
            Status::Ok
        );
        assert_eq!(
            Ok(t.target_bytes),
            crate::policy::default_target_for(limit, GIB)
        );
        assert_eq!(
            (t.setting.kind, t.setting.percent),
            (VMMRESV_BOOT_PERCENT, 75)
        );
        assert_eq!((t.limit_bytes, t.clamped), (limit, 0));
        assert_eq!(
            vmmresv_boot_target_for(c"64G".as_ptr(), limit, GIB, &mut t),
            Status::Ok
        );
        assert_eq!(
            (t.target_bytes, t.requested_bytes, t.clamped),
            (15 * GIB, 64 * GIB, 1)
        );
        assert_eq!(
            vmmresv_boot_target_for(c"75%".as_ptr(), limit, 4095, &mut t),
            Status::Unaligned
        );
        assert_eq!(
            vmmresv_boot_target_for(c"75".as_ptr(), limit, 0, &mut t),
            Status::ParseSize
        );
        assert_eq!(
            vmmresv_boot_target_for(c"75%".as_ptr(), limit, 0, core::ptr::null_mut()),
            Status::NullArgument
        );
    }

    #[test]
    fn target_refuses_a_null_handle() {
        let mut t = vmmresv_boot_plan::default();
        assert_eq!(
            vmmresv_boot_target(core::ptr::null(), c"75%".as_ptr(), 0, &mut t),
            Status::NullArgument
        );
    }
}
