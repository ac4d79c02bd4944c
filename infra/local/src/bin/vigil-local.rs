//! `vigil-local up [--demo]` keeps the local stack running and prints its URLs (with `--demo`,
//! after loading the demo's data, so the web console has something to show); `vigil-local demo`
//! runs the narrated demo scenario and exits 0 only if every check passed.

use std::process::ExitCode;
use vigil_local::{LocalOptions, LocalStack, demo};

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    // The demo narrates on stdout; logs (stderr) stay quiet unless RUST_LOG asks for more.
    init_logs(if command == "demo" { "error" } else { "warn" });
    match command.as_str() {
        "up" => up().await,
        "demo" => run_demo().await,
        _ => {
            eprintln!("usage: vigil-local up [--demo] | demo");
            ExitCode::from(2)
        }
    }
}

async fn start(options: LocalOptions) -> Option<LocalStack> {
    match LocalStack::start(options).await {
        Ok(stack) => Some(stack),
        Err(error) => {
            eprintln!("could not start the local stack: {error}");
            None
        }
    }
}

async fn run_demo() -> ExitCode {
    let Some(stack) = start(LocalOptions { run_schedule: false, ..LocalOptions::interactive() }).await else { return ExitCode::FAILURE };
    let mut out = std::io::stdout();
    let result = demo::run(&stack, &mut out).await;
    stack.shutdown().await;
    match result {
        Ok(outcome) if outcome.passed() => {
            println!("\nDEMO PASSED: every audit record became exactly one alert hit, every alert exactly one ticket.");
            ExitCode::SUCCESS
        }
        Ok(_) => {
            println!("\nDEMO FAILED: see the checks above.");
            ExitCode::FAILURE
        }
        Err(error) => {
            println!("\nDEMO FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo's scenario on the running stack (its narration to a file), so the console has
/// tenants, alerts and tickets to show, and returns a token of a new owner of `demo-msp`.
async fn load_demo(stack: &LocalStack) -> Option<String> {
    println!("Loading the demo's data (narration in target/up-demo.log)…");
    let mut narration = Vec::new();
    let outcome = demo::run(stack, &mut narration).await;
    let _ = std::fs::create_dir_all("target").and_then(|()| std::fs::write("target/up-demo.log", &narration));
    match outcome {
        Ok(outcome) => {
            println!("Demo data loaded: {} of {} checks passed.", outcome.checks.iter().filter(|(_, ok)| *ok).count(), outcome.checks.len())
        }
        Err(error) => println!("The demo stopped early ({error}); what it made so far is there."),
    }
    match stack.create_msp("demo-msp", "Demo MSP").await {
        Ok(token) => Some(token.expose().to_owned()),
        Err(error) => {
            eprintln!("could not issue a token for demo-msp: {error}");
            None
        }
    }
}

async fn up() -> ExitCode {
    let mut options = LocalOptions::interactive();
    if let Some(port) = std::env::var("VIGIL_PORT").ok().and_then(|p| p.parse().ok()) {
        options.gateway_port = Some(port);
    }
    let Some(stack) = start(options).await else { return ExitCode::FAILURE };
    let token = match stack.create_msp("local-msp", "Local MSP").await {
        Ok(token) => token,
        Err(error) => {
            eprintln!("could not create the local MSP: {error}");
            return ExitCode::FAILURE;
        }
    };
    let demo = if std::env::args().any(|a| a == "--demo") { load_demo(&stack).await } else { None };
    let cw = stack.connectwise.credentials();
    println!("Vigil local stack is up (Ctrl-C to stop). Everything listens on 127.0.0.1.\n");
    println!("HTTP API (plays API Gateway)   {}", stack.api_url);
    println!("  config API                   {}/v1/...   (Authorization: Bearer <token>)", stack.api_url);
    println!("  webhook receiver             {}/webhooks/health", stack.api_url);
    println!("  MSP 'local-msp' API token    {}", token.expose());
    if let Some(demo_token) = &demo {
        println!("  MSP 'demo-msp' API token     {demo_token}   (the demo's tenants, alerts and tickets)");
    }
    println!("Web console                    {}/console   (sign in with a token above)", stack.api_url);
    println!("AWS emulator (moto)            {}", stack.aws_endpoint);
    for (logical, name) in &stack.provisioned.table_names {
        println!("  table {logical:<24} {name}");
    }
    for (logical, url) in &stack.provisioned.queue_urls {
        println!("  queue {logical:<24} {url}");
    }
    println!("Microsoft 365 simulator        {}", stack.m365.base_url());
    println!("  token endpoint               {}/{{tenant}}/oauth2/v2.0/token", stack.m365.login_base());
    println!("  Management Activity API      {}/api/v1.0/{{tenant}}/activity/feed/...", stack.m365.management_base());
    println!("  control: add a tenant        POST {}/_sim/tenants {{tenant_id, client_id, client_secret}}", stack.m365.base_url());
    println!(
        "  control: add audit records   POST {}/_sim/tenants/{{tenant}}/records {{content_type, records:[...]}}",
        stack.m365.base_url()
    );
    println!("  control: raw (bad) blob      POST {}/_sim/tenants/{{tenant}}/raw-blob {{content_type, body}}", stack.m365.base_url());
    println!("  control: consent on/off      POST {}/_sim/tenants/{{tenant}}/consent {{granted}}", stack.m365.base_url());
    println!("  control: inject failures     POST {}/_sim/fail {{operation, failure, times}}", stack.m365.base_url());
    println!("ConnectWise Manage simulator   {}", stack.connectwise.api_root());
    println!(
        "  API member keys              company {} public {} private {} clientId {}",
        cw.company_id, cw.public_key, cw.private_key, cw.client_id
    );
    println!("  control: list tickets        GET  {}/_sim/tickets", stack.connectwise.base_url());
    println!("  control: inject failures     POST {}/_sim/fail {{operation, mode, status, times}}", stack.connectwise.base_url());
    println!("  control: reset               POST {}/_sim/reset", stack.connectwise.base_url());
    println!("\nThe schedule polls every 5 s. See README.md for a walkthrough with curl.");
    let _ = tokio::signal::ctrl_c().await;
    println!("\nStopping…");
    stack.shutdown().await;
    ExitCode::SUCCESS
}
