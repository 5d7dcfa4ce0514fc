//! The host capacity report: a C consumer (tests/c/report.c) prints it
//! against the /dev/vmmctl emulator, and the JSON is validated against
//! docs/report.schema.json (JSON Schema 2020-12) and checked
//! for the arithmetic it reports.

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

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{kernel_limit, program, root, rsrvrctl, stderr, stdout, EmuHost, Scratch};
use serde_json::Value;
use vmmresv::admission::vm::AdmissionPolicy;
use vmmresv::host::HostMemory;
use vmmresv::report::{build, LedgerFigures, Pending, ReportInputs};
use vmmresv::ReservoirQuery;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const HOST: u64 = 64 * GIB;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("docs/report.schema.json"))
            .expect("docs/report.schema.json");
        let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::draft202012::new(&schema).expect("the schema is a valid JSON Schema")
    })
}

fn schema_errors(v: &Value) -> Vec<String> {
    validator()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// `<dir>/proc/meminfo` with the given total and available bytes.
fn meminfo_root(s: &Scratch, total: u64, avail: u64) -> PathBuf {
    let r = s.path().join("root");
    std::fs::create_dir_all(r.join("proc")).unwrap();
    std::fs::write(
        r.join("proc/meminfo"),
        format!(
            "MemTotal:       {} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\n",
            total / 1024,
            avail / 2048,
            avail / 1024
        ),
    )
    .unwrap();
    r
}

fn report(host: &EmuHost, args: &[&str]) -> Value {
    let o = host.command(program("report")).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "report {:?}: {}\n{}",
        args,
        stdout(&o),
        stderr(&o)
    );
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v} is not an unsigned integer"))
}

#[test]
fn c_consumer_prints_a_report_the_schema_accepts() {
    let host = EmuHost::new("report-c", HOST);
    let s = Scratch::new("report-c-root");
    let free = 40 * GIB;
    let root = meminfo_root(&s, HOST, free);
    let o = host
        .command(rsrvrctl())
        .args(["-s", "16384"])
        .output()
        .unwrap();
    assert!(o.status.success(), "rsrvrctl -s: {}", stderr(&o));
    let arc_root = common::root().join("tests/fixtures/arc/linux");
    let v = report(
        &host,
        &[
            "-R",
            root.to_str().unwrap(),
            "-A",
            arc_root.to_str().unwrap(),
            "-d",
            "1024",
            "-z",
            "2048",
            "-o",
            "512",
            "-b",
            "1024",
            "-c",
            "2",
        ],
    );
    let errs = schema_errors(&v);
    assert!(errs.is_empty(), "schema: {errs:#?}\n{v:#}");

    // What it reports is what the emulated kernel says.
    let limit = kernel_limit(HOST);
    let r = &v["reservoir"];
    assert_eq!(u(&r["limit_bytes"]), limit);
    assert_eq!(u(&r["size_bytes"]), 16 * GIB);
    assert_eq!(u(&r["free_bytes"]), 16 * GIB);
    assert_eq!(
        u(&r["default_target_bytes"]),
        (limit / 100 * 75 + limit % 100 * 75 / 100) / 4096 * 4096
    );
    assert_eq!(u(&v["host"]["physmem_bytes"]), HOST);
    assert_eq!(u(&v["host"]["free_bytes"]), free);

    // The ARC is the fixture's.
    assert_eq!(u(&v["arc"]["c_min_bytes"]), 2_147_483_648);
    assert_eq!(u(&v["arc"]["size_bytes"]), 43_078_676_480);

    // Headroom: each named input as given, and the sum adds up.
    let h = &v["headroom"];
    assert_eq!(u(&h["driver_dma_bytes"]), GIB);
    assert_eq!(u(&h["zone_caps_bytes"]), 2 * GIB);
    assert_eq!(u(&h["os_reserve_bytes"]), 512 * MIB);
    assert_eq!(u(&h["overcommit_buffer_bytes"]), GIB);
    assert_eq!(u(&h["arc_floor_bytes"]), 2_147_483_648);
    let deductions = u(&h["unlockable_120_bytes"])
        + u(&h["arc_floor_bytes"])
        + u(&h["driver_dma_bytes"])
        + u(&h["zone_caps_bytes"])
        + u(&h["os_reserve_bytes"])
        + u(&h["overcommit_buffer_bytes"]);
    assert_eq!(u(&h["deductions_bytes"]), deductions);
    assert_eq!(u(&h["short_bytes"]), 0);
    let safe = u(&h["safe_reservoir_max_bytes"]);
    assert!(safe <= HOST - deductions && HOST - deductions - safe < 4096);
    // 120% of the unlockable pages is what separates physmem from the
    // kernel's limit (to within the rounding of the 1.2).
    let u120 = u(&h["unlockable_120_bytes"]);
    assert!(
        u120.abs_diff(HOST - limit) < 8192,
        "{u120} vs {}",
        HOST - limit
    );
    assert_eq!(
        u(&r["recommended_target_bytes"]),
        u(&r["default_target_bytes"]).min(safe)
    );

    // The memory state of 40 GiB free on a 64 GiB host is high.
    assert_eq!(v["memory_state"]["state"], "high");

    // Largest VMs: within what bounds them.
    let w = &v["largest_vm"]["with_reservoir"];
    assert!(u(&w["guest_bytes"]) <= 16 * GIB);
    assert_eq!(w["limited_by"], "reservoir_free");
    assert_eq!(u(&w["guest_bytes"]), 16 * GIB);
    let wo = &v["largest_vm"]["without_reservoir"];
    assert!(u(&wo["guest_bytes"]) > 0);
    assert_eq!(v["overhead_model"]["name"], "smartos-vmadm");
    assert_eq!(u(&wo["overhead_bytes"]), 1280 * MIB);
}

#[test]
fn illumos_kstat_reading_and_no_arc() {
    let host = EmuHost::new("report-kstat", HOST);
    let s = Scratch::new("report-kstat-file");
    let f = s.path().join("system_pages");
    std::fs::write(
        &f,
        format!(
            "unix:0:system_pages:freemem\t{}\nunix:0:system_pages:physmem\t{}\n",
            GIB / 4096,
            HOST / 4096
        ),
    )
    .unwrap();
    let v = report(&host, &["-K", f.to_str().unwrap()]);
    let errs = schema_errors(&v);
    assert!(errs.is_empty(), "schema: {errs:#?}\n{v:#}");
    assert_eq!(v["arc"], Value::Null);
    assert_eq!(u(&v["host"]["free_bytes"]), GIB);
    // 1 GiB free of 64 GiB is below minFree (1.24 GiB on the default
    // scale): not the high state.
    assert_ne!(v["memory_state"]["state"], "high");
    // An empty reservoir admits no VM; without it, only what host memory
    // above the floor allows, which is nothing here.
    let w = &v["largest_vm"]["with_reservoir"];
    assert_eq!(u(&w["guest_bytes"]), 0);
    assert_eq!(w["limited_by"], "reservoir_free");
    let wo = &v["largest_vm"]["without_reservoir"];
    assert_eq!(u(&wo["guest_bytes"]), 0);
    assert_eq!(wo["limited_by"], "memory_state");
}

#[test]
fn c_consumer_reports_errors() {
    let host = EmuHost::new("report-err", HOST);
    let o = host
        .command(program("report"))
        .args(["-R", "/nonexistent-vmmresv-root"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("reading the host's memory") && e.contains("status 7019"),
        "{e}"
    );
}

/// The schema is not a formality: it refuses reports that lack a field,
/// have one too many, or carry a wrong type or name.
#[test]
fn schema_refuses_broken_reports() {
    let q = ReservoirQuery {
        free: 4 * GIB,
        alloc: 2 * GIB,
        alloc_transient: 0,
        limit: 60 * GIB,
    };
    let inputs = ReportInputs {
        host: HostMemory {
            physmem_bytes: HOST,
            free_bytes: 30 * GIB,
        },
        reference_vcpus: 4,
        ..ReportInputs::default()
    };
    let mut good = build(
        &q,
        &Pending::default(),
        &AdmissionPolicy::default(),
        &inputs,
    )
    .unwrap();
    good.ledger = Some(LedgerFigures {
        path: "/var/run/vmmresv/admission.ledger".into(),
        origin: "default",
        host_wide: true,
        backend: "vmm-reservoir",
        instance: 0x0123_4567_89ab_cdef,
    });
    let good = good.to_value();
    assert!(
        schema_errors(&good).is_empty(),
        "{:#?}",
        schema_errors(&good)
    );

    type Break = Box<dyn Fn(&mut Value)>;
    let broken: Vec<(&str, Break)> = vec![
        (
            "missing field",
            Box::new(|v| {
                v["reservoir"]
                    .as_object_mut()
                    .unwrap()
                    .remove("limit_bytes");
            }),
        ),
        (
            "extra field",
            Box::new(|v| {
                v["headroom"]["surprise_bytes"] = 1.into();
            }),
        ),
        (
            "negative size",
            Box::new(|v| v["host"]["free_bytes"] = (-1).into()),
        ),
        (
            "string size",
            Box::new(|v| v["host"]["free_bytes"] = "1G".into()),
        ),
        (
            "unknown state",
            Box::new(|v| v["memory_state"]["state"] = "clear".into()),
        ),
        (
            "unknown limit",
            Box::new(|v| {
                v["largest_vm"]["with_reservoir"]["limited_by"] = "luck".into();
            }),
        ),
        (
            "guest not a page multiple",
            Box::new(|v| {
                v["largest_vm"]["with_reservoir"]["guest_bytes"] = 4097.into();
            }),
        ),
        (
            "profile order",
            Box::new(|v| v["profiles"].as_array_mut().unwrap().reverse()),
        ),
        (
            "wrong schema",
            Box::new(|v| v["schema"] = "vmmresv-report/1".into()),
        ),
        (
            "ledger without its origin",
            Box::new(|v| {
                v["ledger"].as_object_mut().unwrap().remove("origin");
            }),
        ),
        (
            "ledger origin unknown",
            Box::new(|v| v["ledger"]["origin"] = "guess".into()),
        ),
    ];
    for (what, f) in broken {
        let mut v = good.clone();
        f(&mut v);
        assert!(
            !schema_errors(&v).is_empty(),
            "schema accepted a report with a {what}"
        );
    }
}

/// Sizing inputs in operators' units through a C consumer: omicron's
/// 86.3% as 8630/10000 basis points on a 1 TiB host with the Gimlet
/// earmark (vmmresv_admission_set_profile_fraction()), and the kernel's
/// limit from physmem and pages_pp_maximum is the one the (emulated)
/// kernel reports.
#[test]
fn c_consumer_sets_omicrons_share_as_a_fraction() {
    const TIB: u64 = 1 << 40;
    let host = EmuHost::new("report-frac", TIB);
    let s = Scratch::new("report-frac-root");
    let root = meminfo_root(&s, TIB, 512 * GIB);
    let r = root.to_str().unwrap();
    let v = report(&host, &["-R", r, "-e", "45056", "-f", "8630/10000"]);
    let errs = schema_errors(&v);
    assert!(errs.is_empty(), "schema: {errs:#?}\n{v:#}");
    let p = &v["profiles"][1];
    assert_eq!(p["name"], "omicron");
    assert_eq!(u(&p["target_bytes"]), 880_306_814_976);
    assert_eq!((u(&p["numerator"]), u(&p["denominator"])), (8630, 10000));
    // The others keep their default shares.
    assert_eq!(u(&v["profiles"][0]["numerator"]), 75);
    assert_eq!(u(&v["profiles"][2]["denominator"]), 100);

    // Without -f: the default 91%, 864.5 GiB.
    let d = report(&host, &["-R", r, "-e", "45056"]);
    assert_eq!(u(&d["profiles"][1]["target_bytes"]), 864 * GIB + 512 * MIB);
    assert_eq!(
        (
            u(&d["profiles"][1]["numerator"]),
            u(&d["profiles"][1]["denominator"])
        ),
        (91, 100)
    );

    // A zero denominator and a share above 1 are refused: INVALID_ARGUMENT
    // (7002), the report's exit status 1.
    for bad in ["1/0", "10001/10000"] {
        let o = host
            .command(program("report"))
            .args(["-R", r, "-f", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "-f {bad}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("setting omicron's share") && e.contains("status 7002"),
            "{e}"
        );
    }

    // The kernel's limit from physmem and pages_pp_maximum (4% + 4 MiB,
    // the emulator's as the kernel's default) is what the kernel reports,
    // and the unlockable bytes come back from it.
    let limit = u(&v["reservoir"]["limit_bytes"]);
    assert_eq!(limit, kernel_limit(TIB));
    let pp = (TIB / 4096 / 25 + 1024) * 4096;
    assert_eq!(vmmresv::policy::limit_from_unlockable(TIB, pp), limit);
    assert_eq!(vmmresv::policy::unlockable_from_limit(TIB, limit), pp);
    assert_eq!(u(&v["headroom"]["unlockable_bytes"]), pp);
}
