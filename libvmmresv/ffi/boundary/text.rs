//! Text into a caller's buffer: the needed-size protocol, in one place.

use core::ffi::c_char;

use super::Out;
use crate::status::{Error, Status};

/// Which error a NULL `buf` gets when it also claims too little room.
/// The exports documented this differently before the protocol was
/// shared; each keeps its documented result.
#[derive(Clone, Copy)]
pub(in crate::ffi) enum NullBuf {
    /// The size check comes first: a NULL buffer is BUFFER_TOO_SMALL
    /// whenever `buf_len` is too small, NULL_ARGUMENT only when it claims
    /// enough (vmmresv_size_format(), vmmresv_handoff()).
    SizeFirst,
    /// A NULL buffer is a size question only with `buf_len` 0: any other
    /// length is NULL_ARGUMENT (vmmresv_report_json()).
    NullFirst,
}

/// A caller's text buffer and the needed-size protocol, the one way text
/// goes to C:
///
/// 1. `*needed` (may be NULL) receives the text's length plus its NUL, on
///    every path that got as far as having the text;
/// 2. a buffer of fewer bytes than that gets nothing and BUFFER_TOO_SMALL
///    (NULL with `buf_len` 0 is how to ask for the size; other NULLs per
///    [`NullBuf`]);
/// 3. else the text and a NUL are written, after `commit` (a side effect
///    that must happen only when the text is delivered) succeeded.
pub(in crate::ffi) struct TextBuf {
    buf: *mut c_char,
    len: usize,
    needed: Out<usize>,
    null: NullBuf,
}

impl TextBuf {
    /// # Safety
    /// `buf` is NULL or writable for `buf_len` bytes, and `needed` NULL or
    /// writable for one `usize`, until the export returns.
    pub(in crate::ffi) unsafe fn new(
        buf: *mut c_char,
        buf_len: usize,
        needed: *mut usize,
        null: NullBuf,
    ) -> TextBuf {
        TextBuf {
            buf,
            len: buf_len,
            // SAFETY: the function's contract.
            needed: unsafe { Out::optional(needed) },
            null,
        }
    }

    /// Deliver `text` by the protocol above.
    pub(in crate::ffi) fn write(
        self,
        text: &[u8],
        commit: impl FnOnce() -> Result<(), Error>,
    ) -> Result<(), Error> {
        let want = text
            .len()
            .checked_add(1)
            .ok_or(Error::new(Status::Overflow))?;
        self.needed.set(want);
        let refused = match (self.buf.is_null(), self.len < want, self.null) {
            (true, _, NullBuf::NullFirst) if self.len != 0 => Some(Status::NullArgument),
            (_, true, _) => Some(Status::BufferTooSmall),
            (true, false, _) => Some(Status::NullArgument),
            (false, false, _) => None,
        };
        if let Some(s) = refused {
            return Err(Error::new(s));
        }
        commit()?;
        // SAFETY: `buf` is non-null and holds at least text.len() + 1
        // bytes (checked against the caller's `buf_len`, the contract of
        // `new`); `text` is ours and does not overlap it.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), self.buf.cast::<u8>(), text.len());
            self.buf.add(text.len()).write(0);
        }
        Ok(())
    }
}

/// `TextBuf::new(buf, buf_len, needed, null)` under the export's C
/// contract.
macro_rules! text_buf {
    ($buf:expr, $len:expr, $needed:expr, $null:expr) => {
        // SAFETY: the export's C contract: `buf` is NULL or writable for
        // `buf_len` bytes and `needed` NULL or writable, for the call.
        unsafe { $crate::ffi::boundary::TextBuf::new($buf, $len, $needed, $null) }
    };
}

pub(in crate::ffi) use text_buf;

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
    use crate::ffi::boundary::IntoStatus;

    fn put(text: &[u8], buf: *mut c_char, len: usize, needed: *mut usize, null: NullBuf) -> Status {
        text_buf!(buf, len, needed, null)
            .write(text, || Ok(()))
            .into_status()
    }

    #[test]
    fn null_buffer_results_per_protocol() {
        let mut need = 0usize;
        let null = core::ptr::null_mut();
        // A NULL buffer that claims too little: the two documented results.
        assert_eq!(
            put(b"abc", null, 2, &mut need, NullBuf::SizeFirst),
            Status::BufferTooSmall
        );
        assert_eq!(
            put(b"abc", null, 2, &mut need, NullBuf::NullFirst),
            Status::NullArgument
        );
        assert_eq!(need, 4);
        // Where they agree: a size question, and a NULL claiming enough.
        for mode in [NullBuf::SizeFirst, NullBuf::NullFirst] {
            assert_eq!(
                put(b"abc", null, 0, &mut need, mode),
                Status::BufferTooSmall
            );
            assert_eq!(put(b"abc", null, 4, &mut need, mode), Status::NullArgument);
        }
    }

    #[test]
    fn nothing_is_committed_or_written_when_too_small() {
        let mut buf = [0x55 as c_char; 3];
        let mut committed = false;
        let r = text_buf!(
            buf.as_mut_ptr(),
            buf.len(),
            core::ptr::null_mut(),
            NullBuf::SizeFirst
        )
        .write(b"abc", || {
            committed = true;
            Ok(())
        });
        assert_eq!(r.unwrap_err().status(), Status::BufferTooSmall);
        assert!(!committed);
        assert_eq!(buf, [0x55 as c_char; 3]);
    }
}
