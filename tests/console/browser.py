"""What the console's browser tests share: progress lines, axe-core runs, signing in, navigating.

Imported by `console_test.py` and `onboarding_test.py` (Python puts a script's own folder first
on its path, so the sibling import needs no installation).
"""

from playwright.sync_api import Page, expect

TIMEOUT_MS = 30_000
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def step(text: str) -> None:
    print(f"- {text}", flush=True)


def axe_serious(page: Page, name: str) -> list[str]:
    """Runs axe-core (WCAG 2.1 A/AA rules) on the page as it is now, prints every violation,
    and returns the ids of the serious or critical ones."""
    violations = page.evaluate(
        """async (tags) => (await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }))
            .violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }))""",
        AXE_TAGS,
    )
    for v in violations:
        print(f"    axe {name}: {v['impact']} {v['id']}: {v['help']} {v['nodes']}", flush=True)
    return [v["id"] for v in violations if v["impact"] in ("serious", "critical")]


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1, name=text)).to_be_visible()


def go(page: Page, nav: str) -> None:
    """Follows the main navigation's link and waits for that page's heading."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=nav, exact=True).click()
    heading(page, nav)


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(f"{base}/console")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_be_visible()
