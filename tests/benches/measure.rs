//! Running a program and measuring it as the benchmarks report it: wall time and peak
//! resident set, sampled from /proc while it runs. Shared by the benchmarks that run the real
//! binary (`#[path = "measure.rs"] mod measure;`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run took.
pub struct Run {
    /// Wall time, start to exit.
    pub elapsed: Duration,
    /// The most memory the process held at once.
    pub peak_rss_kib: u64,
    /// What it printed.
    pub stdout: String,
}

/// Runs `program` with `args` and `env` in `cwd`, sampling its peak resident set (`VmHWM`)
/// while it runs; a failure (other than exit status 3, some lines not applied) panics.
pub fn measure_program(program: &str, args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Run {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the program");
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
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success() || output.status.code() == Some(3),
        "{program} {args:?} failed: {:?}",
        output.status
    );
    Run {
        elapsed: started.elapsed(),
        peak_rss_kib: peak,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// Runs the mdm-mail binary the benchmark was built with.
pub fn measure(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Run {
    measure_program(env!("CARGO_BIN_EXE_mdm-mail"), args, env, cwd)
}
