//! Page arithmetic and size strings (vmmresv_pages(3VMMRESV)).

use core::ffi::c_char;

use super::boundary::{c_str, export, out, text_buf, NullBuf};
use crate::pages::{self, PageSize};
use crate::status::{Error, Status};

/// The base page size (illumos PAGESIZE on amd64): every reservoir size and
/// chunk must be a multiple of it.
pub const VMMRESV_PAGESIZE: u64 = 4096;
/// The 2 MiB large page size.
pub const VMMRESV_PAGESIZE_2M: u64 = 2_097_152;
/// The 1 GiB huge page size.
pub const VMMRESV_PAGESIZE_1G: u64 = 1_073_741_824;
/// Size of the buffer vmmresv_size_format() may need, NUL included.
pub const VMMRESV_SIZE_FORMAT_BUFSIZE: usize = 23;
/// Bytes of kernel memory one illumos `page_t` costs per 4 KiB page (amd64).
pub const VMMRESV_PAGE_T_SIZE: u64 = 120;

// Keep the C-visible constants tied to the Rust ones.
static_assertions::const_assert_eq!(VMMRESV_PAGESIZE, pages::PAGESIZE);
static_assertions::const_assert_eq!(VMMRESV_PAGESIZE_2M, pages::PAGESIZE_2M);
static_assertions::const_assert_eq!(VMMRESV_PAGESIZE_1G, pages::PAGESIZE_1G);
static_assertions::const_assert_eq!(VMMRESV_PAGE_T_SIZE, pages::PAGE_T_SIZE);
static_assertions::const_assert_eq!(VMMRESV_SIZE_FORMAT_BUFSIZE, pages::FORMAT_SIZE_MAX_LEN + 1);

fn page_size(bytes: u64) -> Result<PageSize, Error> {
    PageSize::from_bytes(bytes)
}

/// Bytes to pages of `page_size` bytes (4096, 2 MiB or 1 GiB), rounding
/// down (illumos btop). INVALID_ARGUMENT for any other page size.
#[no_mangle]
pub extern "C" fn vmmresv_btop(bytes: u64, page_size_bytes: u64, out: *mut u64) -> Status {
    export(|| {
        out!(out)?.set(page_size(page_size_bytes).map(|ps| pages::btop(bytes, ps))?);
        Ok(())
    })
}

/// Bytes to pages of `page_size` bytes, rounding up (illumos btopr). Never
/// wraps, even for sizes near UINT64_MAX.
#[no_mangle]
pub extern "C" fn vmmresv_btopr(bytes: u64, page_size_bytes: u64, out: *mut u64) -> Status {
    export(|| {
        out!(out)?.set(page_size(page_size_bytes).map(|ps| pages::btopr(bytes, ps))?);
        Ok(())
    })
}

/// Pages of `page_size` bytes to bytes (illumos ptob). OVERFLOW if the
/// result does not fit in 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_ptob(pages_count: u64, page_size_bytes: u64, out: *mut u64) -> Status {
    export(|| {
        out!(out)?.set(page_size(page_size_bytes).and_then(|ps| pages::ptob(pages_count, ps))?);
        Ok(())
    })
}

/// Round `bytes` up to a multiple of `align` (any nonzero value: a page
/// or a chunk). INVALID_ARGUMENT for 0, OVERFLOW if it does not fit.
#[no_mangle]
pub extern "C" fn vmmresv_round_up(bytes: u64, align: u64, out: *mut u64) -> Status {
    export(|| {
        out!(out)?.set(pages::round_up(bytes, align)?);
        Ok(())
    })
}

/// Round `bytes` down to a multiple of `align` (nonzero).
#[no_mangle]
pub extern "C" fn vmmresv_round_down(bytes: u64, align: u64, out: *mut u64) -> Status {
    export(|| {
        out!(out)?.set(pages::round_down(bytes, align)?);
        Ok(())
    })
}

/// Kernel memory the `page_t` structures of `pages_count` 4 KiB pages take
/// (VMMRESV_PAGE_T_SIZE each): memory that can never go to a VM.
#[no_mangle]
pub extern "C" fn vmmresv_page_t_overhead(pages_count: u64, out: *mut u64) -> Status {
    export(|| {
        out!(out)?.set(pages::page_t_overhead(pages_count)?);
        Ok(())
    })
}

/// Parse a size as rsrvrctl and vmadm users type it: "4096" (bytes),
/// "512M", "64G", "1.5T", "64GiB" (binary units K M G T P E), or a
/// percentage of `base` ("75%"). `base` 0 means there is none: a
/// percentage is then INVALID_ARGUMENT. PARSE_SIZE for anything else,
/// OVERFLOW beyond 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_size_parse(text: *const c_char, base: u64, out: *mut u64) -> Status {
    export(|| {
        let r = match c_str!(text)?.to_str() {
            Ok(s) => pages::parse_size(s, if base == 0 { None } else { Some(base) }),
            Err(_) => Err(Error::new(Status::ParseSize)),
        };
        out!(out)?.set(r?);
        Ok(())
    })
}

/// Format `bytes` as the shortest exact size string ("64G", "1.5T",
/// "4K", "1000"), which vmmresv_size_parse() reads back to the same value.
/// Writes it NUL-terminated into `buf` of `buf_len` bytes. `*needed` (may
/// be NULL) receives the bytes required including the NUL; if `buf_len` is
/// smaller, nothing is written and BUFFER_TOO_SMALL is returned. `buf` may
/// be NULL when `buf_len` is 0 (to ask for the size).
/// VMMRESV_SIZE_FORMAT_BUFSIZE bytes always suffice.
#[no_mangle]
pub extern "C" fn vmmresv_size_format(
    bytes: u64,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> Status {
    export(|| {
        let mut tmp = [0u8; 32];
        let text = match pages::format_size_into(bytes, &mut tmp) {
            Ok(n) => tmp.get(..n).ok_or(Error::new(Status::Overflow))?,
            // 32 bytes hold any u64 in any format; refuse rather than panic.
            Err(_) => return Err(Error::new(Status::Overflow)),
        };
        text_buf!(buf, buf_len, needed, NullBuf::SizeFirst).write(text, || Ok(()))
    })
}
