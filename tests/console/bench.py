"""Console first-page render time, read with the browser's Performance API (a benchmark).

    .tools/bin/python tests/console/bench.py --base http://127.0.0.1:PORT --token TOKEN --tenant TENANT_ID [--runs 5]

`cargo run --release -p vigil-local --bin console-bench` seeds the local stack (2,000 tenants,
10,000 alerts of one tenant) and runs this script; it also runs against any stack.

For each page (the alert queue filtered to --tenant; the tenants page) it opens the console in
a fresh headless Chromium context with the token already signed in, and records, relative to
the navigation's start (`performance.now()`'s origin):

* `first rows`: when the page's table first holds a row (a MutationObserver installed before
  the console's script runs notes `performance.now()`), i.e. the first page on screen;
* `api`: the duration of the page's first API request of its kind (its PerformanceResourceTiming
  entry: the request the first page is drawn from);
* `dom ready`: the navigation entry's `domContentLoadedEventEnd`.

It prints each run and the median, and exits 1 when a median is over 1,000 ms (the issue's
budget), 0 otherwise.
"""

import argparse
import json
import statistics
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

BUDGET_MS = 1000.0

FIRST_ROWS = """
(() => {
  const seen = () => {
    if (window.__firstRows === undefined && document.querySelector('main table tbody tr')) {
      window.__firstRows = performance.now();
    }
  };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true });
})();
"""


def measure(browser, base: str, token: str, view: str, api_path: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # Signed in as the console keeps it: the token in this tab's sessionStorage.
    context.add_init_script(f"sessionStorage.setItem('vigil.console.token', {json.dumps(token)});")
    context.add_init_script(FIRST_ROWS)
    page = context.new_page()
    page.goto(f"{base}/console#/{view}")
    page.wait_for_function("() => window.__firstRows !== undefined", timeout=60_000)
    figures = page.evaluate(
        """(apiPath) => {
            const nav = performance.getEntriesByType('navigation')[0];
            const api = performance.getEntriesByType('resource').filter((e) => e.name.includes(apiPath));
            return { first_rows: window.__firstRows, dom_ready: nav.domContentLoadedEventEnd,
                     api: api.length ? api[0].duration : null,
                     rows: document.querySelectorAll('main table tbody tr').length };
        }""",
        api_path,
    )
    # Let the page finish what it loads behind the first page (the alert queue's filter
    # choices, the rest of the tenants) before the next load starts: on moto, which serves one
    # DynamoDB request at a time, the next load's requests would otherwise queue behind them.
    page.wait_for_load_state("networkidle", timeout=120_000)
    context.close()
    return figures


def api_alone(base: str, token: str, path: str, runs: int) -> float:
    """The median time of one API request on its own (no browser), in ms."""
    times = []
    for _ in range(runs):
        request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def moto_floor(endpoint: str, alerts_table: str, config_table: str, msp: str, tenant: str, runs: int) -> None:
    """What the emulator itself takes for the reads a page makes, timed with boto3 straight
    against it (no Vigil in between): the floor under any design on the local stack."""
    import boto3

    ddb = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    pk = {":pk": {"S": f"MSP#{msp}"}}
    calls = [
        ("GetItem (the MSP's item)", lambda: ddb.get_item(TableName=config_table, Key={"pk": {"S": f"MSP#{msp}"}, "sk": {"S": "PROFILE"}})),
        (
            "Query alerts GSI by-tenant-change (the tenant's queue), Limit 51",
            lambda: ddb.query(TableName=alerts_table, IndexName="by-tenant-change", KeyConditionExpression="tenant_changes = :tk",
                              ExpressionAttributeValues={":tk": {"S": f"MSP#{msp}#TENANT#{tenant}"}}, ScanIndexForward=False, Limit=51),
        ),
        (
            "Query alerts GSI by-change (the MSP's queue), Limit 51",
            lambda: ddb.query(TableName=alerts_table, IndexName="by-change", KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues=pk, ScanIndexForward=False, Limit=51),
        ),
        (
            "Query config table TENANT# prefix, Limit 100",
            lambda: ddb.query(TableName=config_table, KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
                              ExpressionAttributeValues={**pk, ":t": {"S": "TENANT#"}}, Limit=100),
        ),
    ]
    for name, call in calls:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        print(f"moto alone: {name}: {statistics.median(times):.0f} ms (median of {runs}; {min(times):.0f}–{max(times):.0f})")
    for table in (alerts_table, config_table):
        print(f"moto alone: table {table} holds {ddb.describe_table(TableName=table)['Table'].get('ItemCount', '?')} items")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--aws-endpoint", help="moto's address: also time the page's reads on the emulator alone")
    parser.add_argument("--alerts-table")
    parser.add_argument("--config-table")
    parser.add_argument("--msp")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    pages = [
        (f"alert queue of tenant {args.tenant}", f"alerts?tenant={args.tenant}", "/v1/alerts?"),
        ("tenants page", "tenants", "/v1/tenants"),
    ]
    over = False
    if args.aws_endpoint:
        moto_floor(args.aws_endpoint, args.alerts_table, args.config_table, args.msp, args.tenant, args.runs)
    for name, path in [
        ("GET /v1/alerts?tenant=…&limit=50", f"/v1/alerts?tenant={args.tenant}&limit=50"),
        ("GET /v1/tenants?limit=100 (the tenants page's first request)", "/v1/tenants?limit=100"),
        ("GET /v1/tenants (every tenant at once)", "/v1/tenants"),
    ]:
        print(f"{name} alone (no browser): {api_alone(base, args.token, path, args.runs):.0f} ms (median of {args.runs})")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-dev-shm-usage"])
        # One warm-up load: the first start of a browser process is not the page's cost.
        measure(browser, base, args.token, pages[1][1], pages[1][2])
        for name, view, api_path in pages:
            runs = [measure(browser, base, args.token, view, api_path) for _ in range(args.runs)]
            for i, r in enumerate(runs, 1):
                own = r["first_rows"] - (r["api"] or 0)
                print(f"  {name} run {i}: first rows {r['first_rows']:.0f} ms (api {r['api'] or 0:.0f} ms, the rest {own:.0f} ms, dom ready {r['dom_ready']:.0f} ms, {r['rows']} rows)")
            firsts = [r["first_rows"] for r in runs]
            median = statistics.median(firsts)
            api = statistics.median(r["api"] or 0 for r in runs)
            verdict = "within" if median <= BUDGET_MS else "OVER"
            print(
                f"{name}: first page on screen after {median:.0f} ms (median of {len(runs)}, range {min(firsts):.0f}–{max(firsts):.0f}; "
                f"API {api:.0f} ms) — {verdict} the {BUDGET_MS:.0f} ms budget"
            )
            over |= median > BUDGET_MS
        browser.close()
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
