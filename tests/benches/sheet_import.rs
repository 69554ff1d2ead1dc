//! Spreadsheet import time and memory, measured on the real binary.
//!
//! `cargo bench --bench sheet_import` writes a store of 1,000,000 users and the same
//! 1,000,000-line Email file three ways: CSV, an `.xlsx` whose text is in the shared-strings
//! table (as Excel saves one) and an `.xlsx` of inline strings (as `mdm-mail export --format
//! xlsx` writes one). It times `mdm-mail import --dry-run` and the committing import of each
//! and reports lines/s and the process's peak RSS: a sheet is read row by row, so memory
//! holds the shared strings (compactly) and a few chunks of lines, never the sheet.
//!
//! `cargo bench --bench sheet_import -- --lines 100000` runs a smaller set.

#[path = "measure.rs"]
mod measure;

use std::io::{BufWriter, Write};
use std::path::Path;

use measure::{Run, measure};
use std::time::Instant;

fn user_email(i: u64) -> String {
    format!("user{i}@acme.example")
}

/// One line's cells: user, display name, address, logins and passwords.
fn cells(i: u64) -> [String; 7] {
    [
        user_email(i),
        format!("User {i}"),
        format!("box{i}@mail.acme.example"),
        format!("login{i}"),
        format!("pw-{:08x}", i.wrapping_mul(2_654_435_761) & 0xffff_ffff),
        format!("login{i}"),
        String::new(),
    ]
}

const HEADER: [&str; 7] = [
    "user_email",
    "display_name",
    "email_address",
    "incoming_username",
    "incoming_password",
    "outgoing_username",
    "outgoing_password",
];

fn generate(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).expect("data folder");
    let mut users = BufWriter::new(std::fs::File::create(dir.join("users.csv")).unwrap());
    writeln!(users, "email,display_name").unwrap();
    for i in 0..n {
        writeln!(users, "{},User {i}", user_email(i)).unwrap();
    }
    users.flush().unwrap();
    let mut csv = BufWriter::new(std::fs::File::create(dir.join("accounts.csv")).unwrap());
    writeln!(csv, "{}", HEADER.join(",")).unwrap();
    for i in 0..n {
        writeln!(csv, "{}", cells(i).join(",")).unwrap();
    }
    csv.flush().unwrap();
    for (name, shared) in [
        ("accounts-shared.xlsx", true),
        ("accounts-inline.xlsx", false),
    ] {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = if shared {
            book.add_worksheet_with_low_memory().unwrap()
        } else {
            book.add_worksheet_with_constant_memory().unwrap()
        };
        for (c, h) in HEADER.iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for i in 0..n {
            for (c, cell) in cells(i).iter().enumerate() {
                if !cell.is_empty() {
                    sheet.write_string(i as u32 + 1, c as u16, cell).unwrap();
                }
            }
        }
        book.save(dir.join(name)).unwrap();
    }
}

fn report(label: &str, lines: u64, size: u64, run: &Run) {
    println!(
        "{label:<44} {:>6} MiB file {:>7.2} s {:>9.0} lines/s   peak RSS {:>5} MiB",
        size / (1024 * 1024),
        run.elapsed.as_secs_f64(),
        lines as f64 / run.elapsed.as_secs_f64(),
        run.peak_rss_kib / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let n: u64 = args
        .iter()
        .position(|a| a == "--lines")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sheet-import-bench-{n}"));
    if !data.join("accounts-inline.xlsx").exists() {
        let started = Instant::now();
        generate(&data, n);
        println!(
            "generated the {n}-line files in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let work = tempfile::tempdir().expect("scratch folder");
    let url = format!("sqlite://{}", work.path().join("bench.db").display());
    let env = [
        ("MDM_MAIL_DATABASE_URL", url.as_str()),
        (
            "MDM_MAIL_SECRET_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ];
    let path = |f: &str| data.join(f).display().to_string();
    let users = measure(&["users", "import", &path("users.csv")], &env, work.path());
    report("users import (setup)", n, 0, &users);
    for file in [
        "accounts.csv",
        "accounts-shared.xlsx",
        "accounts-inline.xlsx",
    ] {
        let size = std::fs::metadata(data.join(file)).map_or(0, |m| m.len());
        let dry = measure(
            &[
                "import",
                &path(file),
                "--type",
                "email",
                "--dry-run",
                "--json",
            ],
            &env,
            work.path(),
        );
        assert!(
            dry.stdout.contains(&format!("\"rows\":{n}")),
            "{}",
            dry.stdout
        );
        report(&format!("{file}: import --dry-run"), n, size, &dry);
    }
    // Committed once, from the workbook Excel would save; then every line is unchanged.
    for (file, outcome) in [
        ("accounts-shared.xlsx", "added"),
        ("accounts-inline.xlsx", "unchanged"),
    ] {
        let size = std::fs::metadata(data.join(file)).map_or(0, |m| m.len());
        let run = measure(
            &["import", &path(file), "--type", "email", "--json"],
            &env,
            work.path(),
        );
        assert!(
            run.stdout.contains(&format!("\"{outcome}\":{n}")),
            "{}",
            run.stdout
        );
        report(
            &format!("{file}: import, every line {outcome}"),
            n,
            size,
            &run,
        );
    }
}
