//! The ledger file itself (layout version 2): regressions for issue 13
//! items 2 and 6 and issue 12 item 7.
//!
//! - A full file system (issue 13 item 2): the ledger is written in full at
//!   creation, so a run directory without room is a clear status
//!   (NO_SPACE, errno ENOSPC) from `vmmresv_admission_open` and nothing is
//!   left at the ledger's name; and a ledger that exists keeps working
//!   when the file system is then filled to the last byte. Both run on a
//!   small tmpfs mounted for the test (root only).
//! - Long names (item 6): names up to `file::MAX_NAME` bytes work end to
//!   end (the anchor and the host ledger's anchor fit in 255 bytes);
//!   longer ones are INVALID_ARGUMENT and create nothing.
//! - A UUID another live process holds (item 6): REFUSE / HELD_ELSEWHERE,
//!   nothing charged, and NOT_HOLDER from that process's commit or abort;
//!   the holder's commit still works.
//! - Version 1 (issue 12 item 7): an empty version-1 file is replaced by a
//!   version-2 one; one with a claim in it is LEDGER_VERSION and is left
//!   byte for byte as it was.
//! - Identity: a name renamed over is LEDGER_REPLACED for the process
//!   holding the old file; a name unlinked is restored from its anchor,
//!   claims included.
//!
//! As in tests/admission_faults.rs, the Rust API runs in child processes
//! of this test binary under the /dev/vmmctl emulator (`VMMRESV_TEST_ROLE`
//! names what a child does), and the C API through tests/c/zhyve.c (and
//! the tests/c/bhyve.c it launches) linked with the .so.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]
// tmpfs mounts and the Linux emulator: Linux only.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, ExitStatus, Output, Stdio};

use common::child::{self, ROLE};
use common::image::{fnv1a, put_u64};
use common::*;
use vmmresv::admission::{parse_uuid, Admission, Decision, Preference};
use vmmresv::ledger::file::{self as lf, LedgerFile};
use vmmresv::ledger::Pool;
use vmmresv::{Reservoir, Status};

const HOST: u64 = 8 * GIB;
const PAGE: u64 = 4096;
/// A child reads its ledger's path from here when the test names one.
const LEDGER_ENV: &str = "VMMRESV_TEST_LEDGER";

// ---------------------------------------------------------------------
// Children: the Rust API in another process
// ---------------------------------------------------------------------

fn uuid_text(n: u32) -> String {
    format!("c0ffee00-5a1e-4bad-8f00-{:012x}", n)
}

fn uuid(n: u32) -> [u8; 16] {
    parse_uuid(&uuid_text(n)).unwrap()
}

fn open_admission() -> Result<Admission, vmmresv::Error> {
    let r = Reservoir::open().expect("open the emulated /dev/vmmctl");
    match std::env::var_os(LEDGER_ENV) {
        Some(p) => Admission::open(r, Some(Path::new(&p))),
        None => Admission::open(r, None),
    }
}

fn err_word(e: &vmmresv::Error) -> String {
    format!("err {:?}", e.status())
}

fn released(r: Result<u64, vmmresv::Error>) -> String {
    match r {
        Ok(b) => format!("ok {}", b),
        Err(e) => err_word(&e),
    }
}

/// One command against an open admission, and its reply:
/// - `admit:<n>:<bytes>`: `<Decision> <Reason> <charged> <shortfall>
///   <pending>` (Require) or `err <Status>`;
/// - `commit:<n>`, `abort:<n>`: `ok <bytes>` or `err <Status>`;
/// - `reconcile`: `ok <reservoir claimed after> <live claims> <reclaimed
///   slots>` or `err <Status>`;
/// - `churn:<first>:<count>:<bytes>`: `count` VMs from UUID `first` on,
///   each admitted (Require) and then committed (even) or aborted (odd),
///   with a reconcile after every fourth: `ok <admitted> <released bytes>
///   <reconciles>`, or `err <what> <Status>` at the first error.
fn exec(a: &Admission, cmd: &str) -> String {
    let p: Vec<&str> = cmd.split(':').collect();
    let num = |i: usize| -> u64 { p[i].parse().unwrap() };
    match p[0] {
        "admit" => match a.admit(&uuid(num(1) as u32), num(2), Preference::Require) {
            Ok(v) => format!(
                "{:?} {:?} {} {} {}",
                v.decision, v.reason, v.charged_bytes, v.shortfall_bytes, v.pending_bytes
            ),
            Err(e) => err_word(&e),
        },
        "commit" => released(a.commit(&uuid(num(1) as u32))),
        "abort" => released(a.abort(&uuid(num(1) as u32))),
        "reconcile" => match a.reconcile() {
            Ok(r) => format!(
                "ok {} {} {}",
                r.ledger.claimed_after[Pool::Reservoir as usize],
                r.ledger.live_claims,
                r.ledger.reclaimed_slots
            ),
            Err(e) => err_word(&e),
        },
        "churn" => {
            let (first, count, bytes) = (num(1) as u32, num(2) as u32, num(3));
            let (mut admitted, mut gone, mut reconciles) = (0u64, 0u64, 0u64);
            for i in 0..count {
                let u = uuid(first + i);
                match a.admit(&u, bytes, Preference::Require) {
                    Ok(v) if v.decision == Decision::UseReservoir => admitted += 1,
                    Ok(v) => return format!("err admit {:?}/{:?}", v.decision, v.reason),
                    Err(e) => return format!("err admit {:?}", e.status()),
                }
                let r = if i % 2 == 0 {
                    a.commit(&u)
                } else {
                    a.abort(&u)
                };
                match r {
                    Ok(b) => gone += b,
                    Err(e) => return format!("err release {:?}", e.status()),
                }
                if i % 4 == 3 {
                    if let Err(e) = a.reconcile() {
                        return format!("err reconcile {:?}", e.status());
                    }
                    reconciles += 1;
                }
            }
            format!("ok {} {} {}", admitted, gone, reconciles)
        }
        other => panic!("unknown command {}", other),
    }
}

/// A child's role: `serve` (open, reply `ready`, then one `REPLY` line per
/// command read from stdin, until EOF), or commands separated by `/` run
/// in order (`open` alone replies `ok`): one `RESULT` line, their replies joined by ` ; `. An admission
/// that cannot be opened is the single reply `open_err <Status> <errno>`.
fn play(role: &str) {
    let a = match open_admission() {
        Ok(a) => a,
        Err(e) => {
            let what = format!("open_err {:?} {}", e.status(), e.errno().unwrap_or(0));
            if role == "serve" {
                println!("REPLY {}", what);
            } else {
                println!("RESULT {}", what);
            }
            return;
        }
    };
    if role == "serve" {
        println!("REPLY ready");
        for line in std::io::stdin().lock().lines() {
            let line = line.unwrap();
            println!("REPLY {}", exec(&a, line.trim()));
        }
        return;
    }
    let replies: Vec<String> = role
        .split('/')
        .map(|c| match c {
            "open" => "ok".to_string(),
            c => exec(&a, c),
        })
        .collect();
    println!("RESULT {}", replies.join(" ; "));
}

/// The replies in a child's output line starting with `tag`.
fn replies_in(line: &str, tag: &str) -> Option<Vec<String>> {
    let i = line.find(tag)?;
    let rest = line[i + tag.len()..].trim();
    if rest.is_empty() {
        return Some(vec![]);
    }
    Some(rest.split(" ; ").map(String::from).collect())
}

/// A finished child: it must have exited 0 (not by a signal); its replies.
fn child_replies(out: &Output) -> Vec<String> {
    let so = stdout(out);
    assert!(
        out.status.success(),
        "child failed: {:?} (signal {:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.status.signal(),
        so,
        stderr(out)
    );
    so.lines()
        .find_map(|l| replies_in(l, "RESULT "))
        .unwrap_or_else(|| panic!("no RESULT in child output:\n{}", so))
}

/// Run commands in a child under `host` (with `env` added); its replies.
fn run(host: &EmuHost, test: &str, role: &str, env: &[(&str, &Path)]) -> Vec<String> {
    let mut c = host.command(&std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(ROLE, role)
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    child_replies(&c.output().unwrap())
}

/// A child that keeps its admission open and answers commands: it holds
/// its claims while it lives.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Server {
    // Waited for in finish() or Drop.
    #[allow(clippy::zombie_processes)]
    fn start(host: &EmuHost, test: &str) -> Server {
        let mut child = host
            .command(&std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env(ROLE, "serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut s = Server { child, stdin, out };
        assert_eq!(s.reply(), "ready");
        s
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "the serving child exited");
            if let Some(r) = replies_in(&line, "REPLY ") {
                return r.join(" ; ");
            }
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        let w = self.stdin.as_mut().unwrap();
        writeln!(w, "{}", cmd).unwrap();
        w.flush().unwrap();
        self.reply()
    }

    /// Close its stdin: it exits (holding whatever it still holds); it
    /// must exit 0.
    fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        let st = self.child.wait().unwrap();
        assert!(st.success(), "serving child: {:?}", st);
        st
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if std::thread::panicking() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------
// The C programs
// ---------------------------------------------------------------------

/// zhyve with `args`, VM `n` (zhyve replaces the UUID's last four digits
/// with the iteration number: VM `n << 16` is iteration 0's), `mib` MiB.
fn zhyve_cmd(host: &EmuHost, n: u32, mib: u64, args: &[&str]) -> std::process::Command {
    let u = uuid_text(n << 16);
    let m = mib.to_string();
    let mut c = host.command(zhyve());
    c.args(args)
        .args(["-u", u.as_str(), "-m", m.as_str()])
        .arg(bhyve())
        .stdin(Stdio::null());
    c
}

fn zhyve_run(host: &EmuHost, n: u32, mib: u64, args: &[&str]) -> Output {
    zhyve_cmd(host, n, mib, args).output().unwrap()
}

/// zhyve ended by exit(code), not by a signal.
fn assert_zhyve_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.signal(),
        None,
        "zhyve died of a signal: {:?}\n{}{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    assert_eq!(
        o.status.code(),
        Some(code),
        "zhyve:\n{}{}",
        stdout(o),
        stderr(o)
    );
}

/// zhyve refused at `call` with `status` (and `errno` if given).
fn assert_zhyve_failed(o: &Output, call: &str, status: Status, errno: Option<i32>) {
    assert_zhyve_exit(o, 1);
    let want = match errno {
        Some(e) => format!(
            "zhyve: {}: {} (status {}, errno {}:",
            call,
            status.message(),
            status as u32,
            e
        ),
        None => format!(
            "zhyve: {}: {} (status {}",
            call,
            status.message(),
            status as u32
        ),
    };
    assert!(
        stderr(o).contains(&want),
        "want {:?}; zhyve said:\n{}",
        want,
        stderr(o)
    );
}

// ---------------------------------------------------------------------
// Hosts, directories, file systems
// ---------------------------------------------------------------------

fn new_host(tag: &str) -> EmuHost {
    EmuHost::with_reservoir(tag, HOST, 4096)
}

/// The names in `dir`, sorted (empty if it does not exist), but for the
/// reservoir's resize lock (rsrvrctl -s made it when the host was set up).
fn entries(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != vmmresv::reservoir::LOCK_FILE_NAME)
        .collect();
    v.sort();
    v
}

fn inode(p: &Path) -> (u64, u64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.dev(), m.ino())
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A tmpfs of a given size mounted for one test, unmounted (and its
/// directory removed) when dropped, a failing test included.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mount one of `size` (tmpfs's `size=` option, e.g. "64k") at `dir`,
    /// or say why not.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let opts = CString::new(format!("size={},mode=0755", size)).unwrap();
        // SAFETY: NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                cpath(dir).as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_dir(dir);
            return Err(format!(
                "mount -t tmpfs -o size={} {}: {}",
                size,
                dir.display(),
                e
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Change its size in place (the files stay).
    fn resize(&self, size: &str) {
        let opts = CString::new(format!("size={}", size)).unwrap();
        // SAFETY: as in mount.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                cpath(&self.dir).as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_REMOUNT,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "remount: {}", std::io::Error::last_os_error());
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    /// (free blocks, all blocks, block size).
    fn space(&self) -> (u64, u64, u64) {
        // SAFETY: a zeroed statvfs is a valid value.
        let mut s: libc::statvfs = unsafe { core::mem::zeroed() };
        // SAFETY: a NUL-terminated path and our statvfs; the result is
        // checked.
        let r = unsafe { libc::statvfs(cpath(&self.dir).as_ptr(), &mut s) };
        assert_eq!(r, 0, "statvfs: {}", std::io::Error::last_os_error());
        (s.f_bfree as u64, s.f_blocks as u64, s.f_bsize as u64)
    }

    /// Write zeros to `name` until the file system is full (ENOSPC):
    /// nothing is left to allocate. Returns the bytes written.
    fn fill(&self, name: &str) -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.dir.join(name))
            .unwrap();
        let zeros = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match f.write(&zeros) {
                Ok(0) => panic!("write returned 0 before ENOSPC"),
                Ok(n) => total += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {}", e),
            }
        }
        // Even one byte more has no room.
        let e = f.write(&[0u8]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(self.space().0, 0, "the tmpfs still has free blocks");
        total
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let c = cpath(&self.dir);
        // SAFETY: a NUL-terminated path; failures are tried once more lazily.
        unsafe {
            if libc::umount2(c.as_ptr(), 0) != 0 {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A tmpfs for a test, or None (with a SKIPPED line) when this process
/// cannot mount one.
fn tmpfs(host: &EmuHost, size: &str) -> Option<Tmpfs> {
    if !is_root() {
        println!("SKIPPED: mounting a tmpfs needs root");
        return None;
    }
    match Tmpfs::mount(&host.dir.path().join("tmpfs"), size) {
        Ok(t) => Some(t),
        Err(why) => {
            println!("SKIPPED: {} (no mount privilege here)", why);
            None
        }
    }
}

// ---------------------------------------------------------------------
// Issue 13 item 2: a full file system
// ---------------------------------------------------------------------

/// The run directory on a 64 KiB tmpfs: the ledger (260 KiB) does not fit.
/// On the old code (40f3a4a: the file sized with ftruncate, sparse, then
/// mapped) every VM start died of SIGBUS — the issue reports exit 135, and
/// zhyve built against 40f3a4a did exactly that here, leaving a sparse
/// admission.ledger at the name. Now opening the admission is NO_SPACE
/// with errno ENOSPC, from the Rust API and from C through the .so, no
/// process dies of a signal, nothing is left on the file system (no
/// ledger, no anchor, no temporary file, every block free) — and once
/// there is room, the next start works.
#[test]
fn full_run_dir_is_no_space_not_sigbus() {
    if child::play(play) {
        return;
    }
    let t = "full_run_dir_is_no_space_not_sigbus";
    let mut host = new_host("lf-nospace");
    let Some(fs) = tmpfs(&host, "64k") else {
        return;
    };
    host.set("VMMRESV_RUNDIR", fs.path().to_str().unwrap());
    let (free0, all, bsize) = fs.space();
    assert_eq!(free0, all);
    assert!(all * bsize < lf::FILE_SIZE as u64, "the tmpfs is too big");

    // The Rust API in a child: a status, and the child exits normally.
    let got = run(&host, t, "open", &[]);
    assert_eq!(got, [format!("open_err NoSpace {}", libc::ENOSPC)]);
    assert_eq!(entries(fs.path()), Vec::<String>::new(), "left behind");
    assert_eq!(fs.space().0, all, "blocks still allocated");

    // C through the .so: zhyve exits 1 naming the status and the errno.
    for _ in 0..2 {
        let o = zhyve_run(&host, 1, 64, &[]);
        assert_zhyve_failed(
            &o,
            "vmmresv_admission_open",
            Status::NoSpace,
            Some(libc::ENOSPC),
        );
        assert_eq!(stdout(&o), "", "no VM start was tried");
        assert_eq!(entries(fs.path()), Vec::<String>::new(), "left behind");
        assert_eq!(fs.space().0, all, "blocks still allocated");
    }
    assert_eq!(host.stat("vm_count"), 0);
    assert_eq!(host.stat("allocs_ok"), 0);

    // Room made: the next start creates the ledger and runs its VM.
    fs.resize("2m");
    let o = zhyve_run(&host, 2, 64, &[]);
    assert_zhyve_exit(&o, 0);
    assert!(
        stdout(&o).ends_with("zhyve: admitted=1 refused=0 launch_failed=0\n"),
        "{}",
        stdout(&o)
    );
    let p = fs.path().join(lf::LEDGER_FILE_NAME);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), lf::FILE_SIZE as u64);
    assert_eq!(inode(&p), inode(&lf::anchor_for(&p)));
    assert_eq!(
        entries(fs.path()),
        [
            lf::LEDGER_FILE_NAME.to_string(),
            format!("{}{}", lf::LEDGER_FILE_NAME, lf::ANCHOR_SUFFIX)
        ]
    );
    assert_eq!(host.stat("allocs_ok"), 1);
}

/// A ledger made on a 2 MiB tmpfs, which is then filled to the last byte:
/// the mapped ledger never needs another block, so admissions, commits,
/// aborts and reconciles from several processes at once — the Rust API in
/// four children, and two zhyves (C through the .so) whose bhyves adopt
/// and commit their claims — all work and all exit normally.
///
/// On the old code a ledger made and then starved like this faulted: a
/// version-1 ledger as 40f3a4a created it (ftruncate, then the header
/// written) on a 2 MiB tmpfs filled to the last byte killed zhyve (built
/// against 40f3a4a) with SIGBUS, exit 135, at its first admission.
#[test]
fn ledger_on_a_filled_file_system_never_faults() {
    if child::play(play) {
        return;
    }
    let t = "ledger_on_a_filled_file_system_never_faults";
    let mut host = new_host("lf-filled");
    let Some(fs) = tmpfs(&host, "2m") else {
        return;
    };
    host.set("VMMRESV_RUNDIR", fs.path().to_str().unwrap());
    let p = fs.path().join(lf::LEDGER_FILE_NAME);
    // Created (and no slot touched) before the file system fills.
    drop(LedgerFile::open_or_create(&p).unwrap());
    let filler = fs.fill("filler");
    assert!(filler > 0);

    const CHURNS: u32 = 4;
    const PER_CHURN: u32 = 40;
    const ZHYVES: u32 = 2;
    const PER_ZHYVE: u32 = 8;
    let churn_bytes = 16 * MIB;
    let mut kids = Vec::new();
    for k in 0..CHURNS {
        let role = format!("churn:{}:{}:{}/reconcile", k * 1000, PER_CHURN, churn_bytes);
        kids.push(
            host.command(&std::env::current_exe().unwrap())
                .args(["--exact", t, "--nocapture", "--test-threads", "1"])
                .env(ROLE, role)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let zhyves: Vec<Child> = (0..ZHYVES)
        .map(|z| {
            let n = PER_ZHYVE.to_string();
            zhyve_cmd(&host, 0x100 + z, 16, &["-q", "-n", n.as_str()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in kids {
        let got = child_replies(&c.wait_with_output().unwrap());
        assert_eq!(got.len(), 2, "{:?}", got);
        assert_eq!(
            got[0],
            format!(
                "ok {} {} {}",
                PER_CHURN,
                u64::from(PER_CHURN) * churn_bytes,
                PER_CHURN / 4
            )
        );
        assert!(got[1].starts_with("ok "), "reconcile: {:?}", got[1]);
    }
    for z in zhyves {
        let o = z.wait_with_output().unwrap();
        assert_zhyve_exit(&o, 0);
        assert_eq!(
            stdout(&o),
            format!("zhyve: admitted={} refused=0 launch_failed=0\n", PER_ZHYVE)
        );
    }
    assert_eq!(host.stat("allocs_ok"), u64::from(ZHYVES * PER_ZHYVE));
    assert_eq!(host.stat("allocs_refused"), 0);

    // Still full, and the ledger holds nothing.
    assert_eq!(fs.space().0, 0);
    assert_eq!(
        std::fs::metadata(fs.path().join("filler")).unwrap().len(),
        filler
    );
    assert_eq!(run(&host, t, "reconcile", &[]), ["ok 0 0 0"]);
    let f = LedgerFile::open_or_create(&p).unwrap();
    assert_eq!(f.ledger().claims().unwrap(), vec![]);
    for pool in [Pool::Reservoir, Pool::Transient] {
        assert_eq!(f.ledger().claimed(pool), 0, "{:?}", pool);
    }
}

// ---------------------------------------------------------------------
// Issue 13 item 6: long names
// ---------------------------------------------------------------------

/// `<dir>/` and a name of `len` bytes.
fn long_name(dir: &Path, len: usize) -> PathBuf {
    let stem = "long-ledger-";
    assert!(len > stem.len());
    dir.join(format!("{}{}", stem, "n".repeat(len - stem.len())))
}

/// `<scratch>/root/proc/meminfo` for zhyve -R: all of HOST available.
fn meminfo_root(host: &EmuHost) -> PathBuf {
    let root = host.dir.path().join("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/meminfo"),
        format!(
            "MemTotal: {} kB\nMemAvailable: {} kB\n",
            HOST / 1024,
            HOST / 1024
        ),
    )
    .unwrap();
    root
}

/// A ledger name of MAX_NAME bytes works end to end: admit and commit
/// from the Rust API and from zhyve (C); its anchor is made. Longer names
/// — MAX_NAME + 1, 255, 256 — are INVALID_ARGUMENT (before item 6, 255
/// bytes failed at its longer temporary name), and nothing is created,
/// not even the directory.
#[test]
fn ledger_names_up_to_max_name() {
    if child::play(play) {
        return;
    }
    let t = "ledger_names_up_to_max_name";
    let host = new_host("lf-names");

    let dir = host.dir.path().join("names");
    let p = long_name(&dir, lf::MAX_NAME);
    let env = [(LEDGER_ENV, p.as_path())];
    let one = GIB.to_string();
    assert_eq!(
        run(&host, t, &format!("admit:1:{}/commit:1", one), &env),
        [
            format!("UseReservoir Ok {} 0 0", one),
            format!("ok {}", one)
        ]
    );
    let anchor = lf::anchor_for(&p);
    assert_eq!(inode(&p), inode(&anchor));
    assert_eq!(std::fs::metadata(&p).unwrap().len(), lf::FILE_SIZE as u64);

    let o = zhyve_run(&host, 2, 1024, &["-l", p.to_str().unwrap()]);
    assert_zhyve_exit(&o, 0);
    assert!(
        stdout(&o).ends_with("zhyve: admitted=1 refused=0 launch_failed=0\n"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(host.stat("allocs_ok"), 1);
    assert_eq!(entries(&dir).len(), 2, "{:?}", entries(&dir));
    let f = LedgerFile::open_or_create(&p).unwrap();
    assert_eq!(f.ledger().claims().unwrap(), vec![]);
    drop(f);

    // Too long: refused up front, nothing created.
    for len in [lf::MAX_NAME + 1, 255, 256] {
        let fresh = host.dir.path().join(format!("names-{}", len));
        for d in [&dir, &fresh] {
            let before = entries(d);
            let q = long_name(d, len);
            let got = run(&host, t, "open", &[(LEDGER_ENV, q.as_path())]);
            assert_eq!(got, ["open_err InvalidArgument 0"], "{} bytes", len);
            let o = zhyve_run(&host, 3, 64, &["-l", q.to_str().unwrap()]);
            assert_zhyve_failed(&o, "vmmresv_admission_open", Status::InvalidArgument, None);
            assert_eq!(entries(d), before, "{} bytes: something was created", len);
        }
        assert!(!fresh.exists(), "{} bytes: the directory was created", len);
    }
}

/// MAX_NAME is 255 less `.host` and the anchor suffix: room for the host
/// ledger (`<name>.host`, admit_vm's) and its anchor, exactly 255 bytes.
/// So zhyve under the host policy (-R: vmmresv_admit_vm) with a ledger
/// name of MAX_NAME bytes admits and runs its VM, and both ledgers and
/// both anchors exist afterwards.
#[test]
fn max_name_ledger_has_room_for_its_host_ledger() {
    let host = new_host("lf-names-host");
    assert_eq!(lf::MAX_NAME, 255 - ".host".len() - lf::ANCHOR_SUFFIX.len());
    let dir = host.dir.path().join("names");
    let p = long_name(&dir, lf::MAX_NAME);
    let root = meminfo_root(&host);
    let o = zhyve_run(
        &host,
        2,
        1024,
        &["-l", p.to_str().unwrap(), "-R", root.to_str().unwrap()],
    );
    assert_zhyve_exit(&o, 0);
    assert!(
        stdout(&o).ends_with("zhyve: admitted=1 refused=0 launch_failed=0\n"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let host_ledger = PathBuf::from(format!("{}.host", p.display()));
    let host_anchor = lf::anchor_for(&host_ledger);
    assert_eq!(host_anchor.file_name().unwrap().len(), 255);
    assert_eq!(inode(&p), inode(&lf::anchor_for(&p)));
    assert_eq!(inode(&host_ledger), inode(&host_anchor));
    assert_eq!(entries(&dir).len(), 4, "{:?}", entries(&dir));
    assert_eq!(host.stat("allocs_ok"), 1);
}

// ---------------------------------------------------------------------
// Issue 13 item 6: a UUID another process holds
// ---------------------------------------------------------------------

/// Process A holds VM 1's claim. Before item 6 another process admitting
/// VM 1 got USE_RESERVOIR / ALREADY_ADMITTED and then NOT_FOUND from its
/// commit. Now: REFUSE / HELD_ELSEWHERE with nothing charged (the ledger
/// still holds A's 1 GiB, once), and NOT_HOLDER from that process's
/// commit and abort — from the Rust API, and zhyve (C) refuses that VM
/// and launches nothing. A's own retry is ALREADY_ADMITTED, its commit
/// works, and then the VM is anybody's.
#[test]
fn uuid_held_by_another_process_is_held_elsewhere() {
    if child::play(play) {
        return;
    }
    let t = "uuid_held_by_another_process_is_held_elsewhere";
    let host = new_host("lf-held");
    let vm: u32 = 1 << 16; // zhyve's iteration 0 of VM 1
    let one = GIB.to_string();
    let mut a = Server::start(&host, t);
    assert_eq!(
        a.ask(&format!("admit:{}:{}", vm, GIB)),
        format!("UseReservoir Ok {} 0 0", one)
    );

    let got = run(
        &host,
        t,
        &format!(
            "admit:{vm}:{}/admit:{vm}:{}/commit:{vm}/abort:{vm}",
            GIB,
            2 * GIB
        ),
        &[],
    );
    assert_eq!(
        got,
        [
            "Refuse HeldElsewhere 0 0 0",
            "Refuse HeldElsewhere 0 0 0",
            "err NotHolder",
            "err NotHolder"
        ]
    );
    let f = LedgerFile::open_or_create(&host.ledger_path()).unwrap();
    let claims = f.ledger().claims().unwrap();
    assert_eq!(claims.len(), 1, "{:?}", claims);
    assert_eq!(claims[0].pid, a.pid());
    assert_eq!(claims[0].uuid, uuid(vm));
    assert_eq!(claims[0].pages, GIB / PAGE);
    assert_eq!(f.ledger().claimed(Pool::Reservoir), GIB / PAGE);
    assert_eq!(f.ledger().claimed(Pool::Transient), 0);

    // C: zhyve for the same VM is refused, charged nothing, launches nothing.
    let o = zhyve_run(&host, 1, 1024, &[]);
    assert_zhyve_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("zhyve: {}: refuse (", uuid_text(vm)))
            && out.contains(" charged=0 "),
        "{}",
        out
    );
    assert!(
        out.ends_with("zhyve: admitted=0 refused=1 launch_failed=0\n"),
        "{}",
        out
    );
    assert_eq!(host.stat("vm_count"), 0);
    assert_eq!(host.stat("allocs_ok"), 0);
    assert_eq!(f.ledger().claimed(Pool::Reservoir), GIB / PAGE);

    // The holder: its retry is the same claim; its commit works.
    assert_eq!(
        a.ask(&format!("admit:{}:{}", vm, GIB)),
        format!("UseReservoir AlreadyAdmitted {} 0 0", one)
    );
    assert_eq!(a.ask(&format!("commit:{}", vm)), format!("ok {}", one));
    assert_eq!(a.ask(&format!("commit:{}", vm)), "err NotFound");
    assert_eq!(f.ledger().claims().unwrap(), vec![]);
    assert_eq!(
        run(&host, t, &format!("admit:{vm}:{}/abort:{vm}", GIB), &[]),
        [
            format!("UseReservoir Ok {} 0 0", one),
            format!("ok {}", one)
        ]
    );
    a.finish();
}

// ---------------------------------------------------------------------
// Issue 12 item 7: version 1
// ---------------------------------------------------------------------

const V1_NSLOTS: usize = 8192;
const V1_SIZE: usize = 4096 + V1_NSLOTS * 64;

/// A version-1 ledger as 40f3a4a wrote it, every byte present: the header
/// (magic, version 1, header 4096, slot 64, 8192 slots, page 4096,
/// reserved 0, file size, creation, FNV-1a of the 48 bytes before it),
/// then `edit` applied to the whole file.
fn v1_file(edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut b = vec![0u8; V1_SIZE];
    b[..8].copy_from_slice(b"VMMRLDG\0");
    for (off, v) in [
        (8, 1u32),
        (12, 4096),
        (16, 64),
        (20, 8192),
        (24, 4096),
        (28, 0),
    ] {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    b[32..40].copy_from_slice(&(V1_SIZE as u64).to_le_bytes());
    b[40..48].copy_from_slice(&1_700_000_000u64.to_le_bytes());
    let check = fnv1a(&b[..48]);
    b[48..56].copy_from_slice(&check.to_le_bytes());
    edit(&mut b);
    b
}

fn write_ledger_bytes(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn version_at(p: &Path) -> u32 {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..8], b"VMMRLDG\0");
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// An empty version-1 ledger (no slot in use, no claimed bytes in any
/// total — the bits above a total's 36-bit count do not make a claim) is
/// replaced by a version-2 one with its anchor, and admissions work on it:
/// from the Rust API, and from zhyve (C) on another host.
#[test]
fn empty_version_1_ledger_is_replaced() {
    if child::play(play) {
        return;
    }
    let t = "empty_version_1_ledger_is_replaced";
    let empty = [
        v1_file(|_| {}),
        v1_file(|b| {
            // Bookkeeping above the count, count zero.
            put_u64(b, 128, 5 << 40);
            put_u64(b, 320, 1 << 36);
        }),
    ];
    for (i, v1) in empty.iter().enumerate() {
        // The Rust API.
        let host = new_host(&format!("lf-v1-empty-{}", i));
        let p = host.ledger_path();
        write_ledger_bytes(&p, v1);
        let old = inode(&p);
        let one = GIB.to_string();
        assert_eq!(
            run(&host, t, &format!("admit:1:{}/commit:1", GIB), &[]),
            [
                format!("UseReservoir Ok {} 0 0", one),
                format!("ok {}", one)
            ],
            "v1 file {}",
            i
        );
        assert_eq!(version_at(&p), lf::VERSION);
        assert_eq!(lf::VERSION, 2);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), lf::FILE_SIZE as u64);
        assert_ne!(inode(&p), old, "replaced, not rewritten in place");
        assert_eq!(inode(&p), inode(&lf::anchor_for(&p)));
        assert_eq!(
            entries(&host.run_dir()),
            [
                lf::LEDGER_FILE_NAME.to_string(),
                format!("{}{}", lf::LEDGER_FILE_NAME, lf::ANCHOR_SUFFIX)
            ],
            "a temporary file was left"
        );

        // zhyve.
        let zhost = new_host(&format!("lf-v1-empty-zhyve-{}", i));
        let p = zhost.ledger_path();
        write_ledger_bytes(&p, v1);
        let o = zhyve_run(&zhost, 1, 1024, &[]);
        assert_zhyve_exit(&o, 0);
        assert!(
            stdout(&o).ends_with("zhyve: admitted=1 refused=0 launch_failed=0\n"),
            "{}{}",
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(version_at(&p), lf::VERSION);
        assert_eq!(inode(&p), inode(&lf::anchor_for(&p)));
        assert_eq!(zhost.stat("allocs_ok"), 1);
    }
}

/// A version-1 ledger with a claim in it — a CLAIMED slot (the first, or
/// the last of its 8192, past version 2's 4096), a slot in another state,
/// or a count in any of its three totals — is LEDGER_VERSION (7030) from
/// the Rust API and from zhyve: never read as version 2, never replaced
/// (byte for byte, the same inode), no anchor, no temporary file, no VM.
#[test]
fn version_1_ledger_with_claims_is_ledger_version() {
    if child::play(play) {
        return;
    }
    let t = "version_1_ledger_with_claims_is_ledger_version";
    let slot = |i: usize| 4096 + 64 * i;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "claimed first slot",
            v1_file(|b| {
                put_u64(b, slot(0), 3 | (1 << 3));
                put_u64(b, slot(0) + 16, 1 << 18);
                put_u64(b, 128, 1 << 18);
            }),
        ),
        (
            "claimed last slot only",
            v1_file(|b| put_u64(b, slot(V1_NSLOTS - 1), 3 | (1 << 3))),
        ),
        (
            "slot in state 1",
            v1_file(|b| put_u64(b, slot(4097), 1 | (1 << 3))),
        ),
        ("reservoir total", v1_file(|b| put_u64(b, 128, 1))),
        (
            "transient total",
            v1_file(|b| put_u64(b, 256, (1 << 36) - 1)),
        ),
        ("ARC total", v1_file(|b| put_u64(b, 320, 7 | (1 << 40)))),
    ];
    let host = new_host("lf-v1-claims");
    let dir = host.run_dir();
    let p = host.ledger_path();
    for (what, v1) in &cases {
        let _ = std::fs::remove_file(&p);
        write_ledger_bytes(&p, v1);
        let id = inode(&p);
        assert_eq!(
            run(&host, t, &format!("admit:1:{}", GIB), &[]),
            ["open_err LedgerVersion 0"],
            "{}",
            what
        );
        let o = zhyve_run(&host, 1, 1024, &[]);
        assert_zhyve_failed(&o, "vmmresv_admission_open", Status::LedgerVersion, None);
        assert_eq!(Status::LedgerVersion as u32, 7030);
        assert_eq!(
            &std::fs::read(&p).unwrap(),
            v1,
            "{}: the file changed",
            what
        );
        assert_eq!(inode(&p), id, "{}: the file was replaced", what);
        assert_eq!(
            entries(&dir),
            [lf::LEDGER_FILE_NAME],
            "{}: an anchor or a temporary file was made",
            what
        );
    }
    assert_eq!(host.stat("vm_count"), 0);
    assert_eq!(host.stat("allocs_ok"), 0);
}

// ---------------------------------------------------------------------
// Identity: the name and its anchor
// ---------------------------------------------------------------------

/// A different, valid ledger renamed over the name while process A holds
/// a claim in the old one: A's next admission is LEDGER_REPLACED (it
/// would otherwise admit against a view missing its own pending claim),
/// and so is a new process's open (the name and the anchor are two files).
#[test]
fn ledger_renamed_over_is_ledger_replaced() {
    if child::play(play) {
        return;
    }
    let t = "ledger_renamed_over_is_ledger_replaced";
    let host = new_host("lf-renamed");
    let p = host.ledger_path();
    let mut a = Server::start(&host, t);
    let three = (3 * GIB).to_string();
    assert_eq!(
        a.ask(&format!("admit:1:{}", 3 * GIB)),
        format!("UseReservoir Ok {} 0 0", three)
    );
    let other = host.run_dir().join("other.ledger");
    drop(LedgerFile::open_or_create(&other).unwrap());
    std::fs::rename(&other, &p).unwrap();

    assert_eq!(a.ask(&format!("admit:2:{}", GIB)), "err LedgerReplaced");
    assert_eq!(a.ask(&format!("admit:1:{}", 3 * GIB)), "err LedgerReplaced");
    assert_eq!(
        run(&host, t, &format!("admit:3:{}", GIB), &[]),
        ["open_err LedgerReplaced 0"]
    );
    let o = zhyve_run(&host, 4, 1024, &[]);
    assert_zhyve_failed(&o, "vmmresv_admission_open", Status::LedgerReplaced, None);
    assert_eq!(host.stat("allocs_ok"), 0);
    // A's claim is still in the file the anchor names.
    assert_ne!(inode(&p), inode(&lf::anchor_for(&p)));
    a.finish();
}

/// The name unlinked while process A holds a 3 GiB claim (its anchor
/// stays): a new process's open restores the name from the anchor — the
/// same file — and counts A's claim: its 2 GiB VM is refused 1 GiB short
/// with 3 GiB pending. A then admits and commits on the restored name.
#[test]
fn ledger_unlinked_is_restored_from_its_anchor() {
    if child::play(play) {
        return;
    }
    let t = "ledger_unlinked_is_restored_from_its_anchor";
    let host = new_host("lf-unlinked");
    let p = host.ledger_path();
    let anchor = lf::anchor_for(&p);
    let mut a = Server::start(&host, t);
    let three = (3 * GIB).to_string();
    assert_eq!(
        a.ask(&format!("admit:1:{}", 3 * GIB)),
        format!("UseReservoir Ok {} 0 0", three)
    );
    let id = inode(&p);
    std::fs::remove_file(&p).unwrap();
    assert!(!p.exists());

    assert_eq!(
        run(&host, t, &format!("admit:2:{}", 2 * GIB), &[]),
        [format!("Refuse ReservoirFull 0 {} {}", GIB, three)]
    );
    assert_eq!(inode(&p), id, "the name is the anchor's file again");
    assert_eq!(inode(&anchor), id);

    // zhyve (C) sees the claim too.
    let o = zhyve_run(&host, 5, 2048, &[]);
    assert_zhyve_exit(&o, 0);
    assert!(
        stdout(&o).contains(&format!(
            "refuse (reservoir_full) charged=0 shortfall={}",
            GIB
        )),
        "{}",
        stdout(&o)
    );

    // A carries on against the restored name.
    let half = (GIB / 2).to_string();
    assert_eq!(
        a.ask(&format!("admit:3:{}", GIB / 2)),
        format!("UseReservoir Ok {} 0 {}", half, three)
    );
    assert_eq!(a.ask("commit:1"), format!("ok {}", three));
    assert_eq!(a.ask("abort:3"), format!("ok {}", half));
    let f = LedgerFile::open_or_create(&p).unwrap();
    assert_eq!(f.ledger().claims().unwrap(), vec![]);
    assert_eq!(host.stat("allocs_ok"), 0);
    a.finish();
}
