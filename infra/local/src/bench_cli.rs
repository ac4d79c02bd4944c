//! What the bench binaries share at the command line: logs to stderr at a default level
//! (`RUST_LOG` overrides), arguments parsed (a usage line and exit code 2 when they are wrong),
//! and the run's outcome as an exit code with a one-line verdict.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// The lines a bench prints when it ends.
pub struct Verdicts {
    pub passed: &'static str,
    pub failed: &'static str,
}

/// Runs a bench binary named `name`: `parse` reads the arguments (an error message, or an
/// empty one for `--help`), `bench` runs with them and says whether every check passed.
pub async fn run<A, E: Display, F: Future<Output = Result<bool, E>>>(
    name: &str,
    usage: &str,
    default_log: &str,
    parse: impl FnOnce(&[String]) -> Result<A, String>,
    bench: impl FnOnce(A) -> F,
    verdicts: Verdicts,
) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&raw) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{name}: {message}");
            }
            eprintln!("usage: {usage}");
            return ExitCode::from(2);
        }
    };
    match bench(args).await {
        Ok(true) => {
            println!("BENCH PASSED: {}", verdicts.passed);
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("BENCH FAILED: {}", verdicts.failed);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The machine a bench ran on: CPUs, architecture, CPU model.
#[must_use]
pub fn machine() -> String {
    let command = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let cpus = command("nproc", &[]).unwrap_or_else(|| std::thread::available_parallelism().map_or(0, usize::from).to_string());
    let arch = command("uname", &["-m"]).unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("nproc {cpus}, uname -m {arch}, {model}")
}
