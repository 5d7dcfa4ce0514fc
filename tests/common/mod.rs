//! Shared helpers of the integration tests: where the built artifacts are,
//! and how to run a command against a fresh emulated `/dev/vmmctl`.
//!
//! `make test` builds the linked `.so`, the emulator and the C consumers
//! before running cargo's tests; a test that finds them missing says so.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An artifact under target/, or a panic that says how to build it.
pub fn artifact(rel: &str) -> PathBuf {
    let p = root().join("target").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make test` (it builds the .so, the emulator and the C programs first)",
        p.display()
    );
    p
}

/// The linked shared object's directory (target/lib).
pub fn libdir() -> PathBuf {
    artifact("lib/libvmmresv.so.1");
    root().join("target/lib")
}

/// The LD_PRELOAD emulator of /dev/vmmctl.
pub fn emulator() -> PathBuf {
    artifact("emu/libvmmctl_emu.so")
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "vmmresv-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One emulated host: its state file and the library's run directory.
pub struct EmuHost {
    pub dir: Scratch,
    pub env: Vec<(String, String)>,
}

impl EmuHost {
    /// A host with `physmem` bytes of RAM (the emulator derives the limit).
    pub fn new(tag: &str, physmem: u64) -> EmuHost {
        let dir = Scratch::new(tag);
        let env = vec![
            ("LD_PRELOAD".into(), emulator().display().to_string()),
            (
                "VMMEMU_STATE".into(),
                dir.path().join("vmmctl.state").display().to_string(),
            ),
            ("VMMEMU_PHYSMEM".into(), physmem.to_string()),
            (
                "VMMRESV_RUNDIR".into(),
                dir.path().join("run").display().to_string(),
            ),
        ];
        EmuHost { dir, env }
    }

    /// A host with `physmem` bytes of RAM and a reservoir of
    /// `reservoir_mib` MiB ([`EmuHost::set_reservoir`]).
    pub fn with_reservoir(tag: &str, physmem: u64, reservoir_mib: u64) -> EmuHost {
        let host = EmuHost::new(tag, physmem);
        host.set_reservoir(reservoir_mib);
        host
    }

    /// Set the reservoir to `mib` MiB with the Makefile's rsrvrctl (`-s`),
    /// on a host with no VM: all of it free.
    pub fn set_reservoir(&self, mib: u64) {
        let o = self
            .command(&artifact("c/rsrvrctl"))
            .args(["-s", mib.to_string().as_str()])
            .output()
            .unwrap();
        assert!(o.status.success(), "rsrvrctl -s {}: {:?}", mib, o);
        assert_eq!(self.stat("free"), mib << 20);
    }

    /// The library's run directory on this host (`VMMRESV_RUNDIR` as
    /// [`EmuHost::new`] sets it).
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The admission ledger's default path on this host.
    pub fn ledger_path(&self) -> PathBuf {
        self.run_dir().join(vmmresv::ledger::file::LEDGER_FILE_NAME)
    }

    /// Add or replace an environment variable for every command.
    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.retain(|(a, _)| a != k);
        self.env.push((k.into(), v.into()));
        self
    }

    /// A command with this host's environment.
    pub fn command(&self, prog: &Path) -> Command {
        let mut c = Command::new(prog);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// The emulator's own view of its state (`vmmemu_ctl show`), as
    /// key=value pairs.
    pub fn show(&self) -> Vec<(String, String)> {
        let out = self
            .command(&artifact("emu/vmmemu_ctl"))
            .env_remove("LD_PRELOAD")
            .arg("show")
            .output()
            .unwrap();
        assert!(out.status.success(), "vmmemu_ctl show: {:?}", out);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One numeric field of `show`.
    pub fn stat(&self, key: &str) -> u64 {
        let all = self.show();
        let v = all
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no {} in emulator state {:?}", key, all));
        v.1.parse()
            .unwrap_or_else(|_| panic!("{}={} is not a number", key, v.1))
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// The limit the emulator (and the kernel) derives from physmem with the
/// default pages_pp_maximum (4% of pages + 4 MiB): vmm_reservoir.c's
/// `((physmem * 10 - pages_pp_maximum * 12) * PAGESIZE) / 10`.
pub fn kernel_limit(physmem: u64) -> u64 {
    let pages = physmem / 4096;
    let ppmax = pages / 25 + 1024;
    ((pages * 10 - ppmax * 12) * 4096) / 10
}

/// Child processes of a test binary: a test that needs the emulator (an
/// LD_PRELOAD interposer) re-runs its own binary, filtered to itself, under
/// an [`EmuHost`]; the child sees `VMMRESV_TEST_ROLE` and plays that role
/// instead of the test body, reporting one `RESULT ...` line on stdout.
pub mod child {
    use super::{stderr, stdout, EmuHost};
    use std::process::{Child, Stdio};

    /// The environment variable naming a child's role.
    pub const ROLE: &str = "VMMRESV_TEST_ROLE";

    /// This process's role, if it is a child.
    pub fn role() -> Option<String> {
        std::env::var(ROLE).ok()
    }

    /// Start test `test` of this binary as a child with `role`.
    pub fn spawn(host: &EmuHost, test: &str, role: &str) -> Child {
        host.command(&std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env(ROLE, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Wait for a child; it must succeed; return the words after its
    /// "RESULT".
    pub fn result(c: Child) -> Vec<String> {
        let out = c.wait_with_output().unwrap();
        let so = stdout(&out);
        assert!(
            out.status.success(),
            "child failed: {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            so,
            stderr(&out)
        );
        // The harness prints "test name ... " before the child's output.
        let line = so
            .lines()
            .find_map(|l| l.find("RESULT ").map(|i| &l[i..]))
            .unwrap_or_else(|| panic!("no RESULT in child output:\n{}", so));
        line.split_whitespace().skip(1).map(String::from).collect()
    }

    /// Spawn and wait.
    pub fn run(host: &EmuHost, test: &str, role: &str) -> Vec<String> {
        result(spawn(host, test, role))
    }

    /// If this process is a child, play its role with `play` and return
    /// true (the parent's test body is then skipped); else false.
    pub fn play(play: impl FnOnce(&str)) -> bool {
        match role() {
            Some(r) => {
                play(&r);
                true
            }
            None => false,
        }
    }
}

/// `O_EXCL` on an `OpenOptions`, as the vmm control device requires.
pub trait ExclOpen {
    fn custom_flags_excl(&mut self) -> &mut Self;
}

impl ExclOpen for std::fs::OpenOptions {
    fn custom_flags_excl(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_EXCL)
    }
}

/// The C source of program `name`: the shipped rsrvrctl port is
/// `cmd/rsrvrctl/rsrvrctl.c`, every other program `tests/c/<name>.c`.
pub fn c_source(name: &str) -> PathBuf {
    match name {
        "rsrvrctl" => root().join("cmd/rsrvrctl/rsrvrctl.c"),
        _ => root().join(format!("tests/c/{}.c", name)),
    }
}

/// Build C program `name` ([`c_source`]) with the system `cc` and the
/// Makefile's warning flags into cargo's scratch directory for this test
/// binary; the tests' own programs also see `tests/c/common.h`, the shipped
/// rsrvrctl only `include/`. `link` adds -lvmmresv from target/lib and its
/// rpath. Compiled under a unique name and renamed into place, so
/// concurrent test binaries never see half a file. Tests call [`program`]
/// (or [`zhyve`], [`bhyve`], ...), which builds each once.
pub fn build_c(name: &str, link: bool) -> PathBuf {
    let root = root();
    let src = c_source(name);
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("c-{}", env!("CARGO_CRATE_NAME")));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join(name);
    let tmp = dir.join(format!("{}.{}.tmp", name, std::process::id()));
    let mut cc = Command::new("cc");
    cc.args([
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
        "-O2",
    ])
    .arg(format!("-I{}", root.join("include").display()));
    if src.starts_with(root.join("tests/c")) {
        cc.arg(format!("-I{}", root.join("tests/c").display()));
    }
    cc.arg("-o").arg(&tmp).arg(&src);
    if link {
        let lib = libdir();
        cc.arg(format!("-L{}", lib.display()))
            .arg("-lvmmresv")
            .arg(format!("-Wl,-rpath,{}", lib.display()));
    }
    let out = cc.output().expect("cannot run the system C compiler `cc`");
    assert!(
        out.status.success(),
        "cc failed to build {} ({}):\n{}{}",
        src.display(),
        out.status,
        stdout(&out),
        stderr(&out)
    );
    std::fs::rename(&tmp, &bin).unwrap();
    bin
}

/// C program `name` linked with the library ([`build_c`]), built the first
/// time a test of this binary asks for it. Builds are serialised (threads
/// of one test binary share the scratch name).
pub fn program(name: &'static str) -> &'static Path {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<&'static str, &'static Path>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    built
        .entry(name)
        .or_insert_with(|| Box::leak(build_c(name, true).into_boxed_path()))
}

/// SmartOS zhyve's stand-in (tests/c/zhyve.c).
pub fn zhyve() -> &'static Path {
    program("zhyve")
}

/// bhyve's stand-in (tests/c/bhyve.c).
pub fn bhyve() -> &'static Path {
    program("bhyve")
}

/// The scripted launcher (tests/c/zlaunch.c).
pub fn zlaunch() -> &'static Path {
    program("zlaunch")
}

/// The shipped rsrvrctl port (cmd/rsrvrctl/rsrvrctl.c).
pub fn rsrvrctl() -> &'static Path {
    program("rsrvrctl")
}

/// `valgrind` on PATH, or a failure: CI installs it, and a check that
/// silently did not run would be worse than none.
pub fn valgrind() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("valgrind"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "valgrind is not installed: install it (apt-get install valgrind) to run this test"
            )
        })
}

/// Hostile ledger files: the tests that write a ledger's bytes themselves
/// (tests/admission_faults.rs, tests/ledger_files.rs) build them with
/// these, from the layout docs/ledger.md and admission/file.rs describe.
pub mod image {
    use std::path::Path;

    /// FNV-1a (64-bit): the ledger header's check.
    pub fn fnv1a(bytes: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// `v` little-endian at `off` of `b`.
    pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// `v` little-endian at `off` of `b`.
    pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// `v` little-endian at byte `off` of file `p`, in place.
    pub fn put_u64_at(p: &Path, off: u64, v: u64) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        f.write_all_at(&v.to_le_bytes(), off).unwrap();
    }
}

/// One zhyve (tests/c/zhyve.c) run of VM starts (`-n`), waited for: its
/// exit status, the counts of its last summary line
/// (`zhyve: admitted=A refused=R launch_failed=L`, all 0 when it printed
/// none: see `summarised`) and its output.
pub struct ZhyveRun {
    pub status: std::process::ExitStatus,
    pub summarised: bool,
    pub admitted: u64,
    pub refused: u64,
    pub launch_failed: u64,
    pub stdout: String,
    pub stderr: String,
}

/// The counts of zhyve's last summary line in `out`.
pub fn zhyve_summary(out: &str) -> Option<(u64, u64, u64)> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("zhyve: admitted="))?;
    let get = |k: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{}=", k)))?
            .parse()
            .ok()
    };
    Some((get("admitted")?, get("refused")?, get("launch_failed")?))
}

/// Start every command at once, each one's stdout and stderr going to
/// `dir/zhyve<i>.out` and `.err` (files: no pipe can fill up while the
/// test waits for another process), and wait for all.
pub fn zhyve_runs(dir: &Path, cmds: Vec<Command>) -> Vec<ZhyveRun> {
    use std::fs::File;
    use std::process::Stdio;
    let kids: Vec<_> = cmds
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let out = dir.join(format!("zhyve{}.out", i));
            let err = dir.join(format!("zhyve{}.err", i));
            let child = c
                .stdin(Stdio::null())
                .stdout(File::create(&out).unwrap())
                .stderr(File::create(&err).unwrap())
                .spawn()
                .unwrap();
            (child, out, err)
        })
        .collect();
    kids.into_iter()
        .map(|(mut c, out, err)| {
            let status = c.wait().unwrap();
            let stdout = std::fs::read_to_string(out).unwrap();
            let stderr = std::fs::read_to_string(err).unwrap();
            let counts = zhyve_summary(&stdout);
            let (admitted, refused, launch_failed) = counts.unwrap_or((0, 0, 0));
            ZhyveRun {
                status,
                summarised: counts.is_some(),
                admitted,
                refused,
                launch_failed,
                stdout,
                stderr,
            }
        })
        .collect()
}
