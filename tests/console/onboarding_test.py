"""The console's onboarding screens in headless Chromium (Debian's, driven by Playwright).

Run by `tests/tests/console_onboarding.rs`, which starts the local stack (its Microsoft 365
simulator knows the MSP app and how Litware's administrator answers the consent page), seeds
the partner tenant's GDAP relationships, and passes one JSON argument: base URL, owner and
engineer tokens, the MSP app's id and secret, Litware's tenant id, the customers discovery
should offer, axe-core's path and the screenshot folder.

As the owner: register the MSP app (the secret write-only), create Litware's consent link and
follow it in the browser to Microsoft (the simulator), which redirects back to Vigil; see the
link consented and Litware's access test per capability (the failing one with Microsoft's
error and the fix), run it again; select the two unwatched customers discovery found and onboard
them in bulk, with progress per customer; offboard Litware through the confirmation dialog.
As an engineer (no credentials:write, no tenants:offboard): the same pages offer none of those
actions. axe-core on each page (no serious or critical violation). Prints "ONBOARDING BROWSER
TEST PASSED" at the end.
"""

import json
import re
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from browser import TIMEOUT_MS, axe_serious, go, step
from browser import sign_in as sign_in_at

ARGS = json.loads(sys.argv[1])
BASE = ARGS["base"].rstrip("/")
SHOTS = Path(ARGS["screenshots"])

problems: list[str] = []


def fail_report() -> str:
    return "ONBOARDING BROWSER TEST FAILED:\n" + "\n".join(problems)


def watch(page: Page) -> None:
    """Fails the run on any error the page logs or throws (404s are answers: nothing yet)."""
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}")
        if m.type == "error" and "the server responded with a status of 404" not in m.text
        else None,
    )
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))


def check(page: Page, name: str) -> None:
    """axe-core on the page as it is now (a serious or critical violation fails), then a screenshot."""
    page.wait_for_load_state("networkidle")
    bad = axe_serious(page, name)
    if bad:
        problems.append(f"axe on {name}: serious/critical violation(s): {bad}")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if problems:
        raise SystemExit(fail_report())


def sign_in(page: Page, token: str) -> None:
    sign_in_at(page, BASE, token)


def owner_flow(page: Page) -> None:
    step("sign in as the owner: the onboarding page before any app")
    sign_in(page, ARGS["owner_token"])
    go(page, "Onboarding")
    expect(page.get_by_text("No app registered yet")).to_be_visible()

    step("register the MSP app: the secret leaves the page once sent")
    form = page.get_by_role("form", name="Register the MSP app")
    form.get_by_label("Application (client) id").fill(ARGS["app_id"])
    form.get_by_label(re.compile("Client secret")).fill(ARGS["app_secret"])
    form.get_by_role("button", name="Register the app").click()
    expect(page.get_by_text("App saved")).to_be_visible()
    expect(page.get_by_text(f"{BASE}/v1/consent/{ARGS['msp']}")).to_be_visible()
    if ARGS["app_secret"] in page.content():
        problems.append("the app secret is still on the page after it was saved")

    step("a consent link for Litware, copied and followed to Microsoft")
    link_form = page.get_by_role("form", name="New consent link")
    link_form.get_by_label("Customer name").fill("Litware Inc")
    link_form.get_by_label(re.compile("Tenant id")).fill(ARGS["litware"])
    link_form.get_by_role("button", name="Create the link").click()
    url_box = page.get_by_label(re.compile("Send this link to Litware Inc"))
    expect(url_box).to_have_value(re.compile(r"/adminconsent\?"))
    url = url_box.input_value()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy the consent link for Litware Inc").first.click()
    expect(page.get_by_text("Copied", exact=True).first).to_be_visible()
    if page.evaluate("() => navigator.clipboard.readText()") != url:
        problems.append("the copied consent link differs from the one shown")
    links = page.get_by_role("table", name="Consent links")
    expect(links.get_by_role("row", name=re.compile("Litware Inc"))).to_contain_text("issued")

    # The customer's administrator opens the link in their own browser: Microsoft (the
    # simulator) asks for consent and redirects back to Vigil's consent route, no token.
    admin = page.context.new_page()
    admin.goto(url)
    expect(admin.locator("body")).to_contain_text('"consented"')
    if not admin.url.startswith(f"{BASE}/v1/consent/{ARGS['msp']}?"):
        problems.append(f"Microsoft did not send the administrator back to Vigil: {admin.url}")
    admin.close()

    step("the link is consented; Litware's access test per capability")
    page.reload()
    expect(page.get_by_role("heading", level=1, name="Onboarding")).to_be_visible()
    row = page.get_by_role("table", name="Consent links").get_by_role("row", name=re.compile("Litware Inc"))
    expect(row).to_contain_text("consented")
    row.get_by_role("link", name="access test").click()
    expect(page.get_by_role("heading", level=1, name="Litware Inc")).to_be_visible()
    test = page.get_by_role("table", name="Access test")
    expect(test.locator("tbody tr")).to_have_count(5)
    expect(test.locator('tr[data-capability="token"]')).to_contain_text("pass")
    expect(test.locator('tr[data-capability="sign_ins"]')).to_contain_text("fail")
    expect(test.locator('tr[data-capability="sign_ins"]')).to_contain_text("AuditLog.Read.All")
    outcome = page.get_by_role("status").filter(has_text="tested")
    first_run = outcome.get_attribute("data-ran-at")
    page.get_by_role("button", name="Run again").click()
    expect(outcome).not_to_have_attribute("data-ran-at", first_run)
    expect(test.locator('tr[data-capability="sign_ins"]')).to_contain_text("fail")
    check(page, "31-access-test")

    step("discovery: the partner tenant's customers; two onboarded in bulk")
    go(page, "Onboarding")
    found = page.get_by_role("table", name="Discovered customers")
    for tenant, name in ARGS["discovered"]:
        expect(found.locator(f'tr[data-tenant="{tenant}"]')).to_contain_text(name)
        expect(found.locator(f'tr[data-tenant="{tenant}"]')).to_contain_text("not watched")
    expect(found.locator(f'tr[data-tenant="{ARGS["watched"]}"]')).to_contain_text("watched")
    expect(found.locator(f'tr[data-tenant="{ARGS["watched"]}"] input[type=checkbox]')).to_be_disabled()
    for _, name in ARGS["discovered"]:
        found.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name=f"Onboard {len(ARGS['discovered'])} selected").click()
    progress = page.get_by_role("table", name="Bulk onboarding progress")
    for tenant, name in ARGS["discovered"]:
        expect(progress.locator(f'tr[data-tenant="{tenant}"]')).to_contain_text(name)
        expect(progress.locator(f'tr[data-tenant="{tenant}"]')).to_contain_text("issued")
    check(page, "30-onboarding")

    step("offboard Litware through the confirmation dialog")
    page.goto(f"{BASE}/console#/tenants/{ARGS['litware']}")
    expect(page.get_by_role("heading", level=1, name="Litware Inc")).to_be_visible()
    page.get_by_role("button", name="Offboard this tenant…").click()
    dialog = page.get_by_role("dialog", name="Offboard this tenant")
    dialog.get_by_label(re.compile("Keep its data for")).fill(str(ARGS["retention_days"]))
    dialog.get_by_role("button", name="Offboard", exact=True).click()
    offboarding = page.get_by_test_id("offboarding")
    expect(offboarding).to_contain_text(f"{ARGS['retention_days']} days")
    expect(offboarding).to_contain_text(re.compile("stopping|retained"))
    check(page, "32-offboarding")


def engineer_flow(page: Page) -> None:
    step("an engineer: the same pages, without the actions their role may not take")
    sign_in(page, ARGS["engineer_token"])
    go(page, "Onboarding")
    expect(page.get_by_role("table", name="Consent links")).to_be_visible()
    expect(page.get_by_role("table", name="Discovered customers")).to_be_visible()
    for absent in [page.get_by_role("form", name=re.compile("MSP app")), page.get_by_role("form", name="New consent link"),
                   page.get_by_role("button", name=re.compile("^Onboard"))]:
        expect(absent).to_have_count(0)
    page.goto(f"{BASE}/console#/tenants/{ARGS['watched']}")
    expect(page.get_by_role("heading", level=2, name="Access test")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Run"))).to_be_visible()
    expect(page.get_by_role("button", name="Offboard this tenant…")).to_have_count(0)


def main() -> int:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-dev-shm-usage"])
        for flow in (owner_flow, engineer_flow):
            context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
            # axe-core comes in before the page's own scripts (the console's CSP refuses a tag added later).
            context.add_init_script(path=ARGS["axe"])
            context.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page = context.new_page()
            watch(page)
            flow(page)
            context.close()
        browser.close()
    if problems:
        print(fail_report(), flush=True)
        return 1
    print("ONBOARDING BROWSER TEST PASSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
