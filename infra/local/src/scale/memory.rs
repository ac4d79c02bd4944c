//! Resident memory of the bench process (Linux `/proc/self/status`), and a way to measure what
//! one invocation adds: reset the peak (`/proc/self/clear_refs` ← `5`), run it, and read how far
//! the peak rose above the resident set before. The figure is the invocation's working set as
//! the allocator got it from the kernel (memory it reuses does not show), on top of what a Lambda
//! instance holds anyway (runtime, binary, clients).

/// `VmRSS` and `VmHWM` in bytes (current and peak resident set), if readable.
#[must_use]
pub fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok())
    };
    Some((field("VmRSS:")? * 1024, field("VmHWM:")? * 1024))
}

/// Resets the peak resident set to the current one; false where the kernel does not allow it.
#[must_use]
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// How far the peak resident set rose, in bytes, while `work` ran (`None` off Linux).
pub async fn peak_growth<F: std::future::Future>(work: F) -> (F::Output, Option<u64>) {
    let before = if reset_peak() { resident().map(|(rss, _)| rss) } else { None };
    let output = work.await;
    let growth = before.and_then(|rss| resident().map(|(_, peak)| peak.saturating_sub(rss)));
    (output, growth)
}
