//! Peak memory of the real `mdm-mail serve` while it previews and then imports uploads of
//! the worst content for their size, measured from /proc (`VmHWM`, reset before each request
//! through `clear_refs`). Two kinds of body, each at 16 and 64 MiB (the default upload
//! limit): every line rejected (a one-cell line, `x`, repeated: the most lines, and so the
//! most outcomes, a body can hold) and every line valid (an Email line for a stored user).
//! Memory must stay flat as the body grows: only the body itself, a page of outcomes and the
//! import's batches are held.
//!
//! `cargo bench --bench serve_memory` (SQLite, in a scratch folder; a few minutes).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const MIB: usize = 1024 * 1024;

fn mdm_mail(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mdm-mail"));
    command
        .current_dir(dir)
        .env("MDM_MAIL_SECRET_KEY", KEY)
        .env("MDM_MAIL_DATABASE_URL", "sqlite://bench.db")
        .env(
            "MDM_MAIL_PROFILES",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles"),
        );
    command
}

fn line(i: usize) -> String {
    format!(
        "user{i}@bench.example,User {i},user{i}@mail.bench.example,user{i},pw-{i},user{i},out-{i}\n"
    )
}

/// Valid Email lines for users 0.., up to `size` bytes, and how many.
fn valid_body(size: usize) -> (Vec<u8>, usize) {
    let mut body = Vec::with_capacity(size);
    let mut i = 0;
    loop {
        let next = line(i);
        if body.len() + next.len() > size {
            return (body, i);
        }
        body.extend_from_slice(next.as_bytes());
        i += 1;
    }
}

fn rejected_body(size: usize) -> Vec<u8> {
    b"x\n".repeat(size / 2)
}

fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the process's peak resident set to its current one.
fn reset_peak(pid: u32) {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/clear_refs"))
    {
        let _ = file.write_all(b"5");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("scratch folder");
    let (largest, users) = valid_body(64 * MIB - 1024);
    drop(largest);
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("users.csv")).unwrap());
    writeln!(file, "email,display_name").unwrap();
    for i in 0..users {
        writeln!(file, "user{i}@bench.example,User {i}").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let loaded = mdm_mail(dir.path())
        .args(["users", "import", "users.csv"])
        .output()
        .expect("users import");
    assert!(loaded.status.success(), "{loaded:?}");
    let token = mdm_mail(dir.path())
        .args(["token", "create", "bench"])
        .output()
        .expect("token create");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let mut server: Child = mdm_mail(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let base = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("mdm-mail listening on ").map(str::to_owned))
        .expect("the server's address");
    let pid = server.id();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    println!("serve, {users} users stored; peak RSS per request (reset before each)");
    println!(
        "{:<44} {:>8} {:>10} {:>10}",
        "request", "body MiB", "seconds", "peak MiB"
    );
    let mut worst = 0;
    for (kind, make) in [
        (
            "every line rejected",
            &(|size| rejected_body(size)) as &dyn Fn(usize) -> Vec<u8>,
        ),
        ("every line valid", &|size| valid_body(size).0),
    ] {
        for mib in [16, 64] {
            let body = make(mib * MIB - 1024);
            for (what, path) in [
                (
                    "preview",
                    "/api/imports/preview?type=email&results_limit=50",
                ),
                ("import", "/api/imports?type=email"),
            ] {
                reset_peak(pid);
                let started = Instant::now();
                let status = runtime.block_on(async {
                    let response = client
                        .post(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .body(body.clone())
                        .timeout(Duration::from_secs(1800))
                        .send()
                        .await
                        .expect("request");
                    let status = response.status();
                    let _ = response.bytes().await;
                    status
                });
                assert!(status.is_success(), "{what} {kind} {mib} MiB: {status}");
                let peak = peak_kib(pid) / 1024;
                worst = worst.max(peak);
                println!(
                    "{:<44} {mib:>8} {:>10.1} {peak:>10}",
                    format!("{what}, {kind}"),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    println!("highest peak: {worst} MiB");
    let _ = server.kill();
    let _ = server.wait();
}
