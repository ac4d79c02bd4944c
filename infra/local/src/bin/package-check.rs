//! package-check: runs the Lambda bundles `sam build` made, each under user-mode emulation
//! behind a local Runtime API, against moto and the simulators (see
//! [`vigil_local::package_check`]). `infra/scripts/package-check.sh` (`make package-check`) builds
//! the bundles and runs it.
//!
//! ```text
//! package-check [--build-dir .aws-sam/build] [--template template.yaml]
//!               [--runner "qemu-aarch64-static"] [--grace-seconds 60] [--logs DIR]
//! ```
//!
//! Needs `AWS_ENDPOINT_URL` (a moto server: `infra/scripts/with-moto.sh package-check …`).
//! `--runner ""` runs the bootstraps directly (host-architecture builds, for working on the
//! check itself). Exit code 1 when any step fails; the failing function's output tail is printed
//! and every function's full output is kept under `--logs`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vigil_local::package_check::{CheckOptions, run};

fn parse() -> Result<CheckOptions, String> {
    let root = vigil_local::repo_root();
    let mut options = CheckOptions {
        aws_endpoint: std::env::var("AWS_ENDPOINT_URL")
            .map_err(|_| "set AWS_ENDPOINT_URL to a moto server (infra/scripts/with-moto.sh)")?,
        build_dir: root.join(".aws-sam/build"),
        template: root.join("template.yaml"),
        runner: vec!["qemu-aarch64-static".to_owned()],
        grace: Duration::from_secs(60),
        logs: std::env::temp_dir().join(format!("vigil-package-check-{}", std::process::id())),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--build-dir" => options.build_dir = PathBuf::from(value()?),
            "--template" => options.template = PathBuf::from(value()?),
            "--runner" => options.runner = value()?.split_whitespace().map(str::to_owned).collect(),
            "--grace-seconds" => options.grace = Duration::from_secs(value()?.parse().map_err(|e| format!("--grace-seconds: {e}"))?),
            "--logs" => options.logs = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other:?} (see the doc comment of infra/local/src/bin/package-check.rs)")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("package-check: {message}");
            return ExitCode::from(2);
        }
    };
    println!(
        "package-check: bundles in {} under {}, AWS on {}, function output in {}",
        options.build_dir.display(),
        if options.runner.is_empty() { "no emulator".to_owned() } else { options.runner.join(" ") },
        options.aws_endpoint,
        options.logs.display()
    );
    let started = std::time::Instant::now();
    match run(&options).await {
        Ok(report) => {
            println!("\n| function | init ms | events | slowest event ms |\n|---|---|---|---|");
            for (name, init, invocations, slowest) in &report.functions {
                let init = init.map_or_else(|| "-".to_owned(), |d| format!("{:.0}", d.as_secs_f64() * 1000.0));
                println!("| {name} | {init} | {invocations} | {:.0} |", slowest.as_secs_f64() * 1000.0);
            }
            println!("\npackage-check: {} steps passed in {:.1} s", report.steps.len(), started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\npackage-check: FAILED after {:.1} s: {error}", started.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
    }
}
