//! Import throughput and memory, measured on the real binary.
//!
//! `cargo bench --bench import` generates a store of 1,000,000 users and a 1,000,000-line
//! Email file (shuffled, mixed-case user emails, quoted display names with commas), then times
//! `mdm-mail import` from file to commit — into an empty account table, again with every line
//! unchanged, again with every password changed — and `--dry-run`, reporting lines/s and the
//! process's peak RSS; then `secrets rotate` moves the 2,000,000 stored passwords to a new
//! key. Set `MDM_MAIL_BENCH_POSTGRES_URL` to run the same against PostgreSQL (a database the
//! benchmark may fill; it drops and recreates its own schema).
//!
//! `cargo bench --bench import -- --lines 100000` runs a smaller set;
//! `cargo bench --bench import -- --generate DIR` only writes the files.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIRST: [&str; 16] = [
    "jennifer", "james", "maria", "mikko", "aino", "lars", "sofia", "ahmed", "chen", "olga",
    "pierre", "zoë", "juan", "anna", "kofi", "yuki",
];
const LAST: [&str; 12] = [
    "lopez", "smith", "virtanen", "müller", "dubois", "kowalski", "tanaka", "okafor", "rossi",
    "nielsen", "garcia", "brown",
];

fn user_email(i: u64) -> String {
    let first = FIRST[(i % 16) as usize];
    let last = LAST[(i / 16 % 12) as usize];
    format!("{first}.{last}{i}@acme.example")
}

/// Shows user emails in the case a spreadsheet might: one in four capitalised.
fn as_written(email: &str, i: u64) -> String {
    if i.is_multiple_of(4) {
        let mut out = String::with_capacity(email.len());
        let mut upper = true;
        for c in email.chars() {
            out.extend(if upper {
                c.to_uppercase().collect::<Vec<_>>()
            } else {
                vec![c]
            });
            upper = c == '.';
        }
        out
    } else {
        email.to_owned()
    }
}

fn display_name(i: u64) -> String {
    let first = FIRST[(i % 16) as usize];
    let last = LAST[(i / 16 % 12) as usize];
    if i.is_multiple_of(10) {
        format!("\"{last}, {first}\"")
    } else {
        format!("{first} {last}")
    }
}

/// A fixed permutation of 0..n, so account lines arrive in a different order than users.
fn shuffled(i: u64, n: u64) -> u64 {
    const STEP: u64 = 2_654_435_761;
    let mut step = STEP % n.max(1);
    while gcd(step, n) != 1 {
        step += 1;
    }
    (i * step + 12_345) % n
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn password(i: u64, round: u64) -> String {
    let mut out = String::new();
    let mut x = i
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(round + 1);
    for _ in 0..12 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.push(char::from(
            b"abcdefghijkmnpqrstuvwxyz23456789"[(x >> 59) as usize],
        ));
    }
    out
}

fn generate(dir: &Path, n: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut users = BufWriter::new(std::fs::File::create(dir.join("users.csv"))?);
    writeln!(users, "email,display_name")?;
    for i in 0..n {
        writeln!(users, "{},{}", user_email(i), display_name(i))?;
    }
    users.flush()?;
    for (name, round) in [("accounts.csv", 0), ("accounts-changed.csv", 1)] {
        let mut out = BufWriter::new(std::fs::File::create(dir.join(name))?);
        let mut line = String::new();
        for k in 0..n {
            let i = shuffled(k, n);
            let email = user_email(i);
            let login = format!("{}{}", FIRST[(i % 16) as usize], i);
            line.clear();
            let _ = writeln!(
                line,
                "{},{},{},{login},{},{login},{}",
                as_written(&email, i),
                display_name(i),
                email,
                password(i, round),
                password(i + n, round)
            );
            out.write_all(line.as_bytes())?;
        }
        out.flush()?;
    }
    Ok(())
}

struct Run {
    elapsed: Duration,
    peak_rss_kib: u64,
    stdout: String,
}

/// Runs the binary, sampling its peak resident set from /proc while it runs.
fn measure(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdm-mail"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mdm-mail");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success() || output.status.code() == Some(3),
        "mdm-mail {args:?} failed: {:?}",
        output.status
    );
    Run {
        elapsed: started.elapsed(),
        peak_rss_kib: peak,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

fn report(label: &str, lines: u64, run: &Run) {
    let rate = lines as f64 / run.elapsed.as_secs_f64();
    println!(
        "{label:<42} {:>8.2} s {:>10.0} lines/s   peak RSS {:>5} MiB",
        run.elapsed.as_secs_f64(),
        rate,
        run.peak_rss_kib / 1024
    );
}

fn bench_store(name: &str, url: &str, data: &Path, n: u64) {
    let work = tempfile::tempdir().expect("scratch folder");
    let key = "MDM_MAIL_SECRET_KEY";
    let key_value = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = [("MDM_MAIL_DATABASE_URL", url), (key, key_value)];
    let path = |f: &str| data.join(f).display().to_string();
    println!("-- {name}: {n} users, {n}-line Email file");
    let users = measure(&["users", "import", &path("users.csv")], &env, work.path());
    report("users import (setup)", n, &users);
    let accounts = path("accounts.csv");
    let changed = path("accounts-changed.csv");
    let dry = measure(
        &[
            "import",
            &accounts,
            "--type",
            "email",
            "--dry-run",
            "--json",
        ],
        &env,
        work.path(),
    );
    report("import --dry-run (all new)", n, &dry);
    let new = measure(
        &["import", &accounts, "--type", "email", "--json"],
        &env,
        work.path(),
    );
    assert!(
        new.stdout.contains(&format!("\"added\":{n}")),
        "{}",
        new.stdout
    );
    report("import, every line added", n, &new);
    let same = measure(
        &["import", &accounts, "--type", "email", "--json"],
        &env,
        work.path(),
    );
    assert!(
        same.stdout.contains(&format!("\"unchanged\":{n}")),
        "{}",
        same.stdout
    );
    report("import again, every line unchanged", n, &same);
    let updated = measure(
        &["import", &changed, "--type", "email", "--json"],
        &env,
        work.path(),
    );
    assert!(
        updated.stdout.contains(&format!("\"updated\":{n}")),
        "{}",
        updated.stdout
    );
    report("import, every password changed", n, &updated);
    let dry = measure(
        &[
            "import",
            &accounts,
            "--type",
            "email",
            "--dry-run",
            "--json",
        ],
        &env,
        work.path(),
    );
    report("import --dry-run (all would update)", n, &dry);
    let new_key = [
        env[0],
        env[1],
        (
            "MDM_MAIL_NEW_SECRET_KEY",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        ),
    ];
    let rotated = measure(&["secrets", "rotate", "--json"], &new_key, work.path());
    assert!(
        rotated
            .stdout
            .contains(&format!("\"passwords\": {}", 2 * n)),
        "{}",
        rotated.stdout
    );
    report("secrets rotate (2 passwords per line)", n, &rotated);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: u64 = value("--lines")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if let Some(dir) = value("--generate") {
        generate(Path::new(&dir), n).expect("generate");
        println!("wrote users.csv, accounts.csv and accounts-changed.csv ({n} lines) to {dir}");
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("import-bench-{n}"));
    if !data.join("accounts-changed.csv").exists() {
        let started = Instant::now();
        generate(&data, n).expect("generate");
        println!(
            "generated {n}-line files in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let sqlite = tempfile::tempdir().expect("scratch folder");
    let url = format!("sqlite://{}", sqlite.path().join("bench.db").display());
    bench_store("SQLite", &url, &data, n);
    if let Ok(base) = std::env::var("MDM_MAIL_BENCH_POSTGRES_URL") {
        let schema = "mdm_mail_bench";
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
        bench_store("PostgreSQL", &url, &data, n);
        psql(&format!("DROP SCHEMA {schema} CASCADE"));
    }
}
