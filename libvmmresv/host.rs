//! The host's memory as policy needs it: how much there is and how much is
//! free, read from the platform's own counters.
//!
//! - Linux: `<root>/proc/meminfo` `MemTotal` and `MemAvailable` (the
//!   kernel's estimate of what can be allocated without swapping: free
//!   pages plus reclaimable page cache and slab — closer to VMware's
//!   "free" than `MemFree`, which leaves the page cache out).
//! - illumos: `kstat -p unix:0:system_pages` text (the library does not run
//!   kstat): `physmem` and `freemem`, in pages of `PAGESIZE`. `freemem`
//!   counts the cache list and the free list, like `::memstat`'s two Free
//!   rows.
//!
//! Both readers take their path from the caller so tests point them at
//! fixtures. Files are read whole up to a bound; a file that is not what
//! it claims to be is `MalformedInput`, never a zero.

use std::path::Path;

use crate::files::{read_limited, FileError};
use crate::pages::{self, PageSize};
use crate::status::{Error, Status};

/// Physical and free memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostMemory {
    /// Memory the kernel manages (Linux `MemTotal`, illumos `physmem`).
    pub physmem_bytes: u64,
    /// Memory available to a new VM without reclaiming anything
    /// (Linux `MemAvailable`, illumos `freemem`).
    pub free_bytes: u64,
}

/// Read `path` whole, bounded as every text input of the library
/// ([`crate::files::MAX_INPUT_BYTES`]): an oversized or non-UTF-8 file is
/// `MalformedInput`, an unreadable one `Io` with its errno.
fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = read_limited(path).map_err(|e| match e {
        FileError::TooLarge { .. } => Error::new(Status::MalformedInput),
        e => Error::from(e),
    })?;
    String::from_utf8(bytes).map_err(|_| Error::new(Status::MalformedInput))
}

/// Parse /proc/meminfo text: `Name:   value kB` lines.
pub fn parse_meminfo(text: &str) -> Result<HostMemory, Error> {
    let mut total = None;
    let mut avail = None;
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match name {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut avail,
            _ => continue,
        };
        let mut f = rest.split_whitespace();
        let (Some(v), Some("kB"), None) = (f.next(), f.next(), f.next()) else {
            return Err(Error::new(Status::MalformedInput));
        };
        let kb: u64 = v.parse().map_err(|_| Error::new(Status::MalformedInput))?;
        if slot.is_some() {
            // The same counter twice: not a meminfo we understand.
            return Err(Error::new(Status::MalformedInput));
        }
        *slot = Some(kb.checked_mul(1024).ok_or(Error::new(Status::Overflow))?);
    }
    match (total, avail) {
        (Some(t), Some(a)) if a <= t => Ok(HostMemory {
            physmem_bytes: t,
            free_bytes: a,
        }),
        _ => Err(Error::new(Status::MalformedInput)),
    }
}

/// Parse `kstat -p unix:0:system_pages` text (`unix:0:system_pages:name\tvalue`).
pub fn parse_system_pages(text: &str) -> Result<HostMemory, Error> {
    let mut physmem = None;
    let mut freemem = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(char::is_whitespace) else {
            return Err(Error::new(Status::MalformedInput));
        };
        let Some(stat) = key.strip_prefix("unix:0:system_pages:") else {
            return Err(Error::new(Status::MalformedInput));
        };
        let slot = match stat {
            "physmem" => &mut physmem,
            "freemem" => &mut freemem,
            _ => continue,
        };
        let pages: u64 = value
            .trim()
            .parse()
            .map_err(|_| Error::new(Status::MalformedInput))?;
        if slot.is_some() {
            return Err(Error::new(Status::MalformedInput));
        }
        *slot = Some(pages::ptob(pages, PageSize::Base4K)?);
    }
    match (physmem, freemem) {
        (Some(p), Some(f)) if f <= p => Ok(HostMemory {
            physmem_bytes: p,
            free_bytes: f,
        }),
        _ => Err(Error::new(Status::MalformedInput)),
    }
}

/// Read `<root>/proc/meminfo` (`root` None for "/").
pub fn read_linux(root: Option<&Path>) -> Result<HostMemory, Error> {
    let p = root.unwrap_or(Path::new("/")).join("proc/meminfo");
    parse_meminfo(&read_text(&p)?)
}

/// Read a file holding `kstat -p unix:0:system_pages` output.
pub fn read_kstat(path: &Path) -> Result<HostMemory, Error> {
    parse_system_pages(&read_text(path)?)
}

/// This host's memory now, from the platform's own counters:
/// `/proc/meminfo` on Linux, libkstat's `unix:0:system_pages` on illumos.
/// What admission reads inside a host-memory claim, after the total the
/// claim is applied to.
pub fn read_now() -> Result<HostMemory, Error> {
    #[cfg(any(target_os = "illumos", target_os = "solaris"))]
    {
        kstat::system_pages()
    }
    #[cfg(not(any(target_os = "illumos", target_os = "solaris")))]
    {
        read_linux(None)
    }
}

/// libkstat(3LIB): `unix:0:system_pages` `physmem` and `freemem` (pages of
/// PAGESIZE; `KSTAT_DATA_ULONG`, 64-bit on LP64). Layouts from illumos-gate
/// `usr/src/uts/common/sys/kstat.h` (`kstat_named_t`: a 31-byte name, a
/// data_type byte, then an 8-byte-aligned 16-byte value union).
#[cfg(any(target_os = "illumos", target_os = "solaris"))]
#[allow(unsafe_code)] // libkstat is a C library
mod kstat {
    use super::HostMemory;
    use crate::errno;
    use crate::pages::{self, PageSize};
    use crate::status::{Error, Status};
    use core::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    struct KstatNamed {
        name: [c_char; 31],
        data_type: u8,
        value: [u64; 2],
    }

    /// `KSTAT_DATA_UINT64`, which is `KSTAT_DATA_ULONG` on LP64.
    const KSTAT_DATA_UINT64: u8 = 4;

    #[link(name = "kstat")]
    extern "C" {
        fn kstat_open() -> *mut c_void;
        fn kstat_close(kc: *mut c_void) -> c_int;
        fn kstat_lookup(
            kc: *mut c_void,
            module: *const c_char,
            instance: c_int,
            name: *const c_char,
        ) -> *mut c_void;
        fn kstat_read(kc: *mut c_void, ksp: *mut c_void, buf: *mut c_void) -> c_int;
        fn kstat_data_lookup(ksp: *mut c_void, name: *const c_char) -> *mut c_void;
    }

    fn named(ksp: *mut c_void, name: &[u8]) -> Result<u64, Error> {
        // SAFETY: ksp is a kstat read by kstat_read; name is NUL-terminated;
        // the result is checked for NULL and read as kstat.h lays it out.
        unsafe {
            let p = kstat_data_lookup(ksp, name.as_ptr().cast()).cast::<KstatNamed>();
            if p.is_null() {
                return Err(Error::new(Status::MalformedInput));
            }
            let n = &*p;
            if n.data_type != KSTAT_DATA_UINT64 {
                return Err(Error::new(Status::MalformedInput));
            }
            Ok(n.value[0])
        }
    }

    pub fn system_pages() -> Result<HostMemory, Error> {
        // SAFETY: kstat_open/lookup/read/close as libkstat documents them;
        // every pointer is checked before use and the chain is closed on
        // every path.
        unsafe {
            let kc = kstat_open();
            if kc.is_null() {
                return Err(errno::file_io_error(&std::io::Error::last_os_error()));
            }
            let result = (|| {
                let ksp = kstat_lookup(kc, c"unix".as_ptr(), 0, c"system_pages".as_ptr());
                if ksp.is_null() || kstat_read(kc, ksp, core::ptr::null_mut()) == -1 {
                    return Err(errno::file_io_error(&std::io::Error::last_os_error()));
                }
                let physmem = pages::ptob(named(ksp, b"physmem\0")?, PageSize::Base4K)?;
                let freemem = pages::ptob(named(ksp, b"freemem\0")?, PageSize::Base4K)?;
                if freemem > physmem {
                    return Err(Error::new(Status::MalformedInput));
                }
                Ok(HostMemory {
                    physmem_bytes: physmem,
                    free_bytes: freemem,
                })
            })();
            kstat_close(kc);
            result
        }
    }
}

#[cfg(test)]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24551360 kB\n\
MemFree:         1201212 kB\n\
MemAvailable:   18102336 kB\n\
Buffers:          120 kB\n";

    #[test]
    fn meminfo() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.physmem_bytes, 24_551_360 * 1024);
        assert_eq!(m.free_bytes, 18_102_336 * 1024);
    }

    #[test]
    fn meminfo_refuses_what_it_does_not_understand() {
        for bad in [
            "",
            "MemTotal: 10 kB\n",
            "MemTotal: 10 kB\nMemAvailable: 11 kB\n",
            "MemTotal: 10 MB\nMemAvailable: 1 kB\n",
            "MemTotal: x kB\nMemAvailable: 1 kB\n",
            "MemTotal: 10 kB\nMemTotal: 10 kB\nMemAvailable: 1 kB\n",
            "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n",
        ] {
            let e = parse_meminfo(bad).unwrap_err().status();
            assert!(
                matches!(e, Status::MalformedInput | Status::Overflow),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn system_pages() {
        let t = "unix:0:system_pages:availrmem\t1000\n\
unix:0:system_pages:freemem\t2048\n\
unix:0:system_pages:physmem\t8388608\n";
        let m = parse_system_pages(t).unwrap();
        assert_eq!(m.physmem_bytes, 8_388_608 * 4096);
        assert_eq!(m.free_bytes, 2048 * 4096);
        for bad in [
            "",
            "zfs:0:arcstats:size\t1\n",
            "unix:0:system_pages:physmem\t1\n",
            "unix:0:system_pages:physmem\t1\nunix:0:system_pages:freemem\t2\n",
            "unix:0:system_pages:physmem\tx\nunix:0:system_pages:freemem\t0\n",
        ] {
            assert_eq!(
                parse_system_pages(bad).unwrap_err().status(),
                Status::MalformedInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads and writes the file system, refused by Miri's isolation"
    )]
    fn readers_use_the_given_paths() {
        let d = std::env::temp_dir().join(format!("vmmresv-host-{}", std::process::id()));
        std::fs::create_dir_all(d.join("proc")).unwrap();
        std::fs::write(d.join("proc/meminfo"), MEMINFO).unwrap();
        assert_eq!(read_linux(Some(&d)).unwrap().free_bytes, 18_102_336 * 1024);
        assert_eq!(
            read_kstat(&d.join("nope")).unwrap_err().status(),
            Status::Io
        );
        std::fs::write(d.join("big"), vec![b'x'; (2 << 20) + 1]).unwrap();
        assert_eq!(
            read_kstat(&d.join("big")).unwrap_err().status(),
            Status::MalformedInput
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
