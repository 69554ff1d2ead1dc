//! Import throughput and memory, measured on the real binary beside a plain Python script.
//!
//! `cargo bench --bench import` generates a store of 1,000,000 users and a 1,000,000-line
//! Email file (shuffled against the users, mixed-case user emails, quoted display names with
//! commas, one line in 50 for a user the store does not have), then times `mdm-mail import`
//! from file to commit: into an empty account table (and again with the same lines in the
//! users' order, where the script does best), again with every line unchanged, again
//! with every password changed, and `--dry-run` against an empty and a full store (the
//! median of three runs), reporting lines/s and the process's peak RSS. Each commit runs beside
//! `tests/benches/reference_import.py` (Python's csv module, one query for a dict of users, one
//! `executemany` upsert in one transaction, passwords stored as given) on a store of its own
//! with the same users, and the line ends in how many times faster mdm-mail was. Then
//! `secrets rotate` moves the stored passwords to a new key, and the import runs as a user runs
//! it, with the push reconcile, on a store with no device and on one where one user in a
//! hundred has an iPhone. Set `MDM_MAIL_BENCH_POSTGRES_URL` to run the same against PostgreSQL
//! (a database the benchmark may fill; it drops and recreates its own schema).
//!
//! `cargo bench --bench import -- --lines 100000` runs a smaller set;
//! `cargo bench --bench import -- --generate DIR` only writes the files.

#[path = "measure.rs"]
mod measure;

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use measure::{Run, measure, measure_program};

/// Runs of each `--dry-run`, of which the median is reported.
const DRY_RUNS: usize = 3;

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

/// One line in this many names a user the store does not have (discarded).
const UNMATCHED_EVERY: u64 = 50;

/// Whether the line for user `i` names a user the store does not have.
fn unmatched(i: u64) -> bool {
    i % UNMATCHED_EVERY == UNMATCHED_EVERY - 1
}

/// Lines of an `n`-line file that match a stored user.
fn matched(n: u64) -> u64 {
    n - (0..n).filter(|&i| unmatched(i)).count() as u64
}

/// The lines of `accounts.csv` in the order of the users they are for: the script's upsert
/// then appends to its key's index rather than inserting all over it, its best case.
const IN_USERS_ORDER: &str = "accounts-in-users-order.csv";

/// One device in this many users has an iPhone enrolled, for the runs with devices.
const DEVICE_EVERY: u64 = 100;

fn generate(dir: &Path, n: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut users = BufWriter::new(std::fs::File::create(dir.join("users.csv"))?);
    writeln!(users, "email,display_name")?;
    for i in 0..n {
        writeln!(users, "{},{}", user_email(i), display_name(i))?;
    }
    users.flush()?;
    let mut devices = BufWriter::new(std::fs::File::create(dir.join("devices.csv"))?);
    writeln!(devices, "user_email,device_id,platform,enrollment_id")?;
    for i in (0..n).step_by(DEVICE_EVERY as usize) {
        writeln!(devices, "{},IPHONE-{i},ios,IPHONE-{i}", user_email(i))?;
    }
    devices.flush()?;
    let users_order = |k: u64, _: u64| k;
    for (name, round, order) in [
        ("accounts.csv", 0, shuffled as fn(u64, u64) -> u64),
        ("accounts-changed.csv", 1, shuffled),
        (IN_USERS_ORDER, 0, users_order),
    ] {
        let mut out = BufWriter::new(std::fs::File::create(dir.join(name))?);
        let mut line = String::new();
        for k in 0..n {
            let i = order(k, n);
            let email = if unmatched(i) {
                format!("former.user{i}@gone.example")
            } else {
                user_email(i)
            };
            let login = format!("{}{}", FIRST[(i % 16) as usize], i);
            line.clear();
            let _ = writeln!(
                line,
                "{},{},{},{login},{},{login},{}",
                as_written(&email, i),
                display_name(i),
                user_email(i),
                password(i, round),
                password(i + n, round)
            );
            out.write_all(line.as_bytes())?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Runs the reference script (tests/benches/reference_import.py) on its own database.
fn script(command: &str, db: &Path, file: &Path) -> Run {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/benches/reference_import.py"
    );
    let (db, file) = (db.display().to_string(), file.display().to_string());
    measure_program(
        "python3",
        &[script, command, &db, &file],
        &[],
        Path::new("."),
    )
}

fn report(label: &str, lines: u64, run: &Run) {
    let rate = lines as f64 / run.elapsed.as_secs_f64();
    println!(
        "{label:<48} {:>7.2} s {:>9.0} lines/s  peak RSS {:>4} MiB",
        run.elapsed.as_secs_f64(),
        rate,
        run.peak_rss_kib / 1024
    );
}

/// One line of the side-by-side table: mdm-mail, the script, and how many times faster
/// mdm-mail was.
fn compare(label: &str, lines: u64, ours: &Run, theirs: &Run) {
    println!(
        "{label:<48} {:>7.2} s {:>9.0} lines/s  peak RSS {:>4} MiB | script {:>6.2} s | {:>5.2}x",
        ours.elapsed.as_secs_f64(),
        lines as f64 / ours.elapsed.as_secs_f64(),
        ours.peak_rss_kib / 1024,
        theirs.elapsed.as_secs_f64(),
        theirs.elapsed.as_secs_f64() / ours.elapsed.as_secs_f64(),
    );
}

/// Asserts that an `import --json` answer counts `count` lines as `outcome`.
fn expect(run: &Run, outcome: &str, count: u64) {
    assert!(
        run.stdout.contains(&format!("\"{outcome}\":{count}")),
        "expected {count} {outcome}: {}",
        run.stdout
    );
}

/// The files of a SQLite database (the main file and its WAL), copied from `from` to `to`
/// and flushed to disk, so that the next timed run does not share the disk with the copy's
/// write-back.
fn copy_database(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let source = PathBuf::from(format!("{}{suffix}", from.display()));
        let target = PathBuf::from(format!("{}{suffix}", to.display()));
        let _ = std::fs::remove_file(&target);
        if source.exists() {
            std::fs::copy(&source, &target).expect("copy the database");
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .expect("flush the copy");
        }
    }
}

const KEY: (&str, &str) = (
    "MDM_MAIL_SECRET_KEY",
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
);

/// The import runs on one store: dry runs, then the commit of every line new, unchanged
/// and changed, each as `import --no-push` and, on SQLite, beside the reference script.
fn bench_store(name: &str, url: &str, data: &Path, n: u64, reference: Option<&Path>) {
    let work = tempfile::tempdir().expect("scratch folder");
    let env = [("MDM_MAIL_DATABASE_URL", url), KEY];
    let file = |f: &str| data.join(f);
    let path = |f: &str| file(f).display().to_string();
    let hits = matched(n);
    println!(
        "-- {name}: {n} users, {n}-line Email file, {} lines match no user",
        n - hits
    );
    let users = measure(&["users", "import", &path("users.csv")], &env, work.path());
    report("users import (setup)", n, &users);
    if let Some(db) = reference {
        script("users", db, &file("users.csv"));
    }
    let seeded = |db: &Path| PathBuf::from(format!("{}.seed", db.display()));
    let ours = sqlite_file(url);
    if let Some(ours) = &ours {
        copy_database(ours, &seeded(ours));
    }
    if let Some(db) = reference {
        copy_database(db, &seeded(db));
    }
    // Both SQLite stores as they were with only their users, for a commit of every line new.
    let reseed = |ours: &Path, db: &Path| {
        copy_database(&seeded(ours), ours);
        copy_database(&seeded(db), db);
    };
    let import = |file: &str, extra: &[&str]| {
        let accounts = path(file);
        let mut args = vec!["import", accounts.as_str(), "--type", "email", "--json"];
        args.extend_from_slice(extra);
        measure(&args, &env, work.path())
    };
    let side_by_side = |label: &str, file: &str, extra: &[&str], outcome: &str| {
        let ours = import(file, extra);
        expect(&ours, outcome, hits);
        match reference {
            Some(db) => compare(label, n, &ours, &script("import", db, &data.join(file))),
            None => report(label, n, &ours),
        }
    };

    // A preview writes nothing, so it is run several times and its median reported: a
    // second or two, it is the figure a busy machine moves most.
    let dry_run = |label: &str, outcome: &str| {
        let mut runs: Vec<Run> = (0..DRY_RUNS)
            .map(|_| import("accounts.csv", &["--dry-run"]))
            .collect();
        runs.iter().for_each(|run| expect(run, outcome, hits));
        runs.sort_by_key(|run| run.elapsed);
        report(label, n, &runs[DRY_RUNS / 2]);
    };
    dry_run("import --dry-run, no account stored", "added");
    side_by_side(
        "import --no-push, every line added",
        "accounts.csv",
        &["--no-push"],
        "added",
    );
    if let (Some(ours), Some(db)) = (&ours, reference) {
        reseed(ours, db);
        side_by_side(
            "  the same lines in the users' order",
            IN_USERS_ORDER,
            &["--no-push"],
            "added",
        );
    }
    dry_run("import --dry-run, every line stored", "unchanged");
    side_by_side(
        "import --no-push, every line unchanged",
        "accounts.csv",
        &["--no-push"],
        "unchanged",
    );
    side_by_side(
        "import --no-push, every password changed",
        "accounts-changed.csv",
        &["--no-push"],
        "updated",
    );

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
            .contains(&format!("\"passwords\": {}", 2 * hits)),
        "{}",
        rotated.stdout
    );
    report("secrets rotate (2 passwords per line)", n, &rotated);

    // As a user runs it: the push reconcile follows the commit.
    let (Some(ours), Some(db)) = (ours, reference) else {
        return;
    };
    reseed(&ours, db);
    side_by_side("import, no device enrolled", "accounts.csv", &[], "added");
    reseed(&ours, db);
    let devices = measure(
        &["devices", "import", &path("devices.csv")],
        &env,
        work.path(),
    );
    let enrolled = n.div_ceil(DEVICE_EVERY);
    report("devices import (setup)", enrolled, &devices);
    let label = format!("import, {enrolled} devices get their profile");
    side_by_side(&label, "accounts.csv", &[], "added");
    let label = format!("import again, {enrolled} devices unchanged");
    side_by_side(&label, "accounts.csv", &[], "unchanged");
}

/// The database file a `sqlite://` URL names.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://").map(PathBuf::from)
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
        println!(
            "wrote users.csv, devices.csv, accounts.csv, accounts-changed.csv and {IN_USERS_ORDER} ({n} lines) to {dir}"
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("import-bench-{n}-v2"));
    if !data.join(IN_USERS_ORDER).exists() {
        let started = Instant::now();
        generate(&data, n).expect("generate");
        println!(
            "generated {n}-line files in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let sqlite = tempfile::tempdir().expect("scratch folder");
    let url = format!("sqlite://{}", sqlite.path().join("bench.db").display());
    let reference = sqlite.path().join("reference.db");
    bench_store("SQLite", &url, &data, n, Some(&reference));
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
        bench_store("PostgreSQL", &url, &data, n, None);
        psql(&format!("DROP SCHEMA {schema} CASCADE"));
    }
}
