//! `make demo`'s scenario, run as a test so CI proves the README's first command still works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vigil_local::demo;
use vigil_tests::start_stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_demo_passes_every_check() {
    let stack = start_stack().await;
    let mut narration = Vec::new();
    let outcome = demo::run(&stack, &mut narration).await.unwrap();
    let text = String::from_utf8(narration).unwrap();
    assert!(outcome.passed(), "{text}");
    assert!(text.contains("\n25. Self-monitoring: Microsoft disables Vigil's webhook"), "the self-monitoring step ran: {text}");
    assert!(text.contains("\n26. Fabrikam leaves the MSP"), "the offboarding step ran: {text}");
    assert!(text.contains("\n27. The console's alert page"), "step 27 ran: {text}");
    assert!(text.contains("\n28. Contoso's alert queue reads Contoso's own change index"), "the last step ran: {text}");
    assert!(text.contains("(halopsa): ticket #") && text.contains("/tickets?id="), "step 27 showed a HaloPSA ticket's link: {text}");
    stack.shutdown().await;
}
