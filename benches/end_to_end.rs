//! End to end: `rotcheck check` on the Python PostgreSQL fixture against a real (local)
//! PostgreSQL, at the default schedule size, with 1 worker and with one per core. Prints, for
//! each: wall time, cases per second, mean commands per case, where a case's time went
//! (function, emulator, rotcheck) and rotcheck's peak memory. Asserts nothing.
//!
//!     cargo bench --bench end_to_end            # 256 generated cases (no crash sweep)
//!     cargo bench --bench end_to_end -- 64      # another count
//!     cargo bench --bench end_to_end -- 256 --workers 2   # one worker count only
//!
//! The crash sweep is left out so that the figure is the generated cases' alone; the seed is
//! fixed, so both runs check the same cases.

use std::process::Command;
use std::time::Instant;

fn main() {
    let cases: u64 = std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(256);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = env!("CARGO_BIN_EXE_rotcheck");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    println!("end to end: {cases} cases of fixtures/python/postgres-single-user, local PostgreSQL; {cores} cores ({cpu})");
    println!(
        "{:>8} {:>9} {:>8} {:>13} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9}",
        "workers", "wall s", "cases/s", "commands/case", "function", "emulator", "rotcheck", "probes", "probes/case", "peak MiB"
    );
    // `-- 256 --workers 2` runs one worker count only.
    let args: Vec<String> = std::env::args().collect();
    let only = args.iter().position(|a| a == "--workers").and_then(|i| args.get(i + 1)).and_then(|w| w.parse::<usize>().ok());
    let mut workers = vec![1];
    if cores > 1 {
        workers.push(cores);
    }
    if let Some(w) = only {
        workers = vec![w];
    }
    for w in workers {
        let report = std::env::temp_dir().join(format!("rotcheck-bench-e2e-{}-{w}.json", std::process::id()));
        let started = Instant::now();
        let out = Command::new(bin)
            .args(["check", "fixtures/python/postgres-single-user", "--db", "local", "--seed", "1", "--no-sweep"])
            .args(["--cases", &cases.to_string(), "--workers", &w.to_string()])
            .arg("--json")
            .arg(&report)
            .current_dir(root)
            .output()
            .expect("rotcheck runs");
        let wall = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            println!("{w:>8} the run failed ({}):\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
            continue;
        }
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("the report")).expect("JSON");
        let _ = std::fs::remove_file(&report);
        let c = &r["coverage"];
        let t = |k: &str| c["timing_us"][k].as_f64().unwrap_or(0.0);
        let total = t("total").max(1.0);
        let probes = t("observe");
        let rotcheck = total - t("function");
        let peak = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("peak memory of rotcheck: "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("?");
        println!(
            "{w:>8} {wall:>9.1} {:>8.2} {:>13.1} {:>9.0}% {:>9.1}% {:>9.0}% {:>9.0}% {:>12.1} {peak:>9}",
            r["cases"].as_f64().unwrap_or(0.0) / wall,
            c["commands"].as_f64().unwrap_or(0.0) / r["cases"].as_f64().unwrap_or(1.0).max(1.0),
            (t("function") - t("emulator")) / total * 100.0,
            t("emulator") / total * 100.0,
            rotcheck / total * 100.0,
            probes / total * 100.0,
            c["probes"].as_f64().unwrap_or(0.0) / r["cases"].as_f64().unwrap_or(1.0).max(1.0),
        );
    }
    println!("(shares are of the summed case time; the function's share includes its own database work)");
}
