//! Launchers for the deployment-shape tests (tests/zones.rs,
//! tests/admission_liveness.rs): one emulated host whose ledger directory
//! and emulator state live in one real directory, and launchers that run
//! either as plain processes or each in its own PID + mount namespace (the
//! Linux analog of an illumos zone) with that directory bind-mounted at a
//! path of its own.
//!
//! Included with `#[path = "common/launcher.rs"] mod launcher;` next to
//! `mod common;`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::EmuHost;
// The C programs (built once per test binary), for the tests that use this.
#[allow(unused_imports)]
pub use crate::common::{bhyve, zhyve, zlaunch};

/// Whether this process may make PID + mount namespaces with unshare(1)
/// (root, util-linux's unshare on PATH, namespaces allowed). When not,
/// print a loud SKIPPED line naming the test: CI runs as root.
pub fn zones_available(test: &str) -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let ok = OK.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        match Command::new("unshare")
            .args(UNSHARE)
            .args(["sh", "-c", "mount -t tmpfs probe /mnt"])
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "unshare {:?} failed: {}",
                UNSHARE,
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run unshare: {}", e)),
        }
    });
    match ok {
        Ok(()) => true,
        Err(why) => {
            eprintln!(
                "SKIPPED: {}: needs root and unshare(1) PID + mount namespaces ({}); CI runs as root",
                test, why
            );
            println!("SKIPPED: {}", test);
            false
        }
    }
}

/// unshare(1)'s options: a new PID namespace (forked: the launcher's side
/// is its pid 1's subtree), a new mount namespace with private propagation
/// (unshare's default) and its own /proc, which shows only the namespace's
/// processes, as a zone's /proc does. --kill-child: if the test (or
/// unshare) dies, the namespace goes with it.
const UNSHARE: &[&str] = &[
    "--pid",
    "--fork",
    "--mount",
    "--mount-proc",
    "--kill-child",
    "--",
];

/// What runs as the namespace's pid 1 (`sh -c`): bind-mount the host's
/// directory at the zone's own path (the lofs mount of a zone), then hide
/// the host's path in this namespace under an empty tmpfs, so the launcher
/// can reach the ledger only through its own mount; start `pad` short
/// processes so the launcher's pid is `pad` higher than in a namespace
/// without them; then run the launcher (as a child: sh stays pid 1 and
/// returns the launcher's exit status).
const ZONE_SCRIPT: &str = r#"real=$1; mnt=$2; pad=$3; shift 3
mount --bind "$real" "$mnt" || exit 97
mount -t tmpfs zone-hides-host-path "$real" || exit 97
while [ "$pad" -gt 0 ]; do /bin/true; pad=$((pad - 1)); done
"$@""#;

/// One emulated host: the real directory `<scratch>/host` holds the
/// emulator's state file (`vmmctl.state`) and the run directory (`run/`,
/// where the admission ledger is).
pub struct Host {
    pub emu: EmuHost,
    pub real: PathBuf,
}

impl Host {
    /// A host with `physmem` bytes of RAM and a reservoir of
    /// `reservoir_mib`, set with the rsrvrctl port.
    pub fn new(tag: &str, physmem: u64, reservoir_mib: u64) -> Host {
        let mut emu = EmuHost::new(tag, physmem);
        let real = emu.dir.path().join("host");
        std::fs::create_dir_all(real.join("run")).unwrap();
        let state = real.join("vmmctl.state").display().to_string();
        let run = real.join("run").display().to_string();
        emu.set("VMMEMU_STATE", &state).set("VMMRESV_RUNDIR", &run);
        emu.set_reservoir(reservoir_mib);
        Host { emu, real }
    }

    /// The emulator state file (real path).
    pub fn state_file(&self) -> PathBuf {
        self.real.join("vmmctl.state")
    }

    /// The ledger (real path).
    pub fn ledger(&self) -> PathBuf {
        self.real.join("run/admission.ledger")
    }

    /// One numeric field of the emulator's state.
    pub fn stat(&self, key: &str) -> u64 {
        self.emu.stat(key)
    }

    /// `prog args` as a plain process of the host, with the real paths.
    pub fn plain(&self, prog: &Path, args: &[&str]) -> Command {
        let mut c = self.emu.command(prog);
        c.args(args);
        c
    }

    /// `prog args` in zone `n`: its own PID + mount namespace, the host
    /// directory bind-mounted at `<scratch>/zone<n>` (and the host's own
    /// path hidden), its pid raised by `pad`. The environment names only
    /// the zone's path.
    pub fn zoned(&self, n: usize, pad: u32, prog: &Path, args: &[&str]) -> Command {
        let mnt = self.emu.dir.path().join(format!("zone{}", n));
        std::fs::create_dir_all(&mnt).unwrap();
        let mut c = self.emu.command(Path::new("unshare"));
        c.args(UNSHARE)
            .args(["sh", "-c", ZONE_SCRIPT, "zone"])
            .arg(&self.real)
            .arg(&mnt)
            .arg(pad.to_string())
            .arg(prog)
            .args(args)
            .env("VMMEMU_STATE", mnt.join("vmmctl.state"))
            .env("VMMRESV_RUNDIR", mnt.join("run"));
        c
    }
}

/// Where a launcher runs.
#[derive(Clone, Copy, Debug)]
pub enum Place {
    /// A plain process of the host.
    Plain,
    /// Zone `n` with its pid raised by `pad`.
    Zone(usize, u32),
}

/// A running zlaunch and the pipes to it.
pub struct Launcher {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    err: PathBuf,
    /// Its pid as its own namespace sees it.
    pub ns_pid: u32,
    /// Its pid in the test's namespace.
    pub pid: u32,
}

/// A reply's `key=value` words, as numbers.
pub type Reply = HashMap<String, u64>;

/// Parse `word key=N key=N ...`.
pub fn parse_reply(line: &str) -> Reply {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k.to_string(), v)))
        .collect()
}

impl Launcher {
    /// Start zlaunch `name` at `place` and wait for its `ready` line.
    pub fn start(host: &Host, place: Place, name: &str) -> Launcher {
        Launcher::start_with(host, place, name, &[])
            .unwrap_or_else(|(st, err)| panic!("{} did not start: {}\n{}", name, st, err))
    }

    /// Start zlaunch `name` at `place` with extra options (`-l path`);
    /// if it exits instead of becoming ready, its exit status and stderr.
    pub fn start_with(
        host: &Host,
        place: Place,
        name: &str,
        opts: &[&str],
    ) -> Result<Launcher, (ExitStatus, String)> {
        let bh = bhyve().display().to_string();
        let mut args: Vec<&str> = opts.to_vec();
        args.push(bh.as_str());
        let mut cmd = match place {
            Place::Plain => host.plain(zlaunch(), &args),
            Place::Zone(n, pad) => host.zoned(n, pad, zlaunch(), &args),
        };
        let err = host.emu.dir.path().join(format!("{}.stderr", name));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut l = Launcher {
            name: name.to_string(),
            child,
            stdin,
            out,
            err,
            ns_pid: 0,
            pid: 0,
        };
        let mut ready = String::new();
        l.out.read_line(&mut ready).unwrap();
        if !ready.starts_with("ready pid=") {
            l.stdin = None;
            let st = l.child.wait().unwrap();
            return Err((st, format!("{}{}", ready, l.stderr())));
        }
        l.ns_pid = parse_reply(&ready)["pid"] as u32;
        l.pid = match place {
            Place::Plain => l.child.id(),
            Place::Zone(..) => descendant_named(l.child.id(), "zlaunch")
                .unwrap_or_else(|| panic!("{}: no zlaunch under unshare", name)),
        };
        Ok(l)
    }

    /// What it (and its bhyves) wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self.out.read_line(&mut s).unwrap();
        assert!(
            n > 0,
            "{} went away (pid {}); its stderr:\n{}",
            self.name,
            self.pid,
            self.stderr()
        );
        s.trim_end().to_string()
    }

    /// Send one command; its one-line answer.
    pub fn send(&mut self, cmd: &str) -> String {
        let w = self.stdin.as_mut().expect("launcher's stdin is closed");
        writeln!(w, "{}", cmd).unwrap();
        w.flush().unwrap();
        let r = self.line();
        let verb = cmd.split_whitespace().next().unwrap_or("");
        assert!(
            r.starts_with(verb),
            "{}: {:?} answered {:?}; stderr:\n{}",
            self.name,
            cmd,
            r,
            self.stderr()
        );
        r
    }

    /// Send a command without waiting for its answer (the launcher may be
    /// about to block or be stopped); read it later with [`Launcher::answer`].
    pub fn send_only(&mut self, cmd: &str) {
        let w = self.stdin.as_mut().expect("launcher's stdin is closed");
        writeln!(w, "{}", cmd).unwrap();
        w.flush().unwrap();
    }

    /// The answer to a command sent with [`Launcher::send_only`].
    pub fn answer(&mut self) -> String {
        self.line()
    }

    /// `admit <uuid> <mib>` (REQUIRE): status, decision, reason, charged,
    /// shortfall, pending.
    pub fn admit(&mut self, uuid: &str, mib: u64) -> Reply {
        parse_reply(&self.send(&format!("admit {} {}", uuid, mib)))
    }

    /// `commit <uuid>`: the status.
    pub fn commit(&mut self, uuid: &str) -> u64 {
        parse_reply(&self.send(&format!("commit {}", uuid)))["status"]
    }

    /// `abort <uuid>`: the status.
    pub fn abort(&mut self, uuid: &str) -> u64 {
        parse_reply(&self.send(&format!("abort {}", uuid)))["status"]
    }

    /// `reconcile`: status, live, reclaimed, reclaimed_bytes, before, after.
    pub fn reconcile(&mut self) -> Reply {
        parse_reply(&self.send("reconcile"))
    }

    /// Start a bhyve for VM `vm` of `mib` MiB on the reservoir; its answer
    /// (`bhyve ready`, `bhyve exit=4`, ...).
    pub fn bhyve(&mut self, vm: &str, mib: u64) -> String {
        self.send(&format!("bhyve {} {}", vm, mib))
    }

    /// Stop the running bhyve (its VM is destroyed).
    pub fn stop(&mut self) -> String {
        self.send("stop")
    }

    /// Send a signal to the launcher process itself.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) with a pid we started and still own.
        let r = unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        assert_eq!(
            r,
            0,
            "kill({}, {}): {}",
            self.pid,
            sig,
            std::io::Error::last_os_error()
        );
    }

    /// SIGSTOP it and wait until the kernel shows it stopped (state T).
    pub fn stop_process(&self) {
        self.signal(libc::SIGSTOP);
        wait_for(&format!("{} to stop", self.name), || {
            proc_state(self.pid) == Some('T')
        });
    }

    /// SIGCONT it.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// kill -9 it and wait for everything it ran (its namespace, if any)
    /// to end; its exit status (unshare's, in a zone).
    pub fn kill9(mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.stdin = None;
        self.child.wait().unwrap()
    }

    /// Close its stdin (it exits at EOF, holding whatever it holds) and
    /// wait; its exit status.
    pub fn quit(mut self) -> ExitStatus {
        self.stdin = None;
        self.child.wait().unwrap()
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // A stopped launcher must be able to see its EOF or its SIGKILL.
            // SAFETY: kill(2) on our own child(ren).
            unsafe {
                if self.pid > 1 {
                    libc::kill(self.pid as libc::pid_t, libc::SIGCONT);
                    libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
                }
                libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

/// Field 3 (state) of /proc/<pid>/stat, as the test's namespace sees it.
pub fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    s[s.rfind(')')? + 1..].trim_start().chars().next()
}

/// `(comm, ppid)` of a process, from /proc/<pid>/stat.
fn comm_ppid(pid: u32) -> Option<(String, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let ppid = s[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
    Some((comm, ppid))
}

/// The pid of the process named `comm` among the descendants of `top`.
pub fn descendant_named(top: u32, comm: &str) -> Option<u32> {
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            if let Some((c, ppid)) = comm_ppid(pid) {
                all.push((pid, c, ppid));
            }
        }
    }
    let mut set = vec![top];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, _, ppid) in &all {
            if set.contains(ppid) && !set.contains(pid) {
                set.push(*pid);
                grew = true;
            }
        }
    }
    all.iter()
        .find(|(pid, c, _)| c == comm && set.contains(pid))
        .map(|(pid, _, _)| *pid)
}

/// Poll `cond` until it holds. Not a timing assertion: the limit only keeps
/// a broken run from hanging CI, and is far above anything seen.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "gave up waiting for {}",
            what
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A VM UUID: `tag` names the test, `n` the VM.
pub fn uuid(tag: u32, n: u32) -> String {
    format!("{:08x}-2015-4e0e-9a1b-{:012x}", tag, n)
}

/// Status values of the C ABI (include/vmmresv.h).
pub mod status {
    pub const OK: u64 = 0;
    pub const NOT_FOUND: u64 = 7024;
    pub const BUSY: u64 = 7025;
    /// Ledger v2 (VMMRESV_1.2): the ledger file was replaced, renamed or
    /// removed while in use. Compared by value until the header has it.
    pub const LEDGER_REPLACED: u64 = 7029;
}

/// Decision values.
pub mod decision {
    pub const USE_RESERVOIR: u64 = 1;
    pub const REFUSE: u64 = 3;
}

/// Reason values.
pub mod reason {
    pub const OK: u64 = 0;
    pub const RESERVOIR_FULL: u64 = 2;
}
