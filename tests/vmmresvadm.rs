//! vmmresvadm(8) — cmd/vmmresvadm/vmmresvadm.c, the administrative command
//! built on the C ABI only — run against an emulated /dev/vmmctl (the
//! LD_PRELOAD emulator of tests/emu) with a made-up /proc under `-R`, so
//! that the host's memory and the ARC are known: every subcommand, the
//! table options, the exit statuses, and the metrics through promtool.
//!
//! `make test` builds target/c/vmmresvadm (the Makefile's `c` target).

// Tests are not the library: a panic is how a check fails, and their
// arithmetic and indexing are on values they chose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]

mod common;
#[cfg(target_os = "linux")]
#[path = "common/hugepool.rs"]
mod hugepool;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vmmresv::status::Status;

const HOST: u64 = 16 * GIB;

/// The command as `make c` built it.
fn adm() -> PathBuf {
    artifact("c/vmmresvadm")
}

/// A made-up root for `-R`: /proc/meminfo of a 16 GiB host with 12 GiB
/// available, and, with `arc`, the ARC statistics of the fixtures
/// (c_min 2 GiB, c_max 63 GiB).
fn fake_root(dir: &Path, arc: bool) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal:       16777216 kB\nMemFree:         8388608 kB\n\
         MemAvailable:   12582912 kB\n",
    )
    .unwrap();
    if arc {
        let to = root.join("proc/spl/kstat/zfs/arcstats");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(
            common::root().join("tests/fixtures/arc/linux/proc/spl/kstat/zfs/arcstats"),
            &to,
        )
        .unwrap();
    }
    root
}

fn show(args: &[&str], o: &Output) -> String {
    format!(
        "vmmresvadm {}: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// Run vmmresvadm on `host`, with `-R root` first when given.
fn run(host: &EmuHost, root: Option<&Path>, args: &[&str]) -> Output {
    let mut c = host.command(&adm());
    if let Some(r) = root {
        c.arg("-R").arg(r);
    }
    c.args(args).output().unwrap()
}

/// Run; it must exit 0 with nothing on stderr; its stdout.
fn ok(host: &EmuHost, root: Option<&Path>, args: &[&str]) -> String {
    let o = run(host, root, args);
    assert_eq!(o.status.code(), Some(0), "{}", show(args, &o));
    assert_eq!(stderr(&o), "", "{}", show(args, &o));
    stdout(&o)
}

/// The `-Hp` table of a subcommand as (property, value) pairs.
fn table(host: &EmuHost, root: Option<&Path>, sub: &str) -> Vec<(String, String)> {
    ok(host, root, &[sub, "-Hp"])
        .lines()
        .map(|l| {
            let (p, v) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("not two tab-separated fields: {l:?}"));
            assert!(!v.contains('\t'), "more than two fields: {l:?}");
            (p.to_string(), v.to_string())
        })
        .collect()
}

fn get<'a>(t: &'a [(String, String)], k: &str) -> &'a str {
    t.iter()
        .find(|(p, _)| p == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {k} in {t:?}"))
}

/// The usage's first line.
const USAGE_HEAD: &str =
    "usage: vmmresvadm [-R root] [-P vmm | hugetlb[:pagesize]] subcommand [arguments]\n";

const STATUS_PROPERTIES: &[&str] = &[
    "reservoir.size",
    "reservoir.free",
    "reservoir.allocated",
    "reservoir.transient",
    "reservoir.limit",
    "pending.reservoir",
    "pending.transient",
    "pending.host",
    "arc.size",
    "arc.target",
    "arc.floor",
    "arc.reserved",
    "memory.state",
    "memory.physical",
    "memory.free",
    "memory.min_free",
    "largest_vm.reservoir",
    "largest_vm.reservoir.limited_by",
    "largest_vm.transient",
    "largest_vm.transient.limited_by",
    "profile.rfd185",
    "profile.omicron",
    "profile.triton-cnapi",
];

/// A launcher holding claims (tests/c/zlaunch.c), driven line by line.
struct Launcher {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Launcher {
    fn start(host: &EmuHost) -> Launcher {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = host
            .command(program("zlaunch"))
            .arg("/bin/false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        assert!(l.starts_with("ready pid="), "zlaunch: {l:?}");
        Launcher { child, out }
    }

    fn say(&mut self, cmd: &str) -> String {
        use std::io::{BufRead, Write};
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l
    }

    /// Exit at once, leaving its claims to the ledger (a dead launcher).
    fn quit(mut self) {
        use std::io::Write;
        let _ = writeln!(self.child.stdin.as_mut().unwrap(), "quit");
        assert!(self.child.wait().unwrap().success());
    }
}

// status -------------------------------------------------------------------

#[test]
fn status_of_a_host_without_the_arc() {
    let host = EmuHost::with_reservoir("adm-status", HOST, 8192);
    let root = fake_root(host.dir.path(), false);
    let t = table(&host, Some(&root), "status");
    let props: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(props, STATUS_PROPERTIES);
    assert_eq!(get(&t, "reservoir.size"), (8 * GIB).to_string());
    assert_eq!(get(&t, "reservoir.free"), (8 * GIB).to_string());
    assert_eq!(get(&t, "reservoir.allocated"), "0");
    assert_eq!(get(&t, "reservoir.transient"), "0");
    assert_eq!(get(&t, "reservoir.limit"), kernel_limit(HOST).to_string());
    assert_eq!(get(&t, "pending.reservoir"), "0");
    assert_eq!(get(&t, "pending.transient"), "0");
    assert_eq!(get(&t, "pending.host"), "0");
    for a in ["arc.size", "arc.target", "arc.floor", "arc.reserved"] {
        assert_eq!(get(&t, a), "-", "{a} without an ARC");
    }
    assert_eq!(get(&t, "memory.state"), "high");
    assert_eq!(get(&t, "memory.physical"), HOST.to_string());
    assert_eq!(get(&t, "memory.free"), (12 * GIB).to_string());
    // The reservoir's 8 GiB are all free: the largest VM in it has them.
    assert_eq!(get(&t, "largest_vm.reservoir"), (8 * GIB).to_string());
    assert_eq!(get(&t, "largest_vm.reservoir.limited_by"), "reservoir_free");
    let lt: u64 = get(&t, "largest_vm.transient").parse().unwrap();
    assert!(lt > 0 && lt % 4096 == 0, "largest transient VM {lt}");

    // The human table: a header, aligned columns, sizes with units.
    let human = ok(&host, Some(&root), &["status"]);
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), STATUS_PROPERTIES.len() + 1);
    let col = "largest_vm.reservoir.limited_by  ".len();
    assert_eq!(lines[0], format!("{:<col$}VALUE", "PROPERTY"));
    assert_eq!(lines[1], format!("{:<col$}8G", "reservoir.size"));
    assert_eq!(lines[5], format!("{:<col$}15.2G", "reservoir.limit"));
    assert_eq!(lines[9], format!("{:<col$}-", "arc.size"));
    assert_eq!(lines[14], format!("{:<col$}16G", "memory.physical"));
    assert_eq!(lines[15], format!("{:<col$}12G", "memory.free"));
}

#[test]
fn status_with_the_arc_and_pending_claims() {
    let host = EmuHost::with_reservoir("adm-status-arc", HOST, 4096);
    let root = fake_root(host.dir.path(), true);
    let mut l = Launcher::start(&host);
    let a = l.say("admit 11111111-2222-3333-4444-555555555555 1024");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    let t = table(&host, Some(&root), "status");
    assert_eq!(get(&t, "pending.reservoir"), GIB.to_string());
    assert_eq!(get(&t, "pending.transient"), "0");
    assert_eq!(get(&t, "arc.floor"), (2 * GIB).to_string());
    assert_eq!(
        get(&t, "arc.size"),
        (40 * GIB + 123 * MIB + 7 * 4096).to_string()
    );
    assert_eq!(get(&t, "arc.reserved"), "0");
    let target: u64 = get(&t, "arc.target").parse().unwrap();
    assert!(target >= 2 * GIB, "ARC target {target}");
    // The claim holds 1 GiB of the 4: 3 GiB left for the largest VM.
    assert_eq!(get(&t, "largest_vm.reservoir"), (3 * GIB).to_string());
    l.quit();
}

#[test]
fn table_options() {
    let host = EmuHost::with_reservoir("adm-table", HOST, 2048);
    let root = fake_root(host.dir.path(), false);
    let r = Some(root.as_path());
    // -o value alone, -H: one value a line.
    let v = ok(&host, r, &["status", "-H", "-o", "value"]);
    assert_eq!(v.lines().next(), Some("2G"));
    assert_eq!(v.lines().count(), STATUS_PROPERTIES.len());
    // -p: exact bytes.
    let v = ok(&host, r, &["status", "-Hp", "-o", "value"]);
    assert_eq!(v.lines().next(), Some((2 * GIB).to_string().as_str()));
    // -o in the order asked, with a header.
    let v = ok(&host, r, &["status", "-p", "-o", "value,property"]);
    let mut lines = v.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["VALUE", "PROPERTY"]
    );
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        [(2 * GIB).to_string().as_str(), "reservoir.size"]
    );
    // -o property: the names only.
    let v = ok(&host, r, &["status", "-H", "-o", "property"]);
    assert_eq!(v.lines().collect::<Vec<_>>(), STATUS_PROPERTIES);
    // Options together in one word, as getopt reads them.
    assert_eq!(
        ok(&host, r, &["status", "-Hpo", "value"]),
        ok(&host, r, &["status", "-H", "-p", "-o", "value"])
    );
}

// report -------------------------------------------------------------------

#[test]
fn report_pretty_and_one_line() {
    let host = EmuHost::with_reservoir("adm-report", HOST, 1024);
    let root = fake_root(host.dir.path(), true);
    let one = ok(&host, Some(&root), &["report", "-j"]);
    assert_eq!(one.lines().count(), 1, "-j is one line: {one}");
    let j: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(j["schema"], "vmmresv-report/2");
    assert_eq!(j["reservoir"]["size_bytes"], GIB);
    assert_eq!(j["arc"]["c_min_bytes"], 2 * GIB);

    let pretty = ok(&host, Some(&root), &["report"]);
    // The same document, member by member (the ledger's figures and the
    // reading of the host are the same in both runs).
    let p: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(p, j, "the pretty report is not the report:\n{pretty}");
    let lines: Vec<&str> = pretty.lines().collect();
    assert_eq!(lines[0], "{");
    assert_eq!(*lines.last().unwrap(), "}");
    assert!(
        lines.contains(&"  \"schema\": \"vmmresv-report/2\""),
        "{pretty}"
    );
    assert!(lines.contains(&"  \"reservoir\": {"), "{pretty}");
    assert!(
        lines.contains(&format!("    \"size_bytes\": {},", GIB).as_str()),
        "{pretty}"
    );
    // Every line is indented by two spaces a level.
    for l in &lines {
        let lead = l.len() - l.trim_start().len();
        assert_eq!(lead % 2, 0, "odd indentation: {l:?}");
    }
}

// reconcile ----------------------------------------------------------------

#[test]
fn reconcile_reclaims_a_dead_launchers_claim() {
    let host = EmuHost::with_reservoir("adm-reconcile", HOST, 4096);
    let mut l = Launcher::start(&host);
    let a = l.say("admit 22222222-2222-3333-4444-555555555555 1536");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    let live = table(&host, None, "reconcile");
    assert_eq!(get(&live, "claims.live"), "1");
    assert_eq!(get(&live, "claims.reclaimed"), "0");
    assert_eq!(
        get(&live, "pending.reservoir.after"),
        (1536 * MIB).to_string()
    );
    l.quit();

    let t = table(&host, None, "reconcile");
    let props: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        props,
        [
            "claims.live",
            "claims.reclaimed",
            "reclaimed",
            "pending.reservoir.before",
            "pending.reservoir.after",
            "pending.transient.before",
            "pending.transient.after",
            "reservoir.size",
            "reservoir.free",
            "claims_beyond_free"
        ]
    );
    assert_eq!(get(&t, "claims.live"), "0");
    assert_eq!(get(&t, "claims.reclaimed"), "1");
    assert_eq!(get(&t, "reclaimed"), (1536 * MIB).to_string());
    assert_eq!(
        get(&t, "pending.reservoir.before"),
        (1536 * MIB).to_string()
    );
    assert_eq!(get(&t, "pending.reservoir.after"), "0");
    assert_eq!(get(&t, "reservoir.size"), (4 * GIB).to_string());
    assert_eq!(get(&t, "claims_beyond_free"), "0");
    // Nothing left to do: the human table says so in units.
    let human = ok(&host, None, &["reconcile"]);
    assert!(human.starts_with("PROPERTY"), "{human}");
    assert!(human.contains("\nclaims.reclaimed          0\n"), "{human}");
    assert!(
        human.contains("\nreservoir.size            4G\n"),
        "{human}"
    );
}

// resize -------------------------------------------------------------------

#[test]
fn resize_prints_plain_progress_lines_off_a_terminal() {
    let host = EmuHost::new("adm-resize", HOST);
    let out = ok(&host, None, &["resize", "8G"]);
    assert_eq!(
        out,
        "resizing the reservoir from 0 to 8G\n\
         reservoir size 0 of 8G (0%)\n\
         reservoir size 1G of 8G (12%)\n\
         reservoir size 2G of 8G (25%)\n\
         reservoir size 3G of 8G (37%)\n\
         reservoir size 4G of 8G (50%)\n\
         reservoir size 5G of 8G (62%)\n\
         reservoir size 6G of 8G (75%)\n\
         reservoir size 7G of 8G (87%)\n\
         reservoir size 8G of 8G (100%)\n"
    );
    assert_eq!(host.stat("free"), 8 * GIB);
    // Shrinking in 2 GiB steps: a line a step.
    let out = ok(&host, None, &["resize", "-c", "2G", "2G"]);
    assert_eq!(
        out,
        "resizing the reservoir from 8G to 2G\n\
         reservoir size 8G of 2G (0%)\n\
         reservoir size 6G of 2G (33%)\n\
         reservoir size 4G of 2G (66%)\n\
         reservoir size 2G of 2G (100%)\n"
    );
    assert_eq!(host.stat("free"), 2 * GIB);
    assert_eq!(host.stat("target_active"), 0);
}

#[test]
fn resize_to_a_percentage_of_the_limit() {
    let host = EmuHost::new("adm-resize-pct", HOST);
    ok(&host, None, &["resize", "-c", "4G", "50%"]);
    assert_eq!(host.stat("free"), kernel_limit(HOST) / 2 / 4096 * 4096);
}

#[test]
fn resize_shows_the_kernels_interruptions() {
    let mut host = EmuHost::new("adm-resize-eintr", HOST);
    // Each kernel call stops (EINTR) after one 512 MiB chunk: the library
    // calls the progress callback, which shows the size reached, and
    // resumes.
    host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let out = ok(&host, None, &["resize", "-c", "512M", "4G"]);
    let pcts: Vec<u32> = out
        .lines()
        .skip(1)
        .map(|l| {
            l.rsplit_once('(')
                .and_then(|(_, p)| p.strip_suffix("%)"))
                .unwrap_or_else(|| panic!("not a progress line: {l:?}"))
                .parse()
                .unwrap()
        })
        .collect();
    // 8 chunks: every eighth is a new tenth of the way.
    assert_eq!(pcts, [0, 12, 25, 37, 50, 62, 75, 87, 100], "{out}");
    assert_eq!(host.stat("free"), 4 * GIB);
    assert_eq!(host.stat("grown_total"), 4 * GIB);
}

#[test]
fn resize_draws_a_bar_on_a_terminal() {
    let host = EmuHost::new("adm-resize-tty", HOST);
    if Command::new("script").arg("--version").output().is_err() {
        panic!("script(1) (util-linux) is needed to give vmmresvadm a terminal");
    }
    // script(1) runs the command on a pseudo-terminal; its output is what
    // the terminal got.
    let cmd = format!("{} resize -c 1G 4G", adm().display());
    let o = host
        .command(Path::new("script"))
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&["(script)"], &o));
    let out = stdout(&o);
    assert!(
        out.contains("resizing the reservoir from 0 to 4G"),
        "{out:?}"
    );
    let bar = format!("\r[{}] 100%  4G of 4G\x1b[K", "#".repeat(40));
    assert!(out.contains(&bar), "no full bar in {out:?}");
    let quarter = format!("\r[{}{}]  25%  1G of 4G", "#".repeat(10), " ".repeat(30));
    assert!(out.contains(&quarter), "no 25% bar in {out:?}");
    assert!(
        !out.contains("reservoir size"),
        "plain lines on a terminal: {out:?}"
    );
    assert_eq!(host.stat("free"), 4 * GIB);
}

#[test]
fn sigint_stops_the_resize_where_it_stands() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut host = EmuHost::new("adm-resize-int", HOST);
    // 0.2 s a 256 MiB chunk: 32 steps, long enough to be interrupted.
    host.set("VMMEMU_CHUNK_DELAY_US", "200000");
    let child = host
        .command(&adm())
        .args(["resize", "-c", "256M", "8G"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while host.stat("free") == 0 {
        assert!(Instant::now() < deadline, "the resize never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on our own, not yet reaped, child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&["resize"], &o));
    let free = host.stat("free");
    assert!(free > 0 && free < 8 * GIB, "free {free} after SIGINT");
    assert_eq!(free % (256 * MIB), 0, "a step was left half done");
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "vmmresvadm: cannot resize the reservoir: {}",
            Status::Interrupted.message()
        )),
        "{err}"
    );
    assert!(
        err.ends_with(&format!("({free} bytes)\n")),
        "the size reached is not the one printed: {err}"
    );
    assert_eq!(host.stat("target_active"), 0);
}

#[test]
fn resize_failures_exit_1_with_the_librarys_message() {
    let mut host = EmuHost::with_reservoir("adm-resize-fail", HOST, 1024);
    // Beyond the limit: the kernel refuses; the reservoir stays.
    let o = run(&host, None, &["resize", "100G"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        show(&["resize", "100G"], &o)
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "vmmresvadm: cannot resize the reservoir: {}",
            Status::NoSpace.message()
        )),
        "{err}"
    );
    assert!(
        err.contains("vmmresvadm: the reservoir's size is now 1G (1073741824 bytes)\n"),
        "{err}"
    );
    assert_eq!(host.stat("free"), GIB);
    // Without the privilege.
    host.set("VMMEMU_UNPRIVILEGED", "1");
    let o = run(&host, None, &["resize", "2G"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["resize", "2G"], &o));
    assert!(
        stderr(&o).contains(Status::Permission.message()),
        "{}",
        show(&["resize", "2G"], &o)
    );
    assert_eq!(host.stat("free"), GIB);
}

#[test]
fn without_the_device_every_subcommand_exits_1() {
    assert!(
        !Path::new("/dev/vmmctl").exists(),
        "this test needs a host without a real /dev/vmmctl"
    );
    let host = EmuHost::new("adm-nodev", HOST);
    let root = fake_root(host.dir.path(), false);
    for args in [
        &["status"][..],
        &["report", "-j"][..],
        &["reconcile"][..],
        &["resize", "1G"][..],
        &["metrics"][..],
    ] {
        let o = host
            .command(&adm())
            .env_remove("LD_PRELOAD")
            .arg("-R")
            .arg(&root)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", show(args, &o));
        assert_eq!(stdout(&o), "", "{}", show(args, &o));
        assert!(
            stderr(&o).starts_with(&format!(
                "vmmresvadm: cannot open /dev/vmmctl: {}",
                Status::NoDevice.message()
            )),
            "{}",
            show(args, &o)
        );
    }
    // A root without /proc/meminfo: the library's reading fails, exit 1.
    let empty = host.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(&host, Some(&empty), &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["status"], &o));
    assert!(
        stderr(&o).starts_with("vmmresvadm: cannot read the host's memory: "),
        "{}",
        show(&["status"], &o)
    );
}

// metrics ------------------------------------------------------------------

/// The samples of an exposition: name with labels -> value.
fn samples(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn metrics_values_and_format() {
    let host = EmuHost::with_reservoir("adm-metrics", HOST, 8192);
    let root = fake_root(host.dir.path(), true);
    let mut l = Launcher::start(&host);
    let a = l.say("admit 33333333-2222-3333-4444-555555555555 512");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    let text = ok(&host, Some(&root), &["metrics"]);
    l.quit();
    let s = samples(&text);
    let v = |k: &str| -> &str {
        s.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no sample {k} in\n{text}"))
    };
    assert_eq!(v("vmmresv_reservoir_size_bytes"), (8 * GIB).to_string());
    assert_eq!(v("vmmresv_reservoir_free_bytes"), (8 * GIB).to_string());
    assert_eq!(v("vmmresv_reservoir_allocated_bytes"), "0");
    assert_eq!(v("vmmresv_reservoir_transient_bytes"), "0");
    assert_eq!(
        v("vmmresv_reservoir_limit_bytes"),
        kernel_limit(HOST).to_string()
    );
    assert_eq!(
        v("vmmresv_pending_claims_bytes{pool=\"reservoir\"}"),
        (512 * MIB).to_string()
    );
    assert_eq!(v("vmmresv_pending_claims_bytes{pool=\"transient\"}"), "0");
    assert_eq!(v("vmmresv_pending_claims_bytes{pool=\"host\"}"), "0");
    assert_eq!(v("vmmresv_arc_min_bytes"), (2 * GIB).to_string());
    assert_eq!(v("vmmresv_arc_max_bytes"), (63 * GIB).to_string());
    assert_eq!(v("vmmresv_arc_reserved_bytes"), "0");
    assert_eq!(v("vmmresv_memory_physical_bytes"), HOST.to_string());
    assert_eq!(v("vmmresv_memory_free_bytes"), (12 * GIB).to_string());
    assert_eq!(v("vmmresv_memory_state{state=\"high\"}"), "1");
    for st in ["soft", "hard", "low", "exhausted"] {
        assert_eq!(v(&format!("vmmresv_memory_state{{state=\"{st}\"}}")), "0");
    }
    assert_eq!(
        v("vmmresv_largest_vm_bytes{pool=\"reservoir\"}"),
        (8 * GIB - 512 * MIB).to_string()
    );
    assert_eq!(
        v(&format!(
            "vmmresv_info{{version=\"{}\",backend=\"vmm-reservoir\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        "1"
    );
    // Gauges only, each with HELP and TYPE before its samples; no
    // timestamps (two fields a sample line).
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            text.contains(&format!("# TYPE {name} gauge\n")),
            "{name} has no TYPE gauge line"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
        assert!(
            line.rsplit(' ').next().unwrap().parse::<u64>().is_ok(),
            "not an integer value: {line}"
        );
        assert_eq!(
            line.rsplit_once('}')
                .map_or(line, |(_, r)| r)
                .split(' ')
                .count(),
            2,
            "a timestamp or a stray field: {line}"
        );
    }

    // Without the ARC its metrics are left out.
    let bare = fake_root(&host.dir.path().join("bare"), false);
    let text = ok(&host, Some(&bare), &["metrics"]);
    assert!(!text.contains("vmmresv_arc_"), "{text}");
    assert!(
        text.contains("vmmresv_memory_state{state=\"high\"} 1\n"),
        "{text}"
    );
}

#[test]
fn metrics_pass_promtool() {
    let host = EmuHost::with_reservoir("adm-promtool", HOST, 2048);
    let Ok(o) = Command::new("promtool").arg("--version").output() else {
        // Written to the real stderr, not through eprintln!, which the
        // test harness captures and shows only for a failing test.
        use std::io::Write;
        let _ = std::io::stderr().write_all(
            b"\n!!!!!!!!\nSKIPPED: metrics_pass_promtool: no promtool on PATH \
              (Debian: apt-get install prometheus; .ci/run installs it)\n!!!!!!!!\n",
        );
        return;
    };
    assert!(o.status.success(), "promtool --version: {o:?}");
    for arc in [true, false] {
        let root = fake_root(&host.dir.path().join(format!("arc-{arc}")), arc);
        let text = ok(&host, Some(&root), &["metrics"]);
        let file = host.dir.path().join(format!("metrics-{arc}.prom"));
        std::fs::write(&file, &text).unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg("promtool check metrics < \"$1\"")
            .arg("sh")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success() && stdout(&o).is_empty() && stderr(&o).is_empty(),
            "promtool check metrics (arc {arc}): {}\n{}{}\n--- metrics\n{text}",
            o.status,
            stdout(&o),
            stderr(&o)
        );
    }
}

// usage --------------------------------------------------------------------

#[test]
fn usage_errors_exit_2_with_a_message_and_the_usage() {
    let host = EmuHost::with_reservoir("adm-usage", HOST, 1024);
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing subcommand"),
        (&["frobnicate"], "unknown subcommand 'frobnicate'"),
        (&["-x", "status"], "unknown option -x"),
        (&["-R"], "option -R needs an argument"),
        (&["-P"], "option -P needs an argument"),
        (
            &["-P", "zfs", "status"],
            "unknown pool 'zfs' (vmm, hugetlb or hugetlb:pagesize)",
        ),
        (&["status", "-x"], "unknown option -x"),
        (&["status", "-o"], "option -o needs an argument"),
        (&["status", "-o", "size"], "invalid field 'size' for -o"),
        (
            &["status", "-o", "value,value,value"],
            "invalid field 'value' for -o",
        ),
        (&["status", "extra"], "unexpected operand 'extra'"),
        (&["report", "-p"], "unknown option -p"),
        (&["report", "x"], "unexpected operand 'x'"),
        (&["reconcile", "-x"], "unknown option -x"),
        (&["reconcile", "-n", "now"], "unexpected operand 'now'"),
        (&["claims", "-x"], "unknown option -x"),
        (&["claims", "-o", "colour"], "invalid field 'colour' for -o"),
        (&["claims", "-o"], "option -o needs an argument"),
        (&["claims", "all"], "unexpected operand 'all'"),
        (&["check"], "check needs a VM UUID and a size"),
        (
            &["check", "11111111-2222-3333-4444-555555555555"],
            "check needs a VM UUID and a size",
        ),
        (
            &["check", "not-a-uuid", "1G"],
            "invalid VM UUID 'not-a-uuid'",
        ),
        (
            &["check", "11111111-2222-3333-4444-55555555555g", "1G"],
            "invalid VM UUID '11111111-2222-3333-4444-55555555555g'",
        ),
        (
            &["check", "11111111-2222-3333-4444-555555555555", "1Q"],
            "invalid size '1Q'",
        ),
        (
            &["check", "11111111-2222-3333-4444-555555555555", "0"],
            "invalid size '0'",
        ),
        (
            &["check", "11111111-2222-3333-4444-555555555555", "1G", "2G"],
            "unexpected operand '2G'",
        ),
        (
            &[
                "check",
                "-P",
                "always",
                "11111111-2222-3333-4444-555555555555",
                "1G",
            ],
            "invalid preference 'always' (require, prefer or never)",
        ),
        (
            &[
                "check",
                "-M",
                "qemu",
                "11111111-2222-3333-4444-555555555555",
                "1G",
            ],
            "unknown overhead model 'qemu'",
        ),
        (
            &[
                "check",
                "-c",
                "two",
                "11111111-2222-3333-4444-555555555555",
                "1G",
            ],
            "invalid vCPU count 'two'",
        ),
        (&["check", "-M"], "option -M needs an argument"),
        (&["-F"], "option -F needs an argument"),
        (
            &["-F", "omicron", "status"],
            "invalid share 'omicron' (profile=N% or profile=numerator/denominator)",
        ),
        (&["-F", "nova=50%", "status"], "invalid share 'nova=50%'"),
        (
            &["-F", "omicron=86.3", "status"],
            "invalid share 'omicron=86.3'",
        ),
        (
            &["-F", "omicron=86.%", "status"],
            "invalid share 'omicron=86.%'",
        ),
        (
            &["-F", "omicron=1/", "status"],
            "invalid share 'omicron=1/'",
        ),
        (
            &["-F", "omicron=/2", "status"],
            "invalid share 'omicron=/2'",
        ),
        (&["resize"], "resize: missing size"),
        (&["resize", "12Q"], "invalid size '12Q'"),
        (&["resize", "-5G"], "unknown option -5"),
        (&["resize", "101%"], "invalid size '101%'"),
        (&["resize", "1G", "2G"], "unexpected operand '2G'"),
        // Options before operands, on every system.
        (&["resize", "1G", "-c", "1G"], "unexpected operand '-c'"),
        (&["resize", "-c", "1000", "1G"], "invalid chunk '1000'"),
        (&["resize", "-c", "0", "1G"], "invalid chunk '0'"),
        (&["resize", "-c"], "option -c needs an argument"),
        (&["metrics", "-j"], "unknown option -j"),
        (&["metrics", "now"], "unexpected operand 'now'"),
    ];
    for (args, msg) in cases {
        let o = run(&host, None, args);
        assert_eq!(o.status.code(), Some(2), "{}", show(args, &o));
        assert_eq!(stdout(&o), "", "{}", show(args, &o));
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("vmmresvadm: {msg}")),
            "{}",
            show(args, &o)
        );
        assert!(err.contains(USAGE_HEAD), "no usage: {}", show(args, &o));
    }
    // Nothing was resized by any of them.
    assert_eq!(host.stat("free"), GIB);
    // -h: the usage on stderr, exit 0.
    let o = run(&host, None, &["-h"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).starts_with(USAGE_HEAD));
    for sub in [
        "status [-Hp]",
        "report [-j]",
        "reconcile [-nHp]",
        "claims [-Hp]",
        "check [-P require | prefer | never] [-M model]",
        "resize [-c chunk]",
        "metrics",
    ] {
        assert!(
            stderr(&o).contains(&format!("\t{sub}")),
            "{sub} not in the usage"
        );
    }
}

/// `-P hugetlb`: the same subcommands on the Linux hugetlb pool (a real
/// kernel; as root, the pool borrowed and restored).
#[cfg(target_os = "linux")]
#[test]
fn the_hugetlb_pool_as_the_reservoir() {
    let Some(_pool) = hugepool::borrow("vmmresvadm -P hugetlb") else {
        return;
    };
    let run = Scratch::new("adm-hugetlb");
    let adm_in = |args: &[&str]| -> Output {
        Command::new(adm())
            .env("VMMRESV_RUNDIR", &run.0)
            .args(["-P", "hugetlb"])
            .args(args)
            .output()
            .unwrap()
    };
    let o = adm_in(&["resize", "-c", "4M", "16M"]);
    assert!(
        o.status.success(),
        "{}",
        show(&["-P hugetlb resize 16M"], &o)
    );
    let o = adm_in(&["status", "-Hp"]);
    assert!(o.status.success(), "{}", show(&["-P hugetlb status"], &o));
    let text = stdout(&o);
    let size = text
        .lines()
        .find_map(|l| l.strip_prefix("reservoir.size\t"))
        .unwrap_or_else(|| panic!("no reservoir.size in:\n{text}"));
    assert_eq!(size, (16u64 << 20).to_string());
    let o = adm_in(&["metrics"]);
    let m = stdout(&o);
    assert!(o.status.success(), "{}", show(&["-P hugetlb metrics"], &o));
    assert!(m.contains("backend=\"linux-hugetlb\""), "{m}");
    assert!(
        m.contains(&format!("vmmresv_reservoir_size_bytes {}", 16u64 << 20)),
        "{m}"
    );
    let o = adm_in(&["resize", "0"]);
    assert!(o.status.success(), "{}", show(&["-P hugetlb resize 0"], &o));
    // No pool of 3 MiB pages: the library's INVALID_ARGUMENT, exit 1.
    let o = adm_in(&["-P", "hugetlb:3M", "status"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        show(&["-P hugetlb:3M status"], &o)
    );
    assert!(
        stderr(&o).contains("cannot open the hugetlb pool"),
        "{}",
        stderr(&o)
    );
}

// claims, reconcile -n, check, -F ------------------------------------------

#[test]
fn claims_lists_live_and_dead_claims() {
    let host = EmuHost::with_reservoir("adm-claims", HOST, 4096);
    // No claims: the header only (or nothing with -H).
    assert_eq!(
        ok(&host, None, &["claims"]),
        "UUID  POOL  SIZE  AGE  STATE  HELD  PID  ZONE\n"
    );
    assert_eq!(ok(&host, None, &["claims", "-H"]), "");
    let mut live = Launcher::start(&host);
    let a = live.say("admit 11111111-2222-3333-4444-555555555555 1024");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    let pid = live.child.id();
    let mut dead = Launcher::start(&host);
    let a = dead.say("admit 66666666-2222-3333-4444-555555555555 1536");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    dead.quit();
    let before = std::fs::read(host.ledger_path()).unwrap();

    let out = ok(
        &host,
        None,
        &["claims", "-Hp", "-o", "uuid,pool,size,state,held,pid"],
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        format!("11111111-2222-3333-4444-555555555555\treservoir\t{GIB}\tclaimed\tyes\t{pid}")
    );
    let dead_row: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(
        dead_row[..5],
        [
            "66666666-2222-3333-4444-555555555555",
            "reservoir",
            (1536 * MIB).to_string().as_str(),
            "claimed",
            "no"
        ]
    );
    // -p: the age in seconds, just taken.
    for l in ok(&host, None, &["claims", "-Hp", "-o", "age,zone"]).lines() {
        let (age, zone) = l.split_once('\t').unwrap();
        assert!(age.parse::<u64>().unwrap() < 600, "{l}");
        assert_eq!(zone, "0", "no zones here");
    }
    // The human table: a header and sizes with units.
    let human = ok(&host, None, &["claims", "-o", "uuid,size,held"]);
    let mut h: Vec<&str> = human.lines().collect();
    assert_eq!(
        h.remove(0),
        "UUID                                  SIZE   HELD"
    );
    h.sort();
    assert_eq!(
        h,
        [
            "11111111-2222-3333-4444-555555555555  1G     yes",
            "66666666-2222-3333-4444-555555555555  1.50G  no"
        ]
    );
    // Listing reclaims nothing and writes nothing.
    assert_eq!(std::fs::read(host.ledger_path()).unwrap(), before);
    live.quit();
}

#[test]
fn reconcile_dry_run_shows_and_leaves_the_dead_claim() {
    let host = EmuHost::with_reservoir("adm-reconcile-n", HOST, 4096);
    let mut l = Launcher::start(&host);
    let a = l.say("admit 88888888-2222-3333-4444-555555555555 1536");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    l.quit();
    let before2 = std::fs::read(host.ledger_path()).unwrap();
    let n1 = ok(&host, None, &["reconcile", "-n", "-Hp"]);
    let n2 = ok(&host, None, &["reconcile", "-nHp"]);
    assert_eq!(n1, n2, "a dry run changes nothing a second one would see");
    assert_eq!(
        std::fs::read(host.ledger_path()).unwrap(),
        before2,
        "reconcile -n wrote to the ledger"
    );
    let t: Vec<(String, String)> = n1
        .lines()
        .map(|l| {
            let (p, v) = l.split_once('\t').unwrap();
            (p.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(get(&t, "claims.reclaimed"), "1");
    assert_eq!(get(&t, "reclaimed"), (1536 * MIB).to_string());
    assert_eq!(
        get(&t, "pending.reservoir.before"),
        (1536 * MIB).to_string()
    );
    assert_eq!(get(&t, "pending.reservoir.after"), "0");
    // The real reconcile then does exactly that.
    assert_eq!(table(&host, None, "reconcile"), t);
}

#[test]
fn check_says_what_an_admission_would_decide() {
    let host = EmuHost::with_reservoir("adm-check", HOST, 4096);
    let root = fake_root(host.dir.path(), false);
    let r = Some(root.as_path());
    let u = "99999999-2222-3333-4444-555555555555";
    let check = |args: &[&str]| -> Vec<(String, String)> {
        let mut a = vec!["check", "-Hp"];
        a.extend_from_slice(args);
        ok(&host, r, &a)
            .lines()
            .map(|l| {
                let (p, v) = l.split_once('\t').unwrap();
                (p.to_string(), v.to_string())
            })
            .collect()
    };
    let t = check(&["-P", "require", u, "1G"]);
    let props: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        props,
        [
            "decision",
            "reason",
            "charged",
            "shortfall",
            "reservoir.free",
            "pending",
            "guest",
            "page_t",
            "overhead",
            "overhead.model",
            "host",
            "memory.free",
            "arc.shrink",
            "pending.host",
            "memory.free_after",
            "memory.state_after",
            "memory.floor",
            "memory.floor_bytes"
        ]
    );
    assert_eq!(get(&t, "decision"), "use_reservoir");
    assert_eq!(get(&t, "reason"), "ok");
    assert_eq!(get(&t, "charged"), GIB.to_string());
    assert_eq!(get(&t, "reservoir.free"), (4 * GIB).to_string());
    assert_eq!(get(&t, "page_t"), (GIB / 4096 * 120).to_string());
    assert_eq!(get(&t, "overhead.model"), "smartos-vmadm");
    assert_eq!(get(&t, "overhead"), (1280 * MIB).to_string());
    assert_eq!(get(&t, "memory.free"), (12 * GIB).to_string());
    // Nothing was claimed: no claim listed, nothing pending.
    assert_eq!(ok(&host, r, &["claims", "-H"]), "");

    // Another VM holds 3 GiB: 2 more are refused with the shortfall, or
    // run without the reservoir.
    let mut l = Launcher::start(&host);
    let a = l.say("admit 11111111-2222-3333-4444-555555555555 3072");
    assert!(a.starts_with("admit status=0 decision=1 "), "{a}");
    let t = check(&["-P", "require", u, "2G"]);
    assert_eq!(get(&t, "decision"), "refuse");
    assert_eq!(get(&t, "reason"), "reservoir_full");
    assert_eq!(get(&t, "shortfall"), GIB.to_string());
    assert_eq!(get(&t, "pending"), (3 * GIB).to_string());
    assert_eq!(get(&t, "charged"), "0");
    let t = check(&[u, "2G"]);
    assert_eq!(get(&t, "decision"), "no_reservoir", "-P prefer by default");
    assert_eq!(get(&t, "reason"), "reservoir_full");
    let t = check(&["-P", "never", u, "2G"]);
    assert_eq!(get(&t, "reason"), "reservoir_not_wanted");
    // The VM the launcher is starting: held elsewhere.
    let t = check(&["11111111-2222-3333-4444-555555555555", "3G"]);
    assert_eq!(get(&t, "reason"), "held_elsewhere");
    // -M picks the overhead model by its name.
    let t = check(&["-M", "fixed", "-c", "2", u, "1G"]);
    assert_eq!(get(&t, "overhead.model"), "fixed");
    assert_eq!(get(&t, "overhead"), (600 * MIB).to_string());
    // The launcher's claim is all there is: check claimed nothing.
    assert_eq!(
        ok(&host, r, &["claims", "-H", "-o", "uuid"])
            .lines()
            .count(),
        1
    );
    // And the launcher's own admission decides as check foresaw.
    let t = check(&[
        "-P",
        "require",
        "22222222-2222-3333-4444-555555555555",
        "1G",
    ]);
    assert_eq!(get(&t, "decision"), "use_reservoir");
    let a = l.say("admit 22222222-2222-3333-4444-555555555555 1024");
    assert!(
        a.starts_with("admit status=0 decision=1 reason=0 charged=1073741824"),
        "{a}"
    );
    l.quit();
}

#[test]
fn profile_shares_as_percent_or_fraction() {
    let host = EmuHost::with_reservoir("adm-share", HOST, 1024);
    let root = fake_root(host.dir.path(), false);
    let r = Some(root.as_path());
    let profile = |args: &[&str]| -> (u64, u64, u64) {
        let mut a = args.to_vec();
        a.extend_from_slice(&["report", "-j"]);
        let j: serde_json::Value = serde_json::from_str(&ok(&host, r, &a)).unwrap();
        let p = j["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "omicron")
            .unwrap()
            .clone();
        (
            p["numerator"].as_u64().unwrap(),
            p["denominator"].as_u64().unwrap(),
            p["target_bytes"].as_u64().unwrap(),
        )
    };
    let (n, d, default) = profile(&[]);
    assert_eq!((n, d), (91, 100));
    let (n, d, pct) = profile(&["-F", "omicron=86.3%"]);
    assert_eq!(n * 10000 / d, 8630, "{n}/{d}");
    let (n, d, frac) = profile(&["-F", "omicron=8630/10000"]);
    assert_eq!((n, d), (8630, 10000));
    assert_eq!(pct, frac, "86.3% and 8630/10000 are the same share");
    assert!(frac < default);
    // status and metrics show the same figure.
    let t = ok(&host, r, &["-F", "omicron=8630/10000", "status", "-Hp"]);
    assert!(
        t.lines().any(|l| l == format!("profile.omicron\t{frac}")),
        "{t}"
    );
    let m = ok(&host, r, &["-F", "omicron=86.3%", "metrics"]);
    assert!(
        m.lines()
            .any(|l| l == format!("vmmresv_profile_target_bytes{{profile=\"omicron\"}} {frac}")),
        "{m}"
    );
    // A share above 1 is the library's INVALID_ARGUMENT: exit 1.
    let o = run(&host, r, &["-F", "omicron=101%", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["-F"], &o));
    assert!(stderr(&o).starts_with("vmmresvadm: cannot set a profile's share: "));
}

/// `vmmresvadm arc`: the ARC's figures from arcstats under -R, where the
/// pages are from a ::memstat file (its budget becoming the ceiling), and
/// the guard's verdict on a request, through the C ABI alone.
#[test]
fn arc_shows_the_figures_the_memstat_budget_and_the_guard() {
    let host = EmuHost::new("adm-arc", HOST);
    let root = fake_root(host.dir.path(), true);
    let fx = common::root().join("tests/fixtures/arc");
    let memstat = fx.join("os8005-4g-vm-started.memstat");
    let memstat = memstat.to_str().unwrap();

    let t = table(&host, Some(&root), "arc");
    let props: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        props,
        [
            "arc.size",
            "arc.floor",
            "arc.max",
            "arc.ceiling",
            "arc.slack",
            "arc.reserved",
            "arc.target"
        ]
    );
    // No reservation yet: the target is the ceiling less the slack.
    assert_eq!(get(&t, "arc.reserved"), "0");
    assert_eq!(get(&t, "arc.target"), (67645734912 - 512 * MIB).to_string());
    assert_eq!(get(&t, "arc.size"), "43078676480");
    assert_eq!(get(&t, "arc.floor"), (2 * GIB).to_string());
    assert_eq!(get(&t, "arc.max"), "67645734912");
    // No budget: the ceiling is arc_c_max; the slack is physmem/128.
    assert_eq!(get(&t, "arc.ceiling"), "67645734912");
    assert_eq!(get(&t, "arc.slack"), (64 * GIB / 128).to_string());

    // The guard against arc_c_max: 2 GiB floor + 10 GiB held + 8 GiB fits.
    let args = ["arc", "-Hp", "-r", "8G", "-a", "10G"];
    let out = ok(&host, Some(&root), &args);
    let g: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let (p, v) = l.split_once('\t').unwrap();
            (p.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(get(&g, "guard.admitted"), "yes");
    assert_eq!(get(&g, "guard.need"), (20 * GIB).to_string());
    assert_eq!(
        get(&g, "guard.headroom"),
        (67645734912 - 20 * GIB).to_string()
    );
    assert_eq!(get(&g, "guard.shortfall"), "0");

    // With ::memstat, the ceiling is free + ZFS file data + VMM memory.
    let args = ["arc", "-Hp", "-m", memstat, "-r", "1G", "-a", "512M"];
    let out = ok(&host, Some(&root), &args);
    let m: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let (p, v) = l.split_once('\t').unwrap();
            (p.to_string(), v.to_string())
        })
        .collect();
    let budget = (9_007 + 3_702 + 86_311 + 476_416) * 4096u64;
    assert_eq!(get(&m, "memstat.budget"), budget.to_string());
    assert_eq!(get(&m, "arc.ceiling"), budget.to_string());
    assert_eq!(get(&m, "memstat.vmm"), (476_416 * 4096u64).to_string());
    assert_eq!(get(&m, "memstat.total"), (1_045_110 * 4096u64).to_string());
    // 2 GiB + 512 MiB + 1 GiB against a 2.2 GiB budget: refused.
    assert_eq!(get(&m, "guard.admitted"), "no");
    let need = 2 * GIB + 512 * MIB + GIB;
    assert_eq!(get(&m, "guard.need"), need.to_string());
    assert_eq!(get(&m, "guard.shortfall"), (need - budget).to_string());
    assert_eq!(get(&m, "guard.headroom"), "0");

    // -o value alone, sizes for people without -p.
    let out = ok(&host, Some(&root), &["arc", "-H", "-o", "value"]);
    assert_eq!(out.lines().next(), Some("40.1G"));

    // Failures: no ARC (exit 1), a file that is not ::memstat (exit 1,
    // the library's message), usage errors (exit 2).
    let bare = fake_root(&host.dir.path().join("bare"), false);
    let o = run(&host, Some(&bare), &["arc"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["arc"], &o));
    assert!(
        stderr(&o).contains("no ZFS ARC on this host"),
        "{}",
        stderr(&o)
    );
    let kstat = fx.join("illumos/arcstats.kstat");
    let args = ["arc", "-m", kstat.to_str().unwrap()];
    let o = run(&host, Some(&root), &args);
    assert_eq!(o.status.code(), Some(1), "{}", show(&args, &o));
    assert!(stderr(&o).starts_with("vmmresvadm: "), "{}", stderr(&o));
    for (args, msg) in [
        (&["arc", "-a", "1G"][..], "option -a needs -r"),
        (&["arc", "-r", "0"][..], "invalid request '0' for -r"),
        (&["arc", "-r", "12Q"][..], "invalid request '12Q' for -r"),
        (&["arc", "-m"][..], "option -m needs an argument"),
        (&["arc", "x"][..], "unexpected operand 'x'"),
    ] {
        let o = run(&host, Some(&root), args);
        assert_eq!(o.status.code(), Some(2), "{}", show(args, &o));
        assert!(stderr(&o).contains(msg), "{}", show(args, &o));
    }
}

/// The `-Hp` property table printed by `args`, which must exit `code`.
fn arc_table(
    host: &EmuHost,
    root: Option<&Path>,
    args: &[&str],
    code: i32,
) -> Vec<(String, String)> {
    let o = run(host, root, args);
    assert_eq!(o.status.code(), Some(code), "{}", show(args, &o));
    assert_eq!(stderr(&o), "", "{}", show(args, &o));
    stdout(&o)
        .lines()
        .map(|l| {
            let (p, v) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("not two tab-separated fields: {l:?}"));
            (p.to_string(), v.to_string())
        })
        .collect()
}

/// `vmmresvadm arc hold | list | reconcile | apply | drop` on a host with
/// the ZFS ARC and no reservoir at all (no /dev/vmmctl, no emulator): a
/// reservation made by one run of the command outlives it, is counted by
/// the guard of the next, is kept while its VM's check path exists or is
/// within the grace or cannot be told, is freed once the VM is gone past
/// the grace, and zfs_arc_max follows and is put back.
#[test]
fn arc_hold_outlives_the_command_until_dropped_or_its_vm_is_gone() {
    let mut host = EmuHost::new("adm-arc-hold", HOST);
    host.env.retain(|(k, _)| k != "LD_PRELOAD");
    let dir = host.dir.path().to_path_buf();
    let root = fake_root(&dir, true);
    let param = root.join("sys/module/zfs/parameters/zfs_arc_max");
    std::fs::create_dir_all(param.parent().unwrap()).unwrap();
    std::fs::write(&param, "60000000000\n").unwrap();
    let r = Some(root.as_path());
    // This host has no reservoir: the reservoir's subcommands fail.
    let o = run(&host, r, &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["status"], &o));
    assert!(stderr(&o).contains("/dev/vmmctl"), "{}", stderr(&o));

    const C_MAX: u64 = 67645734912; // the fixture's arc_c_max (63 GiB)
    const SLACK: u64 = 512 * MIB;
    let u1 = "11111111-2222-3333-4444-000000000001";
    let u2 = "11111111-2222-3333-4444-000000000002";
    let vm1 = dir.join("vm1.pid");
    std::fs::write(&vm1, "4242\n").unwrap();
    let vm1s = vm1.to_str().unwrap();
    let vm2 = dir.join("vm2.pid");
    let vm2s = vm2.to_str().unwrap();

    // A hold: reserved, and the ARC target follows.
    let h = arc_table(&host, r, &["arc", "hold", "-Hp", u1, "20G", vm1s], 0);
    assert_eq!(get(&h, "hold.reserved"), "yes");
    assert_eq!(get(&h, "hold.already"), "no");
    assert_eq!(get(&h, "hold.size"), (20 * GIB).to_string());
    assert_eq!(get(&h, "arc.reserved"), (20 * GIB).to_string());
    assert_eq!(
        get(&h, "arc.target"),
        (C_MAX - 20 * GIB - SLACK).to_string()
    );

    // That command has exited; its reservation is in the ledger, and the
    // next command's guard counts it: 2 GiB floor + 20 + 42 > 63 GiB.
    let h = arc_table(&host, r, &["arc", "hold", "-Hp", u2, "42G", vm2s], 3);
    assert_eq!(get(&h, "hold.reserved"), "no");
    assert_eq!(get(&h, "hold.shortfall"), (64 * GIB - C_MAX).to_string());
    assert_eq!(get(&h, "arc.reserved"), (20 * GIB).to_string());
    // Holding again for the same VM charges nothing twice.
    let h = arc_table(&host, r, &["arc", "hold", "-Hp", u1, "20G", vm1s], 0);
    assert_eq!(get(&h, "hold.already"), "yes");
    assert_eq!(get(&h, "arc.reserved"), (20 * GIB).to_string());
    // `arc` shows it, and checks a request against it by default.
    let t = arc_table(&host, r, &["arc", "-Hp", "-r", "42G"], 0);
    assert_eq!(get(&t, "arc.reserved"), (20 * GIB).to_string());
    assert_eq!(get(&t, "guard.admitted"), "no");

    let list = ok(&host, None, &["arc", "list", "-Hp"]);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0][0], u1);
    assert_eq!(rows[0][1], (20 * GIB).to_string());
    assert_eq!(&rows[0][3..5], ["durable", "present"]);
    assert_eq!(rows[0][6], vm1s);
    let o = ok(&host, None, &["arc", "list", "-H", "-o", "vm,kind,size"]);
    assert_eq!(o, "present\tdurable\t20G\n");

    // zfs_arc_max follows the ledger; the original is remembered.
    let a = arc_table(&host, r, &["arc", "apply", "-Hp"], 0);
    let target = C_MAX - 20 * GIB - SLACK;
    assert_eq!(get(&a, "zfs_arc_max.written"), target.to_string());
    assert_eq!(
        std::fs::read_to_string(&param).unwrap().trim(),
        target.to_string()
    );

    // And waits for the ARC (40.1 GiB, under the target): reached at once.
    let w = arc_table(&host, r, &["arc", "apply", "-w", "5", "-Hp"], 0);
    assert_eq!(get(&w, "wait"), "reached");
    assert_eq!(get(&w, "arc.size"), "43078676480");
    // A target below the ARC's size: the wait ends at its deadline.
    let u3 = "11111111-2222-3333-4444-000000000003";
    let h = arc_table(&host, r, &["arc", "hold", "-Hp", u3, "30G", vm1s], 0);
    assert_eq!(
        get(&h, "arc.target"),
        (C_MAX - 50 * GIB - SLACK).to_string()
    );
    let args = ["arc", "apply", "-w", "1", "-Hp"];
    let o = run(&host, r, &args);
    assert_eq!(o.status.code(), Some(1), "{}", show(&args, &o));
    assert!(
        stdout(&o).contains("wait\ttimeout\n"),
        "{}",
        show(&args, &o)
    );
    assert!(
        stderr(&o).contains("the ARC did not reach its target"),
        "{}",
        show(&args, &o)
    );
    let d = arc_table(&host, None, &["arc", "drop", "-Hp", u3], 0);
    assert_eq!(get(&d, "drop.released"), (30 * GIB).to_string());

    // The VM runs: kept. It stops without a drop: kept within the grace,
    // freed past it (-g 0).
    let c = arc_table(&host, None, &["arc", "reconcile", "-Hp"], 0);
    assert_eq!(
        (get(&c, "durable.kept"), get(&c, "durable.freed")),
        ("1", "0")
    );
    std::fs::remove_file(&vm1).unwrap();
    let o = ok(&host, None, &["arc", "list", "-H", "-o", "vm"]);
    assert_eq!(o, "gone\n");
    let c = arc_table(&host, None, &["arc", "reconcile", "-Hp"], 0);
    assert_eq!(
        (get(&c, "durable.kept"), get(&c, "durable.freed")),
        ("1", "0")
    );
    assert_eq!(get(&c, "arc.reserved"), (20 * GIB).to_string());
    // The verb's own option after the common ones, and the ledger named.
    let ledger = host.ledger_path();
    let ledger = ledger.to_str().unwrap();
    let args = ["arc", "reconcile", "-l", ledger, "-Hpg", "0"];
    let c = arc_table(&host, None, &args, 0);
    assert_eq!(get(&c, "durable.freed"), "1");
    assert_eq!(get(&c, "durable.freed_size"), (20 * GIB).to_string());
    assert_eq!(get(&c, "arc.reserved"), "0");
    assert_eq!(ok(&host, None, &["arc", "list", "-H"]), "");
    // None left: the original zfs_arc_max is written back.
    let a = arc_table(&host, r, &["arc", "apply", "-Hp"], 0);
    assert_eq!(get(&a, "zfs_arc_max.written"), "60000000000");
    assert_eq!(
        std::fs::read_to_string(&param).unwrap().trim(),
        "60000000000"
    );

    // Already holding less than asked, its VM running: nothing changes,
    // exit 3.
    std::fs::write(&vm2, "4343\n").unwrap();
    let h = arc_table(&host, r, &["arc", "hold", "-Hp", u2, "1G", vm2s], 0);
    assert_eq!(get(&h, "hold.reserved"), "yes");
    let args = ["arc", "hold", "-Hp", u2, "2G", vm2s];
    let o = run(&host, r, &args);
    assert_eq!(o.status.code(), Some(3), "{}", show(&args, &o));
    assert!(
        stdout(&o).contains("hold.already\tyes\n"),
        "{}",
        show(&args, &o)
    );
    assert!(
        stdout(&o).contains(&format!("hold.size\t{GIB}\n")),
        "{}",
        show(&args, &o)
    );
    assert!(
        stderr(&o).contains("less than the 2G asked"),
        "{}",
        show(&args, &o)
    );
    let d = arc_table(&host, None, &["arc", "drop", "-Hp", u2], 0);
    assert_eq!(get(&d, "drop.released"), GIB.to_string());
    std::fs::remove_file(&vm2).unwrap();

    // A check that cannot tell (its record gone) never frees.
    let h = arc_table(&host, r, &["arc", "hold", "-Hp", u2, "1G", vm2s], 0);
    assert_eq!(get(&h, "hold.reserved"), "yes");
    let rec = host
        .run_dir()
        .join("arc.vm/11111111222233334444000000000002");
    std::fs::remove_file(&rec).unwrap();
    let c = arc_table(&host, None, &["arc", "reconcile", "-g", "0", "-Hp"], 0);
    assert_eq!(
        (get(&c, "durable.unknown"), get(&c, "durable.freed")),
        ("1", "0")
    );
    assert_eq!(
        ok(&host, None, &["arc", "list", "-H", "-o", "vm,check"]),
        "unknown\t-\n"
    );
    // An explicit drop frees it; a second drop releases nothing.
    let d = arc_table(&host, None, &["arc", "drop", "-Hp", u2], 0);
    assert_eq!(get(&d, "drop.released"), GIB.to_string());
    let d = arc_table(&host, None, &["arc", "drop", "-Hp", u2], 0);
    assert_eq!(get(&d, "drop.released"), "0");

    // A hold needs the ARC's figures: a host without the ARC is an error.
    let bare = fake_root(&dir.join("bare"), false);
    let args = ["arc", "hold", u1, "1G", vm1s];
    let o = run(&host, Some(&bare), &args);
    assert_eq!(o.status.code(), Some(1), "{}", show(&args, &o));
    assert!(
        stderr(&o).contains("no ZFS ARC on this host"),
        "{}",
        show(&args, &o)
    );

    // The guard is not checked against a guess: a ledger that cannot be
    // opened is an error for -r without -a (and the rows are left out
    // otherwise, with the reason).
    let mut broken = EmuHost::new("adm-arc-noledger", HOST);
    broken.env.retain(|(k, _)| k != "LD_PRELOAD");
    let file = broken.dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    broken.set("VMMRESV_RUNDIR", file.to_str().unwrap());
    let o = run(&broken, r, &["arc", "-Hp", "-r", "1G"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&["arc"], &o));
    assert!(
        stderr(&o).contains("give the reservations with -a"),
        "{}",
        show(&["arc"], &o)
    );
    let o = run(&broken, r, &["arc", "-Hp", "-r", "1G", "-a", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&["arc"], &o));
    assert!(
        stdout(&o).contains("guard.admitted\tyes\n"),
        "{}",
        show(&["arc"], &o)
    );
    assert!(
        !stdout(&o).contains("arc.reserved"),
        "{}",
        show(&["arc"], &o)
    );
    assert!(
        stderr(&o).contains("no reservations shown"),
        "{}",
        show(&["arc"], &o)
    );

    for (args, msg) in [
        (&["arc", "hold", u1, "1G"][..], "missing operand"),
        (
            &["arc", "hold", "not-a-uuid", "1G", vm1s][..],
            "invalid UUID",
        ),
        (&["arc", "hold", u1, "0", vm1s][..], "invalid size '0'"),
        (&["arc", "hold", u1, "1G", "vm.pid"][..], "must be absolute"),
        (
            &["arc", "hold", u1, "1G", vm1s, "x"][..],
            "unexpected operand 'x'",
        ),
        (&["arc", "drop"][..], "missing operand"),
        (
            &["arc", "reconcile", "-g", "soon"][..],
            "invalid grace 'soon'",
        ),
        (
            &["arc", "reconcile", "-g"][..],
            "option -g needs an argument",
        ),
        (
            &["arc", "list", "-o", "colour"][..],
            "invalid field 'colour'",
        ),
        (&["arc", "apply", "-w", "-1"][..], "invalid wait '-1'"),
    ] {
        let o = run(&host, r, args);
        assert_eq!(o.status.code(), Some(2), "{}", show(args, &o));
        assert!(stderr(&o).contains(msg), "{}", show(args, &o));
        assert!(stderr(&o).contains(USAGE_HEAD), "{}", show(args, &o));
    }
}

/// `claims` on a host with a reservoir shows a durable ARC reservation
/// (made by `arc hold`, whose process has exited) as held by no process
/// and needing none, and `reconcile` leaves it.
#[test]
fn claims_show_a_durable_arc_reservation_as_durable() {
    let host = EmuHost::with_reservoir("adm-claims-durable", HOST, 1024);
    let root = fake_root(host.dir.path(), true);
    let vm = host.dir.path().join("vm.pid");
    std::fs::write(&vm, "1\n").unwrap();
    let u = "11111111-2222-3333-4444-0000000000aa";
    let h = arc_table(
        &host,
        Some(&root),
        &["arc", "hold", "-Hp", u, "1G", vm.to_str().unwrap()],
        0,
    );
    assert_eq!(get(&h, "hold.reserved"), "yes");
    let o = ok(&host, None, &["claims", "-H", "-o", "uuid,pool,held"]);
    assert_eq!(o, format!("{u}\tarc\tdurable\n"));
    ok(&host, None, &["reconcile"]);
    let o = ok(&host, None, &["claims", "-H", "-o", "pool,held,size"]);
    assert_eq!(o, "arc\tdurable\t1G\n");
}
