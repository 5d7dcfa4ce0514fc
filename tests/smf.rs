//! The boot-time reservoir service (RFD 185): smf/vmmresv-reservoir.xml is
//! a well-formed SMF manifest in the order service_bundle.dtd.1 wants, and
//! smf/vmmresv-reservoir, the start method, run with `sh` against the
//! emulated /dev/vmmctl (no SMF needed: svcprop is faked where a test
//! needs it), reads its setting by precedence, applies it through
//! `rsrvrctl -b`, logs what it asked for and what the kernel reached, and
//! exits with the SMF codes.

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

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

use vmmresv::boot::{boot_target, read_config, BootSetting};
use vmmresv::policy::default_target_for;

const HOST: u64 = 16 * GIB;
const MANIFEST: &str = "smf/vmmresv-reservoir.xml";
const METHOD: &str = "smf/vmmresv-reservoir";

// ---------------------------------------------------------------------
// The manifest

fn manifest_text() -> String {
    std::fs::read_to_string(root().join(MANIFEST)).unwrap()
}

fn parse(text: &str) -> roxmltree::Document<'_> {
    // The DOCTYPE names the DTD by its system path; nothing is fetched.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {}", MANIFEST, e))
}

fn elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.is_element()).collect()
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str, name: &str) -> roxmltree::Node<'a, 'i> {
    elements(n)
        .into_iter()
        .find(|c| c.has_tag_name(tag) && c.attribute("name") == Some(name))
        .unwrap_or_else(|| panic!("no <{} name='{}'> in <{}>", tag, name, n.tag_name().name()))
}

/// The children of `n` appear in the order of `order` (each tag may repeat
/// or be missing, none may come back after a later one, no other tag).
fn assert_order(n: roxmltree::Node<'_, '_>, order: &[&str]) {
    let mut at = 0;
    for c in elements(n) {
        let tag = c.tag_name().name();
        let i = order
            .iter()
            .position(|t| *t == tag)
            .unwrap_or_else(|| panic!("<{}> may not contain <{}>", n.tag_name().name(), tag));
        assert!(
            i >= at,
            "<{}> after <{}> in <{}>: the DTD wants {:?}",
            tag,
            order[at],
            n.tag_name().name(),
            order
        );
        at = i;
    }
}

#[test]
fn manifest_is_well_formed_with_the_dtd_structure() {
    let text = manifest_text();
    assert!(
        text.contains(
            "<!DOCTYPE service_bundle SYSTEM '/usr/share/lib/xml/dtd/service_bundle.dtd.1'>"
        ),
        "the DOCTYPE svccfg validates against"
    );
    let doc = parse(&text);
    let bundle = doc.root_element();
    assert!(bundle.has_tag_name("service_bundle"));
    assert_eq!(bundle.attribute("type"), Some("manifest"));
    let services = elements(bundle);
    assert_eq!(services.len(), 1);
    let svc = services[0];
    assert!(svc.has_tag_name("service"));
    assert_eq!(svc.attribute("name"), Some("system/vmmresv/reservoir"));
    assert_eq!(svc.attribute("type"), Some("service"));
    assert!(svc.attribute("version").is_some());

    // service_bundle.dtd.1: the content model of <service>.
    assert_order(
        svc,
        &[
            "create_default_instance",
            "single_instance",
            "restarter",
            "dependency",
            "dependent",
            "method_context",
            "exec_method",
            "property_group",
            "instance",
            "stability",
            "template",
        ],
    );
    let cdi = elements(svc)
        .into_iter()
        .find(|c| c.has_tag_name("create_default_instance"))
        .expect("a default instance");
    assert_eq!(cdi.attribute("enabled"), Some("true"));

    // Dependencies: local file systems (config file, run directory).
    let fs = child(svc, "dependency", "filesystem-local");
    assert_eq!(fs.attribute("grouping"), Some("require_all"));
    assert_eq!(fs.attribute("type"), Some("service"));
    assert_eq!(
        elements(fs)[0].attribute("value"),
        Some("svc:/system/filesystem/local")
    );
    let dev = child(svc, "dependency", "vmmctl");
    assert_eq!(dev.attribute("type"), Some("path"));
    assert_eq!(
        elements(dev)[0].attribute("value"),
        Some("file://localhost/dev/vmmctl")
    );
    for d in elements(svc)
        .into_iter()
        .filter(|c| c.has_tag_name("dependency") || c.has_tag_name("dependent"))
    {
        assert_order(d, &["service_fmri", "stability", "propval", "property"]);
        for a in ["name", "grouping", "restart_on"] {
            assert!(d.attribute(a).is_some(), "{:?} lacks {}", d, a);
        }
    }

    // Methods: start runs the method, stop does nothing (transient).
    let start = child(svc, "exec_method", "start");
    assert_eq!(start.attribute("type"), Some("method"));
    assert_eq!(
        start.attribute("exec"),
        Some("/lib/svc/method/vmmresv-reservoir")
    );
    let timeout: i64 = start.attribute("timeout_seconds").unwrap().parse().unwrap();
    assert!(timeout >= 600, "a large host resizes for minutes");
    let stop = child(svc, "exec_method", "stop");
    assert_eq!(stop.attribute("exec"), Some(":true"));
    for m in [start, stop] {
        assert_order(m, &["method_context", "stability", "propval", "property"]);
    }

    // Property groups.
    let startd = child(svc, "property_group", "startd");
    assert_eq!(startd.attribute("type"), Some("framework"));
    let duration = child(startd, "propval", "duration");
    assert_eq!(duration.attribute("value"), Some("transient"));
    let config = child(svc, "property_group", "config");
    assert_eq!(config.attribute("type"), Some("application"));
    // Both properties exist and are empty: the config file is the
    // fallback the method reads, then its defaults (75%, 1G).
    for name in ["reservoir_size", "chunk_size"] {
        let p = child(config, "propval", name);
        assert_eq!(p.attribute("type"), Some("astring"), "{name}");
        assert_eq!(p.attribute("value"), Some(""), "{name}");
    }

    // The template: name, description, documentation, property patterns.
    let tmpl = elements(svc)
        .into_iter()
        .find(|c| c.has_tag_name("template"))
        .expect("a template");
    assert_order(
        tmpl,
        &["common_name", "description", "documentation", "pg_pattern"],
    );
    assert!(elements(tmpl)[0].has_tag_name("common_name"));
    let docs = elements(tmpl)
        .into_iter()
        .find(|c| c.has_tag_name("documentation"))
        .expect("documentation");
    assert!(elements(docs).iter().any(|m| m.has_tag_name("manpage")
        && m.attribute("title") == Some("vmmresv-reservoir")
        && m.attribute("section") == Some("8")));
    let pg = child(tmpl, "pg_pattern", "config");
    assert_order(pg, &["common_name", "description", "prop_pattern"]);
    for prop in ["reservoir_size", "chunk_size"] {
        let pp = child(pg, "prop_pattern", prop);
        assert_eq!(pp.attribute("type"), Some("astring"));
        assert_order(
            pp,
            &[
                "common_name",
                "description",
                "units",
                "visibility",
                "cardinality",
                "internal_separators",
                "values",
                "constraints",
                "choices",
            ],
        );
        let desc = elements(pp)
            .into_iter()
            .find(|c| c.has_tag_name("description"))
            .unwrap_or_else(|| panic!("{} has no description", prop));
        assert!(desc
            .descendants()
            .any(|d| d.is_text() && d.text().is_some_and(|t| t.trim().len() > 20)));
    }
    // The manual page the template names exists.
    assert!(root().join("man/vmmresv-reservoir.8").exists());
}

/// The method's defaults are the ones the manifest's template documents,
/// and both are settings the library accepts (the manifest leaves the
/// properties empty, so a fresh install gets exactly these).
#[test]
fn method_defaults_match_the_manifest() {
    let method = std::fs::read_to_string(root().join(METHOD)).unwrap();
    assert!(method.starts_with("#!/bin/sh\n"));
    assert!(method.contains("\nsetting reservoir_size 75%\n"));
    assert!(method.contains("\nsetting chunk_size 1G\n"));
    assert_eq!(BootSetting::parse("75%"), Ok(BootSetting::default()));
    assert_eq!(BootSetting::parse("1G"), Ok(BootSetting::Size(GIB)));
    let m = manifest_text();
    assert!(m.contains("else 75%."), "the template documents 75%");
    assert!(m.contains("else 1G."), "the template documents 1G");
}

/// With xmllint installed (CI may have it), the same well-formedness check
/// by an independent parser. Without it, roxmltree's check above stands.
#[test]
fn manifest_passes_xmllint_when_present() {
    let Ok(o) = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet"])
        .arg(root().join(MANIFEST))
        .output()
    else {
        eprintln!("xmllint not installed: skipped");
        return;
    };
    assert!(o.status.success(), "xmllint: {}", stderr(&o));
}

// ---------------------------------------------------------------------
// The method against the emulator

/// One emulated host for the method: the emulator, the port, a config
/// path that does not exist yet (never the real /etc), and a PATH without
/// svcprop unless a test adds one.
struct Boot {
    host: EmuHost,
    conf: PathBuf,
    bin: PathBuf,
}

impl Boot {
    fn new(tag: &str) -> Boot {
        let mut host = EmuHost::new(tag, HOST);
        let conf = host.dir.path().join("vmmresv.conf");
        let bin = host.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        host.set("RSRVRCTL", &rsrvrctl().display().to_string());
        host.set("VMMRESV_CONF", &conf.display().to_string());
        host.set("PATH", &format!("{}:/usr/bin:/bin", bin.display()));
        host.set("SMF_FMRI", "svc:/system/vmmresv/reservoir:default");
        Boot { host, conf, bin }
    }

    fn write_conf(&self, text: &str) {
        std::fs::write(&self.conf, text).unwrap();
    }

    /// A fake svcprop(1) answering `svcprop -p config/NAME FMRI` from
    /// `props` (NAME, printed value), recording each FMRI it was asked for.
    fn fake_svcprop(&self, props: &[(&str, &str)]) {
        use std::os::unix::fs::PermissionsExt;
        let mut cases = String::new();
        for (k, v) in props {
            cases.push_str(&format!("config/{}) printf '%s\\n' '{}' ;;\n", k, v));
        }
        let script = format!(
            "#!/bin/sh\n\
             [ \"$1\" = -p ] || exit 2\n\
             printf '%s\\n' \"$3\" >> '{log}'\n\
             case $2 in\n{cases}\
             *) echo \"svcprop: Couldn't find property '$2'\" >&2; exit 1 ;;\n\
             esac\n",
            log = self.bin.join("svcprop.log").display(),
            cases = cases
        );
        let p = self.bin.join("svcprop");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn run(&self) -> Output {
        self.host
            .command(Path::new("sh"))
            .arg(root().join(METHOD))
            .output()
            .unwrap()
    }

    /// Run; expect `code`; return the log (stdout; stderr must be empty:
    /// the method sends everything to the SMF log).
    fn expect(&self, code: i32) -> String {
        let o = self.run();
        let log = stdout(&o);
        assert_eq!(
            o.status.code(),
            Some(code),
            "method exit status\n--- log ---\n{}--- stderr ---\n{}",
            log,
            stderr(&o)
        );
        assert_eq!(stderr(&o), "", "log:\n{}", log);
        log
    }

    fn free(&self) -> u64 {
        self.host.stat("free")
    }
}

/// The line the method ends a success with.
fn reached_line(target: u64, previous: Option<u64>) -> String {
    let change = match previous {
        Some(p) => format!("was {} MiB", p / MIB),
        None => "unchanged".into(),
    };
    format!(
        "vmmresv-reservoir: asked for {} MiB, the kernel reached {} MiB ({})\n",
        target / MIB,
        target / MIB,
        change
    )
}

fn assert_has(log: &str, want: &str) {
    assert!(log.contains(want), "log lacks {:?}:\n{}", want, log);
}

#[test]
fn default_is_75_percent_of_the_limit() {
    let b = Boot::new("smf-default");
    let log = b.expect(0);
    let want = default_target_for(kernel_limit(HOST), GIB).unwrap();
    assert_eq!(want, 11 * GIB);
    assert_eq!(
        log,
        format!(
            "vmmresv-reservoir: reservoir_size 75% (default)\n\
             vmmresv-reservoir: chunk_size 1G (default)\n\
             vmmresv-reservoir: running {} -b 75% -c 1G\n\
             Boot setting:\t75%\n\
             Size limit MiB:\t{}\n\
             Previous MiB:\t0\n\
             Target MiB:\t11264\n\
             Reached MiB:\t11264\n{}",
            rsrvrctl().display(),
            kernel_limit(HOST) / MIB,
            reached_line(want, Some(0))
        )
    );
    assert_eq!(b.free(), want);
    assert_eq!(b.host.stat("target_active"), 0);
}

#[test]
fn config_file_sets_size_and_chunk() {
    let b = Boot::new("smf-conf");
    b.write_conf("# boot-time reservoir\nreservoir_size = 4G\nchunk_size=512M\n");
    let log = b.expect(0);
    let conf = b.conf.display().to_string();
    assert_has(
        &log,
        &format!("vmmresv-reservoir: reservoir_size 4G (from {})\n", conf),
    );
    assert_has(
        &log,
        &format!("vmmresv-reservoir: chunk_size 512M (from {})\n", conf),
    );
    assert!(log.ends_with(&reached_line(4 * GIB, Some(0))), "{}", log);
    assert_eq!(b.free(), 4 * GIB);
}

/// As delivered, both properties are empty: the config file decides.
#[test]
fn empty_properties_as_delivered_defer_to_the_config_file() {
    let b = Boot::new("smf-asdelivered");
    b.write_conf("reservoir_size=50%\n");
    b.fake_svcprop(&[("reservoir_size", "\"\""), ("chunk_size", "\"\"")]);
    let log = b.expect(0);
    assert_has(
        &log,
        &format!(
            "vmmresv-reservoir: reservoir_size 50% (from {})\n",
            b.conf.display()
        ),
    );
    assert_has(&log, "vmmresv-reservoir: chunk_size 1G (default)\n");
    let want = boot_target(BootSetting::Percent(50), kernel_limit(HOST), GIB)
        .unwrap()
        .target_bytes;
    assert_eq!(b.free(), want);
}

#[test]
fn smf_property_wins_over_the_config_file() {
    let b = Boot::new("smf-prop");
    b.write_conf("reservoir_size=4G\nchunk_size=512M\n");
    // An empty chunk_size property ("" is how svcprop prints it) defers
    // to the config file.
    b.fake_svcprop(&[("reservoir_size", "6G"), ("chunk_size", "\"\"")]);
    let log = b.expect(0);
    assert_has(
        &log,
        "vmmresv-reservoir: reservoir_size 6G (from SMF property config/reservoir_size)\n",
    );
    assert_has(
        &log,
        &format!(
            "vmmresv-reservoir: chunk_size 512M (from {})\n",
            b.conf.display()
        ),
    );
    assert_eq!(b.free(), 6 * GIB);
    // svcprop was asked about this service's FMRI, once per property.
    let asked = std::fs::read_to_string(b.bin.join("svcprop.log")).unwrap();
    assert_eq!(
        asked,
        "svc:/system/vmmresv/reservoir:default\nsvc:/system/vmmresv/reservoir:default\n"
    );
    // A property svcprop does not have (exit 1) also falls through: only
    // chunk_size is an SMF property now, reservoir_size comes from the file.
    b.fake_svcprop(&[("chunk_size", "2G")]);
    let log = b.expect(0);
    assert_has(
        &log,
        "vmmresv-reservoir: chunk_size 2G (from SMF property config/chunk_size)\n",
    );
    assert_has(
        &log,
        &format!(
            "vmmresv-reservoir: reservoir_size 4G (from {})\n",
            b.conf.display()
        ),
    );
    assert_eq!(b.free(), 4 * GIB);
}

#[test]
fn bad_setting_exits_96_and_leaves_the_reservoir() {
    let b = Boot::new("smf-bad");
    b.fake_svcprop(&[("reservoir_size", "12288")]);
    let log = b.expect(96);
    assert_has(
        &log,
        "rsrvrctl: Invalid boot setting 12288: invalid size string (a whole percentage \
         such as 75%, a size with a unit such as 12G, or default)\n",
    );
    assert_has(
        &log,
        "vmmresv-reservoir: bad reservoir_size \"12288\" (from SMF property \
         config/reservoir_size) or chunk_size \"1G\" (default): reservoir left as it is\n",
    );
    assert_eq!(b.free(), 0);
    // A chunk that does not parse, one without a unit (rsrvrctl -c would
    // read it as MiB, the config grammar refuses it), a percentage, and one
    // that is not a multiple of the page: configuration errors too.
    for (chunk, why) in [
        ("lots", "not a size with a unit"),
        ("1024", "not a size with a unit"),
        ("10%", "not a size with a unit"),
        ("x1G", "Invalid chunk size x1G"),
        ("1.5K", "not page-aligned"),
    ] {
        b.fake_svcprop(&[("chunk_size", chunk)]);
        let log = b.expect(96);
        assert_has(&log, why);
        assert_has(&log, &format!("chunk_size \"{}\"", chunk));
        assert_eq!(b.free(), 0);
    }
}

#[test]
fn malformed_config_file_exits_96_naming_the_line() {
    let b = Boot::new("smf-badconf");
    b.write_conf("# ok\n\nreservoir_sise=50%\n");
    let log = b.expect(96);
    assert_eq!(
        log,
        format!(
            "vmmresv-reservoir: {}: line 3: unknown key \"reservoir_sise\" \
             (known: reservoir_size, chunk_size)\n",
            b.conf.display()
        )
    );
    assert_eq!(b.free(), 0);
}

/// The method's config reading and the library's boot::read_config()
/// agree on what a file says: accepted with the same setting, or refused.
#[test]
fn method_and_library_read_config_files_alike() {
    let b = Boot::new("smf-agree");
    let files = [
        "",
        "# nothing\n\n",
        "reservoir_size=50%\n",
        "  reservoir_size  =  2G  \r\n",
        "chunk_size=1G\n",
        "reservoir_size=default\n",
        "reservoir_size=12288\n",
        "reservoir_size=101%\n",
        "reservoir_size\n",
        "size=50%\n",
        "reservoir_size=50%\nreservoir_size=60%\n",
        "chunk_size=1G\nchunk_size=2G\n",
        "=50%\n",
        "reservoir_size=50%\n# trailing comment\nchunk_size=256M\n",
        // A chunk is a size with a unit: rsrvrctl -c alone would read these
        // as MiB or a share of the limit; -b must not.
        "chunk_size=1024\n",
        "chunk_size=50%\n",
        "chunk_size=default\n",
    ];
    for text in files {
        b.write_conf(text);
        let lib = read_config(&b.conf);
        let o = b.run();
        let log = stdout(&o);
        let what = format!("config {:?}: library {:?}\nlog:\n{}", text, lib, log);
        match lib {
            Err(_) => assert_eq!(o.status.code(), Some(96), "{}", what),
            Ok(setting) => {
                assert_eq!(o.status.code(), Some(0), "{}", what);
                let line = log
                    .lines()
                    .find_map(|l| l.strip_prefix("vmmresv-reservoir: reservoir_size "))
                    .unwrap();
                let (value, _) = line.split_once(" (").unwrap();
                assert_eq!(
                    BootSetting::parse(value).ok(),
                    Some(setting.unwrap_or_default()),
                    "{}",
                    what
                );
            }
        }
    }
}

#[test]
fn running_twice_is_idempotent() {
    let b = Boot::new("smf-twice");
    b.write_conf("reservoir_size=50%\n");
    let want = boot_target(BootSetting::Percent(50), kernel_limit(HOST), GIB)
        .unwrap()
        .target_bytes;
    assert_eq!(want, 7 * GIB);
    let first = b.expect(0);
    assert!(first.ends_with(&reached_line(want, Some(0))), "{}", first);
    let grown = b.host.stat("grown_total");
    let second = b.expect(0);
    assert!(second.ends_with(&reached_line(want, None)), "{}", second);
    assert_has(
        &second,
        &format!(
            "Previous MiB:\t{}\nTarget MiB:\t{}\n",
            want / MIB,
            want / MIB
        ),
    );
    assert_eq!(b.free(), want);
    assert_eq!(b.host.stat("grown_total"), grown, "the second run resized");
}

#[test]
fn interrupted_resize_still_reaches_the_target() {
    let mut b = Boot::new("smf-eintr");
    // Every SET_TARGET stops with EINTR after one chunk: 11 chunks, 10
    // interruptions, each resumed by the library.
    b.host.set("VMMEMU_EINTR_AFTER_CHUNKS", "1");
    let log = b.expect(0);
    assert!(log.ends_with(&reached_line(11 * GIB, Some(0))), "{}", log);
    assert_eq!(b.free(), 11 * GIB);
    assert_eq!(b.host.stat("target_active"), 0);
}

#[test]
fn unprivileged_exits_95_with_the_error_logged() {
    let mut b = Boot::new("smf-eperm");
    b.host.set("VMMEMU_UNPRIVILEGED", "1");
    let log = b.expect(95);
    assert_has(&log, "Target MiB:\t11264\n");
    assert_has(
        &log,
        "rsrvrctl: Could not set reservoir size to 11811160064 bytes: permission denied",
    );
    assert!(
        log.ends_with(
            "vmmresv-reservoir: failed (rsrvrctl exit status 1): the reservoir is at 0 MiB\n"
        ),
        "{}",
        log
    );
    assert!(!log.contains("Reached MiB"), "{}", log);
    assert_eq!(b.free(), 0);
}

#[test]
fn missing_rsrvrctl_exits_95() {
    let mut b = Boot::new("smf-noport");
    let missing = b.host.dir.path().join("no-such-rsrvrctl");
    b.host.set("RSRVRCTL", &missing.display().to_string());
    let log = b.expect(95);
    assert_has(
        &log,
        &format!(
            "vmmresv-reservoir: {}: not found or not executable; reservoir left as it is\n",
            missing.display()
        ),
    );
}
