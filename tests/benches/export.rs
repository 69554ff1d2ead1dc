//! Export throughput and memory, measured on the real binary.
//!
//! `cargo bench --bench export` loads a store of 1,000,000 users with one Email account each
//! (through `users import` and `import`, as the import benchmark does; the SQLite store is
//! kept between runs), then times `mdm-mail export --type email --out FILE` three times and
//! once more as UTF-16 with semicolons, reporting accounts/s of wall time and of CPU time
//! (the machine may be shared) and the process's peak RSS.
//! Set `MDM_MAIL_BENCH_POSTGRES_URL` to run the same against PostgreSQL (a database the
//! benchmark may fill; it drops and recreates its own schema).
//!
//! `cargo bench --bench export -- --accounts 100000` runs a smaller set.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIRST: [&str; 8] = [
    "jennifer", "mikko", "aino", "zoë", "ahmed", "chen", "olga", "kofi",
];
const LAST: [&str; 6] = ["lopez", "virtanen", "müller", "tanaka", "okafor", "nielsen"];
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn user_email(i: u64) -> String {
    let first = FIRST[(i % 8) as usize];
    let last = LAST[(i / 8 % 6) as usize];
    format!("{first}.{last}{i}@acme.example")
}

/// Display names as spreadsheets hold them: one in ten quoted with a comma, one in fifty
/// starting with a formula trigger.
fn display_name(i: u64) -> String {
    let first = FIRST[(i % 8) as usize];
    let last = LAST[(i / 8 % 6) as usize];
    if i.is_multiple_of(10) {
        format!("\"{last}, {first}\"")
    } else if i % 50 == 7 {
        format!("+{first} {last}")
    } else {
        format!("{first} {last}")
    }
}

/// The files that load the store; account lines come in a scrambled order.
fn generate(dir: &Path, n: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut users = BufWriter::new(std::fs::File::create(dir.join("users.csv"))?);
    writeln!(users, "email,display_name")?;
    for i in 0..n {
        writeln!(users, "{},{}", user_email(i), display_name(i))?;
    }
    users.flush()?;
    let mut accounts = BufWriter::new(std::fs::File::create(dir.join("accounts.csv"))?);
    let mut line = String::new();
    for k in 0..n {
        let i = (k * 7_919 + 13) % n;
        let login = format!("{}{i}", FIRST[(i % 8) as usize]);
        line.clear();
        let _ = writeln!(
            line,
            "{},{},mail.{},{login},pw-{i}-in,{login},pw-{i}-out",
            user_email(i),
            display_name(i),
            user_email(i)
        );
        accounts.write_all(line.as_bytes())?;
    }
    accounts.flush()
}

struct Run {
    elapsed: Duration,
    /// User plus system CPU time: on a machine shared with other work, the wall time says
    /// more about the neighbours than about the export.
    cpu: Duration,
    peak_rss_kib: u64,
    /// The largest anonymous (heap) part of the resident set seen: SQLite maps the database
    /// file, whose pages count in the resident set but are the kernel's page cache.
    peak_anon_kib: u64,
}

/// The CPU time a running process has used so far, from /proc (in clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs the binary, sampling its peak resident set from /proc while it runs.
fn measure(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdm-mail"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start mdm-mail");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let mut peak_anon = 0;
    let mut cpu = Duration::ZERO;
    let status = loop {
        cpu = cpu_time(child.id()).unwrap_or(cpu);
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            let kib = |field: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            peak = peak.max(kib("VmHWM:"));
            peak_anon = peak_anon.max(kib("RssAnon:"));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "mdm-mail {args:?} failed: {status:?}");
    Run {
        elapsed: started.elapsed(),
        cpu,
        peak_rss_kib: peak,
        peak_anon_kib: peak_anon,
    }
}

fn report(label: &str, accounts: u64, run: &Run) {
    println!(
        "{label:<44} {:>7.2} s {:>8.0} accounts/s   CPU {:>6.2} s {:>8.0} accounts/CPU-s   peak RSS {:>4} MiB (heap {:>3} MiB)",
        run.elapsed.as_secs_f64(),
        accounts as f64 / run.elapsed.as_secs_f64(),
        run.cpu.as_secs_f64(),
        accounts as f64 / run.cpu.as_secs_f64(),
        run.peak_rss_kib / 1024,
        run.peak_anon_kib / 1024
    );
}

fn load(url: &str, data: &Path, n: u64, work: &Path) {
    let env = [("MDM_MAIL_DATABASE_URL", url), ("MDM_MAIL_SECRET_KEY", KEY)];
    let path = |f: &str| data.join(f).display().to_string();
    let users = measure(&["users", "import", &path("users.csv")], &env, work);
    report("users import (setup)", n, &users);
    let accounts = measure(
        &["import", &path("accounts.csv"), "--type", "email", "--json"],
        &env,
        work,
    );
    report("account import (setup)", n, &accounts);
}

/// Counts the data rows of an export and checks no password reached it.
fn check(file: &Path, n: u64, utf16: bool) {
    let bytes = std::fs::read(file).expect("read the export");
    let text = if utf16 {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16(&units).expect("UTF-16")
    } else {
        String::from_utf8(bytes).expect("UTF-8")
    };
    assert_eq!(
        text.matches("\r\n").count() as u64,
        n + 1,
        "{}",
        file.display()
    );
    assert!(!text.contains("pw-"), "a password reached the export");
}

fn bench_store(name: &str, url: &str, n: u64, work: &Path) {
    let env = [("MDM_MAIL_DATABASE_URL", url), ("MDM_MAIL_SECRET_KEY", KEY)];
    let out = work.join("export.csv");
    let out_arg = out.display().to_string();
    println!("-- {name}: {n} Email accounts");
    let mut runs: Vec<Duration> = Vec::new();
    for round in 1..=3 {
        let run = measure(
            &["export", "--type", "email", "--out", &out_arg],
            &env,
            work,
        );
        check(&out, n, false);
        report(&format!("export --type email (run {round})"), n, &run);
        runs.push(run.elapsed);
    }
    runs.sort();
    println!(
        "{:<44} {:>7.2} s {:>10.0} accounts/s",
        "median",
        runs[1].as_secs_f64(),
        n as f64 / runs[1].as_secs_f64()
    );
    let run = measure(
        &[
            "export",
            "--type",
            "email",
            "--delimiter",
            "semicolon",
            "--encoding",
            "utf-16",
            "--out",
            &out_arg,
        ],
        &env,
        work,
    );
    check(&out, n, true);
    report("export --encoding utf-16 --delimiter semicolon", n, &run);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let n: u64 = args
        .iter()
        .position(|a| a == "--accounts")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("export-bench-{n}"));
    if !data.join("accounts.csv").exists() {
        generate(&data, n).expect("generate");
    }
    let work = tempfile::tempdir().expect("scratch folder");

    // The loaded SQLite store is kept: loading takes far longer than exporting.
    let db = data.join("store.db");
    let url = format!("sqlite://{}", db.display());
    if !data.join("store.loaded").exists() {
        for stale in ["store.db", "store.db-wal", "store.db-shm"] {
            let _ = std::fs::remove_file(data.join(stale));
        }
        load(&url, &data, n, work.path());
        std::fs::write(data.join("store.loaded"), b"").expect("mark the store loaded");
    }
    bench_store("SQLite", &url, n, work.path());

    if let Ok(base) = std::env::var("MDM_MAIL_BENCH_POSTGRES_URL") {
        let schema = "mdm_mail_export_bench";
        let psql = |sql: &str| {
            let status = Command::new("psql")
                .args([base.as_str(), "-q", "-c", sql])
                .status()
                .expect("psql");
            assert!(status.success(), "{sql}");
        };
        psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        psql(&format!("CREATE SCHEMA {schema}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        load(&url, &data, n, work.path());
        bench_store("PostgreSQL", &url, n, work.path());
        psql(&format!("DROP SCHEMA {schema} CASCADE"));
    }
}
