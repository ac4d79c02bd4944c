"""The web console in headless Chromium (Debian's, driven by Playwright's Python package).

Run by `tests/tests/console.rs`, which starts the local stack, seeds it and passes one JSON
argument: base URL, owner and analyst tokens, the ConnectWise simulator's keys, the alerts to
act on, axe-core's path and the screenshot folder. Exits non-zero on the first failed check;
prints "CONSOLE BROWSER TEST PASSED" at the end.

Every page is checked with axe-core (WCAG 2.1 A/AA rules): a serious or critical violation
fails the run. Any console error or uncaught exception in the page fails it too (a CSP
violation by the console's own code shows up there).
"""

import json
import re
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from browser import TIMEOUT_MS, axe_serious, go, heading, step
from browser import sign_in as sign_in_at

ARGS = json.loads(sys.argv[1])
BASE = ARGS["base"].rstrip("/")
SHOTS = Path(ARGS["screenshots"])

problems: list[str] = []


def watch(page: Page) -> None:
    """Fails the run on any error the page logs or throws."""
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" and not expected_error(m.text) else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))


# Refusals a step provokes on purpose (a form saved with a refused value), by status.
provoked: dict[int, int] = {}


def expected_error(text: str) -> bool:
    # The browser logs the API's deliberate refusals (the analyst opening another category's
    # alert gets a 404; a value the API refuses, 422, where a step provokes one) as failed
    # resource loads; those are answers, not faults.
    if "the server responded with a status of 404" in text:
        return True
    if "the server responded with a status of 422" in text and provoked.get(422, 0) > 0:
        provoked[422] -= 1
        return True
    return False


def axe(page: Page, name: str) -> None:
    """Runs axe-core on the page as it is now; a serious or critical violation fails the run."""
    bad = axe_serious(page, name)
    if bad:
        problems.append(f"axe on {name}: {len(bad)} serious/critical violation(s): {bad}")
        raise SystemExit(fail_report())


def shot(page: Page, name: str, full: bool = True) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def check(page: Page, name: str, full: bool = True) -> None:
    axe(page, name)
    shot(page, name, full)
    if problems:
        raise SystemExit(fail_report())


def fail_report() -> str:
    return "CONSOLE BROWSER TEST FAILED:\n" + "\n".join(problems)


def sign_in(page: Page, token: str) -> None:
    sign_in_at(page, BASE, token)


def csp_blocks_injected_scripts(page: Page) -> None:
    """An inline script added to the page does not run: the CSP holds in the browser."""
    try:
        page.add_script_tag(content="window.__inlineRan = true;")
    except Exception:  # noqa: BLE001 - Playwright may report the blocked tag as an error
        pass
    if page.evaluate("() => window.__inlineRan === true"):
        problems.append("an inline script ran: the Content-Security-Policy did not hold")
    # The refusal is logged as a console error by design; forget it.
    problems[:] = [p for p in problems if "Content Security Policy" not in p]


def owner_flow(page: Page) -> None:
    step("sign-in page")
    page.goto(f"{BASE}/console")
    expect(page.get_by_label("API token")).to_be_visible()
    check(page, "01-sign-in", full=False)
    csp_blocks_injected_scripts(page)

    step("sign in as the owner: the overview")
    sign_in(page, ARGS["owner_token"])
    heading(page, "Overview")
    expect(page.get_by_role("img", name=re.compile("Alerts per day"))).to_be_visible()
    expect(page.get_by_role("table", name="Tenant health")).to_contain_text("Contoso Ltd")
    expect(page.get_by_text("Coverage of the last 24 h across every tenant")).to_be_visible()
    check(page, "02-overview")

    step("the alert queue, filtered by category")
    go(page, "Alerts")
    queue = page.get_by_role("table", name="Alerts")
    expect(queue.locator(f'a[href="#/alerts/{ARGS["triage_alert"]}"]')).to_be_visible()
    check(page, "03-alerts")
    page.get_by_label("Category").select_option("Permissions")
    expect(page).to_have_url(re.compile("category=Permissions"))
    expect(queue.locator('tbody tr:not([data-category="Permissions"])')).to_have_count(0)
    expect(queue.locator('tbody tr[data-category="Permissions"]').first).to_be_visible()
    page.get_by_role("link", name="Clear").click()

    step("an alert: triage it and see the history change")
    page.locator(f'a[href="#/alerts/{ARGS["triage_alert"]}"]').click()
    history = page.get_by_role("list", name="Triage history")
    expect(page.get_by_role("heading", level=2, name="Activity")).to_be_visible()
    triage = page.get_by_role("form", name="Triage")
    triage.get_by_label("Status").select_option("InProgress")
    triage.get_by_label("Assignee").fill("jsmith")
    triage.get_by_label("Classification").select_option("TruePositive")
    triage.get_by_label("Comment").fill("Checked with the user: not theirs.")
    triage.get_by_role("button", name="Save triage").click()
    expect(history).to_contain_text("set status from New to InProgress")
    expect(history).to_contain_text("to jsmith")
    expect(page.get_by_role("list", name="Comments")).to_contain_text("Checked with the user: not theirs.")
    tickets = page.get_by_role("region", name="Tickets")
    expect(tickets).to_contain_text("ticket #")
    # Each PSA ticket links to its page in the PSA (built by the adapter), in a new tab.
    link = tickets.get_by_role("link", name=re.compile(r"^ticket #\d+")).first
    expect(link).to_have_attribute("href", re.compile(r"/services/system_io/router/openrecord\.rails\?.*recordType=ServiceFv&recid=\d+$"))
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    check(page, "04-alert")

    step("suppress alerts like this one (pre-filled)")
    page.get_by_role("button", name="Suppress like this…").click()
    dialog = page.get_by_role("dialog", name="Suppress alerts like this")
    expect(dialog.get_by_label("Reason")).to_have_value(re.compile("^Like alert"))
    dialog.get_by_label("Scope").select_option("tenant")
    axe(page, "suppress dialog")
    dialog.get_by_role("button", name="Create suppression").click()
    expect(dialog.get_by_role("status")).to_contain_text("created")
    dialog.get_by_role("button", name="Close").click()

    step("create a destination and test it against the ConnectWise simulator")
    go(page, "Destinations")
    page.get_by_role("button", name="New destination").click()
    dialog = page.get_by_role("dialog", name="New destination")
    cw = ARGS["connectwise"]
    dialog.get_by_label("Id (lowercase letters, digits, -)").fill("cw-console")
    dialog.get_by_label(re.compile("^Name")).fill("Console CW")
    dialog.get_by_label("API root").fill(cw["api_root"])
    dialog.get_by_label("Company id").fill(cw["company_id"])
    dialog.get_by_label("Public key").fill(cw["public_key"])
    dialog.get_by_label("Private key").fill(cw["private_key"])
    dialog.get_by_label("Client id").fill(cw["client_id"])
    dialog.get_by_label("Board id", exact=True).fill("7")
    dialog.get_by_role("textbox", name="High", exact=True).fill("1")
    axe(page, "destination dialog")
    dialog.get_by_role("button", name="Save").click()
    card = page.get_by_role("region", name="Console CW")
    expect(card).to_contain_text("credentials stored")
    card.get_by_role("button", name="Test").click()
    expect(card.get_by_role("status")).to_contain_text("Test passed")

    step("an Autotask destination through its own form: the API's refusal on its field, then a passing test")
    at = ARGS["autotask"]
    page.get_by_role("button", name="New destination").click()
    dialog = page.get_by_role("dialog", name="New destination")
    dialog.get_by_label("Kind").select_option("autotask")
    # (An id after the ConnectWise ones: the tenant page's link dialog starts on the first.)
    dialog.get_by_label("Id (lowercase letters, digits, -)").fill("sec-autotask")
    dialog.get_by_label(re.compile("^Name")).fill("Console Autotask")
    zone = dialog.get_by_label(re.compile("^Zone URL"))
    zone.fill("https://10.20.30.40/atservicesrest/")
    dialog.get_by_label("API user name").fill(at["username"])
    secret = dialog.get_by_label(re.compile("^Secret"))
    expect(secret).to_have_attribute("type", "password")
    secret.fill(at["secret"])
    dialog.get_by_label(re.compile("^Integration code")).fill(at["integration_code"])
    dialog.get_by_label("Queue id", exact=True).fill(at["queue"])
    dialog.get_by_role("textbox", name="High", exact=True).fill("1")
    dialog.get_by_role("checkbox", name="Threat Management").check()
    provoked[422] = 1
    dialog.get_by_role("button", name="Save").click()
    # The refused field is marked, says why, and has the focus (the dialog scrolls to it).
    expect(zone).to_have_attribute("aria-invalid", "true")
    expect(zone).to_be_focused()
    expect(dialog.locator("#settings-zone_url-error")).to_contain_text("not a public address")
    axe(page, "destination dialog with a refused field")
    shot(page, "05-destination-form", full=False)
    zone.fill(at["zone_url"])
    dialog.get_by_role("button", name="Save").click()
    card = page.get_by_role("region", name="Console Autotask")
    expect(card).to_contain_text("credentials stored")
    expect(card).to_contain_text("Threat Management")
    card.get_by_role("button", name="Test").click()
    expect(card.get_by_role("status")).to_contain_text("Test passed")

    step("editing it: settings prefilled, secrets never")
    card.get_by_role("button", name="Edit…").click()
    dialog = page.get_by_role("dialog", name="Edit Console Autotask")
    expect(dialog.get_by_label(re.compile("^Zone URL"))).to_have_value(at["zone_url"])
    expect(dialog.get_by_label(re.compile("^Secret"))).to_have_value("")
    expect(dialog.get_by_label(re.compile("^Integration code"))).to_have_value("")
    dialog.get_by_role("button", name="Cancel").click()
    check(page, "06-destinations")

    step("map a tenant to a PSA company by search as you type")
    go(page, "Tenants")
    page.get_by_role("button", name="Link Fabrikam to a company").click()
    dialog = page.get_by_role("dialog", name="Link Fabrikam")
    dialog.get_by_label("Search companies").fill("Fab")
    dialog.get_by_role("radio", name=re.compile("^Fabrikam")).check()
    axe(page, "link dialog")
    dialog.get_by_role("button", name="Link", exact=True).click()
    tenants = page.get_by_role("table", name="Tenants")
    # Column 4 is the first destination's company (ConnectWise Manage).
    expect(tenants.get_by_role("row", name=re.compile("^Fabrikam")).get_by_role("cell").nth(3)).to_have_text("251")

    step("bulk-map the others by name similarity, with a confirmation")
    page.get_by_role("button", name="Bulk map by name…").click()
    dialog = page.get_by_role("dialog", name="Bulk map tenants by name")
    dialog.get_by_role("button", name="Propose links for unlinked tenants").click()
    proposals = dialog.get_by_role("table", name="Proposed links")
    expect(proposals).to_contain_text("Northwind Traders")
    expect(proposals).to_contain_text("Tailspin Toys")
    axe(page, "bulk mapping dialog")
    shot(page, "07-bulk-mapping", full=False)
    dialog.get_by_role("button", name=re.compile(r"^Confirm 2 link")).click()
    expect(proposals.get_by_text("linked")).to_have_count(2)
    dialog.get_by_role("button", name="Close").click()
    expect(tenants.get_by_role("row", name=re.compile("^Northwind")).get_by_role("cell").nth(3)).to_have_text("260")
    expect(tenants.get_by_role("row", name=re.compile("^Tailspin")).get_by_role("cell").nth(3)).to_have_text("270")

    step("onboarding as it stands: a tenant's Microsoft 365 credentials, write-only")
    tenants.get_by_role("row", name=re.compile("^Fabrikam")).get_by_role("button", name="Microsoft 365 credentials of Fabrikam").click()
    dialog = page.get_by_role("dialog", name="Microsoft 365 credentials of Fabrikam")
    dialog.get_by_label("Application (client) id").fill("22222222-3333-4444-8555-666666666666")
    dialog.get_by_label("Client secret").fill("fabrikam-app-secret")
    axe(page, "credentials dialog")
    dialog.get_by_role("button", name="Save credentials").click()
    expect(dialog).to_be_hidden()
    expect(tenants.get_by_role("row", name=re.compile("^Fabrikam")).get_by_role("cell").nth(2)).to_have_text("credentials set")
    check(page, "08-tenants")

    step("admin relationships: select, preview, confirm, watch the termination")
    go(page, "Admin relationships")
    table = page.get_by_role("table", name="Relationships")
    expect(table).to_contain_text(ARGS["removal_customer"])
    check(page, "09-admin-relationships")
    table.get_by_role("checkbox", name=re.compile(f"^Select {ARGS['removal_customer']}:")).check()
    page.get_by_role("button", name=re.compile("^Preview removal of 1 selected")).click()
    dialog = page.get_by_role("dialog", name="Confirm removal")
    expect(dialog).to_contain_text("Confirming removes 1 of 1")
    expect(dialog).to_contain_text(ARGS["removal_customer"])
    axe(page, "removal preview")
    shot(page, "10-removal-preview", full=False)
    dialog.get_by_role("button", name="Remove 1 relationship(s)").click()
    removals = page.get_by_role("table", name="Removals")
    expect(removals).to_contain_text("terminated", timeout=120_000)
    check(page, "11-removal-result")

    step("a policy switched off for one tenant, and still off when the page is read again")
    go(page, "Policies")
    page.get_by_label("Switches for tenant").select_option(label="Contoso Ltd")
    switch = page.get_by_role("switch", name="Mail forwarding to an external address on for this tenant")
    expect(switch).to_be_checked()
    with page.expect_response(lambda r: r.request.method == "PUT" and "/policies/builtin.external-forwarding" in r.url) as saved:
        switch.uncheck()
    if saved.value.status != 200:
        problems.append(f"switching the policy off answered {saved.value.status}")
    expect(switch).not_to_be_checked()
    page.reload()
    heading(page, "Policies")
    page.get_by_label("Switches for tenant").select_option(label="Contoso Ltd")
    expect(page.get_by_role("switch", name="Mail forwarding to an external address on for this tenant")).not_to_be_checked()

    for name, nav in [("12-policies", "Policies"), ("13-audit-log", "Audit log"), ("14-principals", "Principals")]:
        step(f"{nav}")
        go(page, nav)
        page.wait_for_load_state("networkidle")
        check(page, name)
    expect(page.get_by_role("table", name="Principals")).to_contain_text("Tess Analyst")
    go(page, "Audit log")
    expect(page.get_by_role("table", name="Audit log")).to_contain_text("destination")


def dark_and_phone(browser) -> None:
    step("dark mode and a phone-sized screen")
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", device_scale_factor=1)
    context.add_init_script(path=ARGS["axe"])
    page = context.new_page()
    watch(page)
    sign_in(page, ARGS["owner_token"])
    heading(page, "Overview")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    go(page, "Alerts")
    expect(page.get_by_role("table", name="Alerts")).to_be_visible()
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    if background != "rgb(15, 18, 22)":
        problems.append(f"dark mode not applied: body background {background}")
    check(page, "15-phone-dark-alerts")
    fits_the_phone(page, "alerts")
    step("an alert's page on the phone")
    page.goto(f"{BASE}/console#/alerts/{ARGS['triage_alert']}")
    expect(page.get_by_role("region", name="Tickets")).to_contain_text("ticket #")
    page.wait_for_load_state("networkidle")
    fits_the_phone(page, "the alert page")
    check(page, "18-phone-alert")
    for view in ["overview", "tenants", "onboarding", "policies", "destinations", "admin-relationships", "audit-log", "principals"]:
        page.goto(f"{BASE}/console#/{view}")
        page.wait_for_load_state("networkidle")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        fits_the_phone(page, view)
    page.goto(f"{BASE}/console#/alerts")
    heading(page, "Alerts")
    # The route change focuses the heading one animation frame after it renders: wait for it,
    # or that late focus can take the focus back from the skip link's target below.
    expect(page.get_by_role("heading", level=1, name="Alerts")).to_be_focused()
    step("keyboard: the skip link and the navigation work without a mouse")
    skip = page.get_by_role("link", name="Skip to content")
    skip.focus()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.get_by_role("button", name="Menu").focus()
    page.keyboard.press("Enter")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").focus()
    page.keyboard.press("Enter")
    heading(page, "Tenants")
    expect(page.get_by_role("heading", level=1, name="Tenants")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Register a tenant")).to_be_focused()
    context.close()


def fits_the_phone(page: Page, what: str) -> None:
    """The page never scrolls sideways on a phone: wide tables scroll inside their own box."""
    page.wait_for_timeout(200)
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5).map((e) => e.tagName + (e.className ? "." + e.className : ""))"""
        )
        problems.append(f"{what} scrolls sideways on a phone: scrollWidth {widths[0]} > {widths[1]} ({wide})")


def analyst_flow(page: Page) -> None:
    step("an analyst limited to Threat Management sees no other category anywhere")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, ARGS["analyst_token"])
    heading(page, "Overview")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["Overview", "Alerts", "Tenants", "Onboarding", "Policies", "Destinations"])
    page.wait_for_load_state("networkidle")
    categories = page.get_by_role("list", name="Open alerts by category")
    expect(categories.get_by_role("link")).to_have_text(["Threat Management"])
    check(page, "16-analyst-overview")
    go(page, "Alerts")
    queue = page.get_by_role("table", name="Alerts")
    expect(queue.locator("tbody tr").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    seen = set(queue.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.category)"))
    if seen != {"ThreatManagement"}:
        problems.append(f"the analyst's queue shows categories {seen}")
    options = page.get_by_label("Category").locator("option").all_inner_texts()
    if options != ["Any", "Threat Management"]:
        problems.append(f"the analyst's category filter offers {options}")
    check(page, "17-analyst-alerts")
    for view in ["alerts", "overview", "policies", "destinations", "tenants"]:
        page.goto(f"{BASE}/console#/{view}")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        text = page.locator("main").inner_text()
        for other in ["Permissions", "Data Loss Prevention", "Information Governance", "Mail Flow", "Others", "Exchange admin"]:
            if other in text:
                problems.append(f"the analyst sees {other!r} on {view}")
    page.goto(f"{BASE}/console#/alerts/{ARGS['permissions_alert']}")
    expect(page.get_by_role("alert")).to_be_visible()
    if "exchange-admin-elevation" in page.content():
        problems.append("the analyst can open a Permissions alert")
    page.goto(f"{BASE}/console#/admin-relationships")
    expect(page.get_by_text("Nothing here for your role.")).to_be_visible()


def main() -> int:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
        # axe-core is added to every document before its own scripts by the DevTools protocol:
        # a <script> tag injected later would be refused by the console's CSP (which is checked
        # above), so add_script_tag cannot carry it.
        context.add_init_script(path=ARGS["axe"])
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page = context.new_page()
        watch(page)
        owner_flow(page)
        dark_and_phone(browser)
        analyst_flow(page)
        browser.close()
    if problems:
        print(fail_report(), flush=True)
        return 1
    print(f"screenshots in {SHOTS}")
    print("CONSOLE BROWSER TEST PASSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
