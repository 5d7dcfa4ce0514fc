//! The C ABI driven by arbitrary call sequences: the in-process ledger
//! (`vmmresv_ledger_new/claim/release/set_capacity/usage/free`) on up to
//! four handles, NULL, and foreign (readable, non-handle) memory; and the
//! pure functions (`vmmresv_btop/btopr/ptob` with any page size,
//! `round_up/round_down`, `page_t_overhead`, `size_parse` with any C
//! string, `size_format` with any buffer length, `strerror` with any value,
//! `abi_version`, `last_errno`).
//!
//! Each call is checked against a model: exact statuses (never PANIC, and
//! always a value of the status enum), out-parameters written exactly when
//! documented and never otherwise, caller buffers never written past the
//! documented length, the claimed total never above the capacity, and every
//! live handle's usage equal to the model's after every call.
//!
//! Not exercised here: freed handles (tests/c/handles.c checks them under
//! ASan and valgrind) and unreadable pointers. Foreign memory is a
//! 128-byte-aligned buffer of 0/1 bytes, passed as is or misaligned by
//! 1..=127 bytes; the library never reads through a handle pointer (a
//! handle names a slot of its table: ffi/handle.rs), so any of them is
//! refused without a read.
//! Releasing more than is claimed is a caller bug that a debug build of
//! the library (which cargo-fuzz builds: debug assertions on) reports as a
//! panic; the model clamps releases to what is claimed when debug
//! assertions are on, and checks the documented clamp at 0 when they are
//! off.
//!
//! Input: a sequence of operations, one selector byte each followed by its
//! arguments (see `step`).

#![no_main]

use core::ffi::{c_char, CStr};
use core::ptr::{null, null_mut};

use libfuzzer_sys::fuzz_target;
use vmmresv::ffi::*;
use vmmresv::pages::{format_size, parse_size};
use vmmresv::Status;
use vmmresv_fuzz::Input;

const MAX_PAGES: u64 = (1 << 48) - 1;
const SENTINEL: u64 = 0xDEAD_BEEF_CAFE_F00D;

#[repr(C, align(128))]
struct Foreign([u8; 512]);

const _: () = assert!(core::mem::size_of::<vmmresv_ledger>() <= 512);

#[derive(Clone, Copy, Debug)]
struct Model {
    claimed: u64,
    capacity: u64,
}

struct Live {
    ptr: *mut vmmresv_ledger,
    model: Model,
}

struct State {
    handles: [Option<Live>; 4],
    foreign: Box<Foreign>,
}

enum Target {
    Handle(usize),
    Null,
    Foreign,
}

impl State {
    fn target(&mut self, inp: &mut Input<'_>) -> (Target, *mut vmmresv_ledger) {
        let t = inp.u8();
        match t % 8 {
            i @ 0..=3 => match &self.handles[usize::from(i)] {
                Some(l) => (Target::Handle(usize::from(i)), l.ptr),
                None => (Target::Null, null_mut()),
            },
            4 | 5 => (Target::Null, null_mut()),
            k => {
                // Fresh foreign contents each time: 0/1 bytes from the input.
                let bits = inp.u64();
                for (k, b) in self.foreign.0.iter_mut().enumerate() {
                    *b = ((bits >> (k % 64)) & 1) as u8;
                }
                let base: *mut u8 = self.foreign.0.as_mut_ptr();
                // 6: the aligned buffer; 7: 1..=127 bytes into it, a
                // pointer no handle can have (refused before any read).
                let off = if k == 6 { 0 } else { 1 + (bits % 127) as usize };
                (Target::Foreign, base.wrapping_add(off).cast())
            }
        }
    }

    fn check_all(&self) {
        for l in self.handles.iter().flatten() {
            let (mut c, mut cap) = (SENTINEL, SENTINEL);
            assert_eq!(vmmresv_ledger_usage(l.ptr, &mut c, &mut cap), Status::Ok);
            assert_eq!(
                (c, cap),
                (l.model.claimed, l.model.capacity),
                "usage != model"
            );
            assert!(c <= cap, "claimed {c} above capacity {cap}");
        }
    }
}

/// Every status-returning call goes through here.
fn st(s: Status) -> Status {
    assert!(Status::from_u32(s as u32).is_some(), "not a status value");
    assert_ne!(s, Status::Panic, "the library panicked");
    // None of the calls exercised here has an OS errno behind it.
    assert_eq!(vmmresv_last_errno(), 0, "errno left behind by {s:?}");
    s
}

fn opt<T>(null: bool, p: &mut T) -> *mut T {
    if null {
        null_mut()
    } else {
        p
    }
}

fn page_size(inp: &mut Input<'_>) -> u64 {
    match inp.u8() % 5 {
        0 => 4096,
        1 => 2 << 20,
        2 => 1 << 30,
        3 => [
            0,
            1,
            4095,
            4097,
            8192,
            1 << 21,
            (1 << 30) + 4096,
            1 << 12 << 20,
        ][usize::from(inp.u8() % 8)],
        _ => inp.u64(),
    }
}

fn u64_result(out_null: bool, expect: Result<u64, Status>, call: impl FnOnce(*mut u64) -> Status) {
    let mut out = SENTINEL;
    let s = st(call(opt(out_null, &mut out)));
    if out_null {
        assert_eq!(s, Status::NullArgument);
        return;
    }
    match expect {
        Ok(v) => {
            assert_eq!(s, Status::Ok);
            assert_eq!(out, v);
        }
        Err(e) => {
            assert_eq!(s, e);
            assert_eq!(out, SENTINEL, "out written on error");
        }
    }
}

fn fits(v: u128) -> Result<u64, Status> {
    u64::try_from(v).map_err(|_| Status::Overflow)
}

fn step(state: &mut State, inp: &mut Input<'_>) {
    let op = inp.u8();
    let flags = inp.u8();
    let null0 = flags & 1 != 0;
    let null1 = flags & 2 != 0;
    match op % 13 {
        // vmmresv_ledger_new
        0 => {
            let slot = usize::from(flags >> 4) % 4;
            let cap = inp.size();
            if let Some(old) = state.handles[slot].take() {
                vmmresv_ledger_free(old.ptr);
            }
            let mut out: *mut vmmresv_ledger = core::ptr::dangling_mut(); // garbage
            let s = st(vmmresv_ledger_new(cap, opt(null0, &mut out)));
            if null0 {
                assert_eq!(s, Status::NullArgument);
            } else if cap > MAX_PAGES {
                assert_eq!(s, Status::InvalidArgument);
                assert!(out.is_null(), "*out not NULL on failure");
            } else {
                assert_eq!(s, Status::Ok);
                assert!(!out.is_null());
                state.handles[slot] = Some(Live {
                    ptr: out,
                    model: Model {
                        claimed: 0,
                        capacity: cap,
                    },
                });
            }
        }
        // vmmresv_ledger_free
        1 => {
            let (t, p) = state.target(inp);
            let before = state.foreign.0;
            vmmresv_ledger_free(p);
            match t {
                Target::Handle(i) => state.handles[i] = None,
                Target::Foreign => {
                    assert!(before == state.foreign.0, "freeing foreign memory wrote it")
                }
                Target::Null => {}
            }
        }
        // vmmresv_ledger_claim
        2 => {
            let (t, p) = state.target(inp);
            let pages = inp.size();
            let mut short = SENTINEL;
            let s = st(vmmresv_ledger_claim(p, pages, opt(null0, &mut short)));
            let expect_short = match t {
                Target::Null => {
                    assert_eq!(s, Status::NullArgument);
                    0
                }
                Target::Foreign => {
                    assert_eq!(s, Status::InvalidArgument);
                    0
                }
                Target::Handle(i) => {
                    let m = &mut state.handles[i].as_mut().unwrap().model;
                    let need = u128::from(m.claimed) + u128::from(pages);
                    if pages == 0 || (pages <= MAX_PAGES && need <= u128::from(m.capacity)) {
                        assert_eq!(s, Status::Ok, "claim of {pages} refused: {m:?}");
                        m.claimed += pages;
                        0
                    } else {
                        assert_eq!(s, Status::Refused, "claim of {pages} admitted: {m:?}");
                        u64::try_from(need - u128::from(m.capacity)).unwrap_or(u64::MAX)
                    }
                }
            };
            if !null0 {
                assert_eq!(short, expect_short, "shortfall");
            }
        }
        // vmmresv_ledger_release
        3 => {
            let (t, p) = state.target(inp);
            let mut pages = inp.size();
            if let Target::Handle(i) = t {
                let m = state.handles[i].as_ref().unwrap().model;
                if cfg!(debug_assertions) && pages > m.claimed {
                    pages %= m.claimed.saturating_add(1);
                }
            }
            let s = st(vmmresv_ledger_release(p, pages));
            match t {
                Target::Null => assert_eq!(s, Status::NullArgument),
                Target::Foreign => assert_eq!(s, Status::InvalidArgument),
                Target::Handle(i) => {
                    assert_eq!(s, Status::Ok);
                    let m = &mut state.handles[i].as_mut().unwrap().model;
                    m.claimed = m.claimed.saturating_sub(pages);
                }
            }
        }
        // vmmresv_ledger_set_capacity
        4 => {
            let (t, p) = state.target(inp);
            let cap = inp.size();
            let mut old = SENTINEL;
            let s = st(vmmresv_ledger_set_capacity(p, cap, opt(null0, &mut old)));
            let mut expect_old = SENTINEL;
            match t {
                Target::Null => assert_eq!(s, Status::NullArgument),
                Target::Foreign => assert_eq!(s, Status::InvalidArgument),
                Target::Handle(i) => {
                    let m = &mut state.handles[i].as_mut().unwrap().model;
                    if cap > MAX_PAGES {
                        assert_eq!(s, Status::InvalidArgument);
                    } else if cap < m.claimed {
                        assert_eq!(s, Status::NoSpace);
                    } else {
                        assert_eq!(s, Status::Ok);
                        expect_old = m.capacity;
                        m.capacity = cap;
                    }
                }
            }
            if !null0 {
                assert_eq!(old, expect_old, "*old_pages");
            }
        }
        // vmmresv_ledger_usage
        5 => {
            let (t, p) = state.target(inp);
            let (mut c, mut cap) = (SENTINEL, SENTINEL);
            let s = st(vmmresv_ledger_usage(
                p,
                opt(null0, &mut c),
                opt(null1, &mut cap),
            ));
            let (ec, ecap) = match t {
                Target::Null => {
                    assert_eq!(s, Status::NullArgument);
                    (SENTINEL, SENTINEL)
                }
                Target::Foreign => {
                    assert_eq!(s, Status::InvalidArgument);
                    (SENTINEL, SENTINEL)
                }
                Target::Handle(i) => {
                    assert_eq!(s, Status::Ok);
                    let m = state.handles[i].as_ref().unwrap().model;
                    (m.claimed, m.capacity)
                }
            };
            assert_eq!(c, if null0 { SENTINEL } else { ec });
            assert_eq!(cap, if null1 { SENTINEL } else { ecap });
        }
        // btop / btopr / ptob
        6 => {
            let v = inp.size();
            let ps = page_size(inp);
            let valid = matches!(ps, 4096 | 2_097_152 | 1_073_741_824);
            let inv = Err(Status::InvalidArgument);
            match flags >> 4 & 3 {
                0 => u64_result(null0, if valid { Ok(v / ps) } else { inv }, |o| {
                    vmmresv_btop(v, ps, o)
                }),
                1 => {
                    let e = if valid { Ok(v.div_ceil(ps)) } else { inv };
                    u64_result(null0, e, |o| vmmresv_btopr(v, ps, o))
                }
                _ => {
                    let e = if valid {
                        fits(u128::from(v) * u128::from(ps))
                    } else {
                        inv
                    };
                    u64_result(null0, e, |o| vmmresv_ptob(v, ps, o))
                }
            }
        }
        // round_up / round_down
        7 => {
            let v = inp.size();
            let align = inp.size();
            if flags & 0x10 == 0 {
                let e = if align == 0 {
                    Err(Status::InvalidArgument)
                } else {
                    fits(u128::from(v).div_ceil(u128::from(align)) * u128::from(align))
                };
                u64_result(null0, e, |o| vmmresv_round_up(v, align, o));
            } else {
                let e = match v.checked_div(align) {
                    None => Err(Status::InvalidArgument),
                    Some(q) => Ok(q * align),
                };
                u64_result(null0, e, |o| vmmresv_round_down(v, align, o));
            }
        }
        // page_t_overhead
        8 => {
            let n = inp.size();
            u64_result(null0, fits(u128::from(n) * 120), |o| {
                vmmresv_page_t_overhead(n, o)
            });
        }
        // size_parse
        9 => {
            let len = usize::from(inp.u8() % 64);
            let mut text = inp.bytes(len).to_vec();
            text.push(0);
            let base = if flags & 0x10 != 0 { inp.size() } else { 0 };
            let c = CStr::from_bytes_until_nul(&text).unwrap();
            let expect = if null1 {
                Err(Status::NullArgument)
            } else {
                match c.to_str() {
                    Ok(s) => parse_size(s, if base == 0 { None } else { Some(base) })
                        .map_err(|e| e.status()),
                    Err(_) => Err(Status::ParseSize),
                }
            };
            let tp: *const c_char = if null1 { null() } else { c.as_ptr() };
            if null1 {
                // NULL text wins over a NULL out.
                let mut out = SENTINEL;
                let s = st(vmmresv_size_parse(tp, base, opt(null0, &mut out)));
                assert_eq!(s, Status::NullArgument);
                assert_eq!(out, SENTINEL);
            } else {
                u64_result(null0, expect, |o| vmmresv_size_parse(tp, base, o));
            }
        }
        // size_format
        10 => {
            let v = inp.size();
            let buf_len = usize::from(inp.u8() % 40);
            let text = format_size(v);
            let mut buf = vec![0xA5u8; buf_len + 16];
            let mut needed: usize = usize::MAX;
            let bp: *mut c_char = if null0 {
                null_mut()
            } else {
                buf.as_mut_ptr().cast()
            };
            let s = st(vmmresv_size_format(v, bp, buf_len, opt(null1, &mut needed)));
            if !null1 {
                assert_eq!(needed, text.len() + 1, "*needed");
            }
            if buf_len < text.len() + 1 {
                assert_eq!(s, Status::BufferTooSmall);
                assert!(buf.iter().all(|b| *b == 0xA5), "written although too small");
            } else if null0 {
                assert_eq!(s, Status::NullArgument);
            } else {
                assert_eq!(s, Status::Ok);
                assert_eq!(&buf[..text.len()], text.as_bytes());
                assert_eq!(buf[text.len()], 0);
                assert!(
                    buf[text.len() + 1..].iter().all(|b| *b == 0xA5),
                    "written past the NUL"
                );
            }
        }
        // strerror
        11 => {
            let v = if flags & 0x10 == 0 {
                let all = Status::all();
                all[usize::from(inp.u8()) % all.len()] as u32
            } else {
                inp.u32()
            };
            let p = vmmresv_strerror(v);
            assert!(!p.is_null());
            // SAFETY: documented as a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(p) }
                .to_str()
                .expect("strerror not UTF-8");
            match Status::from_u32(v) {
                Some(st) => assert_eq!(s, st.message()),
                None => assert_eq!(s, "unknown vmmresv status"),
            }
        }
        _ => {
            // The version this library was built as (the header's macros).
            assert_eq!(
                vmmresv_abi_version(),
                (vmmresv::ffi::VMMRESV_VERSION_MAJOR << 16)
                    | (vmmresv::ffi::VMMRESV_VERSION_MINOR << 8)
                    | vmmresv::ffi::VMMRESV_VERSION_PATCH
            );
            assert_eq!(vmmresv::ffi::VMMRESV_VERSION_MAJOR, 1);
            assert_eq!(vmmresv_last_errno(), 0);
        }
    }
    state.check_all();
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mut state = State {
        handles: [None, None, None, None],
        foreign: Box::new(Foreign([0; 512])),
    };
    while !inp.is_empty() {
        step(&mut state, &mut inp);
    }
    for l in state.handles.iter_mut().filter_map(Option::take) {
        vmmresv_ledger_free(l.ptr);
    }
});
